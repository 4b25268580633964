"""Decoder timing: one latent -> one log-mel spectrogram, as the engine's decode worker does it."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["time_calls", "decode_timing"]


def time_calls(fn, *, runs: int, warmup: int = 3) -> dict:
    """Call ``fn()`` ``warmup`` times untimed, then ``runs`` times; milliseconds p50 / p99 / mean / min."""
    for _ in range(warmup):
        fn()
    ms = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        ms[i] = (time.perf_counter() - t0) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean()),
            "min": float(ms.min()), "runs": runs}


def decode_timing(decoder, *, latent_shape, runs: int = 100, seed: int = 0) -> dict:
    """Time ``decoder.decode(z)`` (batch 1, a new random latent each call) -> :func:`time_calls` dict."""
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((runs + 3, 1, *latent_shape)).astype(np.float32)
    it = iter(latents)
    return time_calls(lambda: decoder.decode(next(it)), runs=runs)
