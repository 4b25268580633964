"""Argument checks shared by the metrics (boundary validation, one place)."""

from __future__ import annotations

import numpy as np

from synth.errors import ParameterError

__all__ = ["as_note_batches"]

# Reconstructions from a float32 sigmoid can round a hair outside [0, 1]; anything beyond this is a real error.
_UNIT_SLACK = 1e-5


def as_note_batches(original: np.ndarray, reconstruction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a pair of spectrogram arrays and return them as (B, n_mels, frames) views.

    Parameters
    ----------
    original, reconstruction : np.ndarray [shape=(n_mels, frames) or (B, n_mels, frames)]
        the same shape, real, finite, on the contract's unit scale [0, 1].

    Raises
    ------
    ParameterError
        for different shapes, a wrong number of axes, an empty batch, NaN/Inf or values outside [0, 1].
    """
    pair = []
    for name, x in (("original", original), ("reconstruction", reconstruction)):
        x = np.asarray(x)
        if x.ndim not in (2, 3):
            raise ParameterError(
                f"{name}: expected shape (n_mels, frames) or (B, n_mels, frames), got {x.shape}"
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise ParameterError(f"{name}: expected a floating-point array, got {x.dtype}")
        pair.append(x[None] if x.ndim == 2 else x)
    a, b = pair
    if a.shape != b.shape:
        raise ParameterError(f"original {a.shape} and reconstruction {b.shape} differ in shape")
    if a.shape[0] == 0 or a.shape[1] < 1 or a.shape[2] < 1:
        raise ParameterError(f"no spectrogram to measure (shape {a.shape})")
    for name, x in (("original", a), ("reconstruction", b)):
        # Checked per note so that a memory-mapped batch is not copied whole.
        for i in range(x.shape[0]):
            note = x[i]
            if not np.all(np.isfinite(note)):
                raise ParameterError(f"{name}: note {i} contains NaN or Inf")
            lo, hi = float(note.min()), float(note.max())
            if lo < -_UNIT_SLACK or hi > 1 + _UNIT_SLACK:
                raise ParameterError(
                    f"{name}: note {i} has values in {lo:.4g}..{hi:.4g}, outside the unit scale [0, 1]"
                )
    return a, b
