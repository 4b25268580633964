"""Synthetic notes and measurements shared by the tests/test_inversion_*.py files."""

from __future__ import annotations

import numpy as np

from synth.spectrogram import SpectrogramParams, log_mel

PARAMS = SpectrogramParams()
C4 = 261.6255653005986


def harmonic_note(
    f0: float = C4, *, seconds: float = 1.0, amplitude: float = 0.3, sample_rate: int = 16000
) -> np.ndarray:
    """A steady harmonic note (harmonic h at amplitude/h below 7.5 kHz) with a 20 ms attack, float32."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    y = np.zeros_like(t)
    for h in range(1, 40):
        if h * f0 >= 7500:
            break
        y += amplitude / h * np.sin(2 * np.pi * h * f0 * t + 0.7 * h)
    return (y * np.minimum(1.0, t / 0.02)).astype(np.float32)


def note_mel(y: np.ndarray, *, params: SpectrogramParams = PARAMS) -> np.ndarray:
    """The contract's unit-scale log-mel of ``y``, cut to the frames ``y`` actually covers."""
    frames = len(y) // params.hop_length
    return log_mel(y, params=params)[:, :frames]


def peak_frequency(audio: np.ndarray, *, rate: int, near: float, width_semitones: float = 1.5) -> float:
    """Frequency of the strongest peak within ``width_semitones`` of ``near``: long FFT + parabolic fit."""
    n_fft = 1 << 20
    seg = audio * np.hanning(len(audio))
    spec = np.abs(np.fft.rfft(seg, n=n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    lo, hi = near * 2 ** (-width_semitones / 12), near * 2 ** (width_semitones / 12)
    idx = np.flatnonzero((freqs >= lo) & (freqs <= hi))
    i = int(idx[np.argmax(spec[idx])])
    a, b, c = np.log(spec[i - 1 : i + 2] + 1e-30)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return float((i + delta) * rate / n_fft)


def cents(f: float, ref: float) -> float:
    return float(1200.0 * np.log2(f / ref))


def rms_db(x: np.ndarray) -> float:
    return float(20.0 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-30))
