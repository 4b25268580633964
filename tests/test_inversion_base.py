"""The streaming interface shared by both inversion methods: factory, offline driver, contract of a frame."""

from __future__ import annotations

import numpy as np
import pytest
from inversion_fixtures import PARAMS, cents, harmonic_note, note_mel, peak_frequency, rms_db

from synth.errors import ParameterError
from synth.inversion import METHODS, StreamingInverter, frame_lengths, invert, make_inverter

SEMITONES = [-24, -12, -5, 0, 7, 12, 24]


@pytest.fixture(scope="module")
def note():
    y = harmonic_note(seconds=1.0)
    return y, note_mel(y)


@pytest.fixture(scope="module", params=METHODS)
def method(request):
    return request.param


def test_unknown_method_is_a_parameter_error():
    with pytest.raises(ParameterError, match="unknown inversion method 'wavenet'"):
        make_inverter("wavenet", params=PARAMS, output_rate=48000)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_inverters_follow_the_protocol(method, rate):
    inv = make_inverter(method, params=PARAMS, output_rate=rate)
    assert isinstance(inv, StreamingInverter)
    assert inv.output_rate == rate
    assert inv.tail_frames >= 1 and inv.latency_samples >= 0


def test_frame_lengths_follow_the_fractional_frame_clock():
    at48 = frame_lengths(512, params=PARAMS, output_rate=48000)
    assert set(at48.tolist()) == {375}
    at44 = frame_lengths(512, params=PARAMS, output_rate=44100)
    assert set(at44.tolist()) == {344, 345}
    assert at44.sum() == round(512 * 125 * 44100 / 16000)
    # A later start continues the same clock.
    tail = frame_lengths(12, params=PARAMS, output_rate=44100, start=500)
    np.testing.assert_array_equal(tail, at44[500:])


@pytest.mark.parametrize("bad", [np.zeros((127, 10)), np.zeros(128), np.zeros((128, 0))])
def test_invert_rejects_bad_shapes(method, bad):
    with pytest.raises(ParameterError, match="invert: expected mel of shape"):
        invert(bad, method=method, params=PARAMS, output_rate=48000)


def test_invert_rejects_nan(method):
    mel = np.zeros((128, 4), dtype=np.float32)
    mel[3, 2] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        invert(mel, method=method, params=PARAMS, output_rate=48000)


def test_process_frame_rejects_bad_arguments(method):
    inv = make_inverter(method, params=PARAMS, output_rate=48000)
    out = np.zeros(375, dtype=np.float32)
    with pytest.raises(ParameterError, match="mel_frame must have shape"):
        inv.process_frame(np.zeros(127, dtype=np.float32), pitch_ratio=1.0, out=out)
    with pytest.raises(ParameterError, match="out must be 1-D float32"):
        inv.process_frame(np.zeros(128, dtype=np.float32), pitch_ratio=1.0, out=np.zeros(375))
    with pytest.raises(ParameterError, match="pitch_ratio"):
        inv.process_frame(np.zeros(128, dtype=np.float32), pitch_ratio=0.0, out=out)
    with pytest.raises(ParameterError, match="pitch_ratio"):
        inv.process_frame(np.zeros(128, dtype=np.float32), pitch_ratio=float("nan"), out=out)


def _drive(inv, frames, lengths, *, pitch_ratio=1.0):
    chunks = []
    for k, frame in enumerate(frames):
        out = np.full(int(lengths[k]), np.nan, dtype=np.float32)
        inv.process_frame(frame, pitch_ratio=pitch_ratio, out=out)
        chunks.append(out)
    return np.concatenate(chunks)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_driving_twice_and_reset_give_identical_output(method, rate, note):
    _, mel = note
    frames = np.ascontiguousarray(mel.T)
    lengths = frame_lengths(len(frames), params=PARAMS, output_rate=rate)
    inv = make_inverter(method, params=PARAMS, output_rate=rate)
    first = _drive(inv, frames, lengths)
    assert np.all(np.isfinite(first)) and np.abs(first).max() > 0.05
    inv.reset()
    second = _drive(inv, frames, lengths)
    np.testing.assert_array_equal(first, second)
    # A second object, and a reset in the middle of a note, both start from the same state.
    other = make_inverter(method, params=PARAMS, output_rate=rate)
    _drive(other, frames[:40], lengths[:40], pitch_ratio=1.5)
    other.reset()
    np.testing.assert_array_equal(_drive(other, frames, lengths), first)


