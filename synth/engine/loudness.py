"""Loudness of a timbre from its own log-mel, so that every sound the engine plays sits at one level.

The presets of a bundle are the levels their source notes had (the default's span 35 dB), and a morph or XY
point between two presets is the dB mean of their spectra, quieter than either. A performer wants neither:
changing preset or sweeping a morph on stage should not jump or dip in level. So every timbre gets a gain
that brings its loudness to :data:`TARGET_DB`, measured the way ITU-R BS.1770 measures programme loudness
(the K-weighting's power response, mean power over the held part of the note), but from the mel power the
inverter will reproduce rather than from audio, so it is known the moment a decode lands, before a sample
is rendered. Velocity still scales a voice as before, inside that level.

:func:`k_weighting` filters audio with the same two BS.1770 biquads, for measuring renders
(:mod:`synth.benchmarks.suites.note_lengths`).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from synth.spectrogram import SpectrogramParams, mel_basis

__all__ = ["LoudnessBasis", "loudness_basis", "k_weighting", "k_power_response", "TARGET_DB", "MAX_GAIN_DB"]

# ITU-R BS.1770-4, the K-weighting at 48 kHz: a high shelf (+4 dB above ~1.5 kHz, the head's effect) then
# the RLB high-pass (~38 Hz).
_SHELF_B = (1.53512485958697, -2.69169618940638, 1.19839281085285)
_SHELF_A = (1.0, -1.69065929318241, 0.73248077421585)
_HIGHPASS_B = (1.0, -2.0, 1.0)
_HIGHPASS_A = (1.0, -1.99004745483398, 0.99007225036621)
_RATE = 48000

# The level every timbre is brought to: K-weighted mean power of the held note in dB of the contract's mel
# power (before velocity, the engine's gain and the limiter): the median of the default bundle's 44 (21.2 dB;
# they span 5.4 .. 37.0 dB), so a typical preset sounds as it did and the quiet ones come up to it.
TARGET_DB = 21.0
# No timbre is raised by more than this: a near-silent latent stays near-silent instead of becoming noise.
MAX_GAIN_DB = 30.0


def k_power_response(freqs: np.ndarray) -> np.ndarray:
    """|H(f)|^2 of the K-weighting at frequencies ``freqs`` (Hz, below 24 kHz)."""
    from scipy.signal import freqz

    w = 2.0 * np.pi * np.asarray(freqs, dtype=np.float64) / _RATE
    _, shelf = freqz(_SHELF_B, _SHELF_A, worN=w)
    _, high = freqz(_HIGHPASS_B, _HIGHPASS_A, worN=w)
    return np.abs(shelf * high) ** 2


def k_weighting(audio: np.ndarray, *, rate: int) -> np.ndarray:
    """``audio`` (1-D) resampled to 48 kHz and K-weighted (float64)."""
    import soxr
    from scipy.signal import lfilter

    y = np.asarray(audio, dtype=np.float64)
    if rate != _RATE:
        y = soxr.resample(y, rate, _RATE, quality="HQ")
    return lfilter(_HIGHPASS_B, _HIGHPASS_A, lfilter(_SHELF_B, _SHELF_A, y))


@dataclasses.dataclass(frozen=True, eq=False)
class LoudnessBasis:
    """What a timbre needs to know its own loudness: the K-weighting at each mel band and the contract's
    dB range (read-only, one per contract)."""

    weights: np.ndarray  # (n_mels,) float64
    db_min: float
    db_range: float
    weights32: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = self.weights.astype(np.float32)
        w.setflags(write=False)
        object.__setattr__(self, "weights32", w)

    def loudness_db(self, frames: np.ndarray) -> float:
        """K-weighted mean power (dB) of unit-scale frames ``(frames, n_mels)``.

        In float32, relative to the contract's top (``db_max`` = 1): it runs on the synthesis thread when a
        timbre is made there, and float64 powers took four times as long for the same figure to 0.01 dB.
        """
        ln10 = np.log(10.0) / 10.0
        x = np.asarray(frames, dtype=np.float32) - np.float32(1.0)
        x *= np.float32(self.db_range * ln10)
        np.exp(x, out=x)
        mean = float(np.mean(x @ self.weights32)) * 10.0 ** ((self.db_min + self.db_range) / 10.0)
        return float(10.0 * np.log10(max(mean, 1e-30)))



    def gain(self, frames: np.ndarray) -> float:
        """The linear gain that brings frames of this loudness to :data:`TARGET_DB` (at most
        :data:`MAX_GAIN_DB` up)."""
        return float(10.0 ** (min(TARGET_DB - self.loudness_db(frames), MAX_GAIN_DB) / 20.0))


@functools.lru_cache(maxsize=8)
def loudness_basis(params: SpectrogramParams) -> LoudnessBasis:
    """The :class:`LoudnessBasis` of a contract.

    A mel band's power is a weighted mean over the bins under its filter, not their sum (Slaney's filters all
    have the same area), so a wide high band stands for many more bins than its value says. The weights are
    the least-squares solution of ``basis.T @ w = K(bin frequencies)``: then ``w @ mel_power`` is the
    K-weighted power summed over the bins, for any spectrum that is smooth across a band.
    """
    basis = mel_basis(params=params).astype(np.float64)
    bins_hz = np.arange(params.n_bins) * params.sample_rate / params.n_fft
    weights = np.linalg.lstsq(basis.T, k_power_response(bins_hz), rcond=None)[0]
    weights.setflags(write=False)
    return LoudnessBasis(weights=weights, db_min=float(params.db_min), db_range=float(params.db_max - params.db_min))
