"""How often a live engine may turn a latent change into a new timbre: by what the last ones cost it.

Each frame that carries a latent change asks for a new timbre, and a live engine builds it in its synthesis
thread: the decode itself where the decoder is fast (inline), the timbre's tables, the crossfade from what
sounds. For the default bundle that is 1.5-2.5 ms of the synthesis thread's CPU a change on a 2-core machine,
against 1.4 ms for a whole frame of a 16-voice chord; a stream of changes (a flood of ``/synth/latent/set``,
or a fader sent at 1 kHz) brought one each frame, 128 a second, and tripled what the synthesis thread spent
per block (0.95 to 3.4 ms of a 5.3 ms block, 2,000 changes a second scheduled into the engine under a 16-voice
chord, 2026-12-07; bench/bench_flood.py's sender: 3.1-3.3 ms against 1.2 with no sender, main at 37117c5,
2026-12-07 13:24 UTC): the flood's underflows.

:class:`LatentPacer` holds that work to a share of the audio time. After each change the engine reports what
it cost (CPU seconds of its thread); the next change is turned into a timbre only once the audio played
since then has paid that back at ``share``. Until then the latent changes go on being applied to the control
state (each command still counts, in order) and the newest of them is asked for when the time comes, with
the tags of all of them: nothing is dropped, and a fader's final value always sounds. A change after a pause
goes at once; only a stream of them is paced. Frames, not wall time: a pacer is a pure state machine over the
frames the engine makes, so tests drive it with the costs they choose.
"""

from __future__ import annotations

import math

from synth.errors import ParameterError

__all__ = ["LatentPacer", "LATENT_SHARE", "MAX_WAIT_SECONDS", "BURST_SECONDS"]

# The share of the audio time a live engine's synthesis thread may spend turning latent changes into timbres:
# at 2 ms a change that is one change every 40 ms (every fifth frame of the 16 kHz contract), which a 47 ms
# crossfade (TIMBRE_XFADE_FRAMES) makes one continuous sweep of. Changes that cost less (a preset from the
# cache, an estimated morph or macro move) wait less: each waits for what the one before cost. 0.1 left 0-22 underflows in four 8 s
# floods of bench_flood's sender (100,000/s three times, 10,000/s) beside a 16-voice chord, 0.05 none
# (2026-12-07 13:34 UTC, load average 2.4).
LATENT_SHARE = 0.05
# The longest a change waits however much the last one cost (one slow change, a garbage collection counted in
# it, must not hold the next for seconds): 0.1 s, two crossfades.
MAX_WAIT_SECONDS = 0.1
# The credit a pause builds up, in audio time: the share of this much audio may be spent at once. A performer's
# moves come in bursts (a preset switch, a few fader steps, a morph), well within the share over a second, and
# the pacing without it held each change for what the one before cost: on 2026-12-07 (14:21, bench --only
# engine) latent jumps 20 a second sounded at p50 56 ms, preset switches from the cache at 62 ms, against
# 22 ms unpaced. With 0.5 s at a share of 0.05, 25 ms of the synthesis thread's work went at once: more than
# the 16 ms the calm margin holds, and under a flood a change costs that thread 8-13 ms, not 1.3 (traced in
# quiet windows, 2026-12-07: the first changes of bench_flood's latent floods were 4-9 ms each, back to back,
# and the flood's underflows came there; see results/reliability/flakes-and-dropouts.md). 0.2 s saves 10 ms:
# several cheap changes of a performer at once (a preset from the cache, an estimated move: under 1.5 ms
# each), one costly one under a flood, after which the pacer's wait puts the live engine under pressure
# (its widest margin, synth.host.margin) before the next.
BURST_SECONDS = 0.2


class LatentPacer:
    """Whether a latent change may be asked for at a frame, from what the previous ones cost.

    Parameters
    ----------
    share : the share (0 < share <= 1) of the audio time that the work of latent changes may take
    frame_seconds : the audio time of one frame (the model's hop at the output rate), > 0
    max_wait_seconds : the longest a change waits after the one before, whatever that cost (> 0)
    burst_seconds : the audio time whose share a pause saves up, spent by the next changes at once (>= 0)

    Frames are counted by the caller from any start, never going back (an engine's count of frames made,
    not its frame clock, which a take-back moves back).
    """

    def __init__(self, *, share: float, frame_seconds: float, max_wait_seconds: float = MAX_WAIT_SECONDS,
                 burst_seconds: float = BURST_SECONDS) -> None:
        if isinstance(burst_seconds, bool) or not isinstance(burst_seconds, (int, float)) or not (
                0.0 <= burst_seconds < math.inf):
            raise ParameterError(f"burst_seconds must be a number >= 0, got {burst_seconds!r}")
        for name, value, top in (("share", share, 1.0), ("frame_seconds", frame_seconds, math.inf),
                                 ("max_wait_seconds", max_wait_seconds, math.inf)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= top:
                raise ParameterError(f"{name} must be a number in (0, {top:g}], got {value!r}")
        self.share = float(share)
        self.frame_seconds = float(frame_seconds)
        self.max_wait_frames = float(max_wait_seconds) / self.frame_seconds
        self.burst_frames = float(burst_seconds) / self.frame_seconds
        self._free_at = 0.0  # the first frame at which the work reported so far is paid back
        self.waited = 0  # frames at which a change was due and waited

    def ready(self, *, frame: int) -> bool:
        """Whether a change due at ``frame`` may be asked for now (counts a frame waited when not)."""
        if frame >= self._free_at:
            return True
        self.waited += 1
        return False

    def spent(self, *, frame: int, seconds: float) -> None:
        """The work of a latent change at ``frame`` took ``seconds`` of the synthesis thread's CPU: the next
        change waits until the audio from ``frame`` on has paid it back at :attr:`share` (at most
        ``max_wait_seconds`` from ``frame``)."""
        if not seconds > 0.0:  # also NaN: nothing to pay back
            return
        # A pause saves up at most burst_frames of credit: the debt starts from that far back.
        owed = max(self._free_at, float(frame) - self.burst_frames) + seconds / (self.share * self.frame_seconds)
        self._free_at = min(owed, frame + self.max_wait_frames)
