"""Parity: the ONNX networks must compute what the Keras networks compute, to 1e-4 (unit scale)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from synth.errors import BundleError

__all__ = ["PARITY_TOLERANCE", "max_abs_difference", "check_parity"]

PARITY_TOLERANCE = 1e-4


def max_abs_difference(
    keras_fn: Callable[..., np.ndarray],
    onnx_fn: Callable[..., np.ndarray],
    x: np.ndarray,
    *,
    batch: int = 8,
    keys: np.ndarray | None = None,
) -> float:
    """Largest ``|keras(x) - onnx(x)|`` over a batch ``x`` (run in chunks of ``batch``); with ``keys`` (one
    MIDI key per row, for a pitch-conditioned network) both are called as ``fn(chunk, keys_of_chunk)``."""
    worst = 0.0
    for start in range(0, len(x), batch):
        chunk = np.ascontiguousarray(x[start : start + batch], dtype=np.float32)
        extra = () if keys is None else (np.asarray(keys[start : start + batch], np.int32).reshape(-1, 1),)
        a = np.asarray(keras_fn(chunk, *extra), dtype=np.float64)
        b = np.asarray(onnx_fn(chunk, *extra), dtype=np.float64)
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
    pitch: np.ndarray | None = None,
) -> dict[str, Any]:
    """Compare Keras and ONNX encoder and decoder on real notes, their latents, and random inputs.

    Parameters
    ----------
    keras_encoder, keras_decoder : Keras models (called with ``training=False``)
    onnx_encoder, onnx_decoder : :class:`synth.bundle.Encoder` / :class:`synth.bundle.Decoder`
    notes : np.ndarray [shape=(N, n_mels, frames)] real unit-scale spectrograms (N >= 1)
    random : number of random spectrograms (uniform [0, 1]) and random latents (Gaussian with the mean and
        spread of the real notes' latents, and some at 3x that spread) to add
    pitch : for pitch-conditioned networks, the MIDI key of each of ``notes`` [shape=(N,)]: notes are encoded
        at their keys, their latents decoded at the keys of other notes (across keys), random inputs at keys
        drawn from these

    Returns the record written into bundle.json; raises :class:`BundleError` when any maximum absolute
    difference exceeds ``tolerance``.
    """
    rng = np.random.default_rng(seed)

    keyed = pitch is not None

    def keras_enc(x: np.ndarray, *keys: np.ndarray) -> np.ndarray:
        return np.asarray(keras_encoder([x, *keys] if keyed else x, training=False))

    def keras_dec(z: np.ndarray, *keys: np.ndarray) -> np.ndarray:
        return np.asarray(keras_decoder([z, *keys] if keyed else z, training=False))

    def onnx_enc(x: np.ndarray, *keys: np.ndarray) -> np.ndarray:
        return onnx_encoder.encode(x, pitch=keys[0] if keyed else None)

    def onnx_dec(z: np.ndarray, *keys: np.ndarray) -> np.ndarray:
        return onnx_decoder.decode(z, pitch=keys[0] if keyed else None)

    notes = np.asarray(notes, dtype=np.float32)
    keys = None if pitch is None else np.asarray(pitch, np.int32).reshape(-1)
    real_latents = np.concatenate([
        keras_enc(notes[i : i + 8], *(() if keys is None else (keys[i : i + 8].reshape(-1, 1),)))
        for i in range(0, len(notes), 8)
    ])
    mean, spread = float(real_latents.mean()), float(real_latents.std()) or 1.0
    random_notes = rng.uniform(0.0, 1.0, (random, *notes.shape[1:])).astype(np.float32)
    # Half at the real latents' spread, half at three times it: the decoder must agree off the data too.
    scale = np.where(np.arange(random) % 2 == 0, 1.0, 3.0).reshape(random, *([1] * (real_latents.ndim - 1)))
    random_latents = (mean + spread * scale * rng.standard_normal((random, *real_latents.shape[1:]))).astype(
        np.float32
    )
    record: dict[str, Any] = {"tolerance": tolerance, "real_notes": int(len(notes)), "random_inputs": random}
    random_keys = None if keys is None else rng.choice(keys, random)
    checks = (
        ("encoder_real", keras_enc, onnx_enc, notes, keys),
        ("encoder_random", keras_enc, onnx_enc, random_notes, random_keys),
        ("decoder_real", keras_dec, onnx_dec, real_latents, None if keys is None else np.roll(keys, 1)),
        ("decoder_random", keras_dec, onnx_dec, random_latents, random_keys),
    )
    for name, kfn, ofn, x, at in checks:
        diff = max_abs_difference(kfn, ofn, x, keys=at)
        record[f"{name}_max_abs"] = diff
        log(f"  parity {name:<15} max |keras - onnx| = {diff:.2e} ({len(x)} inputs)")
    worst = max(record[f"{name}_max_abs"] for name, *_ in checks)
    if keys is not None:
        record["keys"] = sorted({int(k) for k in keys})
    record["max_abs"] = worst
    record["passed"] = bool(worst <= tolerance)
    if not record["passed"]:
        raise BundleError(
            f"parity failed: ONNX differs from Keras by up to {worst:.3g} (tolerance {tolerance:g}); "
            "the bundle was not written"
        )
    return record
