"""Notes of any length, checked on synthetic notes whose envelope is known: a held note keeps its own
movement (and a decaying one keeps decaying) for as long as the key is down, a note released at any moment
falls from where it is, and every timbre sounds at one loudness.

The voice is driven frame by frame with an inverter that records the mel frames it is given, so what is
checked is exactly what the voice asks the inversion to play."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import least_peak_bytes, synthetic_bundle

from synth.control.messages import Morph, NoteOn, SetPreset
from synth.engine import Engine, EngineOptions
from synth.engine.loudness import TARGET_DB, k_weighting, loudness_basis
from synth.engine.timbre import make_timbre
from synth.engine.voice import RELEASE, SUSTAIN, Voice
from synth.spectrogram import SpectrogramParams

PARAMS = SpectrogramParams()
FRAME_RATE = PARAMS.frame_rate  # 128 frames a second


class FrameRecorder:
    """A protocol-conforming inverter that keeps every mel frame it is asked to play."""

    output_rate = 16000
    tail_frames = 1
    latency_samples = 0

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def reset(self) -> None:
        self.frames = []

    def process_frame(self, mel_frame, *, pitch_ratio: float, out, gain: float = 1.0) -> None:
        self.frames.append(np.array(mel_frame))
        out[:] = 0.0


PARTIALS = (10, 21, 33, 44, 60, 80)


def note(level_db=None, *, band_db=None, release_db_s: float = 60.0, keyup_s: float = 3.0) -> np.ndarray:
    """A (n_mels, frames) unit-scale note: a few partial bands at ``level_db(t)`` dB (t in seconds, an array;
    or ``band_db(t, band)``, bands that change each at their own rate), their neighbours 20 dB lower, the
    rest silent; the key is released at ``keyup_s`` (the model's note: 3 s; past the note's 4 s: never),
    from where every band falls ``release_db_s`` dB a second: a SoundFont release, a straight line in dB
    from wherever the note was."""
    t = np.arange(PARAMS.frames) / FRAME_RATE
    k = min(int(round(keyup_s * FRAME_RATE)), PARAMS.frames)
    mel = np.full((PARAMS.n_mels, PARAMS.frames), PARAMS.db_min)
    for band in PARTIALS:
        if band_db is not None:
            db = np.asarray(band_db(t, band), dtype=np.float64)
        else:
            db = np.asarray(level_db(t), dtype=np.float64) - 2.0 * band / 10
        db = np.where(np.arange(t.size) < k, db, db[k - 1] - release_db_s * (t - t[k - 1]))
        mel[band] = db
        mel[band - 1] = mel[band + 1] = db - 20.0
    return np.clip((mel - PARAMS.db_min) / (PARAMS.db_max - PARAMS.db_min), 0.0, 1.0).astype(np.float32)


def play(mel: np.ndarray, *, hold_s: float, after_s: float = 0.5, pad: bool = False,
         late: int = 0) -> tuple[np.ndarray, int]:
    """The frames a voice plays of ``mel`` held ``hold_s`` seconds then released; and the key-up frame.
    ``pad``: silent frames after the voice has ended, up to ``after_s`` after key-up. ``late``: samples (of
    the voice's 125 a frame) the key went up before the key-up frame's start."""
    timbre = make_timbre(mel, params=PARAMS)
    rec = FrameRecorder()
    v = Voice({"r": rec}, n_mels=PARAMS.n_mels, max_frame_samples=126, hop_samples=125.0)
    v.start(note=60, velocity=100, pitch_ratio=1.0, method="r", order=1)
    mix = np.zeros(125, dtype=np.float32)
    keyup = int(round(hold_s * FRAME_RATE))
    for k in range(keyup + int(after_s * FRAME_RATE)):
        if k == keyup:
            v.release(late=late)
        if not v.active:
            break
        v.render_frame(mix, current=timbre, previous=None, weight=1.0)
    frames = np.array(rec.frames)
    if pad:
        frames = np.concatenate([frames, np.zeros((keyup + int(after_s * FRAME_RATE) - len(frames), PARAMS.n_mels),
                                                  dtype=np.float32)])
    return frames, keyup


def levels_db(frames: np.ndarray) -> np.ndarray:
    """Each frame's level (dB of its summed mel power)."""
    db = PARAMS.db_min + frames * (PARAMS.db_max - PARAMS.db_min)
    return 10.0 * np.log10(np.sum(10.0 ** (db / 10.0), axis=1))


def flux_db(frames: np.ndarray) -> float:
    return float(np.mean(np.abs(np.diff(frames, axis=0))) * (PARAMS.db_max - PARAMS.db_min))


def span(seconds_from: float, seconds_to: float) -> slice:
    return slice(int(seconds_from * FRAME_RATE), int(seconds_to * FRAME_RATE))


def test_a_held_note_keeps_its_own_movement_for_8_seconds():
    """A 5 Hz tremolo of +-3 dB: over 3.5-7.5 s of an 8 s hold the frames change as much from frame to frame,
    and the level spreads as much, as over the note's own first 2.5 s (within a factor of 2)."""
    frames, _ = play(note(lambda t: -10.0 + 3.0 * np.sin(2 * np.pi * 5.0 * t)), hold_s=8.0)
    early, late = frames[span(0.1, 2.5)], frames[span(3.5, 7.5)]
    assert 0.5 <= flux_db(late) / flux_db(early) <= 2.0
    assert 0.5 <= np.std(levels_db(late)) / np.std(levels_db(early)) <= 2.0
    # and it is still the note's own level, not a frame below it
    assert abs(np.mean(levels_db(late)) - np.mean(levels_db(early))) < 1.5


def test_a_decaying_note_keeps_decaying_while_held():
    """A note falling 4 dB a second (a held piano) goes on falling after the 4 s note's material runs out."""
    frames, _ = play(note(lambda t: -5.0 - 4.0 * t), hold_s=8.0)
    levels = levels_db(frames)
    second = [np.mean(levels[span(s, s + 0.5)]) for s in (2.0, 4.0, 6.0, 7.5)]
    assert all(b < a - 2.0 for a, b in zip(second[:-1], second[1:], strict=True)), second


def test_a_steady_note_does_not_fade_while_held():
    frames, _ = play(note(lambda t: -10.0 + 0.0 * t), hold_s=8.0)
    levels = levels_db(frames)
    assert abs(np.mean(levels[span(7.0, 7.9)]) - np.mean(levels[span(1.0, 2.0)])) < 0.5


@pytest.mark.parametrize("hold_s", [0.12, 0.5, 3.0, 8.0])
def test_a_slow_attack_released_early_does_not_swell(hold_s):
    """A pad rising 40 dB over 2.5 s: released at any moment, no release frame is louder than the key-up
    frame, and the release falls as the note's own release does (60 dB a second)."""
    frames, keyup = play(note(lambda t: -45.0 + 16.0 * np.minimum(t, 2.5)), hold_s=hold_s)
    levels = levels_db(frames)
    at_keyup = levels[keyup - 1]
    assert np.max(levels[keyup:]) <= at_keyup + 0.5
    fallen = at_keyup - levels[keyup + int(0.25 * FRAME_RATE)]
    assert 10.0 <= fallen <= 20.0  # 60 dB/s over 0.25 s, from wherever the note was


@pytest.mark.parametrize("hold_s", [0.12, 0.5])
def test_a_plucked_note_released_early_falls_from_its_own_level(hold_s):
    """A pluck decaying 25 dB a second (silent well before 3 s): released early it starts its release at
    its own level, instead of jumping to the 3 s note's near-silent release."""
    frames, keyup = play(note(lambda t: -5.0 - 25.0 * t), hold_s=hold_s)
    levels = levels_db(frames)
    assert levels[keyup] >= levels[keyup - 1] - 3.0
    assert levels[keyup + int(0.2 * FRAME_RATE)] < levels[keyup - 1] - 8.0  # and falls as its release does (60 dB/s)


def keyup_step_db(levels: np.ndarray, keyup: int) -> float:
    """The benchmark's key-up step: the level over 30-80 ms after key-up minus the 50 ms before."""
    return float(np.mean(levels[keyup + int(0.03 * FRAME_RATE) : keyup + int(0.08 * FRAME_RATE)])
                 - np.mean(levels[keyup - int(0.05 * FRAME_RATE) : keyup]))


@pytest.mark.parametrize("release_db_s", [40.0, 400.0], ids=["slow", "fast"])
@pytest.mark.parametrize("hold_s", [0.12, 0.5, 3.0])
def test_the_key_up_step_and_the_release_are_the_notes_own(release_db_s, hold_s):
    """A pluck decaying 20 dB a second with a known release (slow: 40 dB a second, a guitar let ring; fast:
    400 dB a second, a damped clavinet): held any time and released, the voice steps down at key-up as the
    note itself does (within 2 dB, the benchmark's measure) and goes on falling at the release's rate
    (within 3 dB) until it is silent, where the model's 3 s note runs into the floor 35 dB down and stops."""
    pluck = lambda t: -5.0 - 20.0 * t  # noqa: E731  (-65 dB at the model's note-off: 35 dB above the floor)
    frames, keyup = play(note(pluck, release_db_s=release_db_s), hold_s=hold_s, after_s=0.95, pad=True)
    truth = note(pluck, release_db_s=release_db_s, keyup_s=hold_s).T[: len(frames)]
    got, want = levels_db(frames), levels_db(truth)
    assert keyup_step_db(got, keyup) == pytest.approx(keyup_step_db(want, keyup), abs=2.0)
    floor = levels_db(np.zeros((1, PARAMS.n_mels)))[0]
    after = np.arange(keyup + int(0.1 * FRAME_RATE), len(frames))
    sounding = after[want[after] > floor + 10.0]
    np.testing.assert_allclose(got[sounding], want[sounding], atol=3.0)
    silent = after[want[after] <= floor + 0.5]
    assert np.all(got[silent] <= floor + 3.0)


@pytest.mark.parametrize("late", [0, 40, 100])
def test_a_key_up_inside_a_frame_releases_from_where_it_came(late):
    """A steady note with a fast release (400 dB a second, 3.1 dB a frame: an organ's) released ``late``
    samples before the frame that applies the key-up: every release frame is where the note's own release
    is at that time since the key-up (within 0.3 dB), not where it was a fraction of a frame earlier (up to
    2.5 dB louder, before the voice read the release that far in)."""
    rate = 400.0
    frames, keyup = play(note(lambda t: -10.0 + 0.0 * t, release_db_s=rate), hold_s=3.0, after_s=0.2, late=late)
    got = levels_db(frames)
    held = got[keyup - 1]
    since = np.arange(12) + 1 + late / 125.0  # the note's own frame k is one frame into its release
    np.testing.assert_allclose(got[keyup : keyup + 12], held - rate * since / FRAME_RATE, atol=0.3)


def test_a_flickering_note_steps_down_at_key_up_as_it_does_itself():
    """A steady note of 80 bands, each flickering by up to 8 dB from frame to frame (reeds beating), held and
    released (100 dB a second) still flickering: released where the note itself was (3 s), the voice's key-up
    step is the note's own within 0.5 dB (0.0 off: the release follows the note's own level from the voice's;
    by the bands' delta alone 0.9 off). Moving the key-up frame, which flickers already, by each release
    band's own difference from the note-off state adds the model's flicker to the voice's, and a frame's level
    rises with its bands' spread: the step 2.7 dB short of the note's unclipped, 2.0 with each band clipped at
    the state (as the release was made before)."""
    rng = np.random.default_rng(1)
    t = np.arange(PARAMS.frames) / FRAME_RATE
    k = int(3 * FRAME_RATE)
    fall = np.where(np.arange(PARAMS.frames) < k, 0.0, 100.0 * (t - t[k - 1]))
    db = np.full((PARAMS.n_mels, PARAMS.frames), PARAMS.db_min)
    bands = np.arange(10, 90)
    db[bands] = -10.0 - bands[:, None] / 5 - fall[None, :] + rng.uniform(-8.0, 8.0, size=(bands.size, PARAMS.frames))
    mel = np.clip((db - PARAMS.db_min) / (PARAMS.db_max - PARAMS.db_min), 0.0, 1.0).astype(np.float32)
    frames, keyup = play(mel, hold_s=3.0, after_s=0.2)
    got, want = levels_db(frames), levels_db(mel.T)
    assert keyup_step_db(got, keyup) == pytest.approx(keyup_step_db(want, keyup), abs=0.5)


def test_a_note_rising_into_its_note_off_releases_from_the_voices_level():
    """A note steady at -20 dB that rises 10 dB over the last 0.5 s before its note-off (3 s), then falls 60 dB
    a second: the voice, held 3 s, sounds the loop (2.0-2.6 s, at -20 dB) at key-up, and its key-up step is the
    note's own (about -3 dB) within 1 dB: it falls from its own level as far as the note's release falls under
    the note's level before the note-off. By the bands' delta alone, measured from the note-off state (a mean
    over 2.6-2.9 s, under the note's level at 3 s), the release began at the key-up frame's level: a step of
    -0.1 dB (2026-12-08)."""
    rise = lambda t: -20.0 + 10.0 * np.clip((t - 2.5) / 0.5, 0.0, 1.0)  # noqa: E731
    frames, keyup = play(note(rise), hold_s=3.0, after_s=0.3)
    got, want = levels_db(frames), levels_db(note(rise).T)
    assert keyup_step_db(want, keyup) < -2.0
    assert keyup_step_db(got, keyup) == pytest.approx(keyup_step_db(want, keyup), abs=1.0)


def test_a_release_that_swells_in_the_note_does_not_swell_in_the_voice():
    """The note's own release first rises 6 dB over 50 ms (a model's release can) and then falls: released at
    1 s and at 3 s, no frame after the key-up is louder than the voice's level before it (0.5 dB of slack),
    where following the note's level without its bound rose 6 dB."""
    t = np.arange(PARAMS.frames) / FRAME_RATE
    k = int(3 * FRAME_RATE)
    after = t - t[k - 1]
    db = np.where(np.arange(PARAMS.frames) < k, -20.0,
                  -20.0 + np.where(after < 0.05, 120.0 * after, 6.0 - 80.0 * (after - 0.05)))
    mel = np.full((PARAMS.n_mels, PARAMS.frames), PARAMS.db_min)
    for band in PARTIALS:
        mel[band] = db
    mel = np.clip((mel - PARAMS.db_min) / (PARAMS.db_max - PARAMS.db_min), 0.0, 1.0).astype(np.float32)
    for hold_s in (1.0, 3.0):
        frames, keyup = play(mel, hold_s=hold_s, after_s=0.3)
        got = levels_db(frames)
        assert np.max(got[keyup:]) <= np.mean(got[keyup - 6 : keyup]) + 0.5, hold_s


def test_bands_that_decay_at_their_own_rates_keep_them_while_held():
    """A loud partial falling 4 dB a second over quieter ones falling 16 (a piano's low partial over its
    upper ones): held 8 s, the level follows the note's own decay, set by the loud partial, and at 3 s it
    is where the note itself is at its note-off."""
    def piano(t, band):
        return -5.0 - 4.0 * t if band == PARTIALS[0] else -25.0 - 16.0 * t - band / 10
    frames, _ = play(note(band_db=piano), hold_s=8.0, after_s=0.0)
    want = levels_db(note(band_db=piano, keyup_s=8.0).T)  # the same note held on (to its 4 s)
    got = levels_db(frames)
    at = np.arange(int(2.7 * FRAME_RATE), int(3.9 * FRAME_RATE))
    np.testing.assert_allclose(got[at], want[at], atol=1.5)
    slope = np.polyfit(np.arange(int(3.5 * FRAME_RATE), int(7.5 * FRAME_RATE)) / FRAME_RATE,
                       got[int(3.5 * FRAME_RATE) : int(7.5 * FRAME_RATE)], 1)[0]
    assert slope == pytest.approx(-4.0, abs=1.0)


def test_a_held_pluck_fades_as_a_whole_over_a_steady_floor():
    """A pluck falling 10 dB a second over a few bands the decoder leaves near its floor, steady at -78 dB (what a
    model's "silence" looks like): held 8 s, the floor falls with the note instead of being all that is left of
    it (at full gain, the release from it would rise and fall with its noise)."""
    mel = note(lambda t: -5.0 - 10.0 * t)
    floor_u = (-78.0 - PARAMS.db_min) / (PARAMS.db_max - PARAMS.db_min)
    mel[100:111] = np.float32(floor_u)
    frames, _ = play(mel, hold_s=8.0, after_s=0.0)
    floor_alone = levels_db(np.where(np.arange(PARAMS.n_mels)[None, :] >= 100, mel.T[:1], 0.0))[0]
    assert np.mean(levels_db(frames)[span(7.0, 7.9)]) < floor_alone - 5.0  # (the contract's floor is -79 dB)


def test_the_loop_frame_allocates_nothing():
    timbre = make_timbre(note(lambda t: -10.0 + 3.0 * np.sin(2 * np.pi * 5.0 * t)), params=PARAMS)
    mix = np.zeros(125, dtype=np.float32)

    def setup():
        v = Voice({"r": FrameRecorder()}, n_mels=PARAMS.n_mels, max_frame_samples=126, hop_samples=125.0)
        v.inverters["r"].process_frame = lambda mel_frame, *, pitch_ratio, out, gain=1.0: None
        v.start(note=60, velocity=100, pitch_ratio=1.0, method="r", order=1)
        for _ in range(timbre.loop_span[1] + 70):  # into the loop's crossfade, second time round
            v.render_frame(mix, current=timbre, previous=None, weight=1.0)
        assert v.stage == SUSTAIN
        return v

    def work(v):
        for _ in range(30):
            v.render_frame(mix, current=timbre, previous=None, weight=1.0)
        v.release(late=40)  # between two release frames: the interpolated path
        for _ in range(3):
            v.render_frame(mix, current=timbre, previous=None, weight=1.0)
        assert v.stage == RELEASE

    assert least_peak_bytes(setup, work) < 8192


def test_timbres_sound_at_one_loudness():
    """Notes 30 dB apart in level get gains that bring them to the same loudness."""
    basis = loudness_basis(PARAMS)
    quiet, loud = (make_timbre(note(lambda t, d=d: d + 0.0 * t), params=PARAMS) for d in (-20.0, 10.0))
    for t in (quiet, loud):
        held = t.held[: t.loop_span[1]]
        assert abs(basis.loudness_db(held) + 20 * np.log10(t.gain) - TARGET_DB) < 0.01
    assert 20 * np.log10(quiet.gain / loud.gain) == pytest.approx(30.0, abs=0.5)


def _engine_level(bundle, commands, *, match: bool) -> float:
    engine = Engine(bundle, EngineOptions(output_rate=16000, methods=("harmonic",), match_loudness=match))
    for c in commands:
        engine.schedule(c, 0)
    engine.schedule(NoteOn(bundle.base_pitch, 100), 0)
    y = engine.render(int(2.5 * 16000))[4000:]
    y = k_weighting(y, rate=16000)  # loudness as BS.1770 weighs it, what the engine matches
    return float(10 * np.log10(np.mean(np.square(y))))


def test_presets_and_morphs_play_within_1_db_of_each_other():
    """Through the whole engine: the synthetic bundle's presets (several dB apart as decoded) and a morph
    half-way between two of them all render within 1 dB; without the matching they do not."""
    b = synthetic_bundle()
    names = sorted(b.presets)
    cases = [[SetPreset(n)] for n in names] + [[Morph(names[0], names[-1], 0.5)]]
    matched = [_engine_level(b, c, match=True) for c in cases]
    raw = [_engine_level(b, c, match=False) for c in cases]
    assert max(raw) - min(raw) > 2.0, raw  # the bundle's presets do differ in level
    assert max(matched) - min(matched) <= 1.0, matched
