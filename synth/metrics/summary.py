"""All the paper's metrics of a set of reconstructions, as one JSON-ready dict."""

from __future__ import annotations

import numpy as np

from synth.metrics.error import rmse_per_note
from synth.metrics.harmonic import harmonic_scores
from synth.metrics.structural import ssim_per_note
from synth.spectrogram import SpectrogramParams

__all__ = ["SUMMARY_KEYS", "summary"]

SUMMARY_KEYS = ("rmse", "ssim", "precision", "recall", "f1", "notes")


def summary(
    originals: np.ndarray, reconstructions: np.ndarray, *, params: SpectrogramParams
) -> dict[str, float | int]:
    """RMSE, SSIM and harmonic precision / recall / F1 of reconstructions against their originals.

    Parameters
    ----------
    originals, reconstructions : np.ndarray [shape=(B, n_mels, frames) or (n_mels, frames)], unit scale
        [0, 1] of the contract ``params``; memory-mapped arrays are fine.
    params : the spectrogram contract the spectrograms were made with

    Returns
    -------
    dict with exactly the keys of :data:`SUMMARY_KEYS`:

    - "rmse": per-note RMSE on the unit scale, mean over notes (:func:`synth.metrics.rmse`);
    - "ssim": per-note scikit-image SSIM, data_range 1, 7 x 7 window, mean over notes
      (:func:`synth.metrics.ssim`);
    - "precision", "recall", "f1": the paper's harmonic scores with the defaults of
      :mod:`synth.metrics.harmonic` (30 dB relative peak threshold, 3 % match tolerance, band-centre
      frequencies, silent original frames skipped), per note and then averaged over the notes whose
      original has a peak (NaN if none has);
    - "notes": the number of notes measured (all of them; RMSE and SSIM average over all).
    """
    rmse = rmse_per_note(originals, reconstructions)
    structural = ssim_per_note(originals, reconstructions)
    harmonic = harmonic_scores(originals, reconstructions, params=params)
    return {
        "rmse": float(np.mean(rmse)),
        "ssim": float(np.mean(structural)),
        "precision": harmonic["precision"],
        "recall": harmonic["recall"],
        "f1": harmonic["f1"],
        "notes": int(rmse.shape[0]),
    }
