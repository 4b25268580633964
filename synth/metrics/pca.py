"""PCA of the training notes: the linear baseline every autoencoder of this project is measured against.

A :class:`PCABaseline` is fitted on the flattened unit-scale log-mels of a training split, read a batch at a
time (:func:`fit_pca_streamed`: the eigenvectors of the notes' Gram matrix, or a randomized range finder for
many notes) and reconstructs a note by projecting it onto the first ``k`` principal directions. With ``k``
equal to the autoencoder's latent size (or the number of training notes, if smaller) it is the best linear
code of that size for the training notes; an autoencoder that does not beat it on unseen notes has learnt
nothing a projection could not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError

__all__ = ["PCABaseline", "fit_pca", "fit_pca_streamed", "pca_component_counts", "BATCH_NOTES", "GRAM_NOTES",
           "POWER_ITERATIONS"]

#: Notes read at once while fitting: 128 notes of 128 x 512 values are 64 MB as float64.
BATCH_NOTES = 128
#: Up to this many training notes the PCA is exact, from their n x n Gram matrix (float64: 128 MB at 4096,
#: and as much again for its eigenvectors); beyond, a randomized range finder whose memory does not grow with n.
GRAM_NOTES = 4096
#: Power iterations of the range finder (scikit-learn's randomized_svd uses 4 to 7): each is two more passes.
POWER_ITERATIONS = 4
#: Extra random directions the range finder keeps beyond k (Halko et al.'s p).
_OVERSAMPLE = 16
#: A Gram eigenvalue below this fraction of the largest is rounding (float64 sums over 65,536 values), not
#: variance: its direction is taken as no direction of the notes (see _gram_directions).
_NULL_VARIANCE = 1e-10


@dataclasses.dataclass(frozen=True)
class PCABaseline:
    """The mean and the first ``k`` principal directions of a set of notes.

    Attributes
    ----------
    mean : np.ndarray [shape=(n_mels * frames,), float32]
    components : np.ndarray [shape=(k, n_mels * frames), float32], orthonormal rows, in order of variance
    shape : (n_mels, frames) of one note
    notes : how many training notes it was fitted on
    variances : np.ndarray [shape=(k,), float64] or None: the training notes' summed squared deviation along
        each direction (None when not measured)
    total_variance : their summed squared deviation from the mean, over every direction (None: not measured)
    """

    mean: np.ndarray
    components: np.ndarray
    shape: tuple[int, int]
    notes: int
    variances: np.ndarray | None = None
    total_variance: float | None = None

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    @property
    def explained_variance(self) -> float:
        """The fraction of the training notes' variance the ``k`` directions hold (1.0 for notes that do not
        vary; NaN when the fit did not measure it)."""
        if self.variances is None or self.total_variance is None:
            return float("nan")
        if self.total_variance <= 0:
            return 1.0
        return float(min(np.sum(self.variances) / self.total_variance, 1.0))

    def truncate(self, k: int) -> PCABaseline:
        """The same fit with only the first ``k`` directions (0: the mean note alone, whatever the input)."""
        if not 0 <= k <= self.k:
            raise ParameterError(f"PCA: cannot keep {k} components of {self.k}")
        variances = None if self.variances is None else self.variances[:k]
        return dataclasses.replace(self, components=self.components[:k], variances=variances)

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


def fit_pca(x: Any, *, components: int, name: str = "training notes", batch_notes: int | None = None,
            gram_notes: int | None = None, seed: int = 0, power_iterations: int | None = None) -> PCABaseline:
    """Fit a PCA with ``components`` directions to notes ``x``, reading them a batch at a time.

    Parameters
    ----------
    x : notes [shape=(N, n_mels, frames)], unit scale: an array, a memory map or anything indexed by a slice
        like one (a sharded features array): only :data:`BATCH_NOTES` of them are read at once
    components : k, at most N (the rank of N centred notes is at most N - 1, so the N-th direction, if kept,
        carries no variance of the training notes)
    name : what ``x`` is, for error messages
    batch_notes, gram_notes, seed, power_iterations : see :func:`fit_pca_streamed`

    Raises
    ------
    DataError if there are fewer than 2 notes or any value is not finite; ParameterError for a bad k.
    """
    if not hasattr(x, "shape") or not hasattr(x, "__getitem__"):
        x = np.asarray(x)
    if len(x.shape) != 3:
        raise ParameterError(f"PCA of {name}: expected (N, n_mels, frames), got shape {tuple(x.shape)}")
    return fit_pca_streamed(lambda part: x[part], int(x.shape[0]), shape=tuple(x.shape[1:]), components=components,
                            name=name, batch_notes=batch_notes, gram_notes=gram_notes, seed=seed,
                            power_iterations=power_iterations)


def fit_pca_streamed(notes: Callable[[slice], np.ndarray], n: int, *, shape: tuple[int, int], components: int,
                     name: str = "training notes", batch_notes: int | None = None, gram_notes: int | None = None,
                     seed: int = 0, power_iterations: int | None = None) -> PCABaseline:
    """Fit a PCA with ``components`` directions to the ``n`` notes that ``notes(slice)`` reads, a batch at a time.

    The notes are never held together: a first pass takes their mean; then, for ``n`` up to ``gram_notes``
    (default :data:`GRAM_NOTES`), the centred notes' Gram matrix (n x n, float64) is accumulated block by
    block, its eigenvectors give the principal directions exactly (those of the thin SVD, up to sign) and a
    last pass projects the notes on them; beyond, a randomized range finder (Halko et al. 2011) with
    :data:`POWER_ITERATIONS` power iterations over streamed batches, whose memory does not grow with ``n``.
    Besides the (k, D) directions it returns, it holds ``batch_notes`` (default :data:`BATCH_NOTES`) notes
    twice, and the Gram matrix or the range finder's two (k + 16, D) bases.

    Parameters
    ----------
    notes : ``notes(slice(a, b))`` -> notes a..b-1 [shape=(b - a, *shape)], unit scale; called several times
        per batch (once per pass), so it must give the same notes each time
    n : how many notes
    shape : (n_mels, frames) of one note
    components, name : as in :func:`fit_pca`
    seed : of the random directions (the range finder's, and those completing a basis the notes do not span)
    power_iterations : of the range finder (default :data:`POWER_ITERATIONS`); each is two more passes

    Raises
    ------
    DataError if there are fewer than 2 notes, a batch has the wrong shape or any value is not finite;
    ParameterError for a bad k or batch size.
    """
    if n < 2:
        raise DataError(f"PCA of {name}: needs at least 2 notes to fit, got {n}")
    dims = int(np.prod(shape))
    if not isinstance(components, int) or isinstance(components, bool) or not 1 <= components <= min(n, dims):
        raise ParameterError(f"PCA of {name}: components must be an int in 1..{min(n, dims)} (the notes, and the "
                             f"values of a note), got {components!r}")
    batch_notes = BATCH_NOTES if batch_notes is None else batch_notes
    gram_notes = GRAM_NOTES if gram_notes is None else gram_notes
    power_iterations = POWER_ITERATIONS if power_iterations is None else power_iterations
    if not isinstance(power_iterations, int) or isinstance(power_iterations, bool) or power_iterations < 0:
        raise ParameterError(f"PCA of {name}: power_iterations must be an int >= 0, got {power_iterations!r}")
    if not isinstance(batch_notes, int) or batch_notes < 1:
        raise ParameterError(f"PCA of {name}: batch_notes must be a positive int, got {batch_notes!r}")
    parts = [slice(start, min(start + batch_notes, n)) for start in range(0, n, batch_notes)]
    shape = (int(shape[0]), int(shape[1]))

    def read(part: slice) -> np.ndarray:
        x = np.asarray(notes(part))
        if x.shape != (part.stop - part.start, *shape):
            raise DataError(f"PCA of {name}: notes {part.start}..{part.stop - 1} came as shape {x.shape}, "
                            f"expected {(part.stop - part.start, *shape)}")
        flat = x.reshape(len(x), dims).astype(np.float64)
        if not np.all(np.isfinite(flat)):
            raise DataError(f"PCA of {name}: NaN or infinite values (notes {part.start}..{part.stop - 1})")
        return flat

    mean = np.zeros(dims, np.float64)
    for part in parts:
        mean += read(part).sum(axis=0)
    mean /= n

    def centred(part: slice) -> np.ndarray:
        flat = read(part)
        flat -= mean
        return flat

    if n <= gram_notes:
        vt, variances, total = _gram_directions(centred, parts, n=n, dims=dims, k=components, seed=seed)
    else:
        vt, variances, total = _range_finder_directions(centred, parts, n=n, dims=dims, k=components, seed=seed,
                                                        power_iterations=power_iterations)
    return PCABaseline(mean=mean.astype(np.float32), components=vt, shape=shape, notes=n, variances=variances,
                       total_variance=total)


def _gram_directions(centred: Callable[[slice], np.ndarray], parts: list[slice], *, n: int, dims: int, k: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The first ``k`` principal directions [shape=(k, D), float32] from the n x n Gram matrix of the centred
    notes: ``X X^T = U S^2 U^T`` gives ``V^T = S^-1 U^T X``, the thin SVD's right singular vectors; with the
    variance along each (S^2) and the total (the Gram matrix's trace)."""
    gram = np.empty((n, n), np.float64)
    for i, a in enumerate(parts):
        xa = centred(a)
        gram[a, a] = xa @ xa.T
        for b in parts[i + 1:]:
            # Each pair of batches once (the Gram matrix is symmetric): every batch is read len(parts) / 2
            # times on average, the price of never holding more than two of them.
            block = xa @ centred(b).T
            gram[a, b] = block
            gram[b, a] = block.T
        del xa
    total = float(np.trace(gram))
    values, vectors = np.linalg.eigh(gram)
    del gram
    values, vectors = values[::-1][:k], np.ascontiguousarray(vectors[:, ::-1][:, :k])
    # Directions of (numerically) no variance -- the n-th of n centred notes, or more when notes repeat --
    # cannot be recovered as S^-1 U^T X (0 / 0): they are completed below as any orthonormal directions,
    # which is all the thin SVD gives there too.
    kept = int(np.count_nonzero(values > max(float(values[0]), 0.0) * _NULL_VARIANCE))
    scale = vectors[:, :kept] / np.sqrt(values[:kept])
    vt = np.zeros((kept, dims), np.float64)
    for part in parts:
        vt += scale[part].T @ centred(part)
    variances = np.concatenate([values[:kept], np.zeros(k - kept)])
    return _completed(vt, k, seed=seed), variances, total


def _range_finder_directions(centred: Callable[[slice], np.ndarray], parts: list[slice], *, n: int, dims: int,
                             k: int, seed: int, power_iterations: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The first ``k`` principal directions [shape=(k, D), float32] by a randomized range finder with power
    iterations over streamed batches: each pass adds ``X_b^T (X_b Q)`` batch by batch, so nothing of size n is
    held; with the variance along each and the total."""
    width = min(k + _OVERSAMPLE, n, dims)
    rng = np.random.default_rng(seed)
    # float32 bases: the range finder is an approximation to a subspace, not a sum where rounding piles up;
    # the small (width x width) problem at the end is float64.
    y = np.zeros((dims, width), np.float32)
    total = 0.0
    for part in parts:
        xb = centred(part)
        total += float(np.einsum("ij,ij->", xb, xb))
        y += xb.T.astype(np.float32) @ rng.standard_normal((part.stop - part.start, width), np.float32)
    del xb
    for _ in range(power_iterations):
        q = np.linalg.qr(y)[0]
        y[...] = 0.0
        for part in parts:
            xb = centred(part).astype(np.float32)
            y += xb.T @ (xb @ q)
        del q
    q = np.linalg.qr(y)[0]
    del y
    small = np.zeros((width, width), np.float64)
    for part in parts:
        z = (centred(part).astype(np.float32) @ q).astype(np.float64)
        small += z.T @ z
    values, w = np.linalg.eigh(small)
    # Q W: orthonormal columns (Q's are, W is orthogonal), in order of the variance along them.
    vt = np.ascontiguousarray((q @ w[:, ::-1][:, :k].astype(np.float32)).T)
    return vt, np.maximum(values[::-1][:k], 0.0), total


def _completed(vt: np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """Orthonormal rows ``vt`` [shape=(r, D), float64] and ``k - r`` more orthonormal to them (random,
    seeded), as float32 [shape=(k, D)]."""
    missing = k - len(vt)
    if missing > 0:
        extra = np.random.default_rng(seed).standard_normal((missing, vt.shape[1]))
        for _ in range(2):  # twice: one Gram-Schmidt pass leaves rounding error along vt
            extra -= (extra @ vt.T) @ vt
            extra = np.linalg.qr(extra.T)[0].T
        vt = np.concatenate([vt, extra])
    return np.ascontiguousarray(vt, dtype=np.float32)


def pca_component_counts(*, latent_size: int, training_notes: int, small: int = 128) -> tuple[int, ...]:
    """The PCA sizes an autoencoder is compared with: k = min(latent size, training notes), and ``small``
    (when smaller than that), largest first."""
    full = min(int(latent_size), int(training_notes))
    return (full, small) if small < full else (full,)