@pytest.mark.parametrize("semitones", SEMITONES)
def test_pitch_within_ten_cents_and_level_kept(method, semitones, note):
    y, mel = note
    ratio = 2.0 ** (semitones / 12)
    rate = 48000
    audio = invert(mel, method=method, params=PARAMS, output_rate=rate, pitch_ratio=ratio)
    steady = audio[rate // 4 : rate - rate // 8]  # past the attack, before the end of the frames
    expected = 261.6255653005986 * ratio
    error = cents(peak_frequency(steady, rate=rate, near=expected), expected)
    assert abs(error) < 10.0, f"{method} at {semitones:+d} semitones: {error:+.2f} cents"
    level = rms_db(steady) - rms_db(y[4000:14000])
    assert abs(level) < 2.0, f"{method} at {semitones:+d} semitones: level off by {level:+.2f} dB"


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_level_is_roughly_preserved(method, rate, note):
    y, mel = note
    audio = invert(mel, method=method, params=PARAMS, output_rate=rate)
    assert len(audio) == round(mel.shape[1] * 125 * rate / 16000)
    original = rms_db(y[4000:12000])
    inverted = rms_db(audio[rate // 4 : 3 * rate // 4])
    assert abs(inverted - original) < 1.5, f"{method}: {inverted:.2f} dB against {original:.2f} dB"


def test_silence_in_gives_silence_out(method):
    audio = invert(np.zeros((128, 40), dtype=np.float32), method=method, params=PARAMS, output_rate=48000)
    assert np.all(np.isfinite(audio))
    assert np.abs(audio).max() < 1e-4


def test_random_frames_give_finite_bounded_audio(method):
    rng = np.random.default_rng(7)
    mel = rng.random((128, 60)).astype(np.float32)  # up to +30 dB in every band: louder than any note
    for ratio in (0.25, 1.0, 4.0):
        audio = invert(mel, method=method, params=PARAMS, output_rate=44100, pitch_ratio=ratio)
        assert np.all(np.isfinite(audio))
        assert np.abs(audio).max() < 1e3


def test_nan_and_out_of_range_frames_do_not_poison_the_voice(method, note):
    _, mel = note
    inv = make_inverter(method, params=PARAMS, output_rate=48000)
    frames = np.ascontiguousarray(mel.T).copy()
    frames[20, 5:40] = np.nan
    frames[21, :] = np.inf
    frames[22, 60:] = -3.0
    audio = _drive(inv, frames, frame_lengths(len(frames), params=PARAMS, output_rate=48000))
    assert np.all(np.isfinite(audio))
    assert np.abs(audio[-9000:]).max() > 0.05  # still playing the note afterwards


def test_a_steady_tone_has_no_jumps_at_frame_boundaries(method):
    # A pure 440 Hz tone: any phase discontinuity at a frame boundary makes a sample step far above the
    # tone's own largest step (amplitude * 2 pi f / rate).
    rate = 44100
    t = np.arange(16000) / 16000
    y = (0.5 * np.sin(2 * np.pi * 440.0 * t) * np.minimum(1.0, t / 0.02)).astype(np.float32)
    audio = invert(note_mel(y), method=method, params=PARAMS, output_rate=rate)
    steady = audio[rate // 5 : rate - rate // 5]
    amplitude = np.abs(steady).max()
    largest_step = np.abs(np.diff(steady)).max()
    assert largest_step < 1.15 * amplitude * 2 * np.pi * 440.0 / rate
    assert 0.4 < amplitude < 0.6


def test_voices_in_parallel_threads_equal_a_serial_run(method, note):
    # The engine steps its voices from a synthesis thread (or several): separate objects share only
    # read-only tables, so concurrent runs must equal serial ones.
    from concurrent.futures import ThreadPoolExecutor

    _, mel = note
    ratios = [0.5, 1.0, 1.5, 2.0]
    serial = [invert(mel, method=method, params=PARAMS, output_rate=44100, pitch_ratio=r) for r in ratios]
    inverters = [make_inverter(method, params=PARAMS, output_rate=44100) for _ in ratios]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(
            pool.map(
                lambda pair: invert(
                    mel, method=pair[0], params=PARAMS, output_rate=44100, pitch_ratio=pair[1]
                ),
                zip(inverters, ratios, strict=True),
            )
        )
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
