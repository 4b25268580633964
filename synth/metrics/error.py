"""Root mean squared error between normalised spectrograms."""

from __future__ import annotations

import numpy as np

from synth.metrics._check import as_note_batches

__all__ = ["rmse", "rmse_per_note"]


def rmse_per_note(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """RMSE of each note on the unit scale.

    Parameters
    ----------
    original, reconstruction : np.ndarray [shape=(n_mels, frames) or (B, n_mels, frames)], values in [0, 1]

    Returns
    -------
    np.ndarray [shape=(B,), float64]
        ``sqrt(mean((original - reconstruction)**2))`` over the bins of each note (B = 1 for one note).
    """
    a, b = as_note_batches(original, reconstruction)
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        diff = np.asarray(a[i], dtype=np.float64) - np.asarray(b[i], dtype=np.float64)
        out[i] = np.sqrt(np.mean(diff * diff))
    return out


def rmse(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """RMSE per note on the unit scale, averaged over notes (the paper's RMSE column).

    The mean of per-note RMSEs, not the RMSE of the pooled bins: each note weighs the same, as every note
    of the test split has the same shape anyway. Shapes as in :func:`rmse_per_note`.
    """
    return float(np.mean(rmse_per_note(original, reconstruction)))
