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


def note(level_db) -> np.ndarray:
    """A (n_mels, frames) unit-scale note: a few partial bands at ``level_db(t)`` dB (t in seconds, an array),
    their neighbours 20 dB lower, the rest silent; the key is released at 3 s where the level falls 60 dB/s."""
    t = np.arange(PARAMS.frames) / FRAME_RATE
    db = np.asarray(level_db(t), dtype=np.float64)
    db = np.where(t < 3.0, db, db[PARAMS.frame_of(3.0) - 1] - 60.0 * (t - 3.0))
    mel = np.full((PARAMS.n_mels, PARAMS.frames), PARAMS.db_min)
    for band in (10, 21, 33, 44, 60, 80):
        mel[band] = db - 2.0 * band / 10
        mel[band - 1] = mel[band + 1] = db - 20.0
    return np.clip((mel - PARAMS.db_min) / (PARAMS.db_max - PARAMS.db_min), 0.0, 1.0).astype(np.float32)


def play(mel: np.ndarray, *, hold_s: float, after_s: float = 0.5) -> tuple[np.ndarray, int]:
    """The frames a voice plays of ``mel`` held ``hold_s`` seconds then released; and the key-up frame."""
    timbre = make_timbre(mel, params=PARAMS)
    rec = FrameRecorder()
    v = Voice({"r": rec}, n_mels=PARAMS.n_mels, max_frame_samples=126, hop_samples=125.0)
    v.start(note=60, velocity=100, pitch_ratio=1.0, method="r", order=1)
    mix = np.zeros(125, dtype=np.float32)
    keyup = int(round(hold_s * FRAME_RATE))
    for k in range(keyup + int(after_s * FRAME_RATE)):
        if k == keyup:
            v.release()
        if not v.active:
            break
        v.render_frame(mix, current=timbre, previous=None, weight=1.0)
    return np.array(rec.frames), keyup


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
        v.release()
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
