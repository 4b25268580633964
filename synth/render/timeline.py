"""Rendering timed engine commands offline until the engine falls silent.

The offline renderer drives the very :class:`~synth.engine.Engine` that the live engine plays (inline
decoding, so each latent change lands exactly on the frame of its event). Events are scheduled up front on
the engine's sample clock; the audio is rendered one model frame at a time, which makes where the render
*ends* independent of any block size: it ends with the first frame after which every event has been
applied and no voice sounds. Notes still held then would sustain for ever, so they are released
``release_after`` seconds after the last event and the render ends when their release has rung out.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator

import numpy as np

from synth.control.messages import Command, NoteOff
from synth.errors import ParameterError

__all__ = ["TimelineResult", "iter_timeline", "render_timeline", "sample_of", "RELEASE_AFTER", "MAX_TAIL_SECONDS"]

# Seconds after the last event at which notes still held are released (so that a render always ends).
RELEASE_AFTER = 2.0
# A render never runs longer than this beyond its last event plus ``release_after`` (a guard against a
# voice that never finishes; a release is 1 s of the model's note plus a few frames of inverter tail).
MAX_TAIL_SECONDS = 30.0


def sample_of(seconds: float, *, rate: int) -> int:
    """The output sample of a time in seconds: ``round(seconds * rate)`` (the one conversion everyone uses)."""
    return int(round(float(seconds) * rate))


@dataclasses.dataclass
class TimelineResult:
    """What happened during a render (filled in while :func:`iter_timeline` runs).

    samples : samples rendered
    released_at_end : notes that were still held ``release_after`` s after the last event and were released
    cut_short : True when the render hit the MAX_TAIL_SECONDS guard with voices still sounding
    late_events : events the engine applied later than asked (0 offline, where everything is scheduled first)
    limited_frames : frames where the engine's limiter reduced the level
    wall_seconds : time spent rendering (not counting building the engine)
    """

    samples: int = 0
    released_at_end: tuple[int, ...] = ()
    cut_short: bool = False
    late_events: int = 0
    limited_frames: int = 0
    wall_seconds: float = 0.0


def iter_timeline(
    engine,
    events: Iterable[tuple[int, Command]],
    *,
    block: int = 4096,
    release_after: float = RELEASE_AFTER,
    result: TimelineResult | None = None,
) -> Iterator[np.ndarray]:
    """Schedule ``events`` (``(sample, command)``, checked by the engine) and return the audio in blocks.

    Everything is checked and scheduled before this returns (a bad event raises
    :class:`~synth.errors.ParameterError` here, before any audio exists); the returned iterator renders.

    Parameters
    ----------
    engine : a fresh :class:`~synth.engine.Engine` (nothing rendered yet), built with offline decoding
    events : (sample, command) pairs; events at the same sample apply in the given order
    block : samples per yielded block (the last one may be shorter); it does not change the audio
    release_after : seconds after the last event at which still-held notes are released
    result : filled in with the figures of the render as it goes

    Yields
    ------
    np.ndarray [shape=(<= block,), float32] new arrays, together the whole render
    """
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ParameterError(f"block must be a positive integer, got {block!r}")
    if not release_after >= 0 or release_after == float("inf"):
        raise ParameterError(f"release_after must be a finite number >= 0, got {release_after!r}")
    if engine.position != 0:
        raise ParameterError("iter_timeline needs a fresh engine (nothing rendered yet)")
    last = 0
    for sample, command in events:
        engine.schedule(command, int(sample))
        last = max(last, int(sample))
    return _blocks(
        engine, last=last, release_at=last + sample_of(release_after, rate=engine.output_rate), block=block,
        result=result if result is not None else TimelineResult(),
    )


def _blocks(engine, *, last: int, release_at: int, block: int, result: TimelineResult) -> Iterator[np.ndarray]:
    give_up = release_at + sample_of(MAX_TAIL_SECONDS, rate=engine.output_rate)
    released = False
    clock = time.perf_counter()
    buf = np.empty(block, dtype=np.float32)
    filled = 0
    frame = np.empty(engine.max_frame_samples, dtype=np.float32)
    while True:
        start = engine.position
        if start >= last and engine.idle:
            break
        if start >= release_at and not released:
            released = True
            held = engine.held_notes()
            for note in held:
                engine.schedule(NoteOff(note))
            result.released_at_end = tuple(held)
        if start >= give_up:
            result.cut_short = True
            break
        # One whole frame per call (the engine starts, and so stays, on a frame edge): the end is then
        # decided on the frame grid, whatever the block size.
        n = engine.frame_start(engine.frame + 1) - start
        out = frame[:n]
        engine.render_into(out)
        pos = 0
        while pos < n:
            take = min(n - pos, block - filled)
            buf[filled : filled + take] = out[pos : pos + take]
            filled += take
            pos += take
            if filled == block:
                result.wall_seconds += time.perf_counter() - clock
                yield buf.copy()
                clock = time.perf_counter()
                filled = 0
        result.samples = engine.position
    result.wall_seconds += time.perf_counter() - clock
    if filled:
        yield buf[:filled].copy()
    result.samples = engine.position
    result.late_events = int(engine.late_events)
    result.limited_frames = int(engine.limiter.limited_frames)


def render_timeline(engine, events: Iterable[tuple[int, Command]], **kw) -> tuple[np.ndarray, TimelineResult]:
    """:func:`iter_timeline` gathered into one array [shape=(samples,), float32] plus its figures."""
    result = TimelineResult()
    blocks = list(iter_timeline(engine, events, result=result, **kw))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return audio, result
