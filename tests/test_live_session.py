"""The live session (synth/host/session.py): the parts of a run start in one order, stop in one order, and a
failure part-way undoes what was built, with real parts (the synthetic bundle, a recorder, the OSC server, the
page's server on a port that is taken)."""

from __future__ import annotations

import json
import socket

import pytest
from engine_fixtures import OscClient, synthetic_bundle, wait_for

from synth.control.messages import NoteOn
from synth.engine import Engine, EngineOptions, LiveDecoding
from synth.errors import ParameterError
from synth.host.live_engine import LiveEngine
from synth.host.recorder import Recorder
from synth.host.session import LiveSession
from synth.osc.server import OscServer


def build(session: LiveSession, tmp_path):
    recorder = session.own("recorder", Recorder(tmp_path / "take.wav", rate=48000))
    engine = session.own("engine", Engine(synthetic_bundle(), EngineOptions(output_rate=48000, max_voices=2),
                                          decoding=LiveDecoding()))
    live = session.own("live", LiveEngine(engine, output="null", record=recorder, realtime=False))
    server = session.own("server", OscServer(live, port=0, log_path=tmp_path / "take.json"))
    return engine, live, server


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_failure_part_way_undoes_every_part_built_and_keeps_nothing(tmp_path):
    from synth.web.server import WebServer

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    session = LiveSession()
    with pytest.raises(ParameterError, match="cannot"), session:
        engine, live, server = build(session, tmp_path)
        session.own("web", WebServer(server.router, port=taken.getsockname()[1]))  # the port is in use
    taken.close()
    assert session.stopped and not session.running
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no recording, no take log, no hidden lines file
    assert port_is_free(server.port)
    assert not engine.timbres._decoding._thread.is_alive()  # the engine closed: its decode worker ended


def test_a_session_plays_then_stops_inputs_before_the_engine_and_keeps_the_take(tmp_path):
    with LiveSession() as session:
        engine, live, server = build(session, tmp_path)
        session.start()
        assert session.running
        client = OscClient(server.port)
        client.send("/synth/note/on", 60, 100)
        assert wait_for(lambda: engine.sounding_voices == 1)
        client.close()
        stats = session.stop()
        assert session.write_log() == tmp_path / "take.json"
    assert stats.engine.notes == 1 and port_is_free(server.port)
    assert [e["address"] for e in json.loads((tmp_path / "take.json").read_text())] == ["/synth/note/on"]
    assert (tmp_path / "take.wav").stat().st_size > 1000


def test_a_part_is_one_the_session_knows():
    with pytest.raises(ValueError, match="no part 'mixer'"):
        LiveSession().own("mixer", object())


def test_without_a_start_the_context_aborts(tmp_path):
    with LiveSession() as session:
        engine, live, server = build(session, tmp_path)
        live.submit(NoteOn(60, 100.0))  # queued, never played
    assert session.stopped and sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failure_once_the_engine_plays_discards_the_recording_and_the_log(tmp_path):
    """Ctrl-C while the inputs open (after the engine has started and rendered): nothing is kept."""
    import time

    def interrupted():
        time.sleep(0.5)  # the engine plays, the recorder has been handed audio
        raise KeyboardInterrupt

    session = LiveSession()
    engine, live, server = build(session, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        session.start(between=interrupted)
    assert session.stopped and not session.running and not live.running
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert port_is_free(server.port)
