"""The ablation table of our own variants: each run beside the paper's no_dense and PCA, on the same notes.

One row per run folder: the change from the paper's no_dense (the config fields that differ), the epochs it
trained and why it stopped, the test-split RMSE, SSIM, harmonic precision / recall / F1 (the run's own
metrics.json, written by :func:`training.fit.fit` from the best weights), and the decoder's decode time for
one note through onnxruntime on one thread, in the folded form export writes (the engine's path: every
latent change waits for it). PCA rows
(:mod:`synth.metrics.pca`, fitted on the same training rows) close the table, with the paper's figure.

Everything is read or measured before the file is written, atomically: a missing run folder, a run without
metrics, or runs on different features folders stop with an error naming it, and nothing is written.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_write_text
from synth.errors import DataError, ParameterError
from synth.metrics.paper import PAPER_NO_DENSE

__all__ = ["ablation_rows", "decode_ms", "write_ablation"]

_METRICS = ("rmse", "ssim", "precision", "recall", "f1")


def decode_ms(decoder: Any, *, latent_shape: tuple[int, ...], repeats: int = 20) -> float:
    """Median milliseconds of one decode (batch 1) of the Keras ``decoder`` converted to ONNX, run by
    onnxruntime on the CPU with one intra-op thread."""
    from synth.bundle.runtime import make_session
    from training.onnx_convert import keras_to_onnx

    model = keras_to_onnx(decoder, input_name="latent", input_shape=latent_shape, output_name="log_mel")
    session = make_session(model, name="decoder", providers=["CPUExecutionProvider"], threads=1)
    z = np.random.default_rng(0).uniform(-0.5, 0.5, (1, *latent_shape)).astype(np.float32)
    session.run(None, {"latent": z})  # first-call cost
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {"latent": z})
        times.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(times))


def _change(config: Any) -> str:
    from training.model.config import variant

    paper = variant("no_dense")
    mine, theirs = config.settings_dict(), paper.settings_dict()
    diff = [f"{k}={v}" for k, v in mine.items() if k not in theirs or v != theirs[k]]
    diff += [f"{k}={v}" for k, v in config.schedule.to_dict().items() if v != paper.schedule.to_dict()[k]]
    return ", ".join(diff) if diff else "(the paper's no_dense)"


def ablation_rows(runs: list[Path], *, decode_repeats: int = 20, log=print) -> tuple[list[dict[str, Any]], Path]:
    """One dict per run folder (see the module docstring), and the features folder they share."""
    from training.model.families import latent_shape
    from training.run import load_run

    if not runs:
        raise ParameterError("ablation: no run folders given")
    loaded = []
    for path in runs:
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"ablation: run folder {path} is missing")
        the_run = load_run(path)
        if not (path / "metrics.json").is_file():
            raise DataError(f"ablation: {path / 'metrics.json'} is missing (the run has not finished)")
        loaded.append(the_run)
    data = {str(r.data.get("path")) for r in loaded}
    if len(data) != 1:
        raise DataError(f"ablation: the runs were trained on different features folders {sorted(data)}")
    rows = []
    for the_run in loaded:
        import json

        metrics = json.loads((the_run.path / "metrics.json").read_text())
        shape = latent_shape(the_run.config, params=the_run.params)
        log(f"ablation: {the_run.path.name}: measuring the decoder")
        _, _, decoder = the_run.models()
        # Timed as exported: what the engine runs (see ModelFamily.export_decoder).
        decoder, _ = the_run.config.family.export_decoder(decoder, the_run.config, params=the_run.params)
        rows.append({
            "run": the_run.path.name, "variant": the_run.config.name, "change": _change(the_run.config),
            "epochs": the_run.status.get("epochs_done"), "best_epoch": the_run.status.get("best_epoch"),
            "stopped": the_run.status.get("stopped"), "latent": int(np.prod(shape)),
            "decode_ms": decode_ms(decoder, latent_shape=shape, repeats=decode_repeats),
            **{k: float(metrics[k]) for k in _METRICS}, "notes": int(metrics["notes"]),
        })
    return rows, Path(data.pop())


def _pca_rows(features: Path, *, latent: int, log) -> list[dict[str, Any]]:
    from training.datasets.features import load_features
    from training.pca_baseline import pca_test_metrics

    feats = load_features(features)
    return pca_test_metrics(feats, train_rows=feats.subset("train"), latent_size=latent, log=log)


def write_ablation(runs: list[Path], out: Path, *, note: str = "", decode_repeats: int = 20, log=print) -> Path:
    """Measure ``runs`` and write the ablation table to ``out`` (markdown), atomically."""
    rows, features = ablation_rows(runs, decode_repeats=decode_repeats, log=log)
    pca = _pca_rows(features, latent=max(r["latent"] for r in rows), log=log)
    lines = [
        "# Ablation: our variants against the paper's no_dense and PCA",
        "",
        f"Features: `{features}`; test split: {rows[0]['notes']} notes of instruments no run trained on. "
        "Metrics from each run's best weights (its metrics.json); decode: one note of the folded decoder export "
        "writes, through onnxruntime on one "
        "CPU thread, median of "
        f"{decode_repeats} (this machine, beside whatever else ran). Written by `melsynth ablation`.",
        "",
    ]
    if note:
        lines += [note, ""]
    lines += [
        "| run | change from the paper's no_dense | epochs (best) | stopped by | RMSE | SSIM | precision | recall "
        "| F1 | decode ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['change']} | {r['epochs']} ({r['best_epoch']}) | {r['stopped']} | {r['rmse']:.4f} | "
            f"{r['ssim']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} | {r['decode_ms']:.1f} |"
        )
    for p in pca:
        lines.append(
            f"| PCA, {p['components']} components | fitted on the same training notes | - | - | {p['rmse']:.4f} | "
            f"{p['ssim']:.4f} | {p['precision']:.4f} | {p['recall']:.4f} | {p['f1']:.4f} | - |"
        )
    paper = PAPER_NO_DENSE
    lines.append(
        f"| the paper's no_dense | NSynth, random split (instruments may repeat) | - | - | {paper['rmse']:.3f} | "
        f"{paper['ssim']:.3f} | {paper['precision']:.3f} | {paper['recall']:.3f} | {paper['f1']:.3f} | - |"
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines) + "\n")
    log(f"ablation: wrote {out}")
    return out
