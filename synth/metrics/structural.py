"""Structural similarity (SSIM) between normalised spectrograms.

Implementation, used everywhere in melsynth: :func:`skimage.metrics.structural_similarity` of scikit-image
with ``data_range=1.0`` (the contract's unit scale) and its defaults otherwise: a 7 x 7 uniform window,
K1 = 0.01, K2 = 0.03, sample covariance, the mean SSIM map taken away from a 3-bin border. The spectrogram is
treated as a grey-scale image of n_mels x frames (both axes at least 7).
"""

from __future__ import annotations

import numpy as np

from synth.errors import ParameterError
from synth.metrics._check import as_note_batches

__all__ = ["ssim", "ssim_per_note", "SSIM_WINDOW"]

SSIM_WINDOW = 7


def ssim_per_note(original: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """SSIM of each note (scikit-image, data_range 1, default 7 x 7 window).

    Parameters
    ----------
    original, reconstruction : np.ndarray [shape=(n_mels, frames) or (B, n_mels, frames)], values in [0, 1],
        n_mels >= 7 and frames >= 7.

    Returns
    -------
    np.ndarray [shape=(B,), float64], each in [-1, 1] (1 for identical notes).
    """
    from skimage.metrics import structural_similarity

    a, b = as_note_batches(original, reconstruction)
    if min(a.shape[1:]) < SSIM_WINDOW:
        raise ParameterError(f"SSIM needs at least {SSIM_WINDOW} x {SSIM_WINDOW} bins, got {a.shape[1:]}")
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        out[i] = structural_similarity(
            np.asarray(a[i], dtype=np.float64), np.asarray(b[i], dtype=np.float64), data_range=1.0
        )
    return out


def ssim(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Mean over notes of :func:`ssim_per_note` (the paper's SSIM column)."""
    return float(np.mean(ssim_per_note(original, reconstruction)))
