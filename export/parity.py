"""Parity: the ONNX networks must compute what the Keras networks compute, to 1e-4 (unit scale)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from synth.errors import BundleError

__all__ = ["PARITY_TOLERANCE", "max_abs_difference", "check_parity"]

PARITY_TOLERANCE = 1e-4


def max_abs_difference(
    keras_fn: Callable[[np.ndarray], np.ndarray],
    onnx_fn: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    batch: int = 8,
) -> float:
    """Largest ``|keras(x) - onnx(x)|`` over a batch ``x`` (run in chunks of ``batch``)."""
    worst = 0.0
    for start in range(0, len(x), batch):
        chunk = np.ascontiguousarray(x[start : start + batch], dtype=np.float32)
        a = np.asarray(keras_fn(chunk), dtype=np.float64)
        b = np.asarray(onnx_fn(chunk), dtype=np.float64)
        if a.shape != b.shape:
            raise BundleError(f"parity: Keras gives shape {a.shape}, ONNX gives {b.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise BundleError("parity: non-finite output")
        worst = max(worst, float(np.max(np.abs(a - b))))
    return worst


def check_parity(
    *,
    keras_encoder: Any,
    keras_decoder: Any,
    onnx_encoder: Any,
    onnx_decoder: Any,
    notes: np.ndarray,
    random: int = 8,
    seed: int = 0,
    tolerance: float = PARITY_TOLERANCE,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Compare Keras and ONNX encoder and decoder on real notes, their latents, and random inputs.

    Parameters
    ----------
    keras_encoder, keras_decoder : Keras models (called with ``training=False``)
    onnx_encoder, onnx_decoder : :class:`synth.bundle.Encoder` / :class:`synth.bundle.Decoder`
    notes : np.ndarray [shape=(N, n_mels, frames)] real unit-scale spectrograms (N >= 1)
    random : number of random spectrograms (uniform [0, 1]) and random latents (Gaussian with the mean and
        spread of the real notes' latents, and some at 3x that spread) to add

    Returns the record written into bundle.json; raises :class:`BundleError` when any maximum absolute
    difference exceeds ``tolerance``.
    """
    rng = np.random.default_rng(seed)

    def keras_enc(x: np.ndarray) -> np.ndarray:
        return keras_encoder(x, training=False).numpy()

    def keras_dec(z: np.ndarray) -> np.ndarray:
        return keras_decoder(z, training=False).numpy()

    notes = np.asarray(notes, dtype=np.float32)
    real_latents = np.concatenate([keras_enc(notes[i : i + 8]) for i in range(0, len(notes), 8)])
    mean, spread = float(real_latents.mean()), float(real_latents.std()) or 1.0
    random_notes = rng.uniform(0.0, 1.0, (random, *notes.shape[1:])).astype(np.float32)
    # Half at the real latents' spread, half at three times it: the decoder must agree off the data too.
    scale = np.where(np.arange(random) % 2 == 0, 1.0, 3.0).reshape(random, *([1] * (real_latents.ndim - 1)))
    random_latents = (mean + spread * scale * rng.standard_normal((random, *real_latents.shape[1:]))).astype(
        np.float32
    )
    record: dict[str, Any] = {"tolerance": tolerance, "real_notes": int(len(notes)), "random_inputs": random}
    checks = (
        ("encoder_real", keras_enc, onnx_encoder.encode, notes),
        ("encoder_random", keras_enc, onnx_encoder.encode, random_notes),
        ("decoder_real", keras_dec, onnx_decoder.decode, real_latents),
        ("decoder_random", keras_dec, onnx_decoder.decode, random_latents),
    )
    for name, kfn, ofn, x in checks:
        diff = max_abs_difference(kfn, ofn, x)
        record[f"{name}_max_abs"] = diff
        log(f"  parity {name:<15} max |keras - onnx| = {diff:.2e} ({len(x)} inputs)")
    worst = max(record[f"{name}_max_abs"] for name, *_ in checks)
    record["max_abs"] = worst
    record["passed"] = bool(worst <= tolerance)
    if not record["passed"]:
        raise BundleError(
            f"parity failed: ONNX differs from Keras by up to {worst:.3g} (tolerance {tolerance:g}); "
            "the bundle was not written"
        )
    return record
