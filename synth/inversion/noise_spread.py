"""How noise shaped band by band spreads over the mel bands of the contract: the lookup behind the harmonic
inverter's noise levels.

The harmonic inverter's noise spectrum is a power density at every FFT bin, interpolated between the
densities it gives the mel band centres (each bin between two centres takes a weighted share of both: the
*hats* of :func:`noise_bin_hats`). Analysed again, that noise reaches each band through the band's own
filter and through the analysis window, whose main lobe spreads every bin's power over about nine bins
(the Blackman window of 690 samples in a 1024-point FFT); below 1 kHz the bands lie 1.5 bins apart, so a
band between two louder ones (the valley between two partials) is filled from both sides. Given the
densities, :func:`noise_band_spread`'s table predicts the mel power of every band (of an arithmetic
interpolation between the centres), and the inverter deconvolves its band densities with it before
rendering them (see ``HarmonicNoiseInverter``'s ``deconvolve``).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from synth.spectrogram import SpectrogramParams, analysis_window, mel_band_frequencies, mel_basis

__all__ = ["NoiseSpread", "noise_bin_hats", "noise_band_spread", "SPREAD_WIDTH"]

#: Bands kept per row of the spread table (fewer where the contract has fewer bands): on the default contract
#: the bands further than 4 away hold under 1e-6 of a row's sum (7 bands would leave 2.2e-6 out).
SPREAD_WIDTH = 9
# Bins of the window's power spectrum kept either side (its main lobe is about 4.5 bins wide each way).
_KERNEL_BINS = 24


def noise_bin_hats(*, params: SpectrogramParams) -> tuple[np.ndarray, np.ndarray]:
    """The band centres surrounding each FFT bin: ``(lower band, weight of the lower band)``, so that the
    density at bin ``b`` is ``w[b] * d[band[b]] + (1 - w[b]) * d[band[b] + 1]`` (or its geometric
    counterpart) for band-centre densities ``d``.

    Returns
    -------
    tuple of np.ndarray [shape=(n_bins,)] int64 band indices (0 .. n_mels - 2) and float64 weights (0 .. 1)
    """
    centres = mel_band_frequencies(params=params)
    bins_hz = np.arange(params.n_bins) * params.sample_rate / params.n_fft
    band = np.clip(np.searchsorted(centres, bins_hz, side="right") - 1, 0, params.n_mels - 2)
    lo, hi = centres[band], centres[band + 1]
    weight = np.clip((hi - bins_hz) / (hi - lo), 0.0, 1.0)
    return np.ascontiguousarray(band, dtype=np.int64), np.ascontiguousarray(weight, dtype=np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseSpread:
    """Compact ``(n_mels, n_mels)`` matrix: ``first[m]`` is the first band row ``m`` reads, ``values[m, j]``
    the mel power in band ``m`` of a unit density at the centre of band ``first[m] + j`` (shared, never written).

    Attributes
    ----------
    first : np.ndarray [shape=(n_mels,), int64]
    values : np.ndarray [shape=(n_mels, min(SPREAD_WIDTH, n_mels)), float64]
    """

    first: np.ndarray
    values: np.ndarray


@functools.lru_cache(maxsize=4)
def noise_band_spread(params: SpectrogramParams) -> NoiseSpread:
    """The spread table of the module docstring, once per contract: the filterbank times the analysis
    window's power spread times the hats, ``basis @ K @ H``, whose row ``m`` sums to about the filter's own
    sum (a flat density comes back as it went in)."""
    n_bins, n_mels = params.n_bins, params.n_mels
    width = min(SPREAD_WIDTH, n_mels)
    band, weight = noise_bin_hats(params=params)
    hats = np.zeros((n_bins, n_mels))
    hats[np.arange(n_bins), band] = weight
    hats[np.arange(n_bins), band + 1] += 1.0 - weight
    padded = np.zeros(params.n_fft)
    window = analysis_window(params=params)
    padded[: window.size] = window
    kernel = np.abs(np.fft.fft(padded)) ** 2
    kernel /= kernel.sum()
    spread = np.zeros((n_bins, n_bins))
    rows = np.arange(n_bins)
    reach = min(_KERNEL_BINS, n_bins - 1)  # mirrored once at most
    for offset in range(-reach, reach + 1):
        cols = rows + offset
        cols = np.where(cols < 0, -cols, cols)  # mirrored at 0 Hz and at Nyquist, as a real signal's spectrum
        cols = np.where(cols >= n_bins, 2 * (n_bins - 1) - cols, cols)
        np.add.at(spread, (rows, cols), kernel[offset % params.n_fft])
    full = mel_basis(params=params).astype(np.float64) @ spread @ hats
    first = np.zeros(n_mels, dtype=np.int64)
    values = np.zeros((n_mels, width))
    for m in range(n_mels):
        lo = min(max(m - width // 2, 0), n_mels - width)
        first[m] = lo
        values[m] = full[m, lo : lo + width]
    # Left writeable: numba's dispatcher takes a slower path for a read-only array (see _response_table).
    return NoiseSpread(first=first, values=values)
