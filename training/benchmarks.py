"""The benchmarks' parts that need TensorFlow or the training package; the rest is :mod:`synth.benchmarks`.

- :func:`run_training_bench`: training throughput (below);
- :func:`paper_decoder`: Keras against onnxruntime on a paper-size decoder, the baseline of the decode suite
  (:mod:`synth.benchmarks.suites.decode` takes it as ``paper_decoder=``);
- :func:`real_notes`: real notes of a features folder for the inversion suite
  (:mod:`synth.benchmarks.suites.inversion` takes them as ``real_notes=``).

TensorFlow is imported inside the functions that need it, so importing this module costs nothing.

Training throughput: real epochs of ``melsynth train``'s loop, with XLA and without, and in mixed precision
where the device computes it natively, side by side.

For the paper-size default model (no dense layer, 128 x 512 inputs, filters 32/64/128) at batch 16, on a
synthetic NSynth-format set turned into a features folder by the project's own feature code, this runs
:func:`training.fit.fit` itself (tf.data from the memory-mapped features, Adam, MSE, validation after every
epoch, checkpoints) for a few epochs with ``xla="off"`` and with ``xla="on"``, and reads each epoch's time
from the run's history.csv. The first epoch pays for tracing (and XLA compilation) and is reported apart;
the rest are the steady state a long run sees. Per setting it reports:

- ``notes_per_s``: training notes per second over the steady epochs (median epoch time, validation included);
- ``first_epoch_s``: the first epoch (tracing, compilation);
- ``pipeline_notes_per_s`` and ``input_share``: iterating the tf.data pipeline alone over the same epoch, and
  its time as a fraction of a steady epoch's (an upper bound on how much the input could starve the steps:
  the pipeline runs ahead of them, prefetched);
- ``xla_speedup``: steady epoch time without XLA over the time with it (below 1: XLA is slower);
- ``mixed_speedup``: float32's steady epoch time over mixed precision's (``fit(mixed_precision=True)``: bfloat16
  on a CPU with native bfloat16, float16 on a GPU; a third row, only where the device has it).

Usage::

    .venv/bin/python bench/bench_training.py [--quick] [--json]

``run_training_bench(quick=...)`` is the function ``make bench`` and ``melsynth bench`` import.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from synth.spectrogram import SpectrogramParams

__all__ = ["run_training_bench", "paper_decoder", "real_notes"]

BATCH = 16


def _features(root: Path, *, instruments: int) -> Path:
    from training.datasets.compute_features import compute_features
    from training.datasets.synthetic import make_synthetic_dataset

    notes = make_synthetic_dataset(out=root / "nsynth", instruments=instruments)
    return compute_features(notes, out=root / "features", workers=2, progress=False)


def _pipeline_seconds(features: Path) -> tuple[int, float]:
    """(training notes, seconds) of one pass of the fit's own input pipeline over the training split."""
    from training.datasets.features import load_features
    from training.fit.notes import NoteSource, epoch_order

    feats = load_features(features)
    rows = feats.subset("train")
    source = NoteSource(feats.x, params=feats.params)
    for _ in source.dataset(epoch_order(rows, seed=0, epoch=0), batch_size=BATCH):
        pass  # warm-up: thread pools, the in-memory copy
    t0 = time.perf_counter()
    for _ in source.dataset(epoch_order(rows, seed=0, epoch=1), batch_size=BATCH):
        pass
    return len(rows), time.perf_counter() - t0


def _fit_epochs(features: Path, out: Path, *, xla: str, mixed: bool, epochs: int) -> dict[str, Any]:
    from training.fit import FitOptions, fit
    from training.model.config import default_config

    config = default_config().with_schedule(batch_size=BATCH, patience=epochs + 1)
    fit(features=features, config=config, out=out,
        options=FitOptions(max_epochs=epochs, xla=xla, mixed_precision=mixed, verbose=0))
    with (out / "history.csv").open() as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    doc = json.loads((out / "config.json").read_text())
    return {"seconds": seconds, "train_notes": doc["fit"]["train_notes"], "device": doc["fit"]["devices"],
            "xla": doc["fit"]["xla"], "precision": doc["fit"]["precision"]}


