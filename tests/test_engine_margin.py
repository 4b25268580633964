"""The adaptive margin: its policy as a pure state machine, and the live engine's use of it (underflows filed
by phase, the margin widened after one, silence rendered further ahead while idle and taken back for a
note)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import live_session, synthetic_bundle, wait_for

from synth.control.messages import NoteOn
from synth.errors import ParameterError
from synth.host.margin import MarginPolicy


def test_a_near_miss_widens_the_margin_and_calm_narrows_it_again():
    m = MarginPolicy(blocks=3, max_blocks=5, relax_seconds=10.0, startup_blocks=0)
    assert m.observe(fill_blocks=2.5, underflows=0, now=0.0) == 3  # normal: between margin - 1 and margin
    assert m.observe(fill_blocks=0.6, underflows=0, now=1.0) == 4  # less than a block left: near-miss
    assert m.observe(fill_blocks=0.0, underflows=1, now=2.0) == 5  # ran dry
    assert m.observe(fill_blocks=0.0, underflows=2, now=3.0) == 5  # at the widest
    assert m.near_misses == 3 and m.widest == 5
    assert m.observe(fill_blocks=4.0, underflows=2, now=12.9) == 5  # not yet 10 s of calm
    assert m.observe(fill_blocks=4.0, underflows=2, now=13.0) == 4  # one block per calm period
    assert m.observe(fill_blocks=3.5, underflows=2, now=22.9) == 4
    assert m.observe(fill_blocks=3.5, underflows=2, now=23.0) == 3
    assert m.observe(fill_blocks=2.5, underflows=2, now=99.0) == 3  # never below the calm margin
    assert [c.reason for c in m.changes] == ["near-miss", "underflow", "calm", "calm"]
    m.reset()
    assert m.blocks == 3 and m.near_misses == 0 and not m.changes


def test_start_up_work_widens_the_margin_within_its_bound():
    m = MarginPolicy(blocks=3, max_blocks=6, startup_blocks=2)
    m.set_startup(True, now=0.0)
    assert m.blocks == 5
    assert m.observe(fill_blocks=0.5, underflows=0, now=1.0) == 6  # 4 adapted + 2, capped at 6
    m.set_startup(False, now=2.0)
    assert m.blocks == 4  # the near-miss's block stays until calm
    assert [c.reason for c in m.changes] == ["start-up", "near-miss", "start-up done"]


def test_pressure_holds_the_margin_at_its_widest_until_it_passes():
    """A flood (see synth.host.margin): the widest margin at once, whatever near-misses and start-up say,
    extended by each new sign of it, and back to the adapted margin once it has passed."""
    m = MarginPolicy(blocks=3, max_blocks=8, relax_seconds=10.0, startup_blocks=2)
    assert m.observe(fill_blocks=2.5, underflows=0, now=0.0) == 3
    m.set_pressure(until=2.0, now=0.5)
    assert m.pressured and m.blocks == 8 and m.widest == 8
    m.set_pressure(until=1.0, now=0.6)  # an earlier end never shortens it
    assert m.observe(fill_blocks=0.5, underflows=0, now=1.5) == 8  # a near-miss meanwhile still counts
    m.set_pressure(until=3.0, now=1.9)
    assert m.observe(fill_blocks=6.0, underflows=0, now=2.5) == 8
    assert m.observe(fill_blocks=6.0, underflows=0, now=3.0) == 4  # over: the near-miss's block until calm
    assert not m.pressured
    m.set_pressure(until=3.5, now=4.0)  # a sign that has already passed widens nothing
    assert not m.pressured and m.blocks == 4
    assert [c.reason for c in m.changes] == ["pressure", "near-miss", "pressure over"]


def test_a_fixed_margin_never_moves():
    m = MarginPolicy(blocks=4, max_blocks=4, startup_blocks=0)
    for t in range(5):
        assert m.observe(fill_blocks=0.0, underflows=t + 1, now=float(t)) == 4
    assert m.near_misses == 5 and m.widest == 4


@pytest.mark.parametrize("kw, message", [
    ({"blocks": 0, "max_blocks": 4}, "blocks must be an integer >= 1"),
    ({"blocks": 4, "max_blocks": 3}, "max_blocks \\(3\\) is below blocks \\(4\\)"),
    ({"blocks": 3, "max_blocks": 4, "relax_seconds": 0}, "relax_seconds must be positive"),
    ({"blocks": 3, "max_blocks": 4, "startup_blocks": -1}, "startup_blocks must be an integer >= 0"),
])
def test_bad_margins_are_named(kw, message):
    with pytest.raises(ParameterError, match=message):
        MarginPolicy(**kw)


def test_the_live_engine_files_each_underflow_by_phase_and_widens_after_it():
    # The output's underflow counter is bumped by the test: the engine cannot tell it from a real dry ring,
    # and what follows (filing, widening) is what the engine guarantees after any underflow.
    with live_session(max_voices=4) as (live, _):
        assert wait_for(lambda: not live.margin.startup, timeout=60.0)
        base = live.margin.blocks
        live.ring.underflows += 1
        assert wait_for(lambda: live.stats().underflows_idle == 1)
        assert live.margin.blocks >= base + 1 and live.stats().near_misses >= 1
        live.submit(NoteOn(60, 100))
        assert wait_for(lambda: live.engine.sounding_voices > 0)
        live.ring.underflows += 1
        assert wait_for(lambda: live.stats().underflows_playing == 1)
        stats = live.stats()
    assert stats.buffer_ms_widest > stats.buffer_ms_base
    assert stats.underflows == stats.underflows_startup + stats.underflows_idle + stats.underflows_playing


@pytest.mark.parametrize("onset, keep", [(None, 2), (1, 1), (3, 3)])
def test_silence_rendered_ahead_is_taken_back_for_a_note_and_the_take_records_what_played(onset, keep, tmp_path):
    """While nothing sounds the live engine renders ``idle_ahead_blocks`` ahead (a stall then costs nothing);
    a note arriving then takes that silence back and starts ``onset_blocks`` (default ``ahead_blocks - 1``)
    after what the output has taken, as it would have without the deeper buffer; then the margin refills to
    ``ahead_blocks``, and that chosen low fill is no near-miss. What the output plays, and the recording, is an offline
    render with the note at that sample. The stepped output takes blocks only when the test asks, so every
    sample position here is the engine's guarantee, not a timing."""
    from synth.control.messages import NoteOff
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.host.live_engine import LiveEngine
    from synth.render.live_replay import stepped_output

    bs, ahead, idle = 256, 3, 8

    def engine(decoding=None):
        return Engine(synthetic_bundle(), EngineOptions(output_rate=48000, max_voices=4, methods=("sinusoidal",)),
                      decoding=decoding)

    # Decoding on a worker, as serve runs it: the start-up decodes end, and with them the wider start-up margin.
    live = LiveEngine(engine(LiveDecoding()), output=stepped_output, blocksize=bs, ahead_blocks=ahead, idle_ahead_blocks=idle,
                      onset_blocks=onset, realtime=False, record=tmp_path / "take.wav")
    played = np.zeros((40 * bs, 1), dtype=np.float32)
    live.start()
    try:
        for b in range(2):  # the output takes two blocks of silence
            live.output.step(played[b * bs : (b + 1) * bs])
        assert wait_for(lambda: not live.margin.startup, timeout=60.0)  # no wider start-up margin
        assert wait_for(lambda: live.ring.available() == idle * bs)
        live.submit(NoteOn(60, 100), received=1.0)
        assert wait_for(lambda: live.engine.sounding_voices == 1)
        assert live.stats().taken_back == 1
        start = 2 * bs + keep * bs  # what the output has taken, plus the onset margin
        assert (1.0, start) in live.engine.applied
        # Refilled to the playing margin, and no wider: a fill below the margin after an onset is no near-miss.
        assert wait_for(lambda: live.ring.available() == ahead * bs)
        assert live.margin.blocks == ahead and live.margin.near_misses == 0
        live.submit(NoteOff(60), at_sample=start + 20 * bs)
        for b in range(2, 40):
            live.output.step(played[b * bs : (b + 1) * bs])
    finally:
        stats = live.stop()
    assert stats.underflows == 0 and stats.engine.late_events == 0
    offline = engine()
    offline.schedule(NoteOn(60, 100), start)
    offline.schedule(NoteOff(60), start + 20 * bs)
    expected = offline.render(40 * bs)
    np.testing.assert_array_equal(played[:, 0], expected)
    recorded, _ = sf.read(tmp_path / "take.wav", dtype="float32")
    np.testing.assert_array_equal(recorded[: 40 * bs], expected)
    # The rest of the take is what the engine rendered beyond the last block taken, up to its stop.
    assert len(recorded) >= 40 * bs


