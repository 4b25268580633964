"""What a MIDI controller (a CC, learnt or mapped) can move: the targets, declared once.

A target is written ``macro:K``, ``x``, ``y``, ``morph``, ``gain``, ``sustain`` or ``panic`` (in a mapping
file, in ``/synth/midi/learn``, on the page); :func:`parse_target` reads it once, when the mapping loads or the
learn arrives, into a :class:`MidiTarget` that the MIDI translator acts on without parsing it again.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from synth.errors import ParameterError

__all__ = ["MidiTarget", "TARGETS", "parse_target"]

#: kind -> what moving the controller does (docs/OSC.md walks it).
TARGETS: dict[str, str] = {
    "macro": "macro K (written macro:K), its CC's middle (64) at 0, the ends at +-macro_range standard deviations",
    "x": "the XY pad's x (0..1)",
    "y": "the XY pad's y (0..1)",
    "morph": "morph t (0..1) between the mapping's two presets",
    "gain": "gain 0..1",
    "sustain": "the sustain pedal: released keys sound on until it goes up (value >= 64: down)",
    "panic": "fade out every voice",
}
_PATTERN = re.compile(r"^(?:macro:(\d{1,3})|x|y|morph|gain|sustain|panic)$")


@dataclasses.dataclass(frozen=True)
class MidiTarget:
    """A parsed target: ``kind`` (a key of :data:`TARGETS`) and, for a macro, its ``index``."""

    kind: str
    index: int = 0

    def __str__(self) -> str:
        return f"macro:{self.index}" if self.kind == "macro" else self.kind


def parse_target(text: Any) -> MidiTarget:
    """``text`` as a :class:`MidiTarget`, or ParameterError naming it and the targets there are."""
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        kinds = ["macro:K" if k == "macro" else k for k in TARGETS]
        raise ParameterError(f"MIDI target {str(text)[:40]!r}: expected {', '.join(kinds[:-1])} or {kinds[-1]}")
    if match.group(1) is not None:
        return MidiTarget("macro", int(match.group(1)))
    return MidiTarget(text)
