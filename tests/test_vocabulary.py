"""The control vocabulary as one table: OSC, scores, the engine's dispatch, MIDI targets and docs/OSC.md all
walk synth/control/vocabulary.py's CONTROLS, so a new control is one entry there."""

from __future__ import annotations

import dataclasses
import json

import pytest
from engine_fixtures import OscClient, live_session, synthetic_bundle, wait_for

from synth.control import docs, vocabulary
from synth.control.arguments import Number
from synth.control.messages import Command, InfoRequest, MidiLearn, SetGain, StatusRequest
from synth.control.spec import ControlSpec
from synth.control.targets import MidiTarget, parse_target
from synth.control.vocabulary import Control, parse_message
from synth.errors import ParameterError
from synth.midi.mapping import MidiMapping

VOLUME = Control("/synth/volume", SetGain, (Number("gain", "volume", "0..1 of full gain", lo=0.0, hi=1.0),),
                 "output gain on a 0..1 fader", (0.5,))


@pytest.fixture
def with_volume(monkeypatch):
    """The vocabulary with one control more, added the way a developer adds one: an entry in CONTROLS."""
    monkeypatch.setattr(vocabulary, "CONTROLS", (*vocabulary.CONTROLS, VOLUME))


def spec() -> ControlSpec:
    return ControlSpec.for_bundle(synthetic_bundle())


def test_docs_tables_are_the_vocabulary():
    text = docs.DOC.read_text()
    assert docs.rewrite(text) == text, "docs/OSC.md is stale: run python -m synth.control.docs"
    for control in vocabulary.CONTROLS:
        assert f"| `{control.address}` |" in text


def test_one_entry_is_a_whole_new_control(with_volume):
    """Parsed, range-checked, encoded, documented, played over real UDP and logged, from the one entry."""
    assert parse_message("/synth/volume", [0.25], spec=spec()) == SetGain(0.25)
    with pytest.raises(ParameterError, match="volume 2.0 out of range 0..1"):
        parse_message("/synth/volume", [2], spec=spec())
    assert "| `/synth/volume` | volume (0..1): 0..1 of full gain | output gain on a 0..1 fader |" in docs.messages_table()
    assert docs.rewrite(docs.DOC.read_text()) != docs.DOC.read_text()


def test_a_new_control_reaches_the_engine_over_osc_and_the_take_log(with_volume, tmp_path):
    log = tmp_path / "take.json"
    with live_session(log_path=log) as (live, server):
        client = OscClient(server.port)
        client.send("/synth/volume", 0.25)
        client.send("/synth/volume", 7.0)
        assert wait_for(lambda: live.engine.gain == 0.25)
        assert wait_for(lambda: server.router.errors == 1)
        client.close()
    entries = json.loads(log.read_text())
    assert [(e["address"], e["args"]) for e in entries] == [("/synth/volume", [0.25])]


def test_a_control_the_engine_cannot_apply_is_refused_when_the_engine_is_built(monkeypatch):
    from synth.engine import Engine, EngineOptions

    @dataclasses.dataclass(frozen=True)
    class SetWidth(Command):
        width: float

    width = Control("/synth/width", SetWidth, (Number("width", "width", "", lo=0.0, hi=1.0),), "stereo width")
    monkeypatch.setattr(vocabulary, "CONTROLS", (*vocabulary.CONTROLS, width))
    with pytest.raises(ParameterError, match="no effect for /synth/width"):
        Engine(synthetic_bundle(), EngineOptions(output_rate=48000, methods=("sinusoidal",), max_voices=1))


def test_every_latent_control_has_an_effect_on_the_control_state():
    from synth.engine.control import ControlState

    latent = {c.message for c in vocabulary.CONTROLS if c.latent}
    assert latent and latent <= set(ControlState.EFFECTS)


def test_queries_and_midi_learn_are_typed_requests():
    assert parse_message("/synth/status", [], spec=spec()) == StatusRequest()
    assert parse_message("/synth/info", [], spec=spec()) == InfoRequest()
    assert parse_message("/synth/midi/learn", ["macro:2"], spec=spec()) == MidiLearn("macro:2")
    with pytest.raises(ParameterError, match="expected 0 arguments, got 1"):
        parse_message("/synth/status", [1], spec=spec())
    with pytest.raises(ParameterError, match="MIDI target 'loudness'"):
        parse_message("/synth/midi/learn", ["loudness"], spec=spec())


def test_midi_targets_are_read_once_when_the_mapping_loads():
    mapping = MidiMapping(cc={21: "macro:3", 22: "x"})
    assert mapping.cc[21] == MidiTarget("macro", 3) and mapping.cc[22] == MidiTarget("x")
    assert str(mapping.with_cc(5, "morph").cc[5]) == "morph"
    assert parse_target("macro:12") == MidiTarget("macro", 12)
    for bad in ("macro:", "macro:x", "X", "", None, 3):
        with pytest.raises(ParameterError, match="expected macro:K, x, y, morph, gain, sustain or panic"):
            parse_target(bad)


def test_an_argument_left_out_takes_its_default_and_only_trailing_ones_may_be():
    assert parse_message("/synth/note/on", [60], spec=spec()).velocity == 100.0
    for control in vocabulary.CONTROLS:
        defaults = [a.default is not None for a in control.arguments]
        assert defaults == sorted(defaults), control.address  # no required argument after an optional one
