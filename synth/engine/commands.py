"""Engine commands: immutable, already-validated control events.

The OSC server, the offline score renderer and tests all speak to the engine in these types. They are built
only through :func:`synth.osc.vocabulary.parse_message` (or directly by code that has validated its values),
so the engine itself never sees a NaN, an unknown preset or an out-of-range note.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth.inversion.base import METHODS  # the inverters' names have one home: the inverters

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
    "LATENT_COMMANDS",
    "METHODS",
    "ControlSpec",
    "NOTE_SPAN",
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


# Commands that change the latent and so need a decode.
LATENT_COMMANDS = (SetLatent, SetLatentValue, SetPreset, Morph, SetCorners, SetXY, SetMacro)


# ---------------------------------------------------------------------------------------------- limits
NOTE_SPAN = 24  # semitones either side of the bundle's base pitch
MACRO_LIMIT = 10.0  # standard deviations
GAIN_LIMIT = 4.0
BEND_LIMIT = 24.0  # semitones, as the note span
LATENT_LIMIT = 1000.0  # far beyond any encoder's output; larger values can only be mistakes or attacks


def _finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


@dataclasses.dataclass(frozen=True)
class ControlSpec:
    """What an engine accepts: the bundle's pitch, latent size, preset names and macro count.

    :meth:`check` raises :class:`~synth.errors.ParameterError` with a reason for any command the engine
    must not apply; the OSC vocabulary and :meth:`synth.engine.Engine.schedule` both use it.
    """

    base_pitch: int
    latent_shape: tuple[int, ...]
    presets: tuple[str, ...]
    macro_count: int
    methods: tuple[str, ...] = METHODS
    #: A keyboard bundle's trained keys (None: one pitch, ``base_pitch``).
    keys: tuple[int, ...] | None = None

    @classmethod
    def for_bundle(cls, bundle, *, methods: tuple[str, ...] = METHODS) -> ControlSpec:
        """What ``bundle`` accepts: its notes, latent size, presets and macros, and ``methods``."""
        macros = getattr(bundle, "macros", None)
        return cls(
            base_pitch=int(bundle.base_pitch),
            latent_shape=tuple(bundle.latent_shape),
            presets=tuple(bundle.presets),
            macro_count=int(len(macros.stds)) if macros is not None else 0,
            methods=tuple(methods),
            keys=getattr(bundle, "keys", None),
        )

    @property
    def latent_size(self) -> int:
        return int(np.prod(self.latent_shape))

    @property
    def note_range(self) -> tuple[int, int]:
        """The notes the engine plays: NOTE_SPAN semitones either side of the base pitch, or of a keyboard
        bundle's trained keys (within MIDI's 0..127)."""
        lo, hi = (self.base_pitch, self.base_pitch) if self.keys is None else (self.keys[0], self.keys[-1])
        return max(0, lo - NOTE_SPAN), min(127, hi + NOTE_SPAN)

    def check(self, command: Command) -> Command:
        from synth.errors import ParameterError

        def fail(reason: str):
            raise ParameterError(reason)

        def number(name: str, value, lo: float, hi: float) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(f"{name} must be a number, got {type(value).__name__}")
            if not _finite(float(value)):
                fail(f"{name} must be finite, got {value}")
            if not lo <= value <= hi:
                fail(f"{name} {value} out of range {lo:g}..{hi:g}")

        def preset(name: str) -> None:
            if name not in self.presets:
                fail(f"unknown preset {str(name)[:100]!r}")

        if not isinstance(command, Command):
            fail(f"not an engine command: {type(command).__name__}")
        if isinstance(command, (NoteOn, NoteOff)):
            lo, hi = self.note_range
            if isinstance(command.note, bool) or not isinstance(command.note, int):
                fail(f"note must be a whole number, got {command.note!r}")
            if not lo <= command.note <= hi:
                known = (f"base pitch {self.base_pitch}" if self.keys is None
                         else f"trained keys {self.keys[0]}..{self.keys[-1]}")
                fail(f"note {command.note} out of range {lo}..{hi} ({known} +- {NOTE_SPAN})")
            if isinstance(command, NoteOn):
                number("velocity", command.velocity, 0, 127)
        elif isinstance(command, SetLatent):
            v = command.values
            if not isinstance(v, np.ndarray) or v.size != self.latent_size:
                fail(f"latent needs {self.latent_size} values")
            if not np.all(np.isfinite(v)):
                fail("latent contains NaN or Inf")
            if np.any(np.abs(v) > LATENT_LIMIT):
                fail(f"latent values must lie within +-{LATENT_LIMIT:g}")
        elif isinstance(command, SetLatentValue):
            if isinstance(command.index, bool) or not isinstance(command.index, int):
                fail("latent index must be a whole number")
            if not 0 <= command.index < self.latent_size:
                fail(f"latent index {command.index} out of range 0..{self.latent_size - 1}")
            number("latent value", command.value, -LATENT_LIMIT, LATENT_LIMIT)
        elif isinstance(command, SetPreset):
            preset(command.name)
        elif isinstance(command, Morph):
            preset(command.a)
            preset(command.b)
            number("t", command.t, 0.0, 1.0)
        elif isinstance(command, SetCorners):
            for name in (command.a, command.b, command.c, command.d):
                preset(name)
        elif isinstance(command, SetXY):
            number("x", command.x, 0.0, 1.0)
            number("y", command.y, 0.0, 1.0)
        elif isinstance(command, SetMacro):
            if self.macro_count == 0:
                fail("this bundle has no macros")
            if isinstance(command.k, bool) or not isinstance(command.k, int):
                fail("macro index must be a whole number")
            if not 0 <= command.k < self.macro_count:
                fail(f"macro {command.k} out of range 0..{self.macro_count - 1}")
            number("macro value", command.value, -MACRO_LIMIT, MACRO_LIMIT)
        elif isinstance(command, SetMethod):
            if command.method not in self.methods:
                fail(f"unknown method {str(command.method)[:40]!r} (use {' or '.join(self.methods)})")
        elif isinstance(command, SetGain):
            number("gain", command.gain, 0.0, GAIN_LIMIT)
        elif isinstance(command, SetBend):
            number("bend", command.semitones, -BEND_LIMIT, BEND_LIMIT)
        return command
