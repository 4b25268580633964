"""Replaying timed commands through the live engine's threads, on a stepped clock instead of a device.

This is how "offline equals live" is checked: the same :class:`~synth.host.live_engine.LiveEngine` that
``melsynth serve`` runs (inbox, synthesis thread, sample ring, output clock), with its null output replaced
by :class:`SteppedOutput`, which takes one block from the ring each time it is stepped and keeps a virtual
play clock (block ``b`` goes out at ``b * blocksize / rate`` seconds). Messages are submitted through the
LiveEngine's inbox at their sample times (``LiveEngine.submit(at_sample=...)``, what a timetag becomes),
early enough to be on time, as a sequencer sending timetagged bundles ahead would; those due before the
stream starts are scheduled on the engine first (what arrives before the first block). Nothing is paced by the wall clock, so a replay runs as fast as the
synthesis thread can render.

With engines built with :class:`~synth.engine.decoding.LiveDecoding` a latent change is decoded on the worker
thread and lands at the first frame after its decode has finished (a frame or more after its time), so
replays equal offline renders exactly for scores without latent changes; an engine built with inline
decoding (:class:`~synth.engine.decoding.OfflineDecoding`) inside the LiveEngine equals the offline render
for any score.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from synth.control.messages import Command
from synth.errors import ParameterError
from synth.host.output import NullOutput
from synth.host.stats import LiveStats

__all__ = ["SteppedOutput", "stepped_output", "replay_live"]


class SteppedOutput(NullOutput):
    """The null output without its pacing thread: :meth:`step` hands out one block, on a virtual clock."""

    kind = "stepped"

    def __init__(self, ring, *, rate: int, blocksize: int) -> None:
        super().__init__(ring, rate=rate, blocksize=blocksize)
        self.device_name = "stepped (virtual clock)"

    def start(self) -> None:
        self.clock.start_time = 0.0
        self.clock.mark(0.0, self.ring.read)

    def step(self, out: np.ndarray, *, timeout: float = 10.0) -> None:
        """Wait until the synthesis thread has a whole block ready, then take it into ``out`` [(blocksize, ch)]."""
        deadline = time.monotonic() + timeout
        while self.ring.available() < self.blocksize:
            if time.monotonic() > deadline:
                raise ParameterError(f"the synthesis thread produced no block within {timeout:g} s")
            time.sleep(0.0002)
        self.clock.mark(self.ring.read / self.rate, self.ring.read)
        self.ring.read_into(out)
        self.callbacks += 1

    def stop(self) -> None:
        pass


def stepped_output(*, capacity: int, channels: int, rate: int, blocksize: int):
    """A LiveEngine output factory (see :mod:`synth.host.output`): a ring drained by :class:`SteppedOutput`."""
    from synth.host.ring import SampleRing

    ring = SampleRing(capacity=capacity, channels=channels)
    return ring, SteppedOutput(ring, rate=rate, blocksize=blocksize)


def replay_live(
    engine,
    events: Iterable[tuple[int, Command]],
    *,
    n_samples: int,
    blocksize: int = 256,
    ahead_blocks: int = 3,
    timeout: float = 10.0,
) -> tuple[np.ndarray, LiveStats]:
    """Play ``events`` (``(sample, command)``) through a LiveEngine around ``engine``; return what it played.

    Parameters
    ----------
    engine : a fresh :class:`~synth.engine.Engine` (not shared with anything else; it is closed at the end)
    n_samples : samples to take from the output
    blocksize, ahead_blocks : as for ``melsynth serve``

    Returns
    -------
    (audio [shape=(n_samples,), float32], the LiveEngine's figures after stopping, a LiveStats)

    Raises :class:`ParameterError` if any event was applied late or the ring ran dry (either would make the
    comparison meaningless).
    """
    from synth.host.live_engine import LiveEngine

    # Nothing here is paced by a clock: no reason to ask for real-time priority. The margin is fixed: no
    # wider margin after a near-miss, at start-up or while silent, so the synthesis thread is never more than
    # ``ahead_blocks`` (and the frame it is making) past what the output took, whatever the machine's load,
    # and every message submitted ``lead`` ahead is on time by construction. (Those margins, and the silence
    # they take back, are tested on their own in tests/test_engine_margin.py.)
    live = LiveEngine(engine, output=stepped_output, blocksize=blocksize, ahead_blocks=ahead_blocks,
                      max_ahead_blocks=ahead_blocks, idle_ahead_blocks=ahead_blocks, realtime=False)
    # How far ahead of the output a message must be submitted to be on time: the ring's lead, the block
    # being rendered while it waits in the inbox, and the frame the engine may already have made.
    lead = live.ahead + 4 * blocksize + 2 * engine.max_frame_samples
    pending = sorted(((int(s), i, c) for i, (s, c) in enumerate(events)), key=lambda e: (e[0], e[1]))
    k = 0
    while k < len(pending) and pending[k][0] < lead:
        engine.schedule(pending[k][2], pending[k][0])
        k += 1
    n_blocks = -(-int(n_samples) // blocksize)
    out = np.zeros((n_blocks * blocksize, 1), dtype=np.float32)
    live.start()
    try:
        for b in range(n_blocks):
            read = b * blocksize
            while k < len(pending) and pending[k][0] < read + lead:
                live.submit(pending[k][2], at_sample=pending[k][0])
                k += 1
            live.output.step(out[read : read + blocksize], timeout=timeout)
    finally:
        stats = live.stop()
    if stats.failure:
        raise ParameterError(f"the live engine failed: {stats.failure}")
    if stats.engine.late_events:
        raise ParameterError(f"{stats.engine.late_events} events reached the live engine too late")
    if stats.underflows:
        raise ParameterError(f"the live engine's ring ran dry {stats.underflows} times")
    return out[: int(n_samples), 0].copy(), stats
