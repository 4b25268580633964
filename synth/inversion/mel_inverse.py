"""Mel (unit scale) -> linear STFT magnitude, by a precomputed pseudo-inverse of the contract's filterbank.

The mel filterbank maps 513 linear power bins to 128 mel bands, so the inverse is underdetermined. The
Moore-Penrose pseudo-inverse picks the minimum-norm linear power spectrum that reproduces the mel power
exactly; negative values (where neighbouring bands disagree) are clipped at 0. librosa's ``mel_to_stft``
solves the non-negative least-squares problem instead and lands on the same result at normal levels
(../shared/REFERENCE.md), at ~500x the cost (~1 ms a frame against ~2 us), so the pseudo-inverse is what
the real-time path uses.

The inverse works on *power*: the unit scale is log mel power, so ``unit_to_power`` comes first, then the
pseudo-inverse, the clip and a square root.
"""

from __future__ import annotations

import functools

import numpy as np

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams, mel_basis

__all__ = ["mel_pseudo_inverse", "mel_to_magnitude", "sanitize_unit", "unit_to_mel_power"]


def sanitize_unit(mel_frame: np.ndarray, *, out: np.ndarray) -> np.ndarray:
    """Copy a unit-scale frame into ``out`` with NaN mapped to 0 and everything clipped to [0, 1].

    The streaming inverters carry state from frame to frame: one NaN from a decoder would otherwise
    poison every later frame of the voice (and an out-of-range value would index past a lookup table).
    """
    np.fmax(mel_frame, 0.0, out=out)  # fmax/fmin return the non-NaN operand: NaN -> 0, no allocation
    np.fmin(out, 1.0, out=out)
    return out


@functools.lru_cache(maxsize=8)
def _pinv_cached(params: SpectrogramParams) -> np.ndarray:
    basis = mel_basis(params=params).astype(np.float64)
    pinv = np.linalg.pinv(basis).astype(np.float32)
    pinv.setflags(write=False)
    return pinv


def mel_pseudo_inverse(*, params: SpectrogramParams) -> np.ndarray:
    """Pseudo-inverse of ``mel_basis(params=params)``, read-only and cached.

    Returns
    -------
    np.ndarray [shape=(n_bins, n_mels), dtype=float32]
    """
    return _pinv_cached(params)


def unit_to_mel_power(
    mel: np.ndarray, *, params: SpectrogramParams, out: np.ndarray | None = None
) -> np.ndarray:
    """Unit-scale mel -> mel power, float32 (``10 ** (db / 10)``), optionally into ``out`` (which may be
    ``mel`` itself): the allocation-free float32 form of :func:`synth.spectrogram.unit_to_power`, for the
    streaming inverters.

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, ...) values in [0, 1]]
    out : np.ndarray [same shape, float32], optional; reused when given (no allocation)
    """
    scale = np.float32((params.db_max - params.db_min) * np.log(10.0) / 10.0)
    offset = np.float32(params.db_min * np.log(10.0) / 10.0)
    if out is None:
        out = np.empty(np.shape(mel), dtype=np.float32)
    np.multiply(mel, scale, out=out)
    out += offset
    np.exp(out, out=out)
    return out


def mel_to_magnitude(
    mel: np.ndarray, *, params: SpectrogramParams, out: np.ndarray | None = None
) -> np.ndarray:
    """Linear STFT magnitude estimated from a unit-scale mel spectrogram or a single mel frame.

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels,) or (n_mels, frames), values in [0, 1]]
    out : np.ndarray [shape=(n_bins,) or (n_bins, frames), float32], optional output buffer.
        A single frame with ``out`` given allocates only the small mel-power temporary.

    Returns
    -------
    np.ndarray [shape=(n_bins,) or (n_bins, frames), dtype=float32, non-negative]
        ``sqrt(max(pinv(mel_basis) @ mel_power, 0))``.
    """
    mel = np.asarray(mel)
    if mel.ndim not in (1, 2) or mel.shape[0] != params.n_mels:
        raise ParameterError(
            f"mel_to_magnitude: expected shape ({params.n_mels},) or ({params.n_mels}, frames), "
            f"got {mel.shape}"
        )
    pinv = mel_pseudo_inverse(params=params)
    power = unit_to_mel_power(mel, params=params)
    if out is None:
        out = np.empty((params.n_bins,) + mel.shape[1:], dtype=np.float32)
    np.matmul(pinv, power, out=out)
    np.maximum(out, 0.0, out=out)
    np.sqrt(out, out=out)
    return out
