"""The harmonic + noise method on notes whose every part is known: a harmonic note with quiet partials up to
7.5 kHz, breath noise between them and a sharp attack, inverted and analysed again region by region.

Each target is one the sinusoidal method misses on the same note (checked in the same test), so a
harmonic + noise inverter that lost its noise or its upper partials would fail here too."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from inversion_fixtures import C4, PARAMS, note_mel

from synth.errors import ParameterError
from synth.inversion import invert, make_inverter
from synth.inversion.harmonic_noise import HarmonicNoiseInverter
from synth.metrics.regions import LOUD, region_errors
from synth.spectrogram import log_mel

RATE = 48000


def breathy_note(*, seed: int = 0) -> np.ndarray:
    """4 s: harmonics of C4 falling 3 dB an octave up to 7.3 kHz, white noise 30 dB under the fundamental
    between them, a 5 ms attack, held 3 s and released over 1 s, float32 at 16 kHz."""
    rng = np.random.default_rng(seed)
    sr = PARAMS.sample_rate
    t = np.arange(PARAMS.n_samples) / sr
    y = np.zeros_like(t)
    for h in range(1, 29):
        y += 0.3 / h**0.5 * np.sin(2 * np.pi * h * C4 * t + rng.uniform(0, 6.3))
    y += 0.01 * rng.standard_normal(t.size)
    env = np.minimum(1.0, t / 0.005) * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) * 5.0))
    return (y * env).astype(np.float32)


def heard(method: str, mel: np.ndarray, **kw):
    inv = make_inverter(method, params=PARAMS, output_rate=RATE, harmonic_f0=C4, **kw)
    audio = invert(mel, method=inv, params=PARAMS, output_rate=RATE)
    again = log_mel(soxr.resample(audio, RATE, PARAMS.sample_rate, quality="VHQ").astype(np.float32), params=PARAMS)
    return region_errors(mel, again, params=PARAMS)


@pytest.fixture(scope="module")
def mel():
    return log_mel(breathy_note(), params=PARAMS)


@pytest.fixture(scope="module")
def harmonic(mel):
    return heard("harmonic", mel)


@pytest.fixture(scope="module")
def sinusoidal(mel):
    return heard("sinusoidal", mel)


def test_the_attack_keeps_its_level(harmonic, sinusoidal):
    assert abs(harmonic.bias["attack"]) <= 1.5, harmonic
    assert sinusoidal.bias["attack"] < -1.5  # what the default lost before


def test_the_partials_above_4_khz_are_kept(harmonic, sinusoidal):
    # 1.5 dB, not 1: the noise path's resampler passes 0..7.2 kHz, and this note's noise reaches 8 kHz.
    assert abs(harmonic.bias["sustain_high"]) <= 1.5 and harmonic.abs["sustain_high"] <= 2.5, harmonic
    assert harmonic.top_band_ratio >= 0.97 > sinusoidal.top_band_ratio  # (real notes: 1.00, docs/BENCHMARKS.md)
    assert sinusoidal.bias["sustain_high"] < -2.0


def test_the_noise_between_the_partials_is_kept(mel, harmonic, sinusoidal):
    """The valleys between partials below 1.5 kHz hold only the breath noise: its level comes back."""
    assert abs(harmonic.bias["sustain_low"]) <= 1.0, harmonic
    assert abs(harmonic.bias["release"]) <= 1.5, harmonic
    assert sinusoidal.bias["sustain_low"] < -1.0
    partials_only = heard("harmonic", mel, noise=False)
    assert partials_only.bias["sustain_low"] < harmonic.bias["sustain_low"] - 1.0



def again_mel(mel: np.ndarray, **kw) -> np.ndarray:
    inv = make_inverter("harmonic", params=PARAMS, output_rate=RATE, harmonic_f0=C4, **kw)
    audio = invert(mel, method=inv, params=PARAMS, output_rate=RATE)
    return log_mel(soxr.resample(audio, RATE, PARAMS.sample_rate, quality="VHQ").astype(np.float32), params=PARAMS)


def valley_error(mel: np.ndarray, again: np.ndarray) -> float:
    """Mean |error| (dB) over the sustain's loud bins 30 dB or more under their frame's loudest: the breath
    noise between the partials, whose own level fluctuates from frame to frame as any noise's does."""
    scale = PARAMS.db_max - PARAMS.db_min
    below = (mel.max(axis=0, keepdims=True) - mel) * scale
    sel = (mel > LOUD) & (below >= 30.0)
    sel[:, : PARAMS.frame_of(0.1)] = False
    sel[:, PARAMS.frame_of(3.0) :] = False
    return float(np.mean(np.abs(again - mel)[sel]) * scale)


