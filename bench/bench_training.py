"""Benchmark of training: throughput in notes/s and the input pipeline's share of the step time.

For the paper-size default model (no dense layer, 128 x 512 inputs, filters 32/64/128) on synthetic notes in
a memory-mapped .npy file, through the very pipeline and compile settings of :func:`training.fit.fit`
(tf.data from the memmap, Adam, MSE, XLA on one device), it reports per device (the CPU, and the GPU when
TensorFlow sees one):

- ``notes_per_s``: training notes per wall-clock second over whole epochs after a warm-up epoch (which pays
  for tracing and XLA compilation);
- ``notes_per_cpu_s``: the same per second of process CPU time (all threads). On the shared 2-core machines
  here wall time also counts the time other processes hold the cores, so this is the steadier figure;
- ``pipeline_notes_per_s`` and ``input_share``: iterating the tf.data pipeline alone over the same epoch,
  and its time as a fraction of the training epoch's. The pipeline overlaps the steps (prefetch), so the
  share is an upper bound on how much input could starve the device;
- ``xla_speedup``: (full run only) the epoch time without XLA over the time with it.

Usage::

    .venv/bin/python bench/bench_training.py [--quick] [--json]

``run_training_bench(quick=...)`` is the function ``melsynth bench`` can import.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_training_bench"]


def _synthetic(n: int, n_mels: int, frames: int, seed: int = 0) -> np.ndarray:
    """(n, n_mels, frames) float32 in [0, 1]: decaying harmonic stripes plus a little noise."""
    rng = np.random.default_rng(seed)
    mels = np.arange(n_mels)[:, None]
    t = np.arange(frames)[None, :]
    out = np.empty((n, n_mels, frames), np.float32)
    for i in range(n):
        f0 = rng.integers(3, 12)
        stripes = np.exp(-0.5 * ((mels % (2 * f0) - f0) / 1.5) ** 2)
        out[i] = np.clip(0.8 * stripes * np.exp(-t / rng.uniform(100, 400)) + 0.03 * rng.random((n_mels, frames)), 0, 1)
    return out


def _time_epochs(model: Any, make_ds: Any, epochs: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        model.fit(make_ds(), epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - wall, time.process_time() - cpu


def _bench_device(device: str, x: np.ndarray, *, batch: int, epochs: int, xla_baseline: bool) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from synth.spectrogram import SpectrogramParams
    from training.fit import _make_dataset, epoch_order
    from training.model.build import build_models
    from training.model.config import default_config

    params = SpectrogramParams(n_mels=x.shape[1], frames=x.shape[2])
    rows = np.arange(len(x))
    state = {"epoch": 0}

    def make_ds() -> Any:
        state["epoch"] += 1
        return _make_dataset(x, epoch_order(rows, seed=0, epoch=state["epoch"]), batch_size=batch, params=params)

    result: dict[str, Any] = {"device": device, "notes": len(x), "batch": batch, "epochs": epochs}
    with tf.device(device):
        # The pipeline alone: read every batch of one epoch from the memmap.
        for _ in make_ds():  # warm-up (thread pools, page cache)
            pass
        t0 = time.perf_counter()
        for _ in make_ds():
            pass
        pipeline = time.perf_counter() - t0

        times = {}
        for jit in ((True, False) if xla_baseline else (True,)):
            keras.utils.set_random_seed(0)
            config = default_config().replace(batch_size=batch)
            model, _, _ = build_models(config, params=params)
            model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse", jit_compile=jit)
            model.fit(make_ds(), epochs=1, verbose=0, shuffle=False)  # warm-up: tracing, XLA compilation
            times[jit] = _time_epochs(model, make_ds, epochs)
    wall, cpu = times[True]
    notes = len(x) * epochs
    result.update(
        epoch_s=round(wall / epochs, 3),
        notes_per_s=round(notes / wall, 3),
        notes_per_cpu_s=round(notes / cpu, 3),
        step_ms=round(1000 * wall / (epochs * -(-len(x) // batch)), 1),
        pipeline_notes_per_s=round(len(x) / pipeline, 1),
        input_share=round(pipeline / (wall / epochs), 4),
    )
    if xla_baseline:
        result["xla_speedup"] = round(times[False][0] / wall, 2)
    return result


def run_training_bench(*, quick: bool) -> dict[str, Any]:
    """Measure training throughput on the CPU (and the GPU if visible); return a JSON-ready dict.

    ``quick``: 32 notes in batches of 16, one timed epoch (about a minute on 2 busy cores); otherwise
    128 notes in batches of 64 (the paper's batch), two timed epochs and an XLA-off baseline.
    """
    import os

    import tensorflow as tf

    n, batch, epochs = (32, 16, 1) if quick else (128, 64, 2)
    devices = ["/CPU:0"] + [f"/GPU:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))][:1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.npy"
        np.save(path, _synthetic(n, 128, 512))
        x = np.load(path, mmap_mode="r")
        rows = [_bench_device(d, x, batch=batch, epochs=epochs, xla_baseline=not quick) for d in devices]
        del x
    return {
        "model": "no_dense (default), 128 x 512 input, filters 32/64/128",
        "quick": quick,
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "results": rows,
    }


def _markdown(report: dict[str, Any]) -> str:
    cols = ["device", "notes", "batch", "epoch_s", "notes_per_s", "notes_per_cpu_s", "step_ms",
            "pipeline_notes_per_s", "input_share", "xla_speedup"]
    lines = [
        f"Training throughput: {report['model']}; TensorFlow {report['tensorflow']}, "
        f"{report['cpu_count']} CPUs{' (quick)' if report['quick'] else ''}",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for row in report["results"]:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run (about a minute)")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    args = parser.parse_args(argv)
    report = run_training_bench(quick=args.quick)
    print(json.dumps(report, indent=2) if args.json else _markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
