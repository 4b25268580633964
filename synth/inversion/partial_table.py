"""How one unit sinusoid spreads over the mel bands of the contract: the lookup behind partial refinement.

A sinusoid ``cos(2 pi f t)`` analysed by the contract's STFT puts ``|W(f - f_k)|^2 / 4`` into linear bin k
(W: DTFT of the zero-padded Blackman window), and the mel filterbank sums those into a few neighbouring
bands. So for a peak at mel band ``m``, the level difference of its two neighbours in dB,
``d = db[m + 1] - db[m - 1]``, rises monotonically with the frequency of the sinusoid inside the region
where band ``m`` is the loudest, and the peak band's own level minus the table's gain at that frequency
gives the amplitude. This module tabulates, per band, ``d -> (frequency, gain in dB)`` on a uniform grid
of ``d`` so that the per-frame lookup is two multiplies and an interpolation (no search).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from synth.spectrogram import SpectrogramParams, analysis_window, mel_band_frequencies, mel_basis

__all__ = ["PartialTable", "partial_table", "unit_sinusoid_mel_power"]

# Frequency grid of the tabulation (Hz). 1 Hz is ~7 cents at 240 Hz and the lookup interpolates between
# grid points, so the grid itself adds far less than a cent.
_GRID_HZ = 1.0
# Points per band in the d -> frequency lookup.
_LUT_POINTS = 48


@dataclasses.dataclass(frozen=True)
class PartialTable:
    """Per-band lookup from neighbour level difference to frequency and gain.

    Attributes
    ----------
    d_start, d_step : np.ndarray [shape=(n_mels,), float64] the uniform ``d`` grid of each band (dB)
    freq : np.ndarray [shape=(n_mels, points), float64] frequency (Hz) at each ``d`` grid point
    gain_db : np.ndarray [shape=(n_mels, points), float64] mel power in band m of a unit-amplitude sinusoid
        at that frequency, in dB
    """

    d_start: np.ndarray
    d_step: np.ndarray
    freq: np.ndarray
    gain_db: np.ndarray


def _window_power_response(params: SpectrogramParams, offsets_hz: np.ndarray) -> np.ndarray:
    """``|W(offset)|^2`` of the contract's zero-padded analysis window at the given offsets (Hz)."""
    win = analysis_window(params=params)
    fine = 1 << 17  # 0.12 Hz resolution at 16 kHz; linear interpolation between points is then exact enough
    spectrum = np.abs(np.fft.rfft(win, n=fine)) ** 2
    freqs = np.arange(spectrum.size) * params.sample_rate / fine
    return np.interp(np.abs(offsets_hz), freqs, spectrum, right=0.0)


def unit_sinusoid_mel_power(frequencies: np.ndarray, *, params: SpectrogramParams) -> np.ndarray:
    """Mel power of a unit-amplitude sinusoid at each frequency (averaged over its phase).

    Parameters
    ----------
    frequencies : np.ndarray [shape=(n,), Hz, 0 .. sample_rate / 2]

    Returns
    -------
    np.ndarray [shape=(n, n_mels), float64]
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    bins = np.arange(params.n_bins) * params.sample_rate / params.n_fft
    # Positive-frequency lobe plus its image at -f; averaging over the phase removes their cross term.
    power = _window_power_response(params, frequencies[:, None] - bins[None, :])
    power += _window_power_response(params, frequencies[:, None] + bins[None, :])
    power *= 0.25
    return power @ mel_basis(params=params).astype(np.float64).T


@functools.lru_cache(maxsize=4)
def partial_table(params: SpectrogramParams) -> PartialTable:
    """Build (once per contract) the per-band lookup described in the module docstring."""
    grid = np.arange(0.0, params.sample_rate / 2 + _GRID_HZ / 2, _GRID_HZ)
    grid = grid[(grid >= params.fmin) & (grid <= params.fmax)]
    response = unit_sinusoid_mel_power(grid, params=params)
    response_db = 10.0 * np.log10(np.maximum(response, 1e-30))
    loudest = response.argmax(axis=1)
    n_mels = params.n_mels
    d_start = np.zeros(n_mels)
    d_step = np.ones(n_mels)
    freq = np.zeros((n_mels, _LUT_POINTS))
    gain_db = np.zeros((n_mels, _LUT_POINTS))
    centres = mel_band_frequencies(params=params)
    for m in range(n_mels):
        rows = np.flatnonzero(loudest == m)
        if rows.size == 0:
            # A band never loudest for any sinusoid (does not happen with the contract's Slaney bands):
            # fall back to its centre frequency and its own gain there.
            f0 = float(centres[m])
            freq[m] = f0
            gain_db[m] = 10.0 * np.log10(
                max(unit_sinusoid_mel_power(np.array([f0]), params=params)[0, m], 1e-30)
            )
            continue
        lo, hi = max(m - 1, 0), min(m + 1, n_mels - 1)
        d = response_db[rows, hi] - response_db[rows, lo]
        order = np.argsort(d, kind="stable")  # monotone in practice except at the top band's half filter
        d_sorted, f_sorted = d[order], grid[rows][order]
        d_grid = np.linspace(d_sorted[0], d_sorted[-1], _LUT_POINTS)
        d_start[m] = d_grid[0]
        d_step[m] = max(d_grid[1] - d_grid[0], 1e-9)
        freq[m] = np.interp(d_grid, d_sorted, f_sorted)
        gain_db[m] = np.interp(freq[m], grid, response_db[:, m])
    return PartialTable(d_start=d_start, d_step=d_step, freq=freq, gain_db=gain_db)
