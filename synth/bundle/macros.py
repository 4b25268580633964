"""Macros: the principal axes of a bundle's latent space, for performers' knobs.

``macros.npz`` holds three arrays (loaded with ``allow_pickle=False``):

- ``mean`` [shape=latent_shape]: the mean latent of the training notes;
- ``components`` [shape=(K, *latent_shape)]: the first K principal directions, orthonormal when flattened;
- ``stds`` [shape=(K,)]: the standard deviation of the training latents along each direction.

A knob value ``w_k`` in standard deviations maps to ``mean + sum_k w_k * stds[k] * components[k]``.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import numpy as np

from synth.bundle.latent_limit import beyond_latent_limit
from synth.errors import BundleError, ParameterError

__all__ = ["Macros", "load_macros", "save_macros", "macros_from_latents", "check_macro_arrays", "MACRO_KEYS"]

MACRO_KEYS = ("mean", "components", "stds")


@dataclasses.dataclass(frozen=True, eq=False)
class Macros:
    """The mean latent, K orthonormal principal components and their standard deviations (read-only)."""

    mean: np.ndarray
    components: np.ndarray
    stds: np.ndarray

    @property
    def count(self) -> int:
        """Number of components K."""
        return int(self.components.shape[0])

    def latent(self, weights: np.ndarray) -> np.ndarray:
        """Latent at ``weights`` standard deviations along the first ``len(weights)`` components.

        Parameters
        ----------
        weights : np.ndarray [shape=(k,), k <= K]

        Returns
        -------
        np.ndarray [shape=latent_shape, dtype=float32]
        """
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.size > self.count:
            raise ParameterError(f"macros: {w.size} weights given, the bundle has {self.count} components")
        scaled = w * self.stds[: w.size]
        flat = self.components[: w.size].reshape(w.size, -1)
        out = self.mean.reshape(-1) + scaled @ flat
        return out.reshape(self.mean.shape).astype(np.float32)

    def coordinates(self, latent: np.ndarray) -> np.ndarray:
        """Position of ``latent`` along each component, in standard deviations.

        Returns
        -------
        np.ndarray [shape=(K,), dtype=float64]
        """
        z = np.asarray(latent, dtype=np.float64).reshape(-1)
        if z.size != self.mean.size:
            raise ParameterError(f"macros: latent has {z.size} values, expected {self.mean.size}")
        proj = self.components.reshape(self.count, -1) @ (z - self.mean.reshape(-1))
        return proj / np.where(self.stds > 0, self.stds, 1.0)


def check_macro_arrays(arrays: dict[str, np.ndarray], *, latent_shape: tuple[int, ...], source: str) -> Macros:
    """The three arrays as read-only float32 :class:`Macros`, checked against ``latent_shape`` (BundleError)."""
    missing = [k for k in MACRO_KEYS if k not in arrays]
    if missing:
        raise BundleError(f"{source}: missing arrays {missing}")
    mean, components, stds = (np.asarray(arrays[k]) for k in MACRO_KEYS)
    for key, arr in zip(MACRO_KEYS, (mean, components, stds), strict=True):
        if not np.issubdtype(arr.dtype, np.floating):
            raise BundleError(f"{source}: {key} must be floating point, got {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise BundleError(f"{source}: {key} contains NaN or Inf")
    if mean.shape != latent_shape:
        raise BundleError(f"{source}: mean has shape {mean.shape}, expected latent shape {latent_shape}")
    if components.ndim != 1 + len(latent_shape) or components.shape[1:] != latent_shape:
        raise BundleError(
            f"{source}: components have shape {components.shape}, expected (K, {', '.join(map(str, latent_shape))})"
        )
    k = components.shape[0]
    if k < 1:
        raise BundleError(f"{source}: no components")
    if stds.shape != (k,):
        raise BundleError(f"{source}: stds must be {k} values (one per component), got shape {stds.shape}")
    if np.any(stds < 0):
        i = int(np.argmax(stds < 0))
        raise BundleError(f"{source}: stds[{i}] is {float(stds[i]):g}: a standard deviation is never negative")
    for key, arr in (("mean", mean), ("stds", stds)):  # the base latent, and a macro's step per unit
        beyond = beyond_latent_limit(arr)
        if beyond:
            raise BundleError(f"{source}: {key} {beyond}")
    flat = components.reshape(k, -1).astype(np.float64)
    gram = flat @ flat.T
    err = float(np.max(np.abs(gram - np.eye(k))))
    if err > 1e-3:
        raise BundleError(f"{source}: components are not orthonormal (max |C C^T - I| = {err:.2g})")
    out = []
    for arr in (mean, components, stds):
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        arr.setflags(write=False)
        out.append(arr)
    return Macros(*out)


MAX_MACROS = 256  # principal directions a bundle may carry (exports write 16)


def _check_members(path: Path, *, latent_size: int) -> None:
    """Refuse, before reading any array, a member that declares more data than a bundle's macros can hold or
    than the member holds: a 1.1 MB file declaring 10^12 floats once ended in a 4 TB allocation."""
    import zipfile

    limit = (MAX_MACROS + 1) * latent_size * 8 + MAX_MACROS * 8 + 4096
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a zip archive ({exc})") from None
    with archive:
        for key in MACRO_KEYS:
            try:
                info = archive.getinfo(f"{key}.npy")
            except KeyError:
                continue  # reported as missing by the array checks
            if info.file_size > limit:
                raise BundleError(f"{path}: {key} is {info.file_size:,} bytes, more than macros of a latent of "
                                  f"{latent_size} values can be ({limit:,})")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
                declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size:
                raise BundleError(f"{path}: {key} declares {shape} {dtype} ({declared:,} bytes) in a member of "
                                  f"{info.file_size:,} bytes")


def load_macros(path: str | Path, *, latent_shape: tuple[int, ...]) -> Macros:
    """Load and check ``macros.npz`` (no pickle). Raises :class:`BundleError` on any problem."""
    path = Path(path)
    try:
        _check_members(path, latent_size=math.prod(latent_shape))
        with np.load(path, allow_pickle=False) as npz:
            # Only the three arrays: an extra member (a deflated gigabyte) is never read.
            arrays = {k: npz[k] for k in MACRO_KEYS if k in npz.files}
    except FileNotFoundError:
        raise BundleError(f"{path}: macros file is missing") from None
    except (OSError, ValueError, EOFError) as exc:
        # ValueError covers both a corrupt archive and an object array that would need pickle.
        raise BundleError(f"{path}: not a readable pickle-free .npz ({exc})") from None
    return check_macro_arrays(arrays, latent_shape=tuple(latent_shape), source=str(path))


def save_macros(path: str | Path, macros_or_arrays: Macros | dict[str, np.ndarray]) -> None:
    """Write ``macros.npz`` (uncompressed, float32) atomically; the arrays are checked first."""
    from synth.atomic import atomic_write_bytes

    if isinstance(macros_or_arrays, Macros):
        arrays = {k: getattr(macros_or_arrays, k) for k in MACRO_KEYS}
    else:
        arrays = dict(macros_or_arrays)
    checked = check_macro_arrays(arrays, latent_shape=tuple(np.shape(arrays.get("mean", ()))), source=str(path))
    buf = io.BytesIO()
    np.savez(buf, **{k: getattr(checked, k) for k in MACRO_KEYS})
    atomic_write_bytes(path, buf.getvalue())


def macros_from_latents(latents: np.ndarray, *, count: int = 16) -> Macros:
    """PCA of a set of latents: their mean, the first ``count`` principal directions and the standard
    deviation of the latents along each.

    Parameters
    ----------
    latents : np.ndarray [shape=(N, *latent_shape), N >= 2, finite]
    count : number of components K (at most N - 1 and the latent size)

    Returns
    -------
    :class:`Macros` with ``components`` of shape (K, *latent_shape), orthonormal, by decreasing std.
    """
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim < 2 or z.shape[0] < 2:
        raise ParameterError(f"macros: need at least 2 latents of shape (N, ...), got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ParameterError("macros: latents contain NaN or Inf")
    n, shape = z.shape[0], z.shape[1:]
    flat = z.reshape(n, -1)
    mean = flat.mean(axis=0)
    centred = flat - mean
    k = min(count, n - 1, flat.shape[1])
    # The SVD of the (N, N) Gram matrix when N is the smaller side: same directions, much cheaper.
    if n < flat.shape[1]:
        eigval, eigvec = np.linalg.eigh(centred @ centred.T)
        order = np.argsort(eigval)[::-1][:k]
        s = np.sqrt(np.maximum(eigval[order], 0.0))
        directions = (centred.T @ eigvec[:, order]).T
        directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-30)
    else:
        _, s_all, vt = np.linalg.svd(centred, full_matrices=False)
        s, directions = s_all[:k], vt[:k]
    stds = s / np.sqrt(n - 1)
    return check_macro_arrays(
        {
            "mean": mean.reshape(shape),
            "components": directions.reshape(k, *shape),
            "stds": stds,
        },
        latent_shape=tuple(shape),
        source="macros",
    )
