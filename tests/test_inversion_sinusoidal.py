"""Sinusoidal resynthesis: the unit-sinusoid table, partial refinement and tracking, the oscillator bank."""

from __future__ import annotations

import numpy as np
import pytest
from inversion_fixtures import C4, PARAMS, cents, harmonic_note, note_mel, peak_frequency

from synth.errors import ParameterError
from synth.inversion import invert, spectral_convergence
from synth.inversion.partial_table import unit_sinusoid_mel_power
from synth.inversion.sinusoidal import SinusoidalInverter
from synth.spectrogram import mel_power


def _tone(freq: float, *, amplitude: float = 0.5, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    attack = np.minimum(1.0, t / 0.02)
    return (amplitude * attack * np.cos(2 * np.pi * freq * t + 0.3)).astype(np.float32)


@pytest.mark.parametrize("freq", [97.0, 440.3, 1234.5, 3000.0, 6100.0])
def test_table_matches_the_contracts_mel_of_a_unit_sinusoid(freq):
    measured = mel_power(_tone(freq, amplitude=1.0), params=PARAMS)[:, 20:-20].mean(axis=1)
    predicted = unit_sinusoid_mel_power(np.array([freq]), params=PARAMS)[0]
    band = int(np.argmax(measured))
    assert int(np.argmax(predicted)) == band
    for m in (band - 1, band, band + 1):
        assert abs(10 * np.log10(predicted[m] / measured[m])) < 0.2


@pytest.mark.parametrize("freq", [61.0, 233.3, 512.0, 1500.7, 2999.0, 5432.1, 7300.0])
def test_a_pure_tone_becomes_one_partial_at_its_frequency_and_amplitude(freq):
    mel = note_mel(_tone(freq, amplitude=0.25))
    inv = SinusoidalInverter(params=PARAMS, output_rate=48000)
    audio = invert(mel, method=inv, params=PARAMS, output_rate=48000)
    steady = audio[4800:-4800]
    assert abs(cents(peak_frequency(steady, rate=48000, near=freq), freq)) < 3.0
    assert abs(np.abs(steady).max() / 0.25 - 1.0) < 0.05
    # Mid-note, the tone is carried by one partial.
    inv.reset()
    out = np.zeros(375, dtype=np.float32)
    for frame in np.ascontiguousarray(mel.T)[:30]:
        inv.process_frame(frame, pitch_ratio=1.0, out=out)
    assert inv.n_partials == 1


@pytest.mark.parametrize("ratio", [1.0, 2 ** (7 / 12), 2 ** (-12 / 12)])
def test_harmonic_f0_tunes_a_mistuned_fundamental_onto_the_base_pitch(ratio):
    # 70 cents sharp, as the default model's blurred fundamental comes out: within the mel resolution of
    # C4, so with harmonic_f0=C4 it lands on C4 (times the pitch ratio); without, it stays sharp.
    sharp = C4 * 2 ** (70 / 1200)
    mel = note_mel(_tone(sharp))
    for f0, expected in ((C4, C4), (None, sharp)):
        inv = SinusoidalInverter(params=PARAMS, output_rate=48000, harmonic_f0=f0)
        steady = invert(mel, method=inv, params=PARAMS, output_rate=48000, pitch_ratio=ratio)[4800:-4800]
        assert abs(cents(peak_frequency(steady, rate=48000, near=expected * ratio), expected * ratio)) < 3.0


def test_harmonic_f0_leaves_partials_away_from_the_harmonics():
    # 1.5 x C4 (G4) lies half a harmonic spacing from both neighbours, many mel bands away: kept as it is.
    freq = 1.5 * C4
    inv = SinusoidalInverter(params=PARAMS, output_rate=48000, harmonic_f0=C4)
    steady = invert(note_mel(_tone(freq)), method=inv, params=PARAMS, output_rate=48000)[4800:-4800]
    assert abs(cents(peak_frequency(steady, rate=48000, near=freq), freq)) < 3.0


@pytest.mark.parametrize("f0, bound", [(C4, -15.0), (2 * C4, -25.0)])
def test_harmonic_note_converges_well(f0, bound):
    # Harmonics up to 7.5 kHz: above ~3 kHz those of C4 are less than two mel bands apart and merge (the
    # mel's own limit), so C4 scores worse than C5 (measured here: -18.9 and -29.7 dB).
    y = harmonic_note(f0, seconds=1.0)
    audio = invert(note_mel(y), method="sinusoidal", params=PARAMS, output_rate=48000)
    assert spectral_convergence(y, audio, params=PARAMS, audio_rate=48000) < bound


def test_partials_at_or_above_nyquist_are_dropped():
    mel = note_mel(_tone(3000.0))
    # At 8 kHz out, a 3 kHz partial survives at ratio 1 but not at ratio 1.5 (4.5 kHz >= 4 kHz).
    audio = invert(mel, method="sinusoidal", params=PARAMS, output_rate=8000)
    assert np.abs(audio).max() > 0.4
    audio = invert(mel, method="sinusoidal", params=PARAMS, output_rate=8000, pitch_ratio=1.5)
    assert np.abs(audio[:-500]).max() == 0.0  # the abrupt end of the tone is broadband: skip it


def test_partials_below_the_lowest_frequency_are_dropped():
    mel = note_mel(_tone(80.0))
    audio = invert(mel, method="sinusoidal", params=PARAMS, output_rate=48000, pitch_ratio=0.2)  # 16 Hz
    assert np.abs(audio[:-1500]).max() < 1e-3  # only the attack's faint spread remains
    audio = invert(mel, method="sinusoidal", params=PARAMS, output_rate=48000, pitch_ratio=0.3)  # 24 Hz
    assert np.abs(audio[:-1500]).max() > 0.4


def test_max_partials_caps_the_bank():
    rng = np.random.default_rng(3)
    inv = SinusoidalInverter(params=PARAMS, output_rate=48000, max_partials=8)
    out = np.zeros(375, dtype=np.float32)
    for _ in range(10):
        inv.process_frame(rng.random(128).astype(np.float32), pitch_ratio=1.0, out=out)
        assert 1 <= inv.n_partials <= 8


def test_a_varying_block_size_keeps_the_phase_continuous():
    # Blocks of any size continue each partial's phase exactly: a steady tone shows no step at the joins.
    mel = np.ascontiguousarray(note_mel(_tone(700.0, seconds=1.0)).T)
    inv = SinusoidalInverter(params=PARAMS, output_rate=44100)
    rng = np.random.default_rng(5)
    blocks = []
    for frame in mel:
        out = np.empty(int(rng.integers(300, 400)), dtype=np.float32)
        inv.process_frame(frame, pitch_ratio=1.0, out=out)
        blocks.append(out)
    audio = np.concatenate(blocks)[8000:-8000]
    assert np.abs(np.diff(audio)).max() < 1.1 * np.abs(audio).max() * 2 * np.pi * 700.0 / 44100


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_partials": 0}, "max_partials"),
        ({"max_partials": 500}, "max_partials"),
        ({"output_rate": 0}, "output_rate"),
        ({"output_rate": 48000.0}, "output_rate"),
        ({"tolerance": 0.0}, "tolerance"),
        ({"harmonic_f0": 0.0}, "harmonic_f0"),
        ({"harmonic_f0": float("nan")}, "harmonic_f0"),
        ({"harmonic_f0": C4, "harmonic_snap": -1.0}, "harmonic_snap"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"params": PARAMS, "output_rate": 48000} | kwargs
    with pytest.raises(ParameterError, match=match):
        SinusoidalInverter(**args)
