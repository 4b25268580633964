"""Which notes become presets and their names (export.preset_notes; no TensorFlow needed)."""

from __future__ import annotations

import numpy as np

from export.preset_notes import choose_preset_notes, display_name, preset_name

FAMILIES = ("bass", "guitar", "organ")
VELOCITIES = (25, 75, 100, 127)


def rows_of(n: int) -> list[dict]:
    """Metadata of n notes: 3 families x 2 instruments x 4 velocities, at pitch 60 (also used by test_export)."""
    rows = []
    for i in range(n):
        family = FAMILIES[i % 3]
        instrument = f"{family}_acoustic_{(i // 3) % 2:03d}"
        velocity = VELOCITIES[(i // 6) % 4]
        rows.append(
            {
                "note_str": f"{instrument}-060-{velocity:03d}",
                "pitch": 60,
                "velocity": velocity,
                "instrument_str": instrument,
                "instrument_family_str": family,
                "instrument_source_str": "acoustic",
            }
        )
    return rows


def test_preset_names_are_valid_and_unique():
    taken: set[str] = set()
    assert preset_name("guitar_acoustic_000", 100, taken=taken) == "guitar_acoustic_000_v100"
    assert preset_name("guitar_acoustic_000", 100, taken=taken) == "guitar_acoustic_000_v100_2"
    assert preset_name("../etc/pass wd", 50, taken=taken) == "_etc_pass_wd_v50"
    assert len(preset_name("x" * 300, 1, taken=taken)) <= 100


def test_choose_preset_notes_skips_silent_and_picks_nearest_velocity():
    rows = rows_of(24)
    peaks = np.ones(24)
    peaks[
        [
            i
            for i, r in enumerate(rows)
            if r["velocity"] == 127 and r["instrument_str"] == "organ_acoustic_000"
        ]
    ] = 0
    chosen = choose_preset_notes(rows, peaks, {"train": np.arange(24)}, per_family=1)
    by_name = {c.name: c for c in chosen}
    assert set(by_name) == {
        "bass_acoustic_000_v127",
        "bass_acoustic_000_v75",
        "guitar_acoustic_000_v127",
        "guitar_acoustic_000_v75",
        "organ_acoustic_000_v100",
        "organ_acoustic_000_v75",
    }
    assert all(c.split == "train" for c in chosen)


def test_unpitched_general_midi_programs_become_presets_only_when_a_family_has_nothing_else():
    rows = []
    for family, instrument, program in (
        ("synth_lead", "synth_lead_000", 127),  # gunshot
        ("synth_lead", "synth_lead_001", 80),  # square lead
        ("synth_lead", "synth_lead_002", 124),  # telephone ring
        ("vocal", "vocal_000", 126),  # applause, alone in its family
    ):
        rows.append({"note_str": f"{instrument}-060-127", "pitch": 60, "velocity": 127, "program": program,
                     "instrument_str": instrument, "instrument_family_str": family})
    chosen = choose_preset_notes(rows, np.ones(len(rows)), {"train": np.arange(len(rows))}, per_family=2)
    assert sorted(c.note["instrument_str"] for c in chosen) == ["synth_lead_001", "vocal_000"]


def test_soundfont_notes_are_named_by_program_and_font():
    row = {
        "note_str": "guitar_acoustic_000-060-100",
        "instrument_str": "guitar_acoustic_000",
        "program_name": "acoustic_guitar_nylon",
        "soundfont": "FluidR3_GM.sf2",
    }
    assert display_name(row) == "acoustic_guitar_nylon_fluidr3"
    assert display_name({**row, "soundfont": "TimGM6mb.sf2"}) == "acoustic_guitar_nylon_timgm6mb"
    assert display_name({"note_str": "organ_electronic_004-060-050"}) == "organ_electronic_004"
