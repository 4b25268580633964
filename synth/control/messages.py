"""Engine commands: immutable control events, one frozen dataclass per message of the vocabulary.

The OSC server, the page, MIDI, the offline score renderer and tests all speak to the engine in these types.
What each one's fields accept, and its address, are declared once in :mod:`synth.control.vocabulary`; the
boundary (:func:`~synth.control.vocabulary.parse_message`, :func:`~synth.control.vocabulary.check_message`)
validates them there, so the engine itself never sees a NaN, an unknown preset or an out-of-range note.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "Command",
    "NoteOn",
    "NoteOff",
    "Panic",
    "SetLatent",
    "SetLatentValue",
    "SetPreset",
    "Morph",
    "SetCorners",
    "SetXY",
    "SetMacro",
    "SetMethod",
    "SetGain",
    "SetBend",
    "Request",
    "StatusRequest",
    "InfoRequest",
    "MidiLearn",
]


class Command:
    """Base class of every engine command (frozen dataclasses below)."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True)
class NoteOn(Command):
    """Start a note; ``velocity`` 1..127 scales the level (velocity 0 is sent as :class:`NoteOff`)."""

    note: int
    velocity: float = 100.0


@dataclasses.dataclass(frozen=True)
class NoteOff(Command):
    """Release every held voice playing ``note``."""

    note: int


@dataclasses.dataclass(frozen=True)
class Panic(Command):
    """Fade out every voice at once."""


@dataclasses.dataclass(frozen=True, eq=False)
class SetLatent(Command):
    """Replace the base latent (``values``: read-only float32 array of the bundle's latent_shape)."""

    values: np.ndarray


@dataclasses.dataclass(frozen=True)
class SetLatentValue(Command):
    """Set one value (flat ``index``) of the base latent."""

    index: int
    value: float


@dataclasses.dataclass(frozen=True)
class SetPreset(Command):
    """Make the named preset's latent the base latent."""

    name: str


@dataclasses.dataclass(frozen=True)
class Morph(Command):
    """Base latent = (1 - t) * preset a + t * preset b."""

    a: str
    b: str
    t: float


@dataclasses.dataclass(frozen=True)
class SetCorners(Command):
    """Choose the four presets of the XY pad (a: x=0 y=0, b: x=1 y=0, c: x=0 y=1, d: x=1 y=1)."""

    a: str
    b: str
    c: str
    d: str


@dataclasses.dataclass(frozen=True)
class SetXY(Command):
    """Base latent = bilinear blend of the four corner presets at (x, y), both in [0, 1]."""

    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class SetMacro(Command):
    """Offset along the k-th principal direction, in standard deviations, on top of the base latent."""

    k: int
    value: float


@dataclasses.dataclass(frozen=True)
class SetMethod(Command):
    """Switch the inversion method (crossfaded on sounding voices)."""

    method: str


@dataclasses.dataclass(frozen=True)
class SetGain(Command):
    """Output gain (linear, before the limiter)."""

    gain: float


@dataclasses.dataclass(frozen=True)
class SetBend(Command):
    """Pitch bend of every voice, in semitones (MIDI pitch bend, or ``/synth/bend``): applied from the next
    frame, which the inverters glide into sample by sample."""

    semitones: float


class Request:
    """Base class of the messages addressed to the server rather than the engine (queries, MIDI learn)."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True)
class StatusRequest(Request):
    """Ask for ``/synth/status``: the engine's figures now."""


@dataclasses.dataclass(frozen=True)
class InfoRequest(Request):
    """Ask for ``/synth/info``: the bundle's latent size, pitch and presets."""


@dataclasses.dataclass(frozen=True)
class MidiLearn(Request):
    """Bind the next MIDI CC that moves to ``target`` (``macro:K``, ``x``, ``y``, ``morph``, ...)."""

    target: str