@pytest.mark.parametrize("onset", [1, 2])
def test_a_preset_change_and_the_note_after_it_apply_in_order_after_idle_silence(onset):
    """A preset change and a note sent together onto silence (a program change, then a note): both take the
    silence back to the onset margin, so the note still starts within a frame of the onset margin and the
    change applies at most a frame after it (had the change kept the full margin, it would have come 1-2
    blocks later, and the note, which never starts before an earlier command, with it)."""
    from synth.control.messages import SetPreset
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.host.live_engine import LiveEngine
    from synth.render.live_replay import stepped_output

    bs, idle = 256, 12
    bundle = synthetic_bundle()
    first, other = list(bundle.presets)[:2]
    engine = Engine(bundle, EngineOptions(output_rate=48000, max_voices=4, methods=("sinusoidal",),
                                          initial_preset=first), decoding=LiveDecoding())
    live = LiveEngine(engine, output=stepped_output, blocksize=bs, ahead_blocks=3, idle_ahead_blocks=idle,
                      onset_blocks=onset, realtime=False)
    live.start()
    try:
        assert wait_for(lambda: not live.margin.startup, timeout=60.0)
        assert wait_for(lambda: engine.timbres.presets_decoded() and live.ring.available() == idle * bs)
        live.submit(SetPreset(other), received=1.0)
        live.submit(NoteOn(60, 100), received=2.0)
        assert wait_for(lambda: {1.0, 2.0} <= {tag for tag, _ in live.engine.applied})
        applied = dict(live.engine.applied)
    finally:
        live.stop()
    note, change = applied[2.0], applied[1.0]
    assert note <= change < note + engine.max_frame_samples  # in order, at most a frame apart
    onset_sample = live.ring.read + onset * bs  # the output took nothing: the onset margin from sample 0
    assert onset_sample <= note < onset_sample + engine.max_frame_samples