def test_the_noise_follows_the_notes_own_fluctuation(mel):
    """With random phases the overlapping noise frames add as independent noises: the analysis of the result
    scatters around the noise's level and smooths over the note's own frame-to-frame fluctuation (3.27 dB off
    between the partials here). Phases that continue the noise already rendered follow it (2.65 dB), and the
    note as heard and its attack come nearer (1.24 and 1.58 dB against 1.51 and 1.90; 2026-12-08, the noise
    deconvolved from its spread). Before the deconvolution and the geometric density (2026-12-07): 3.41 against
    2.75, and 2.68 without the jitter that keeps a steady noise from buzzing; a jitter of twice its width, as
    the generator's miscompiled step once gave it (synth/inversion/random_bits.py), left 3.06 / 1.43 / 1.74."""
    consistent, random = again_mel(mel, consistency=4), again_mel(mel, consistency=0)
    assert valley_error(mel, consistent) <= min(2.95, valley_error(mel, random) - 0.5)
    ours, theirs = region_errors(mel, consistent, params=PARAMS), region_errors(mel, random, params=PARAMS)
    assert ours.heard <= min(1.4, theirs.heard - 0.2), (ours, theirs)
    assert ours.abs["attack"] <= min(1.75, theirs.abs["attack"] - 0.3), (ours, theirs)

