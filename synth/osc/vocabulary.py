"""The OSC address space of melsynth: ``(address, args)`` -> a checked engine command.

Everything lives under ``/synth``; ints and floats are both accepted for numbers (Pure Data sends floats),
whole-number parameters accept a float only when it is whole. Scores (``melsynth render --score``) use the
same vocabulary, so :func:`parse_message` is their validator too.

========================  ==================================  ==========================================
address                   arguments                           effect
========================  ==================================  ==========================================
/synth/note/on            note [velocity 0-127, default 100]  start a note (velocity 0: note off)
/synth/note/off           note                                release it
/synth/panic                                                  fade out every voice
/synth/latent             N numbers (N = latent size)         replace the whole latent, atomically
/synth/latent/set         index value                         set one latent value
/synth/preset             name                                the named preset
/synth/morph              name_a name_b t                     (1-t) a + t b
/synth/corners            a b c d                             the XY pad's corners (a: 0,0 b: 1,0 c: 0,1 d: 1,1)
/synth/xy                 x y                                 bilinear blend of the corners, x, y in [0, 1]
/synth/macro              k value                             offset along principal direction k, in stds
/synth/method             sinusoidal | griffinlim            inversion method (crossfaded)
/synth/gain               value (0-4)                         output gain before the limiter
/synth/bend               semitones (-24..24)                 pitch bend of every voice (MIDI's, too)
/synth/midi/learn         target (macro:K x y morph gain ...)  bind the next MIDI CC moved to target
/synth/status                                                 reply: /synth/status key value ...
/synth/info                                                   reply: /synth/info latent_size N base_pitch P presets ...
========================  ==================================  ==========================================
"""

from __future__ import annotations

import math

import numpy as np

from synth.engine.commands import (
    Command,
    ControlSpec,
    Morph,
    NoteOff,
    NoteOn,
    Panic,
    SetBend,
    SetCorners,
    SetGain,
    SetLatent,
    SetLatentValue,
    SetMacro,
    SetMethod,
    SetPreset,
    SetXY,
)
from synth.errors import ParameterError

__all__ = [
    "parse_message",
    "command_to_message",
    "CONTROL_ADDRESSES",
    "QUERY_ADDRESSES",
    "MIDI_LEARN",
    "DEFAULT_PORT",
    "PREFIX",
]

