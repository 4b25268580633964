"""How far ahead of the output the synthesis thread renders: a margin that widens after a near-miss.

A fixed margin is a bet on the longest time the synthesis thread can be held off the CPU. On this
project's 2-core machines (virtual machines: the host can hold a whole virtual CPU off for a few ms, which no
priority inside can prevent) that bet is lost now and then, and a dropout is the one thing a performer does
not forgive. So the margin adapts, as jitter buffers in pro audio and VoIP software do:

- **near-miss**: when the synthesis thread finds less than one block left in the ring (the output would
  have run dry at its next read) or finds that it did run dry, the margin grows by one block, up to
  ``max_blocks``. The change is counted and the engine reports it, so a user can see what it cost in latency;
- **calm**: after ``relax_seconds`` without a near-miss it shrinks by one block, back down to ``blocks``;
- **start-up**: while the engine's start-up decodes run (presets and macro slopes, each a long decode on a
  real-time thread beside the synthesis thread) the margin is ``startup_blocks`` wider;
- **pressure**: while control floods in (a sender over its budget, or the OSC receive thread's CPU share
  spent), and for a while after, the margin is the widest. A flood makes
  the synthesis thread's frames costlier and slower (each paced latent change is a decode and a new timbre
  in that thread, 8-13 ms a frame of 5.3 ms under a flood against 1.3 ms quiet; the sender's core and the
  network work beside it), and the whole process then stalls now and then for 14-50 ms with no thread of
  ours waiting for a CPU (traced, see results/reliability/flakes-and-dropouts.md): a 3-block margin lost
  those bets at a flood's start, before any near-miss had widened it. A flood's own commands are dropped
  or paced anyway, so the latency the wider margin costs is not heard; the notes and moves of a performer
  in calm times keep the calm margin. (A stream under the budgets, the soak's 200 messages a second, is not
  a flood: taken as one, while the latent pacer held changes back, the widest margin in a 5-minute JACK
  soak came with 29 underflows and 153 xruns where the calm one beside it had 0 and 1, cause not found.)

:class:`MarginPolicy` is a pure state machine of fill levels and times, tested without a clock; the live
engine feeds it from its synthesis thread (never from the audio callback).
"""

from __future__ import annotations

import collections
import dataclasses

from synth.errors import ParameterError

__all__ = ["MarginPolicy", "MarginChange"]


@dataclasses.dataclass(frozen=True)
class MarginChange:
    """The margin became ``blocks`` at time ``t`` (seconds on the caller's clock) because of ``reason``
    ("near-miss", "underflow", "calm", "start-up", "start-up done", "pressure", "pressure over")."""

    t: float
    blocks: int
    reason: str


class MarginPolicy:
    """The current margin in blocks, fed with what the synthesis thread sees between blocks.

    Parameters
    ----------
    blocks : the margin on a calm machine (the lowest it goes)
    max_blocks : the widest it grows to
    relax_seconds : calm time after which it shrinks by one block
    startup_blocks : extra blocks while start-up work runs (see :meth:`set_startup`)
    """

    def __init__(self, *, blocks: int, max_blocks: int, relax_seconds: float = 30.0, startup_blocks: int = 2) -> None:
        for name, value in (("blocks", blocks), ("max_blocks", max_blocks), ("startup_blocks", startup_blocks)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "blocks" else 0):
                raise ParameterError(f"margin: {name} must be an integer >= {1 if name == 'blocks' else 0}, got {value!r}")
        if max_blocks < blocks:
            raise ParameterError(f"margin: max_blocks ({max_blocks}) is below blocks ({blocks})")
        if not relax_seconds > 0:
            raise ParameterError(f"margin: relax_seconds must be positive, got {relax_seconds!r}")
        self.base = blocks
        self.max_blocks = max_blocks
        self.relax_seconds = float(relax_seconds)
        self.startup_blocks = startup_blocks
        # The latest changes (a run has few; bounded all the same, as the synthesis thread appends them).
        self.changes: collections.deque[MarginChange] = collections.deque(maxlen=64)
        self.reset()

    def reset(self) -> None:
        """Back to the calm margin, no start-up, no history."""
        self.adapted = self.base  # grown by near-misses, relaxed by calm
        self.startup = False
        self.pressured = False
        self._pressure_until = 0.0
        self.near_misses = 0
        self.widest = self.base
        self._last_trouble: float | None = None
        self._underflows = 0
        self.changes.clear()

    @property
    def blocks(self) -> int:
        """The margin to render ahead now."""
        if self.pressured:
            return self.max_blocks
        extra = self.startup_blocks if self.startup else 0
        return min(self.max_blocks, self.adapted + extra)

    def set_startup(self, running: bool, *, now: float) -> None:
        """Start-up work begins (``True``) or is done (``False``)."""
        if running != self.startup:
            self.startup = running
            self._record(now, "start-up" if running else "start-up done")

    def set_pressure(self, *, until: float, now: float) -> None:
        """Control floods in: the margin is the widest (``max_blocks``) from ``now`` until ``until`` (seconds on
        the caller's clock; a later call may extend it, never shorten it)."""
        self._pressure_until = max(self._pressure_until, float(until))
        if not self.pressured and self._pressure_until > now:
            self.pressured = True
            self._record(now, "pressure")

    def observe(self, *, fill_blocks: float, underflows: int, now: float) -> int:
        """One look between blocks: ``fill_blocks`` rendered blocks still waiting in the ring, the output's
        underflow count so far, the time. Returns the margin (:attr:`blocks`) to render to."""
        ran_dry = underflows > self._underflows
        self._underflows = underflows
        if self.pressured and now >= self._pressure_until:
            self.pressured = False
            self._record(now, "pressure over")
        if ran_dry or fill_blocks < 1.0:
            self.near_misses += 1
            self._last_trouble = now
            if self.adapted < self.max_blocks:
                self.adapted += 1
                self._record(now, "underflow" if ran_dry else "near-miss")
        elif self.adapted > self.base:
            since = now - (self._last_trouble if self._last_trouble is not None else now)
            if since >= self.relax_seconds:
                self.adapted -= 1
                self._last_trouble = now  # one block per calm period
                self._record(now, "calm")
        elif self._last_trouble is None:
            self._last_trouble = now
        return self.blocks

    def _record(self, now: float, reason: str) -> None:
        self.widest = max(self.widest, self.blocks)
        self.changes.append(MarginChange(t=now, blocks=self.blocks, reason=reason))
