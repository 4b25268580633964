"""Rendering a whole score offline: the score's messages on a fresh engine, in blocks or to one array.

The engine starts on ``initial_preset`` (default: the bundle's first preset, as ``melsynth serve`` does)
with ``method``; a score that switches methods gets an engine with both inverters built. Every message is
scheduled at ``round(time * rate)``; the render then follows :mod:`synth.render.timeline` (ends when the
last voice has rung out after the last message; notes still held ``release_after`` s after it are released).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from synth.engine.engine import DEFAULT_GAIN
from synth.inversion.base import DEFAULT_METHOD, METHODS
from synth.render.note import make_engine
from synth.render.score import Score
from synth.render.timeline import RELEASE_AFTER, TimelineResult, iter_timeline

__all__ = ["ScoreRender", "score_engine", "iter_score", "render_score"]


@dataclasses.dataclass(frozen=True)
class ScoreRender:
    """audio [shape=(n,), float32] at ``rate``, and the figures of the render."""

    audio: np.ndarray
    rate: int
    figures: TimelineResult


def score_engine(
    bundle,
    score: Score,
    *,
    method: str = DEFAULT_METHOD,
    output_rate: int = 48000,
    gain: float = DEFAULT_GAIN,
    max_voices: int = 16,
    initial_preset: str | None = None,
    decoder=None,
    decoding=None,
    match_loudness: bool = True,
):
    """The engine a score renders on (both methods built when the score switches between them).

    ``decoding`` (a :class:`~synth.engine.decoding.DecodingFactory`; None: offline, inline): pass
    :class:`~synth.engine.decoding.LiveDecoding` for the live engine's kind (decoding on a worker thread), to
    replay a score through :class:`~synth.host.live_engine.LiveEngine` (:mod:`synth.render.live_replay`).
    """
    methods = METHODS if score.uses_method_switch() else (method,)
    return make_engine(
        bundle, method=method, methods=methods, output_rate=output_rate, gain=gain, max_voices=max_voices,
        initial_preset=initial_preset, decoder=decoder, match_loudness=match_loudness, decoding=decoding,
    )


def iter_score(
    engine, score: Score, *, block: int = 48000, release_after: float = RELEASE_AFTER,
    result: TimelineResult | None = None,
) -> Iterator[np.ndarray]:
    """Yield the score's audio on ``engine`` (fresh, from :func:`score_engine`) in blocks of ``block``."""
    return iter_timeline(
        engine, score.events(rate=engine.output_rate), block=block, release_after=release_after, result=result
    )


def render_score(
    bundle,
    score: Score,
    *,
    method: str = DEFAULT_METHOD,
    output_rate: int = 48000,
    gain: float = DEFAULT_GAIN,
    max_voices: int = 16,
    initial_preset: str | None = None,
    release_after: float = RELEASE_AFTER,
    decoder=None,
    block: int = 48000,
    match_loudness: bool = True,
) -> ScoreRender:
    """Render ``score`` (checked, :func:`synth.render.score.load_score`) to one array.

    ``block`` only sets how the audio is gathered; the samples do not depend on it.
    """
    engine = score_engine(
        bundle, score, method=method, output_rate=output_rate, gain=gain, max_voices=max_voices,
        initial_preset=initial_preset, decoder=decoder, match_loudness=match_loudness,
    )
    figures = TimelineResult()
    blocks = list(iter_score(engine, score, block=block, release_after=release_after, result=figures))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return ScoreRender(audio=audio, rate=output_rate, figures=figures)
