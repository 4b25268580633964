"""The engine's small parts, each on its own: the limiter, the play clock, the latent controls, the voice pool."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import least_peak_bytes, synthetic_bundle, tone_factory

from synth.control.messages import Morph, SetCorners, SetLatentValue, SetMacro, SetPreset, SetXY
from synth.engine.control import ControlState
from synth.engine.limiter import CEILING, Limiter
from synth.engine.voice import Voice
from synth.engine.voice_pool import STEAL_FADE_FRAMES, VoicePool
from synth.host.output import PlayClock

RATE = 48000


# ---------------------------------------------------------------------------------------------- Limiter
def test_the_limiter_passes_quiet_audio_unchanged_and_holds_loud_audio_under_the_ceiling():
    lim = Limiter(rate=RATE, max_samples=400)
    quiet = (0.3 * np.sin(np.arange(400) * 0.05)).astype(np.float32)
    x = quiet.copy()
    lim.process(x)
    np.testing.assert_allclose(x, quiet, atol=1e-7)
    loud = (3.0 * np.sin(np.arange(400) * 0.05)).astype(np.float32)
    for _ in range(5):
        x = loud.copy()
        lim.process(x)
        assert np.abs(x).max() <= CEILING
    assert lim.limited_frames == 5
    # Steady gain across the tone's cycles (no clipping of each peak): the waveform keeps its shape.
    ratio = x[np.abs(loud) > 1.0] / loud[np.abs(loud) > 1.0]
    assert ratio.std() < 0.01 * ratio.mean()


def test_the_limiter_does_not_depend_on_how_frames_are_cut():
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal(3000) * np.linspace(0.1, 4.0, 3000)).astype(np.float32)
    whole = signal.copy()
    Limiter(rate=RATE, max_samples=3000).process(whole)
    cut = signal.copy()
    lim = Limiter(rate=RATE, max_samples=3000)
    for a, b in ((0, 375), (375, 376), (376, 1500), (1500, 3000)):
        lim.process(cut[a:b])
    np.testing.assert_allclose(cut, whole, atol=1e-6)


def test_a_gain_change_ramps_over_one_frame_and_non_finite_audio_is_silenced():
    lim = Limiter(rate=RATE, max_samples=100)
    lim.set_gain(0.5)
    x = np.full(100, 0.2, np.float32)
    lim.process(x)
    np.testing.assert_allclose(x[[0, -1]], [0.2 * (1 + (0.5 - 1) / 100), 0.1], rtol=1e-5)  # from 1 to 0.5
    bad = np.full(100, np.nan, np.float32)
    lim.process(bad)
    assert np.all(bad == 0) and lim.nonfinite_frames == 1


def test_the_limiter_allocates_no_array_per_frame():
    # It runs on the synthesis thread every frame: quiet, ramping, limiting and non-finite frames alike.
    # With 8192-sample frames any temporary array is 64 KiB; what is left is numpy's views and scalars.
    n = 8192
    frames = [np.full(n, 0.1, np.float32), np.full(n, 3.0, np.float32), np.full(n, np.nan, np.float32)]

    def setup():
        lim = Limiter(rate=RATE, max_samples=n)
        for x in frames:
            lim.process(x.copy())
        return lim, [x.copy() for x in frames]

    def work(state):
        lim, todo = state
        lim.set_gain(0.5)  # a ramp across the frames below
        for x in todo:
            lim.process(x)
        assert lim.nonfinite_frames == 2  # the NaN frame went through the silencing path

    peak = least_peak_bytes(setup, work)
    assert peak < 8192, f"{peak} bytes allocated at once by three {n}-sample frames"


# ---------------------------------------------------------------------------------------------- PlayClock
def test_the_play_clock_maps_samples_and_times_both_ways_and_forgets_old_marks():
    clock = PlayClock(rate=RATE, size=4)
    clock.start_time = 100.0
    assert clock.sample_at(100.5) == RATE // 2  # before any mark: from the start time
    clock.mark(200.0, 1000)
    assert clock.sample_at(200.5) == 1000 + RATE // 2  # extrapolated from the newest mark
    assert clock.time_of(1000 + 480) == pytest.approx(200.01)
    assert clock.time_of(999) is None  # before the oldest mark it knows
    for i in range(1, 6):
        clock.mark(200.0 + i, 1000 + i * RATE)
    assert clock.time_of(1000) is None  # four marks kept: the first ones are gone
    assert clock.time_of(1000 + 5 * RATE + 10) == pytest.approx(205.0 + 10 / RATE)


class _FakeTime:
    """A clock for the null output's thread, driven by its own sleeps: ``sleep(d > 0)`` wakes exactly on time,
    ``sleep(0)`` (the yield between blocks) costs ``busy`` seconds. At each sleep a producer tops the ring up to
    ``ahead`` blocks, noting when each block was written."""

    def __init__(self, output, *, busy: float, ahead: int, blocks: int) -> None:
        self.t = 0.0
        self.output, self.busy, self.ahead, self.blocks = output, busy, ahead, blocks
        self.written_at: dict[int, float] = {}  # first sample of a block -> wall time it was written

    def perf_counter(self) -> float:
        return self.t

    def time(self) -> float:
        return 1000.0 + self.t

    def sleep(self, d: float) -> None:
        self.t += d if d > 0 else self.busy
        ring, n = self.output.ring, self.output.blocksize
        while ring.available() < self.ahead * n:
            self.written_at[ring.written] = self.time()
            ring.write(np.zeros(n, dtype=np.float32))
        if self.output.callbacks >= self.blocks:
            self.output._stop.set()


@pytest.mark.parametrize("busy", [0.0, 1.5 * 256 / RATE])
def test_the_null_output_never_marks_a_block_as_out_before_it_was_written(monkeypatch, busy):
    """The null output's clock says when each sample left. A thread slower than real time (``busy``: each
    block costs 1.5 periods, as GIL waits on a loaded machine made it) hands out blocks after their due time;
    marked at that due time, changes sounded before they arrived (control latency p50 0.1 ms for every kind
    of change in a full engine bench)."""
    from synth.host import output as host_output
    from synth.host.ring import SampleRing

    out = host_output.NullOutput(SampleRing(capacity=16384, channels=1), rate=RATE, blocksize=256)
    fake = _FakeTime(out, busy=busy, ahead=3, blocks=400)  # 400 blocks: 2.1 s at the nominal pace
    monkeypatch.setattr(host_output, "time", fake)
    monkeypatch.setattr(host_output, "raise_thread_priority", lambda *a, **k: False)  # not this test's thread
    fake.sleep(1e-3)  # the first blocks, before the output starts
    out._run()
    read = out.ring.read
    checked = [p for p in fake.written_at if p + 256 <= read]
    assert len(checked) > 300
    early = [(p, out.clock.time_of(p) - w) for p, w in fake.written_at.items() if p in checked
             if out.clock.time_of(p) < w - 1e-9]
    assert not early, f"{len(early)} blocks marked as out before they were written, up to {-min(e for _, e in early) * 1e3:.1f} ms"
    if not busy:  # on time, a block leaves one period after the one before: the pace of a sound card
        times = np.array([out.clock.time_of(p) for p in sorted(checked)])
        np.testing.assert_allclose(np.diff(times), 256 / RATE, rtol=1e-9)


# ---------------------------------------------------------------------------------------------- ControlState
def controls() -> ControlState:
    presets = {"a": np.array([1.0, 0.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0, 0.0]),
               "c": np.array([0.0, 0.0, 1.0, 0.0]), "d": np.array([0.0, 0.0, 0.0, 1.0])}
    components = np.eye(4)[:2]
    return ControlState(presets=presets, latent_shape=(2, 2), components=components, stds=np.array([2.0, 0.5]))


def test_controls_blend_presets_and_add_macros_on_top():
    c = controls()
    np.testing.assert_array_equal(c.latent().reshape(-1), [1, 0, 0, 0])  # the first preset
    assert c.apply(Morph("a", "b", 0.25))
    np.testing.assert_allclose(c.latent().reshape(-1), [0.75, 0.25, 0, 0])
    assert c.apply(SetMacro(0, 1.5))  # 1.5 standard deviations (2.0) along component 0
    np.testing.assert_allclose(c.latent().reshape(-1), [3.75, 0.25, 0, 0])
    assert c.apply(SetCorners("a", "b", "c", "d")) and c.apply(SetXY(1.0, 1.0))
    np.testing.assert_allclose(c.latent().reshape(-1), [3.0, 0, 0, 1.0])  # corner d, macro kept
    np.testing.assert_allclose(c.coordinates().weights, [0, 0, 0, 1.0])
    assert c.apply(SetLatentValue(2, 5.0))
    assert c.coordinates().weights is None and c.preset_label == "latent"  # no longer a blend of presets
    assert c.apply(SetPreset("c")) and c.snapshot(method="m", gain=1.0).preset == "c"


def test_controls_latents_are_read_only_copies():
    c = controls()
    z = c.latent()
    z[...] = 99.0
    assert c.latent().max() == 1.0


# ---------------------------------------------------------------------------------------------- VoicePool
def pool(max_voices: int = 2) -> VoicePool:
    b = synthetic_bundle()
    hop = b.params.hop_length * RATE / b.params.sample_rate
    return VoicePool(max_voices=max_voices, make_voice=lambda: Voice(
        {"sinusoidal": tone_factory("sinusoidal", params=b.params, output_rate=RATE)},
        n_mels=b.params.n_mels, max_frame_samples=int(np.ceil(hop)), hop_samples=hop))


def test_the_pool_steals_the_oldest_voice_and_fades_it():
    p = pool(2)
    first = p.note_on(note=60, velocity=100, pitch_ratio=1.0, method="sinusoidal")
    p.note_on(note=62, velocity=100, pitch_ratio=1.0, method="sinusoidal")
    third = p.note_on(note=64, velocity=100, pitch_ratio=1.0, method="sinusoidal")
    assert p.voices_stolen == 1 and first.stealing and not third.stealing
    assert p.playing_count() == 2 and p.notes_started == 3
    assert len(p.slots) == 4 and STEAL_FADE_FRAMES > 0


def test_the_same_key_again_lets_the_old_voice_ring_and_note_off_releases_held_voices():
    p = pool(4)
    a = p.note_on(note=60, velocity=100, pitch_ratio=1.0, method="sinusoidal")
    b = p.note_on(note=60, velocity=90, pitch_ratio=1.0, method="sinusoidal")
    assert a is not b and not a.held and b.held and p.voices_stolen == 0
    p.note_off(60)
    assert not b.held
    p.panic()
    assert all(v.stealing or not v.active for v in p.slots)