@pytest.mark.parametrize("offset", [0, 100, 255, 370])
def test_a_timed_change_after_idle_silence_is_on_time(offset):
    """A change timed inside a frame the engine has already made while idle: the silence is taken back far
    enough that the frame is made again, so the change lands on the first frame starting at or after its
    sample, not late (the live replay counted one late event in a full suite before this)."""
    from synth.control.messages import SetGain
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.host.live_engine import LiveEngine
    from synth.render.live_replay import stepped_output

    bs, idle = 256, 24
    engine = Engine(synthetic_bundle(), EngineOptions(output_rate=48000, max_voices=4, methods=("sinusoidal",)),
                    decoding=LiveDecoding())
    live = LiveEngine(engine, output=stepped_output, blocksize=bs, ahead_blocks=3, idle_ahead_blocks=idle,
                      realtime=False)
    block = np.zeros((bs, 1), dtype=np.float32)
    live.start()
    try:
        assert wait_for(lambda: not live.margin.startup, timeout=60.0)
        assert wait_for(lambda: live.ring.available() == idle * bs)
        at = live.ring.read + 6 * bs + offset  # well inside what was rendered ahead
        assert engine.gain != 0.3
        live.submit(SetGain(0.3), at_sample=at)
        assert wait_for(lambda: live.engine.gain == 0.3 and live.ring.available() == idle * bs)
        live.output.step(block)
    finally:
        stats = live.stop()
    assert stats.engine.late_events == 0 and stats.taken_back == 1


@pytest.mark.parametrize("onset", [0, 4, True, 1.5])
def test_an_onset_margin_outside_one_to_the_margin_is_named(onset):
    from synth.engine import Engine, EngineOptions
    from synth.host.live_engine import LiveEngine

    engine = Engine(synthetic_bundle(), EngineOptions(output_rate=48000, max_voices=2, methods=("sinusoidal",)))
    with pytest.raises(ParameterError, match="onset_blocks must be an integer 1..3"):
        LiveEngine(engine, output="null", ahead_blocks=3, onset_blocks=onset, realtime=False)
