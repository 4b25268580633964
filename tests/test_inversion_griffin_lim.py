"""Streaming RTPGHI inversion: chunking, look-ahead, resamplers, timing, bad arguments."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from inversion_fixtures import C4, PARAMS, cents, harmonic_note, note_mel, peak_frequency, rms_db

from synth.errors import ParameterError
from synth.inversion import frame_lengths, invert
from synth.inversion.griffin_lim import GriffinLimInverter


@pytest.fixture(scope="module")
def mel():
    return note_mel(harmonic_note(seconds=1.0))


def _drive(inv, frames, lengths):
    out = []
    for frame, n in zip(frames, lengths, strict=True):
        block = np.empty(int(n), dtype=np.float32)
        inv.process_frame(frame, pitch_ratio=1.0, out=block)
        out.append(block)
    return np.concatenate(out)


def test_output_does_not_depend_on_how_the_caller_cuts_it(mel):
    # The audio comes out of a FIFO: any schedule of block sizes with the same running total (give or take
    # what the FIFO holds) yields the same samples.
    frames = np.ascontiguousarray(mel.T)
    lengths = frame_lengths(len(frames), params=PARAMS, output_rate=44100)
    inv = GriffinLimInverter(params=PARAMS, output_rate=44100)
    reference = _drive(inv, frames, lengths)
    assert inv.underflows == 0
    shifted = np.roll(lengths, 1)  # 345/344 where the clock says 344/345
    uneven = lengths.copy()
    uneven[0::2] -= 2
    uneven[1::2] += 2
    for schedule in (shifted, uneven):
        inv.reset()
        np.testing.assert_array_equal(_drive(inv, frames, schedule), reference)
        assert inv.underflows == 0


def test_asking_for_too_much_is_zero_filled_and_counted():
    inv = GriffinLimInverter(params=PARAMS, output_rate=48000)
    out = np.full(5000, np.nan, dtype=np.float32)
    inv.process_frame(np.zeros(128, dtype=np.float32), pitch_ratio=1.0, out=out)
    assert np.all(out[-4000:] == 0.0)  # a frame yields ~375 samples (plus the prefill): the rest is zeros
    assert np.abs(out).max() < 1e-4
    assert inv.underflows > 4000


@pytest.mark.parametrize("look_ahead", [0, 1])
@pytest.mark.parametrize("resampler", ["sinc", "soxr"])
def test_variants_keep_pitch_level_and_timing(mel, look_ahead, resampler):
    rate = 48000
    inv = GriffinLimInverter(params=PARAMS, output_rate=rate, look_ahead=look_ahead, resampler=resampler)
    audio = invert(mel, method=inv, params=PARAMS, output_rate=rate)
    steady = audio[rate // 4 : rate - rate // 8]
    assert abs(cents(peak_frequency(steady, rate=rate, near=C4), C4)) < 10.0
    assert abs(rms_db(steady) - rms_db(harmonic_note(seconds=1.0)[4000:14000])) < 1.5
    assert inv.underflows == 0


def test_latency_of_the_soxr_path_matches_the_sinc_path(mel):
    a = invert(
        mel, method=GriffinLimInverter(params=PARAMS, output_rate=48000), params=PARAMS, output_rate=48000
    )
    b = invert(
        mel,
        method=GriffinLimInverter(params=PARAMS, output_rate=48000, resampler="soxr"),
        params=PARAMS,
        output_rate=48000,
    )
    xc = np.correlate(a[12000:36000], b[12000 - 20 : 36000 + 20], mode="valid")
    assert abs(int(np.argmax(xc)) - 20) <= 1


@pytest.mark.parametrize("ratio", [1.0, 2 ** (7 / 12)])
def test_harmonic_f0_tunes_a_mistuned_fundamental_onto_the_base_pitch(ratio):
    # 70 cents sharp, as the default model's blurred fundamental comes out: with harmonic_f0=C4 the partial
    # is redrawn at C4 (times the pitch ratio); without, it stays sharp.
    sharp = C4 * 2 ** (70 / 1200)
    t = np.arange(16000) / 16000
    mel = note_mel((0.5 * np.minimum(1.0, t / 0.02) * np.cos(2 * np.pi * sharp * t)).astype(np.float32))
    heard = {}
    for f0 in (C4, None):
        inv = GriffinLimInverter(params=PARAMS, output_rate=48000, harmonic_f0=f0)
        steady = invert(mel, method=inv, params=PARAMS, output_rate=48000, pitch_ratio=ratio)[9600:-9600]
        heard[f0] = cents(peak_frequency(steady, rate=48000, near=C4 * ratio), C4 * ratio)
    assert abs(heard[C4]) < 5.0
    assert heard[None] > 50.0


def test_bad_arguments():
    with pytest.raises(ParameterError, match="look_ahead"):
        GriffinLimInverter(params=PARAMS, output_rate=48000, look_ahead=3)
    with pytest.raises(ParameterError, match="resampler"):
        GriffinLimInverter(params=PARAMS, output_rate=48000, resampler="linear")
    with pytest.raises(ParameterError, match="output_rate"):
        GriffinLimInverter(params=PARAMS, output_rate=0)
    with pytest.raises(ParameterError, match="Blackman"):
        GriffinLimInverter(params=dataclasses.replace(PARAMS, window="hann"), output_rate=48000)
    with pytest.raises(ParameterError, match="harmonic_f0"):
        GriffinLimInverter(params=PARAMS, output_rate=48000, harmonic_f0=-1.0)
    with pytest.raises(ParameterError, match="harmonic_snap"):
        GriffinLimInverter(params=PARAMS, output_rate=48000, harmonic_f0=C4, harmonic_snap=3.0)
