"""A finished run's test-split metrics: metrics.json, from the best weights, when synth.metrics is available.

The test notes stream through the model batch by batch into a :class:`~synth.metrics.summary.MetricsAccumulator`
(no split held whole, twice, as ``predict`` and the originals once were), by a plain ``tf.function`` call of the
model rather than Keras' ``predict``, which like ``fit`` is not for MultiWorkerMirroredStrategy (only the chief
measures, and it needs no other worker for it).
"""

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
        from synth.metrics.summary import MetricsAccumulator
    except ImportError as exc:
        warnings.warn(f"synth.metrics is not available ({exc}); {out}/metrics.json not written",
                      stacklevel=stacklevel + 1)
        return
    import tensorflow as tf

    reconstruct = tf.function(lambda inputs: autoencoder(inputs, training=False), reduce_retracing=True)
    acc = MetricsAccumulator(params=params)
    for inputs, targets in source.dataset(test_rows, batch_size=batch_size):
        acc.add(np.asarray(targets, dtype=np.float32), np.asarray(reconstruct(inputs), dtype=np.float32))
    result = acc.result()
    result = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in dict(result).items()}
    json_dump(out / "metrics.json", dict(result, split="test"))
    if verbose:
        print("melsynth train: test metrics " + ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))
