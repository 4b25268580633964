"""A finished run's test-split metrics: metrics.json, from the best weights, when synth.metrics is available."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from synth.spectrogram import SpectrogramParams
from training.datasets.features import Features
from training.fit.notes import NoteSource
from training.fit.run_folder import json_dump

__all__ = ["write_metrics"]


def write_metrics(
    out: Path, feats: Features, autoencoder: Any, test_rows: np.ndarray, *, source: NoteSource, batch_size: int,
    params: SpectrogramParams, verbose: int, stacklevel: int = 2,
) -> None:
    """Write ``out/metrics.json`` (synth.metrics.summary of ``test_rows`` reconstructed by ``autoencoder``);
    without synth.metrics, a warning (``stacklevel`` counted from the caller) instead."""
    try:
        from synth.metrics import summary
    except ImportError as exc:
        warnings.warn(f"synth.metrics is not available ({exc}); {out}/metrics.json not written",
                      stacklevel=stacklevel + 1)
        return
    ds = source.dataset(test_rows, batch_size=batch_size).map(lambda a, b: (a,))  # (a,): a is no (x, y, w)
    recon = np.asarray(autoencoder.predict(ds, verbose=0), dtype=np.float32)
    originals = np.asarray(feats.x[test_rows], dtype=np.float32)
    result = summary(originals, recon, params=params)
    result = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in dict(result).items()}
    json_dump(out / "metrics.json", dict(result, split="test"))
    if verbose:
        print("melsynth train: test metrics " + ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))
