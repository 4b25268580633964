"""Which real notes of a features folder become a bundle's presets, and what they are called."""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from typing import Any

import numpy as np

from synth.bundle import validate_preset_name

__all__ = [
    "PresetNote",
    "choose_preset_notes",
    "display_name",
    "preset_name",
    "TARGET_VELOCITIES",
    "MIN_PEAK",
    "UNPITCHED_PROGRAMS",
]

# A loud and a soft version of each chosen instrument: NSynth's top velocity and a quiet one.
TARGET_VELOCITIES = (127, 50)
# Notes whose loudest mel bin is below this (unit scale; 0.3 = -61 dB) are treated as silent renders.
MIN_PEAK = 0.3
# General MIDI programs without a steady pitch: orchestra hit (55), the percussive programs 112-119 and the
# sound effects 120-127 (gunshot, telephone ring, ...). A performer's presets should play in tune, so these
# are picked only for a family that has nothing else.
UNPITCHED_PROGRAMS = frozenset({55, *range(112, 128)})


@dataclasses.dataclass(frozen=True)
class PresetNote:
    """A preset to make: its ``name``, its ``row`` in the features, that row's ``split`` and metadata."""

    name: str
    row: int
    split: str
    note: dict[str, Any]


def preset_name(instrument: str, velocity: int, *, taken: set[str]) -> str:
    """A valid, unique preset name ``<instrument>_v<velocity>`` (sanitised, at most 100 characters)."""
    base = re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{instrument}_v{velocity}")
    base = re.sub(r"\.{2,}", ".", base).lstrip(".")[:96] or "preset"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(validate_preset_name(name))
    return name


def display_name(row: dict[str, Any]) -> str:
    """What a preset is called before its velocity: ``<program_name>_<font>`` for SoundFont notes
    (``acoustic_guitar_nylon_fluidr3``), else the instrument (``guitar_acoustic_010``)."""
    program, font = row.get("program_name"), row.get("soundfont")
    if isinstance(program, str) and program and isinstance(font, str) and font:
        tag = font.rsplit(".", 1)[0].lower().replace("_gm", "")
        return f"{program}_{tag}"
    return str(row.get("instrument_str") or row["note_str"].rsplit("-", 2)[0])


def _spread(items: list[str], count: int) -> list[str]:
    """``count`` items evenly spaced over the sorted list (all of them if there are fewer)."""
    if count >= len(items):
        return items
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in dict.fromkeys(picks)]


def _unpitched(row: dict[str, Any]) -> bool:
    program = row.get("program")
    return isinstance(program, int) and program in UNPITCHED_PROGRAMS


def choose_preset_notes(
    rows: list[dict[str, Any]],
    peaks: np.ndarray,
    splits: dict[str, np.ndarray],
    *,
    per_family: int = 2,
    pitch: int | None = None,
    velocities: tuple[int, ...] = TARGET_VELOCITIES,
) -> list[PresetNote]:
    """Pick the preset notes: ``per_family`` instruments of every family, each at ``velocities``.

    Parameters
    ----------
    rows : the features' metadata rows (note_str, instrument_str, instrument_family_str, velocity, pitch)
    peaks : np.ndarray [shape=(len(rows),)] loudest unit-scale value of each row (silent renders skipped)
    splits : split name -> row indices (recorded in each preset's source)
    per_family : instruments per family, evenly spread over the family's sorted instrument names (General
        MIDI programs without a steady pitch, :data:`UNPITCHED_PROGRAMS`, only when a family has no other)
    pitch : prefer notes at this pitch (the bundle's base pitch)
    velocities : target velocities; the nearest available one is taken (ties: the louder); duplicates merge

    Returns the chosen notes in family, instrument, velocity order, with unique valid names.
    """
    split_of = {int(i): name for name, idx in splits.items() for i in np.asarray(idx).tolist()}
    by_instrument: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, row in enumerate(rows):
        if peaks[i] < MIN_PEAK:
            continue
        family = str(row.get("instrument_family_str", "unknown"))
        instrument = str(row.get("instrument_str") or row["note_str"].rsplit("-", 2)[0])
        by_instrument[family][instrument].append(i)
    chosen: list[PresetNote] = []
    taken: set[str] = set()
    for family in sorted(by_instrument):
        instruments = sorted(by_instrument[family])
        pitched = [name for name in instruments if not _unpitched(rows[by_instrument[family][name][0]])]
        for instrument in _spread(pitched or instruments, per_family):
            candidates = by_instrument[family][instrument]
            if pitch is not None and any(int(rows[i].get("pitch", -1)) == pitch for i in candidates):
                candidates = [i for i in candidates if int(rows[i].get("pitch", -1)) == pitch]
            used: set[int] = set()
            for target in velocities:
                best = min(
                    candidates,
                    key=lambda i, t=target: (
                        abs(int(rows[i].get("velocity", 0)) - t),
                        -int(rows[i].get("velocity", 0)),
                        rows[i]["note_str"],
                    ),
                )
                if best in used:
                    continue
                used.add(best)
                velocity = int(rows[best].get("velocity", 0))
                chosen.append(
                    PresetNote(
                        name=preset_name(display_name(rows[best]), velocity, taken=taken),
                        row=best,
                        split=split_of.get(best, "none"),
                        note=dict(rows[best]),
                    )
                )
    return chosen
