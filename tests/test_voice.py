"""Voice logic with a tiny protocol-conforming inverter (engine_fixtures.ToneInverter): the hold, sustain,
release and tail stages, the timbre layout, method crossfades that wait for the new inverter's latency."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import ToneInverter, least_peak_bytes, synthetic_bundle, tone_factory

from synth.control.messages import NoteOff, NoteOn, SetMethod
from synth.engine import Engine, EngineOptions
from synth.engine.timbre import (
    RELEASE_SILENT_U,
    SUSTAIN_GUARD_FRAMES,
    SUSTAIN_WINDOW_FRAMES,
    Timbre,
    make_timbre,
)
from synth.engine.voice import (
    HOLD,
    IDLE,
    METHOD_XFADE_FRAMES,
    RELEASE,
    RELEASE_FRAMES_MIN,
    SUSTAIN,
    TAIL,
    Voice,
)

RATE = 16000  # frames of exactly 125 samples
HOP = 125


def timbre():
    b = synthetic_bundle()
    return make_timbre(b.decoder().decode(b.presets["bright"].latent[None])[0], params=b.params)


def test_timbre_layout():
    b = synthetic_bundle()
    spec = b.decoder().decode(b.presets["bright"].latent[None])[0]
    t = make_timbre(spec, params=b.params)
    hold = b.params.frame_of(3.0)
    start = hold - SUSTAIN_GUARD_FRAMES
    assert t.sustain_start == start and t.release_frames == b.params.frames - hold
    np.testing.assert_allclose(t.sustain, spec[:, start - SUSTAIN_WINDOW_FRAMES : start].mean(axis=1), atol=1e-6)
    np.testing.assert_array_equal(t.held[:100], spec[:, :100].T)  # the attack is untouched
    np.testing.assert_allclose(t.held[-1], t.sustain, atol=1e-6)  # reaching the sustain is smooth
    np.testing.assert_array_equal(t.release[:50], spec[:, hold : hold + 50].T)
    assert np.all(t.release[-1] <= spec[:, -1])  # the end is faded out
    assert not t.held.flags.writeable


def make_voice(**kw):
    b = synthetic_bundle()
    inverters = {"a": ToneInverter(params=b.params, output_rate=RATE, **kw),
                 "b": ToneInverter(params=b.params, output_rate=RATE, latency=3 * HOP)}
    return Voice(inverters, n_mels=b.params.n_mels, max_frame_samples=HOP + 2, hop_samples=float(HOP))


def test_voice_stages_from_hold_to_idle():
    t = timbre()
    v = make_voice(tail=2)
    v.start(note=60, velocity=127, pitch_ratio=1.0, method="a", order=1)
    mix = np.zeros(HOP, dtype=np.float32)
    for _ in range(t.loop_span[1]):
        assert v.stage == HOLD
        v.render_frame(mix, current=t, previous=None, weight=1.0)
    assert v.stage == SUSTAIN
    for _ in range(500):
        v.render_frame(mix, current=t, previous=None, weight=1.0)
    assert v.stage == SUSTAIN
    v.release()
    frames = 0
    while v.stage == RELEASE:
        v.render_frame(mix, current=t, previous=None, weight=1.0)
        frames += 1
    assert RELEASE_FRAMES_MIN <= frames < t.release_frames  # the faded end is silence: it ends before it
    assert v.stage == TAIL
    v.render_frame(mix, current=t, previous=None, weight=1.0)
    v.render_frame(mix, current=t, previous=None, weight=1.0)
    assert v.stage == IDLE and not v.active


def flat_timbre(release_loud: int, *, level: float = 0.6) -> Timbre:
    """Every held frame ``level`` in every band; the release keeps that level for ``release_loud`` frames,
    then silence (unit 0)."""
    t0 = timbre()
    held = np.full_like(t0.held, level)
    release = np.zeros_like(t0.release)
    release[:release_loud] = level
    return Timbre(held=held, sustain=held[0], release=release)


@pytest.mark.parametrize("loud_frames", [0, 2, 30])
def test_a_release_ends_when_what_it_plays_falls_silent_but_never_at_once(loud_frames):
    """Release frames at or below RELEASE_SILENT_U are silence: a voice ends once the frame it plays is
    silent (so the engine falls silent when the note does), though never before RELEASE_FRAMES_MIN."""
    t = flat_timbre(loud_frames)
    v = make_voice(tail=1)
    v.start(note=60, velocity=127, pitch_ratio=1.0, method="a", order=1)
    mix = np.zeros(HOP, dtype=np.float32)
    v.render_frame(mix, current=t, previous=None, weight=1.0)
    v.release()
    frames = 0
    while v.stage == RELEASE:
        v.render_frame(mix, current=t, previous=None, weight=1.0)
        frames += 1
    assert v.stage == TAIL and frames == max(loud_frames + 1, RELEASE_FRAMES_MIN)


def test_a_release_crossfading_from_a_longer_timbre_rings_as_long_as_that_one():
    """A timbre change in mid-release to one whose release is already silent: while the crossfade from the
    old timbre runs, the voice keeps playing its share of the old release instead of ending at once."""
    old, new = flat_timbre(10**6), flat_timbre(0)
    v = make_voice(tail=1)
    v.start(note=60, velocity=127, pitch_ratio=1.0, method="a", order=1)
    mix = np.zeros(HOP, dtype=np.float32)
    v.render_frame(mix, current=old, previous=None, weight=1.0)
    v.release()
    for _ in range(10):
        v.render_frame(mix, current=old, previous=None, weight=1.0)
    for w in (0.2, 0.4, 0.6, 0.8):  # crossfading to the silent release: still the old one's share
        v.render_frame(mix, current=new, previous=old, weight=w)
        assert v.stage == RELEASE
    v.render_frame(mix, current=new, previous=old, weight=1.0)  # crossfade over: the new release is silent
    assert v.stage == TAIL


def test_early_release_goes_straight_to_the_release_part():
    """Key-up in the attack: the release starts at once, from the frame the voice was playing."""
    t = timbre()
    v = make_voice()
    v.start(note=60, velocity=100, pitch_ratio=1.0, method="a", order=1)
    mix = np.zeros(HOP, dtype=np.float32)
    for _ in range(10):
        v.render_frame(mix, current=t, previous=None, weight=1.0)
    v.release()
    assert v.stage == RELEASE
    silent = [k for k in range(RELEASE_FRAMES_MIN - 1, t.release_frames)
              if np.maximum(t.held[9] + t.release_delta[k], 0).max() <= RELEASE_SILENT_U]
    expected = (silent[0] + 1) if silent else t.release_frames
    frames = 0
    while v.active:
        v.render_frame(mix, current=t, previous=None, weight=1.0)
        frames += 1
    assert frames == expected + 1  # the release until its frame is silent plus the tone inverter's 1 tail frame


def test_fade_out_silences_within_its_frames():
    t = timbre()
    v = make_voice()
    v.start(note=60, velocity=127, pitch_ratio=1.0, method="a", order=1)
    mix = np.zeros(HOP, dtype=np.float32)
    for _ in range(50):
        v.render_frame(mix, current=t, previous=None, weight=1.0)
    v.fade_out(2)
    levels = []
    for _ in range(2):
        mix[:] = 0
        v.render_frame(mix, current=t, previous=None, weight=1.0)
        levels.append(np.abs(mix).max())
    assert not v.active
    assert abs(mix[-1]) < 0.01 * levels[0] + 1e-6


def test_method_switch_waits_for_the_new_inverters_latency():
    t = timbre()
    v = make_voice()
    v.start(note=60, velocity=127, pitch_ratio=1.0, method="a", order=1)
    mix = np.zeros(HOP, dtype=np.float32)
    for _ in range(20):
        v.render_frame(mix, current=t, previous=None, weight=1.0)
    old, new = v.inverters["a"], v.inverters["b"]
    v.switch_method("b")
    frames_old = old.frames
    for _ in range(3 + METHOD_XFADE_FRAMES):
        v.render_frame(mix, current=t, previous=None, weight=1.0)
    assert old.frames == frames_old + 3 + METHOD_XFADE_FRAMES  # both ran through the wait and the fade
    assert new.frames == 3 + METHOD_XFADE_FRAMES
    v.render_frame(mix, current=t, previous=None, weight=1.0)
    assert old.frames == frames_old + 3 + METHOD_XFADE_FRAMES  # the old one is let go


def test_engine_hands_the_notes_pitch_ratio_to_the_voice_and_ends_the_note():
    """Engine plumbing with the tone inverter: the note's pitch ratio (an octave above the base) reaches the
    voice, it sounds through a method switch, and it is over after its release."""
    engine = Engine(synthetic_bundle(), EngineOptions(output_rate=RATE, max_voices=2,
                                                      methods=("sinusoidal", "griffinlim")),
                    inverter_factory=tone_factory)
    engine.schedule(NoteOn(72, 127), 0)
    engine.schedule(SetMethod("griffinlim"), 4000)
    engine.schedule(NoteOff(72), 8000)
    y = engine.render(RATE * 2)
    voice = next(v for v in engine.pool.slots if v.order == 1)
    assert voice.pitch_ratio == pytest.approx(2.0)
    assert np.abs(y[:8000]).max() > 0.01
    assert engine.sounding_voices == 0


class _LevelInverter:
    """An inverter that allocates nothing itself: its frame is the mel frame's first value, held."""

    output_rate = RATE
    tail_frames = 1
    latency_samples = 0

    def reset(self) -> None:
        pass

    def process_frame(self, mel_frame, *, pitch_ratio: float, out, gain: float = 1.0) -> None:
        out.fill(mel_frame[0] * gain)


