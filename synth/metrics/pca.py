"""PCA of the training notes: the linear baseline every autoencoder of this project is measured against.

A :class:`PCABaseline` is fitted on the flattened unit-scale log-mels of a training split (numpy's SVD of the
centred data) and reconstructs a note by projecting it onto the first ``k`` principal directions. With ``k``
equal to the autoencoder's latent size (or the number of training notes, if smaller) it is the best linear
code of that size for the training notes; an autoencoder that does not beat it on unseen notes has learnt
nothing a projection could not.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth.errors import DataError, ParameterError

__all__ = ["PCABaseline", "fit_pca", "pca_component_counts"]


@dataclasses.dataclass(frozen=True)
class PCABaseline:
    """The mean and the first ``k`` principal directions of a set of notes.

    Attributes
    ----------
    mean : np.ndarray [shape=(n_mels * frames,), float32]
    components : np.ndarray [shape=(k, n_mels * frames), float32], orthonormal rows, in order of variance
    shape : (n_mels, frames) of one note
    notes : how many training notes it was fitted on
    """

    mean: np.ndarray
    components: np.ndarray
    shape: tuple[int, int]
    notes: int

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    def truncate(self, k: int) -> PCABaseline:
        """The same fit with only the first ``k`` directions (0: the mean note alone, whatever the input)."""
        if not 0 <= k <= self.k:
            raise ParameterError(f"PCA: cannot keep {k} components of {self.k}")
        return dataclasses.replace(self, components=self.components[:k])

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Coefficients [shape=(B, k)] of notes ``x`` [shape=(B, n_mels, frames)]."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or tuple(x.shape[1:]) != self.shape:
            raise ParameterError(f"PCA: expected notes of shape (B, {self.shape[0]}, {self.shape[1]}), got {x.shape}")
        return (x.reshape(len(x), -1) - self.mean) @ self.components.T

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Notes [shape=(B, n_mels, frames)] from coefficients [shape=(B, k)], clipped to the unit scale."""
        flat = self.mean + np.asarray(codes, dtype=np.float32) @ self.components
        return np.clip(flat, 0.0, 1.0).reshape(len(flat), *self.shape)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """``decode(encode(x))``: the projection of ``x`` onto the fitted subspace."""
        return self.decode(self.encode(x))


def fit_pca(x: np.ndarray, *, components: int, name: str = "training notes") -> PCABaseline:
    """Fit a PCA with ``components`` directions to notes ``x``.

    Parameters
    ----------
    x : np.ndarray [shape=(N, n_mels, frames)], unit scale (a memory map is fine: it is read once)
    components : k, at most N (the rank of N centred notes is at most N - 1, so the N-th direction, if kept,
        carries no variance of the training notes)
    name : what ``x`` is, for error messages

    Raises
    ------
    DataError if there are fewer than 2 notes or any value is not finite; ParameterError for a bad k.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ParameterError(f"PCA of {name}: expected (N, n_mels, frames), got shape {x.shape}")
    n = len(x)
    if n < 2:
        raise DataError(f"PCA of {name}: needs at least 2 notes to fit, got {n}")
    if not isinstance(components, int) or isinstance(components, bool) or not 1 <= components <= n:
        raise ParameterError(f"PCA of {name}: components must be an int in 1..{n} (the notes), got {components!r}")
    flat = np.asarray(x, dtype=np.float32).reshape(n, -1)
    if not np.all(np.isfinite(flat)):
        raise DataError(f"PCA of {name}: NaN or infinite values")
    mean = flat.mean(axis=0)
    # The thin SVD of the centred (N, D) data: its right singular vectors are the principal directions.
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return PCABaseline(mean=mean, components=np.ascontiguousarray(vt[:components]), shape=tuple(x.shape[1:]), notes=n)


def pca_component_counts(*, latent_size: int, training_notes: int, small: int = 128) -> tuple[int, ...]:
    """The PCA sizes an autoencoder is compared with: k = min(latent size, training notes), and ``small``
    (when smaller than that), largest first."""
    full = min(int(latent_size), int(training_notes))
    return (full, small) if small < full else (full,)