def fine_flatness(x: np.ndarray) -> float:
    """Median over 64 Hz blocks from 200 Hz to 6 kHz of 1 s's fine spectrum (1 Hz bins) of the geometric over
    the arithmetic mean power: near 0.56 for noise, near 0 for a comb of steady sines."""
    sr = PARAMS.sample_rate
    power = np.abs(np.fft.rfft(x[sr // 2 : sr // 2 + sr] * np.hanning(sr))) ** 2
    freqs = np.fft.rfftfreq(sr, 1 / sr)
    band = power[(freqs > 200) & (freqs < 6000)]
    blocks = band[: band.size // 64 * 64].reshape(-1, 64)
    return float(np.median(np.exp(np.mean(np.log(blocks + 1e-30), axis=1)) / np.mean(blocks, axis=1)))


def largest_repeat(x: np.ndarray) -> float:
    """The largest |normalised autocorrelation| of 1 s of ``x`` at lags of 20-300 ms (a frame's spectrum held
    with continued phases would repeat every n_fft samples, 64 ms)."""
    sr = PARAMS.sample_rate
    seg = x[sr // 2 : sr // 2 + sr] - np.mean(x[sr // 2 : sr // 2 + sr])
    r = np.fft.irfft(np.abs(np.fft.rfft(seg, 2 * seg.size)) ** 2)[: seg.size]
    return float(np.max(np.abs(r[int(0.02 * sr) : int(0.3 * sr)])) / r[0])


def test_consistent_noise_stays_noise():
    """Phases continued from frame to frame must not turn a noise into a comb of steady sines at the FFT's bin
    centres (15.6 Hz apart: a buzz). White noise's render keeps white noise's fine-spectrum flatness (the
    original 0.575, random phases 0.571, consistent 0.563) and never repeats itself; a steady noise (its mean
    mel frame held, as a decoder's smooth mel is) keeps most of it (random phases 0.50, consistent 0.34,
    consistent without the phase jitter 0.08)."""
    rng = np.random.default_rng(3)
    y = (0.05 * rng.standard_normal(PARAMS.n_samples)).astype(np.float32)
    mel = log_mel(y, params=PARAMS)
    steady = np.repeat(mel[:, 20:480].mean(axis=1, keepdims=True), mel.shape[1], axis=1).astype(np.float32)
    inv = make_inverter("harmonic", params=PARAMS, output_rate=RATE, consistency=4)

    def render(m):
        audio = invert(m, method=inv, params=PARAMS, output_rate=RATE)
        return soxr.resample(audio, RATE, PARAMS.sample_rate, quality="VHQ")

    audio = render(mel)
    assert fine_flatness(audio) >= fine_flatness(y) - 0.05
    assert largest_repeat(audio) <= 0.1
    assert fine_flatness(render(steady)) >= 0.3

def test_a_pure_harmonic_note_gets_no_noise():
    """Bands the partials explain get no noise: a note with no noise comes back within a dB everywhere."""
    t = np.arange(PARAMS.n_samples) / PARAMS.sample_rate
    y = sum(0.3 / h * np.sin(2 * np.pi * h * C4 * t + h) for h in range(1, 28))
    y = (y * np.minimum(1.0, t / 0.02) * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) * 6.0))).astype(np.float32)
    mel = log_mel(y, params=PARAMS)
    result = heard("harmonic", mel)
    assert result.heard <= 1.0, result
    assert abs(result.bias["sustain_low"]) <= 0.5, result


@pytest.mark.parametrize("consistency", [0, 4])
@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_frame_allocates_no_array(rate, consistency):
    from engine_fixtures import least_peak_bytes

    mel = log_mel(breathy_note(), params=PARAMS)
    frames = np.ascontiguousarray(mel.T[100:110])
    out = np.zeros(400, dtype=np.float32)

    def setup():
        inv = HarmonicNoiseInverter(params=PARAMS, output_rate=rate, harmonic_f0=C4, consistency=consistency)
        for k in range(5):  # compiled, buffers touched
            inv.process_frame(frames[k], pitch_ratio=1.0, out=out[:345])
        return inv

    def work(inv):
        for k in range(5, 10):
            inv.process_frame(frames[k], pitch_ratio=1.25, out=out[:345])

    peak = least_peak_bytes(setup, work)
    assert peak < 4096, f"{peak} bytes allocated at once by five frames"


def test_bad_settings_are_named():
    with pytest.raises(ParameterError, match="explained must be in"):
        HarmonicNoiseInverter(params=PARAMS, output_rate=RATE, explained=-1.0)
    for bad in (-1, 9, 2.0, True):
        with pytest.raises(ParameterError, match="consistency must be"):
            HarmonicNoiseInverter(params=PARAMS, output_rate=RATE, consistency=bad)
    for bad in (-1, 9, 2.0, True):
        with pytest.raises(ParameterError, match="deconvolve must be"):
            HarmonicNoiseInverter(params=PARAMS, output_rate=RATE, deconvolve=bad)
    with pytest.raises(ParameterError, match="harmonic_f0"):
        HarmonicNoiseInverter(params=PARAMS, output_rate=RATE, harmonic_f0=-3.0)
    inv = HarmonicNoiseInverter(params=PARAMS, output_rate=RATE)
    with pytest.raises(ParameterError, match="exceeds"):
        inv.process_frame(np.zeros(PARAMS.n_mels, np.float32), pitch_ratio=1.0, out=np.zeros(9000, np.float32))


def formant_note(f0: float, *, seconds: float = 2.0) -> np.ndarray:
    """Harmonics of ``f0`` shaped by one resonance at 1.2 kHz (a vowel-like formant), steady."""
    sr = PARAMS.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for h in range(1, int(7000 // f0)):
        gain = 1.0 / (1.0 + ((h * f0 - 1200.0) / 250.0) ** 2)
        y += 0.3 * gain * np.sin(2 * np.pi * h * f0 * t + h)
    return (y * np.minimum(1.0, t / 0.02)).astype(np.float32)


def strongest_hz(audio: np.ndarray, rate: int) -> float:
    """Frequency of the loudest bin of the long-term spectrum between 300 Hz and 4 kHz."""
    spec = np.abs(np.fft.rfft(audio[rate // 4 :] * np.hanning(audio.size - rate // 4)))
    freqs = np.fft.rfftfreq(audio.size - rate // 4, 1 / rate)
    band = (freqs > 300) & (freqs < 4000)
    return float(freqs[band][np.argmax(spec[band])])


@pytest.mark.parametrize("semitones", [-12, -7, 15])
def test_keep_envelope_keeps_the_formant_where_the_instrument_has_it(semitones):
    """Played a fifth or an octave below its pitch, or 15 semitones above, the note's formant (1.2 kHz) stays
    put with keep_envelope and moves with the pitch without it; the pitch itself is exact either way."""
    from inversion_fixtures import cents, peak_frequency

    mel = note_mel(formant_note(C4))
    ratio = 2.0 ** (semitones / 12)
    out = {}
    for keep in (False, True):
        inv = HarmonicNoiseInverter(params=PARAMS, output_rate=RATE, harmonic_f0=C4, keep_envelope=keep)
        out[keep] = invert(mel, method=inv, params=PARAMS, output_rate=RATE, pitch_ratio=ratio)
        f1 = peak_frequency(out[keep][RATE // 4 :], rate=RATE, near=C4 * ratio)
        assert abs(cents(f1, C4 * ratio)) < 5
    kept, moved = strongest_hz(out[True], RATE), strongest_hz(out[False], RATE)
    # The envelope is known at the note's own harmonics (262 Hz apart) and sounds at the new pitch's: the
    # strongest lies within the larger of half of each spacing from the formant.
    near = max(0.6 * C4 * ratio, 0.5 * C4)
    assert abs(kept - 1200.0) <= near, kept
    assert abs(moved - 1200.0 * ratio) <= 0.6 * C4 * ratio, moved  # moved with the pitch


@pytest.mark.parametrize("semitones", [0, -4, 1, 12])
def test_keep_envelope_leaves_a_note_near_its_own_pitch_alone(semitones):
    """Within 4.5 semitones below and 15 above its pitch, moving every partial is nearer the real note (the
    class docstring's figures): keep_envelope changes nothing there."""
    mel = note_mel(formant_note(C4, seconds=1.0))
    out = []
    for keep in (False, True):
        inv = HarmonicNoiseInverter(params=PARAMS, output_rate=RATE, harmonic_f0=C4, keep_envelope=keep)
        out.append(invert(mel, method=inv, params=PARAMS, output_rate=RATE, pitch_ratio=2.0 ** (semitones / 12)))
    np.testing.assert_array_equal(out[0], out[1])
    with pytest.raises(ParameterError, match="keep_envelope needs harmonic_f0"):
        HarmonicNoiseInverter(params=PARAMS, output_rate=RATE, keep_envelope=True)
