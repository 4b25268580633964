"""The sound a performance had at a moment: a score's latent controls replayed up to a time.

A performer who finds a sound on the XY pad, a morph or the macros while ``melsynth serve --log-osc
take.json`` runs can keep it afterwards: the log is a score, and replaying its latent commands (preset,
morph, corners, XY, macros, ``/synth/latent``, ``/synth/latent/set``) through the engine's own
:class:`~synth.engine.control.ControlState`, from the state the engine started in, gives exactly the latent
the engine decoded at that moment. Nothing is rendered: notes, gain and method do not change a latent.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from synth.engine.control import ControlState
from synth.errors import ParameterError
from synth.render.score import Score

__all__ = ["Capture", "capture_latent"]


@dataclasses.dataclass(frozen=True, eq=False)
class Capture:
    """What the controls were at ``seconds`` into a score.

    latent : np.ndarray [shape=bundle.latent_shape, float32, read-only] the latent the engine decoded
    seconds : the moment (s from the score's start)
    label : how the base was set last (a preset name, ``morph:a,b,t``, ``xy:x,y``, ``latent``, ...)
    macros : the macro settings (standard deviations), one per macro of the bundle
    messages : how many of the score's messages were at or before ``seconds``
    """

    latent: np.ndarray
    seconds: float
    label: str
    macros: tuple[float, ...]
    messages: int

    def describe(self) -> str:
        """One line for a preset's source and for the user: the moment, the base and any macro moved."""
        moved = [f"macro {k} {v:+.2f}" for k, v in enumerate(self.macros) if v != 0.0]
        return f"at {self.seconds:.3f} s: {self.label}" + (f", {', '.join(moved)}" if moved else "")


def capture_latent(bundle, score: Score, *, at: float | None = None, initial_preset: str | None = None) -> Capture:
    """The latent the engine decoded ``at`` seconds into ``score``.

    Parameters
    ----------
    bundle : the model bundle the score was played on (its presets, latent shape and macros)
    score : a checked score (:func:`synth.render.score.load_score` with the bundle's spec)
    at : the moment in seconds, >= 0 (messages at exactly ``at`` count); None: after the last message
    initial_preset : the preset the engine started on (``serve --preset``; None: the bundle's first)

    Returns a :class:`Capture`; raises ParameterError for a bad ``at`` or an unknown ``initial_preset``.
    """
    if at is not None:
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or at < 0:
            raise ParameterError(f"at (the moment to capture) must be a finite number of seconds >= 0, got {at!r}")
    state = ControlState.for_bundle(bundle, initial=initial_preset)
    seconds = score.duration if at is None else float(at)
    count = 0
    for entry in score.entries:
        if entry.time > seconds:
            break
        state.apply(entry.command)
        count += 1
    latent = state.latent()
    latent.setflags(write=False)
    return Capture(latent=latent, seconds=seconds, label=state.preset_label,
                   macros=tuple(float(v) for v in state.macros), messages=count)
