"""The real-time engine: voices, latent control, decoding and inversion, driven by sample time.

``Engine`` is the deterministic core shared by live playing (:mod:`synth.engine.live`) and offline rendering.
"""

from synth.engine.commands import (
    METHODS,
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
from synth.engine.engine import Engine

__all__ = [
    "Engine",
    "Command",
    "ControlSpec",
    "METHODS",
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
]
