"""The control vocabulary of melsynth, declared once: every address, its message type, its arguments, help.

OSC parsing and encoding, the page's WebSocket, the score files, the engine's checks and docs/OSC.md all walk
:data:`CONTROLS`. Adding a control is one entry here (plus its command type in
:mod:`synth.control.messages` and what the engine does with it); docs/OSC.md's table is regenerated from it
(``python -m synth.control.docs``, checked by the suite).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from synth.bundle.latent_limit import LATENT_LIMIT
from synth.control.arguments import Argument, Choice, Number, Target, Vector, Whole
from synth.control.messages import (
    Command,
    InfoRequest,
    MidiLearn,
    Morph,
    NoteOff,
    NoteOn,
    Panic,
    Request,
    SetBend,
    SetCorners,
    SetGain,
    SetLatent,
    SetLatentValue,
    SetMacro,
    SetMethod,
    SetPreset,
    SetXY,
    StatusRequest,
)
from synth.errors import ParameterError

if TYPE_CHECKING:
    from synth.control.spec import ControlSpec

__all__ = [
    "Control",
    "CONTROLS",
    "PREFIX",
    "DEFAULT_PORT",
    "ERROR_ADDRESS",
    "control_for",
    "parse_message",
    "check_message",
    "command_to_message",
]

PREFIX = "/synth"
# 57120 is SuperCollider's and 9000 is taken by many dev tools; 9137 is free on common systems.
DEFAULT_PORT = 9137
#: The reply to a refused message: ``/synth/error address reason``.
ERROR_ADDRESS = "/synth/error"

MACRO_LIMIT = 10.0  # standard deviations
GAIN_LIMIT = 4.0
BEND_LIMIT = 24.0  # semitones, as the note span


@dataclasses.dataclass(frozen=True)
class Control:
    """One message of the vocabulary: its ``address``, the ``message`` type it becomes, its ``arguments`` in
    order, what it does (``help``), an ``example`` for the docs' oscsend line, and, for a query, its
    ``reply``. ``latent``: it changes the latent, so the engine decodes after it."""

    address: str
    message: type
    arguments: tuple[Argument, ...]
    help: str
    example: tuple = ()
    reply: str = ""
    latent: bool = False


_NOTE = Whole("note", "note", "MIDI note", bounds="note_range")
_PRESET_A = Choice("a", "preset", "preset at t = 0", among="presets")

CONTROLS: tuple[Control, ...] = (
    Control("/synth/note/on", NoteOn,
            (_NOTE, Number("velocity", "velocity", "0 is a note off", default=100.0, lo=0.0, hi=127.0)),
            "start a note (velocity 0: note off)", (60, 100)),
    Control("/synth/note/off", NoteOff, (_NOTE,), "release it", (60,)),
    Control("/synth/panic", Panic, (), "fade out every voice"),
    Control("/synth/latent", SetLatent, (Vector("values", "latent", "the whole latent", limit=LATENT_LIMIT),),
            "replace the whole latent, atomically", latent=True),
    Control("/synth/latent/set", SetLatentValue,
            (Whole("index", "latent index", "flat index", bounds="latent_indices"),
             Number("value", "latent value", "", lo=-LATENT_LIMIT, hi=LATENT_LIMIT)),
            "set one latent value", (12, 0.5), latent=True),
    Control("/synth/preset", SetPreset, (Choice("name", "preset", "a preset of the bundle", among="presets"),),
            "the named preset", ("bright",), latent=True),
    Control("/synth/morph", Morph,
            (_PRESET_A, dataclasses.replace(_PRESET_A, field="b", help="preset at t = 1"),
             Number("t", "t", "0: a, 1: b", lo=0.0, hi=1.0)),
            "(1 - t) a + t b", ("bright", "dark", 0.3), latent=True),
    Control("/synth/corners", SetCorners,
            tuple(dataclasses.replace(_PRESET_A, field=f, help=h) for f, h in
                  (("a", "x=0 y=0"), ("b", "x=1 y=0"), ("c", "x=0 y=1"), ("d", "x=1 y=1"))),
            "the XY pad's four corner presets", ("bright", "dark", "hollow", "soft"), latent=True),
    Control("/synth/xy", SetXY, (Number("x", "x", "", lo=0.0, hi=1.0), Number("y", "y", "", lo=0.0, hi=1.0)),
            "bilinear blend of the corners at (x, y)", (0.25, 0.8), latent=True),
    Control("/synth/macro", SetMacro,
            (Whole("k", "macro", "principal direction k", bounds="macro_indices", empty="this bundle has no macros"),
             Number("value", "macro value", "standard deviations", lo=-MACRO_LIMIT, hi=MACRO_LIMIT)),
            "offset along principal direction k on top of the base latent, in standard deviations", (0, 1.5),
            latent=True),
    Control("/synth/method", SetMethod, (Choice("method", "method", "", among="methods", hint=True),),
            "inversion method (crossfaded on sounding voices)", ("griffinlim",)),
    Control("/synth/gain", SetGain, (Number("gain", "gain", "", lo=0.0, hi=GAIN_LIMIT),),
            "output gain before the limiter", (0.7,)),
    Control("/synth/bend", SetBend, (Number("semitones", "bend", "semitones", lo=-BEND_LIMIT, hi=BEND_LIMIT),),
            "pitch bend of every voice (MIDI's too), from the next frame", (-0.5,)),
    Control("/synth/midi/learn", MidiLearn, (Target("target", "target", "what the next CC moved will move"),),
            "bind the next MIDI CC moved to the target (serve --midi)", ("macro:2",)),
    Control("/synth/status", StatusRequest, (), "the engine's figures now",
            reply="/synth/status key value key value ..."),
    Control("/synth/info", InfoRequest, (), "the bundle's latent size, pitch and presets",
            reply="/synth/info latent_size N base_pitch P presets name1 name2 ..."),
)

_index: tuple = ((), {}, {})


def _lookup() -> tuple[dict[str, Control], dict[type, Control]]:
    """Address -> entry and message type -> entry (its first entry), for :data:`CONTROLS` as it is now: a
    test (or a plugin) that extends the table is heard without anything else to update."""
    global _index
    if _index[0] is not CONTROLS:
        by_type: dict[type, Control] = {}
        for c in CONTROLS:
            by_type.setdefault(c.message, c)
        _index = (CONTROLS, {c.address: c for c in CONTROLS}, by_type)
    return _index[1], _index[2]


def control_for(message: Command | Request | type) -> Control:
    """The entry of a message (or message type), or ParameterError for anything not in the vocabulary."""
    kind = message if isinstance(message, type) else type(message)
    try:
        return _lookup()[1][kind]
    except KeyError:
        raise ParameterError(f"not an engine command: {kind.__name__}") from None


def parse_message(address: str, args, *, spec: ControlSpec) -> Command | Request:
    """Read and check one message: the :class:`~synth.control.messages.Command` for the engine, or the
    :class:`~synth.control.messages.Request` for the server (a query, MIDI learn).

    Raises :class:`~synth.errors.ParameterError` with a short reason (unknown address, wrong count or type,
    NaN/Inf, out of range, unknown preset) for anything else.
    """
    control = _lookup()[0].get(address) if isinstance(address, str) else None
    if control is None:
        raise ParameterError("unknown address")
    args = list(args)
    arities = [a.arity(spec) for a in control.arguments]
    lo = sum(n for n, a in zip(arities, control.arguments, strict=True) if a.default is None)
    hi = sum(arities)
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise ParameterError(f"expected {want} argument{'s' if hi != 1 else ''}, got {len(args)}")
    values, i = [], 0
    for argument, n in zip(control.arguments, arities, strict=True):
        if i < len(args):
            values.append(argument.read(args[i : i + n], spec))
        else:
            values.append(argument.default)
        i += n
    message = control.message(*values)
    _check(control, message, spec)
    return message


def check_message(message: Command | Request, *, spec: ControlSpec) -> Command | Request:
    """``message`` when this engine can apply it (a command built in code), else ParameterError."""
    _check(control_for(message), message, spec)
    return message


def _check(control: Control, message: Command | Request, spec: ControlSpec) -> None:
    for argument in control.arguments:
        argument.check(getattr(message, argument.field), spec)


def command_to_message(message: Command | Request) -> tuple[str, list[Any]]:
    """The ``(address, args)`` that :func:`parse_message` turns back into ``message``."""
    control = control_for(message)
    args: list[Any] = []
    for argument in control.arguments:
        args += argument.write(getattr(message, argument.field))
    return control.address, args