def run_training_bench(*, quick: bool) -> dict[str, Any]:
    """Measure ``melsynth train``'s epochs with XLA off and on; return a JSON-ready dict.

    ``quick``: 80 notes (64 training), two epochs, XLA off only (about a minute on 2 cores); otherwise 1280
    notes (1024 training, the size of the SoundFont set's 1020: 64 steps an epoch, so an epoch's fixed costs,
    validation and checkpoint, weigh as in a real run), three epochs each with XLA off and on, and in mixed
    precision where the device has it (about 8 minutes on this project's 2-core CPU, 2026-12-02). At 256
    training notes (16 steps) this bench read 33.1 notes/s without XLA.
    """
    import os

    import tensorflow as tf

    from training.devices import why_no_bfloat16

    gpus = len(tf.config.list_physical_devices("GPU"))
    instruments, epochs, settings = (16, 2, [("off", False)]) if quick else (256, 3, [("off", False), ("on", False)])
    if not quick and (gpus or not why_no_bfloat16()):
        settings.append(("off", True))  # mixed precision where the device has it natively
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        features = _features(Path(tmp), instruments=instruments)
        train_notes, pipeline = _pipeline_seconds(features)
        for xla, mixed in settings:
            got = _fit_epochs(features, Path(tmp) / f"run-xla-{xla}-mixed-{mixed}", xla=xla, mixed=mixed,
                              epochs=epochs)
            steady = statistics.median(got["seconds"][1:])
            rows.append({
                "device": got["device"], "xla": got["xla"], "precision": got["precision"],
                "train_notes": got["train_notes"], "batch": BATCH,
                "epochs_timed": len(got["seconds"]) - 1, "first_epoch_s": round(got["seconds"][0], 2),
                "epoch_s": round(steady, 2), "notes_per_s": round(got["train_notes"] / steady, 1),
                "step_ms": round(1000 * steady / -(-got["train_notes"] // BATCH), 1),
                "pipeline_notes_per_s": round(train_notes / pipeline, 1),
                "input_share": round(pipeline / steady, 4),
            })
    for row in rows[1:]:  # against the first row: float32 without XLA
        key = "xla_speedup" if row["xla"] else "mixed_speedup"
        row[key] = round(rows[0]["epoch_s"] / row["epoch_s"], 2)
    return {
        "model": f"no_dense (default), 128 x 512 input, filters 32/64/128, batch {BATCH}",
        "measured": "melsynth train's own loop (training.fit.fit); steady epochs after the first, validation included",
        "quick": quick,
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "results": rows,
    }


def paper_decoder(*, quick: bool) -> dict:
    """Keras vs onnxruntime on a paper-size decoder (imports TensorFlow).

    Training's default config (the paper's best variant), with the weights of runs/default (under the
    checkout's root, :data:`synth.benchmarks.common.REPO`) when that run has any, random ones otherwise
    (timing does not depend on the weights); exported with tf2onnx like ``melsynth export`` does, then timed
    in Keras (a tf.function call, the fastest Keras path, and ``predict_on_batch``) and in onnxruntime on the
    same graph (CPU; CUDA when usable).
    """
    import onnxruntime as ort
    import tensorflow as tf

    from synth.benchmarks.common import REPO
    from synth.benchmarks.decode import time_calls
    from training.model.config import default_config
    from training.model.families import build_models
    from training.onnx_convert import keras_to_onnx

    params = SpectrogramParams()
    config = default_config()
    source = "random initial weights (runs/default has none yet)"
    decoder = None
    run_dir = REPO / "runs" / "default"
    if (run_dir / "best.weights.h5").exists():
        try:
            from training.run import load_run

            _, _, decoder = load_run(run_dir).models()
            source = "the weights of runs/default"
        except Exception as exc:  # a run still being written: fall back to fresh weights, and say so
            source = f"random initial weights (runs/default could not be loaded: {type(exc).__name__})"
    if decoder is None:
        _, _, decoder = build_models(config, params=params)
    latent_shape = tuple(int(d) for d in decoder.input_shape[1:])
    onnx_bytes = keras_to_onnx(decoder, input_name="latent", input_shape=latent_shape, output_name="mel")
    runs = 20 if quick else 100
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1, *latent_shape)).astype(np.float32)
    call = tf.function(lambda x: decoder(x, training=False))
    keras_t = time_calls(lambda: call(z).numpy(), runs=runs)
    eager_t = time_calls(lambda: decoder.predict_on_batch(z), runs=max(5, runs // 4))
    out = {
        "paper_decoder": "training's default config (the paper's best, no dense layer), "
                         f"latent {latent_shape}, {decoder.count_params()} parameters, {source}",
        "paper_keras_ms_p50": keras_t["p50"], "paper_keras_ms_p99": keras_t["p99"],
        "paper_keras_predict_on_batch_ms_p50": eager_t["p50"],
    }
    providers = ["CPUExecutionProvider"]
    sess = ort.InferenceSession(onnx_bytes, providers=providers)
    ort_t = time_calls(lambda: sess.run(None, {"latent": z}), runs=runs)
    out.update({"paper_ort_cpu_ms_p50": ort_t["p50"], "paper_ort_cpu_ms_p99": ort_t["p99"],
                "paper_ort_speedup_vs_keras": keras_t["p50"] / ort_t["p50"]})
    if "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            gpu = ort.InferenceSession(onnx_bytes, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            if "CUDAExecutionProvider" in gpu.get_providers():
                t = time_calls(lambda: gpu.run(None, {"latent": z}), runs=runs)
                out.update({"paper_ort_cuda_ms_p50": t["p50"], "paper_ort_cuda_ms_p99": t["p99"]})
        except Exception as exc:  # no usable GPU: the CPU figures stand alone
            out["paper_ort_cuda"] = f"not usable: {type(exc).__name__}"
    return out


def real_notes(
    features: Path, audio_dir: Path | None, *, params: SpectrogramParams, count: int
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """Up to ``count`` notes of a features folder's test split, evenly spread, for the inversion suite:
    (their log-mels, to time; [(audio, log-mel)] of those whose WAV is in ``audio_dir``'s ``audio/``, to
    score). The features must have been computed with ``params``."""
    from training.datasets.features import load_features

    features = Path(features)
    feats = load_features(features, verify=False)
    params.require_equal(feats.params, what=f"features folder {features}")
    rows = feats.subset("test")
    rows = rows[np.linspace(0, rows.size - 1, min(count, rows.size)).astype(int)]
    mels = [np.asarray(feats.x[i], dtype=np.float32) for i in rows]
    scored = []
    if audio_dir is not None:
        import soundfile as sf

        for i, mel in zip(rows, mels, strict=True):
            path = Path(audio_dir) / "audio" / f"{feats.rows[i]['note_str']}.wav"
            if path.exists():
                y, sr = sf.read(path, dtype="float32")
                if sr == params.sample_rate and np.abs(y).max() > 0:
                    scored.append((y, mel))
    return mels, scored


def _markdown(report: dict[str, Any]) -> str:
    cols = ["device", "xla", "precision", "train_notes", "batch", "epochs_timed", "first_epoch_s", "epoch_s",
            "notes_per_s", "step_ms", "pipeline_notes_per_s", "input_share", "xla_speedup", "mixed_speedup"]
    lines = [
        f"Training throughput: {report['model']}; TensorFlow {report['tensorflow']}, "
        f"{report['cpu_count']} CPUs{' (quick)' if report['quick'] else ''}; {report['measured']}",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for row in report["results"]:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The training benchmark's command line (bench/bench_training.py)."""
    parser = argparse.ArgumentParser(description="Benchmark of training: real epochs of melsynth train's loop, "
                                                 "with XLA and without, side by side.")
    parser.add_argument("--quick", action="store_true", help="small run (about a minute)")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    args = parser.parse_args(argv)
    report = run_training_bench(quick=args.quick)
    print(json.dumps(report, indent=2) if args.json else _markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