PREFIX = "/synth"
# 57120 is SuperCollider's and 9000 is taken by many dev tools; 9137 is free on common systems.
DEFAULT_PORT = 9137
QUERY_ADDRESSES = ("/synth/status", "/synth/info")
#: Addressed to the server's MIDI input, not the engine: parse_message checks it and returns the address.
MIDI_LEARN = "/synth/midi/learn"
CONTROL_ADDRESSES = (
    "/synth/note/on",
    "/synth/note/off",
    "/synth/panic",
    "/synth/latent",
    "/synth/latent/set",
    "/synth/preset",
    "/synth/morph",
    "/synth/corners",
    "/synth/xy",
    "/synth/macro",
    "/synth/method",
    "/synth/gain",
    "/synth/bend",
)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _number(args, i: int, name: str) -> float:
    x = args[i]
    if not _is_number(x):
        raise ParameterError(f"{name} must be a number, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ParameterError(f"{name} must be finite, got {x}")
    return x


def _whole(args, i: int, name: str) -> int:
    x = _number(args, i, name)
    if x != int(x):
        raise ParameterError(f"{name} must be a whole number, got {x}")
    return int(x)


def _string(args, i: int, name: str) -> str:
    x = args[i]
    if not isinstance(x, str):
        raise ParameterError(f"{name} must be a string, got {type(x).__name__}")
    return x


def _count(args, lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise ParameterError(f"expected {want} argument{'s' if hi != 1 else ''}, got {len(args)}")


def parse_message(address: str, args, *, spec: ControlSpec) -> Command | str:
    """Validate one message and build its command.

    Returns the :class:`~synth.engine.commands.Command`, or the address itself for a query
    (``/synth/status``, ``/synth/info``). Raises :class:`~synth.errors.ParameterError` with a short reason
    (unknown address, wrong count or type, NaN/Inf, out of range, unknown preset) for anything else.
    """
    args = list(args)
    if address in QUERY_ADDRESSES:
        _count(args, 0)
        return address
    if address == MIDI_LEARN:
        from synth.midi.mapping import check_target

        _count(args, 1)
        check_target(_string(args, 0, "MIDI learn target"))
        return address
    if address == "/synth/note/on":
        _count(args, 1, 2)
        note = _whole(args, 0, "note")
        velocity = _number(args, 1, "velocity") if len(args) > 1 else 100.0
        command: Command = NoteOn(note, velocity)
    elif address == "/synth/note/off":
        _count(args, 1)
        command = NoteOff(_whole(args, 0, "note"))
    elif address == "/synth/panic":
        _count(args, 0)
        command = Panic()
    elif address == "/synth/latent":
        _count(args, spec.latent_size)
        if not all(_is_number(a) for a in args):
            raise ParameterError("latent values must all be numbers")
        values = np.asarray(args, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ParameterError("latent contains NaN or Inf")
        values = values.astype(np.float32).reshape(spec.latent_shape)
        values.setflags(write=False)
        command = SetLatent(values)
    elif address == "/synth/latent/set":
        _count(args, 2)
        command = SetLatentValue(_whole(args, 0, "latent index"), _number(args, 1, "latent value"))
    elif address == "/synth/preset":
        _count(args, 1)
        command = SetPreset(_string(args, 0, "preset name"))
    elif address == "/synth/morph":
        _count(args, 3)
        command = Morph(_string(args, 0, "preset a"), _string(args, 1, "preset b"), _number(args, 2, "t"))
    elif address == "/synth/corners":
        _count(args, 4)
        command = SetCorners(*(_string(args, i, "corner preset") for i in range(4)))
    elif address == "/synth/xy":
        _count(args, 2)
        command = SetXY(_number(args, 0, "x"), _number(args, 1, "y"))
    elif address == "/synth/macro":
        _count(args, 2)
        command = SetMacro(_whole(args, 0, "macro index"), _number(args, 1, "macro value"))
    elif address == "/synth/method":
        _count(args, 1)
        command = SetMethod(_string(args, 0, "method"))
    elif address == "/synth/gain":
        _count(args, 1)
        command = SetGain(_number(args, 0, "gain"))
    elif address == "/synth/bend":
        _count(args, 1)
        command = SetBend(_number(args, 0, "bend semitones"))
    else:
        raise ParameterError("unknown address")
    return spec.check(command)


def command_to_message(command: Command) -> tuple[str, list]:
    """The ``(address, args)`` that :func:`parse_message` turns back into ``command``."""
    if isinstance(command, NoteOn):
        return "/synth/note/on", [command.note, command.velocity]
    if isinstance(command, NoteOff):
        return "/synth/note/off", [command.note]
    if isinstance(command, Panic):
        return "/synth/panic", []
    if isinstance(command, SetLatent):
        return "/synth/latent", [float(v) for v in command.values.reshape(-1)]
    if isinstance(command, SetLatentValue):
        return "/synth/latent/set", [command.index, command.value]
    if isinstance(command, SetPreset):
        return "/synth/preset", [command.name]
    if isinstance(command, Morph):
        return "/synth/morph", [command.a, command.b, command.t]
    if isinstance(command, SetCorners):
        return "/synth/corners", [command.a, command.b, command.c, command.d]
    if isinstance(command, SetXY):
        return "/synth/xy", [command.x, command.y]
    if isinstance(command, SetMacro):
        return "/synth/macro", [command.k, command.value]
    if isinstance(command, SetMethod):
        return "/synth/method", [command.method]
    if isinstance(command, SetGain):
        return "/synth/gain", [command.gain]
    if isinstance(command, SetBend):
        return "/synth/bend", [command.semitones]
    raise ParameterError(f"not an engine command: {type(command).__name__}")
