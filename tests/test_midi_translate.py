"""MIDI messages -> engine commands: every kind, the pedal, bend, learn, and what is ignored or refused."""

from __future__ import annotations

import json

import pytest

from synth.control.messages import Morph, NoteOff, NoteOn, Panic, SetBend, SetGain, SetMacro, SetPreset, SetXY
from synth.control.spec import ControlSpec
from synth.control.targets import MidiTarget
from synth.errors import ParameterError
from synth.midi.mapping import DEFAULT_CC, MidiMapping, load_mapping
from synth.midi.translate import MidiTranslator

SPEC = ControlSpec(base_pitch=60, latent_shape=(4,), presets=("bright", "dark", "hollow"), macro_count=3)


def commands(t: MidiTranslator, *messages) -> list:
    out = []
    for m in messages:
        result = t.translate(m)
        assert not result.error, (m, result.error)
        out += list(result.commands)
    return out


def test_notes_velocity_and_note_on_with_velocity_zero():
    t = MidiTranslator(SPEC)
    assert commands(t, [0x90, 60, 100], [0x80, 60, 0], [0x91, 62, 64], [0x91, 62, 0]) == [
        NoteOn(60, 100.0), NoteOff(60), NoteOn(62, 64.0), NoteOff(62)]


def test_the_sustain_pedal_holds_released_notes_until_it_is_up():
    t = MidiTranslator(SPEC)
    assert commands(t, [0x90, 60, 100], [0xB0, 64, 127], [0x80, 60, 0], [0x90, 64, 90], [0x80, 64, 0]) == [
        NoteOn(60, 100.0), NoteOn(64, 90.0)]
    assert t.translate([0x80, 60, 0]).ignored == "held by the sustain pedal"
    # A key pressed again under the pedal and still down is not released by the pedal.
    assert commands(t, [0x90, 60, 80]) == [NoteOn(60, 80.0)]
    assert commands(t, [0xB0, 64, 0]) == [NoteOff(64)]
    assert commands(t, [0x80, 60, 0]) == [NoteOff(60)]


def test_pitch_bend_covers_the_range_and_centres():
    t = MidiTranslator(SPEC, MidiMapping(bend_range=12.0))
    assert commands(t, [0xE0, 0, 0]) == [SetBend(-12.0)]
    assert commands(t, [0xE0, 0, 64]) == [SetBend(0.0)]  # 8192
    assert commands(t, [0xE0, 127, 127]) == [SetBend(12.0)]  # 16383
    (half,) = commands(MidiTranslator(SPEC), [0xE0, 0, 96])  # 12288: half way up, +-2 semitones by default
    assert half.semitones == pytest.approx(1.0, abs=1e-3)


def test_default_controllers():
    t = MidiTranslator(SPEC)
    assert commands(t, [0xB0, 1, 127], [0xB0, 1, 64], [0xB0, 1, 0]) == [
        SetMacro(0, 3.0), SetMacro(0, 0.0), SetMacro(0, -3.0)]
    assert commands(t, [0xB0, 16, 127], [0xB0, 17, 0]) == [SetXY(1.0, 0.5), SetXY(1.0, 0.0)]
    assert commands(t, [0xB0, 18, 127]) == [Morph("bright", "dark", 1.0)]
    assert commands(t, [0xB0, 7, 127]) == [SetGain(1.0)]
    assert commands(t, [0xB0, 22, 127]) == [SetMacro(2, 3.0)]
    assert t.translate([0xB0, 25, 127]).ignored.endswith("the bundle has 3 macros")  # macro 5 of 3
    assert commands(t, [0xB0, 123, 0]) == [Panic()]
    assert commands(t, [0xC0, 2]) == [SetPreset("hollow")]


def test_what_is_ignored_and_what_is_refused_changes_no_state():
    t = MidiTranslator(SPEC)
    assert t.translate([0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7]).ignored == "sysex"
    assert t.translate([0xF8]).ignored == "system message"  # clock
    assert t.translate([0xB0, 90, 3]).ignored == "CC 90 is not mapped"
    assert t.translate([0xD0, 40]).ignored == "aftertouch"
    assert "no status byte" in t.translate([60, 100]).error  # running status the port did not expand
    assert "needs 2 data bytes" in t.translate([0x90, 60]).error
    assert "needs 2 data bytes" in t.translate([0x90, 60, 200]).error
    assert "out of range 36..84" in t.translate([0x90, 20, 100]).error
    assert "program 7: the bundle has 3 presets" in t.translate([0xC0, 7]).error
    assert t.translate([]).error == "empty message"
    assert t.xy == [0.5, 0.5] and not t.sustain
    omni_off = MidiTranslator(SPEC, MidiMapping(channel=2))
    assert omni_off.translate([0x90, 60, 100]).ignored == "channel 1"
    assert omni_off.translate([0x91, 60, 100]).commands == (NoteOn(60, 100.0),)


def test_learn_binds_the_next_controller_moved():
    t = MidiTranslator(SPEC)
    t.learn("macro:1")
    result = t.translate([0xB0, 90, 127])
    assert result.learned == (90, MidiTarget("macro", 1)) and result.commands == (SetMacro(1, 3.0),)
    assert t.learning is None and commands(t, [0xB0, 90, 0]) == [SetMacro(1, -3.0)]
    with pytest.raises(ParameterError, match="expected macro:K"):
        t.learn("volume")


def test_mapping_files_merge_over_the_default_and_are_checked(tmp_path):
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"format": "melsynth-midi-map/1", "channel": 1, "bend_range": 7,
                                "morph": ["dark", "hollow"], "cc": {"1": "morph", "18": None, "74": "macro:2"}}))
    m = load_mapping(path)
    assert str(m.cc[1]) == "morph" and 18 not in m.cc and str(m.cc[74]) == "macro:2" and str(m.cc[7]) == DEFAULT_CC[7]
    t = MidiTranslator(SPEC, m)
    assert commands(t, [0xB0, 1, 127], [0xE0, 127, 127]) == [Morph("dark", "hollow", 1.0), SetBend(7.0)]
    for doc, message in [
        ({"cc": {"1": "loudness"}}, "expected macro:K"),
        ({"cc": {"200": "x"}}, "CC number 200 is not 0..127"),
        ({"cc": {"one": "x"}}, "cc key 'one' is not a CC number"),
        ({"cc": {"²": "x"}}, "cc key '²' is not a CC number"),  # once int()'s ValueError, a traceback
        ({"channel": 17}, "channel must be 1..16"),
        ({"bend_range": 0}, "bend_range must be a number"),
        ({"volume": 1}, "unknown keys \\['volume'\\]"),
        ({"format": "other/2"}, "format 'other/2'"),
        ({"morph": ["dark"]}, "morph must name two presets"),
    ]:
        path.write_text(json.dumps(doc))
        with pytest.raises(ParameterError, match=message):
            load_mapping(path)
    path.write_text("{not json")
    with pytest.raises(ParameterError, match="not a readable JSON MIDI mapping file"):
        load_mapping(path)
    with pytest.raises(ParameterError, match="morph preset 'violin' is not in the bundle"):
        MidiTranslator(SPEC, MidiMapping(morph=("violin", "dark")))


def test_the_example_mapping_file_loads():
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "midi-map.json"
    m = load_mapping(example)
    assert m.cc and m.bend_range > 0
