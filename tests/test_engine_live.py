"""LiveEngine.submit (synth/host/live_engine.py): what it refuses is refused to the caller, at once, since the
synthesis thread can only drop a command it cannot schedule."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import synthetic_bundle

from synth.control.messages import NoteOn
from synth.engine import Engine, EngineOptions, LiveDecoding
from synth.errors import ParameterError
from synth.host.live_engine import LiveEngine


@pytest.fixture
def live():
    engine = Engine(synthetic_bundle(), EngineOptions(output_rate=48000, max_voices=2, methods=("sinusoidal",)),
                    decoding=LiveDecoding())
    live = LiveEngine(engine, output="null", blocksize=256, ahead_blocks=2, realtime=False)
    yield live
    live.stop()


@pytest.mark.parametrize("when, message", [
    ({"at_sample": 1000.0}, "at_sample must be an integer sample time, got 1000.0"),
    ({"at_sample": True}, "at_sample must be an integer sample time, got True"),
    ({"at_sample": "1000"}, "at_sample must be an integer sample time, got '1000'"),
    ({"at_time": float("nan")}, "at_time must be a finite time.time\\(\\) in seconds, got nan"),
    ({"at_time": "now"}, "at_time must be a finite time.time\\(\\) in seconds, got 'now'"),
])
def test_a_time_the_engine_cannot_schedule_is_refused_by_submit(live, when, message):
    with pytest.raises(ParameterError, match=message):
        live.submit(NoteOn(60, 100), **when)
    assert live._inbox.empty()


def test_a_whole_sample_time_is_queued_as_given(live):
    assert live.submit(NoteOn(60, 100), at_sample=np.int64(4800)) == 4800
    command, at_sample, _ = live._inbox.get_nowait()
    assert command == NoteOn(60, 100) and at_sample == 4800 and type(at_sample) is int
