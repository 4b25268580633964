"""Which MIDI controller moves what: the mapping of CCs, program changes and pitch bend onto the engine.

The default, for any keyboard or DAW (docs/OSC.md has the table)::

    note on / off          notes (velocity kept; note on with velocity 0 is a note off)
    pitch bend             /synth/bend, +-2 semitones over the wheel's range
    CC 64 (sustain)        held notes keep sounding until the pedal is up
    CC 1 (mod wheel)       macro 0
    CC 7 (volume)          gain 0..1
    CC 16, 17              the XY pad: x, y
    CC 18                  morph t between the first two presets (or "morph" in the file)
    CC 20-27               macros 0-7 (those the bundle has)
    CC 120, 123            all sound off / all notes off: panic
    program change N       the N-th preset of the bundle (0-based, in the bundle's order)

A mapping file (JSON) changes any of it; every field is optional::

    {"format": "melsynth-midi-map/1", "channel": 1, "bend_range": 12, "macro_range": 3,
     "morph": ["violin_fluidr3_v127", "church_organ_fluidr3_v127"], "program_change": true,
     "cc": {"1": "morph", "74": "macro:2", "21": "x"}}

``cc`` entries are merged over the default (``null`` removes one). Targets: ``macro:K``, ``x``, ``y``,
``morph``, ``gain``, ``sustain``, ``panic``. ``macro_range`` is how many standard deviations either side
of the middle (CC 64) a macro reaches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

from synth.control.targets import MidiTarget, parse_target
from synth.errors import ParameterError
from synth.json_files import read_json_file

__all__ = ["MidiMapping", "DEFAULT_CC", "MAPPING_FORMAT", "load_mapping"]

MAPPING_FORMAT = "melsynth-midi-map/1"
SUSTAIN_CC = 64
DEFAULT_CC: dict[int, str] = {
    1: "macro:0", 7: "gain", 16: "x", 17: "y", 18: "morph", 64: "sustain", 120: "panic", 123: "panic",
    **{20 + k: f"macro:{k}" for k in range(8)},
}
@dataclasses.dataclass(frozen=True)
class MidiMapping:
    """How MIDI maps onto the engine's commands (see the module docstring). Immutable: MIDI learn makes a
    new one (:meth:`with_cc`). ``cc`` maps CC numbers to targets, given as text and read once, here, into
    :class:`~synth.control.targets.MidiTarget`."""

    cc: MappingProxyType = dataclasses.field(default_factory=lambda: MappingProxyType(dict(DEFAULT_CC)))
    channel: int | None = None  # 1..16; None: every channel (omni)
    bend_range: float = 2.0  # semitones at either end of the wheel
    macro_range: float = 3.0  # standard deviations at either end of a macro's CC
    morph: tuple[str, str] | None = None  # the presets a morph CC blends; None: the bundle's first two
    program_change: bool = True

    def __post_init__(self) -> None:
        cc = dict(self.cc)
        for number, target in cc.items():
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
                raise ParameterError(f"MIDI mapping: CC number {number!r} is not 0..127")
            cc[number] = target if isinstance(target, MidiTarget) else parse_target(target)
        object.__setattr__(self, "cc", MappingProxyType(cc))
        if self.channel is not None and (
            isinstance(self.channel, bool) or not isinstance(self.channel, int) or not 1 <= self.channel <= 16
        ):
            raise ParameterError(f"MIDI mapping: channel must be 1..16 or null (every channel), got {self.channel!r}")
        for name, value, high in (("bend_range", self.bend_range, 24.0), ("macro_range", self.macro_range, 10.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= high:
                raise ParameterError(f"MIDI mapping: {name} must be a number in (0, {high:g}], got {value!r}")
        if self.morph is not None:
            morph = tuple(self.morph)
            if len(morph) != 2 or not all(isinstance(p, str) and p for p in morph):
                raise ParameterError(f"MIDI mapping: morph must name two presets, got {self.morph!r}")
            object.__setattr__(self, "morph", morph)

    def with_cc(self, number: int, target: MidiTarget | str) -> MidiMapping:
        """A copy with CC ``number`` moving ``target`` (what MIDI learn does)."""
        cc = dict(self.cc)
        cc[int(number)] = target if isinstance(target, MidiTarget) else parse_target(target)
        return dataclasses.replace(self, cc=MappingProxyType(cc))

    def check_presets(self, presets: tuple[str, ...], *, macro_count: int) -> None:
        """Refuse a mapping that names presets or macros the bundle does not have."""
        for name in self.morph or ():
            if name not in presets:
                raise ParameterError(f"MIDI mapping: morph preset {name!r} is not in the bundle")
        for number, target in self.cc.items():
            if target.kind == "macro" and target.index >= macro_count and number not in DEFAULT_CC:
                raise ParameterError(
                    f"MIDI mapping: CC {number} -> {target}, but the bundle has {macro_count} macros"
                )


def load_mapping(path: str | Path) -> MidiMapping:
    """Read a mapping file (see the module docstring); ParameterError naming the file and the problem."""
    path = Path(path)
    doc = read_json_file(path, what="MIDI mapping", error=ParameterError)
    if not isinstance(doc, dict):
        raise ParameterError(f"{path}: expected a JSON object")
    known = {"format", "channel", "bend_range", "macro_range", "morph", "program_change", "cc"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ParameterError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
    if doc.get("format", MAPPING_FORMAT) != MAPPING_FORMAT:
        raise ParameterError(f"{path}: format {doc.get('format')!r}, expected {MAPPING_FORMAT!r}")
    cc = dict(DEFAULT_CC)
    entries = doc.get("cc", {})
    if not isinstance(entries, dict):
        raise ParameterError(f"{path}: cc must be an object of CC number -> target")
    for key, target in entries.items():
        if not (str(key).isascii() and str(key).isdigit()):  # "²" is a digit to str.isdigit, not to int()
            raise ParameterError(f"{path}: cc key {key!r} is not a CC number")
        if target is None:
            cc.pop(int(key), None)
        else:
            cc[int(key)] = target
    program_change = doc.get("program_change", True)
    if not isinstance(program_change, bool):
        raise ParameterError(f"{path}: program_change must be true or false")
    try:
        return MidiMapping(cc=MappingProxyType(cc), channel=doc.get("channel"), bend_range=doc.get("bend_range", 2.0),
                           macro_range=doc.get("macro_range", 3.0), morph=doc.get("morph"),
                           program_change=program_change)
    except ParameterError as exc:
        raise ParameterError(f"{path}: {exc}") from None