@pytest.mark.parametrize("held", [3, 40], ids=["in_its_attack", "following_its_level"])
def test_a_voice_frame_allocates_no_array_through_every_crossfade(held):
    # Release crossfade, timbre crossfade, method switch and steal fade, all at once: with 8192-sample frames
    # any temporary of samples would be 32 KiB; what may be left is numpy's views and scalars. Released 40
    # frames in, the release follows the note's own level (RELEASE_FOLLOW_FROM).
    n = 8192
    b = synthetic_bundle()
    old, new = timbre(), make_timbre(b.decoder().decode(b.presets["dark"].latent[None])[0], params=b.params)
    mix = np.zeros(n, dtype=np.float32)

    def setup():
        v = Voice({"a": _LevelInverter(), "b": _LevelInverter()}, n_mels=b.params.n_mels, max_frame_samples=n,
                  hop_samples=float(n))
        v.start(note=60, velocity=127, pitch_ratio=1.0, method="a", order=1)
        for _ in range(held):
            v.render_frame(mix, current=new, previous=old, weight=0.5)
        v.release()
        v.switch_method("b")
        v.fade_out(8)
        v.render_frame(mix, current=new, previous=old, weight=0.5)
        return v

    def work(v):
        for _ in range(3):
            v.render_frame(mix, current=new, previous=old, weight=0.5)
        assert v.stage == RELEASE and v.active  # still inside the crossfades

    peak = least_peak_bytes(setup, work)
    assert peak < 8192, f"{peak} bytes allocated at once by three {n}-sample frames"
