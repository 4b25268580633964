"""Running the sweep: train (or resume, or only measure) each planned run, write its rows, then the tables.

An interrupted run is resumed; a run that already finished is measured without training again; a run folder
that trained another model than its row has now (the fields compared are those of the model, not the fitting
schedule) is refused, never trained over. Metrics are those of :func:`synth.metrics.summary` on the features'
test split (the run's metrics.json, written by the fit; recomputed if missing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synth.errors import DataError, MelsynthError
from training.experiments.hardware import hardware
from training.experiments.pca import write_pca_row
from training.experiments.plan import check_run_is_of, epoch_budget, plan_sweep, run_finished
from training.experiments.report import duration_text, write_tables
from training.experiments.rows import write_rows
from training.experiments.tables import ROW_NAMES, check_names

__all__ = ["run_metrics", "train_and_measure", "run_experiments"]


def run_metrics(run_dir: Path, *, progress: bool) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    keys = ("rmse", "ssim", "precision", "recall", "f1", "notes")
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            doc = None
        if isinstance(doc, dict) and all(k in doc for k in keys) and doc.get("split", "test") == "test":
            return {k: doc[k] for k in keys}
    from training.evaluation import evaluate_run

    result = evaluate_run(run_dir, split="test", progress=progress)
    return {k: result[k] for k in keys}


def train_and_measure(
    run_dir: Path, *, run_name: str, config: Any, feats: Any, max_epochs: int | None, limit: int | None,
    mixed_precision: bool, verbose: int, log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """Fit one run (new, resumed, or not at all when it already finished), then (its test metrics, status.json,
    config.json) and its pictures; None, reported, when a melsynth error stops it."""
    from training.fit import FitOptions, fit

    max_epochs = epoch_budget(config, max_epochs)
    try:
        check_run_is_of(run_dir, config=config)
        if run_finished(run_dir, max_epochs):
            log(f"  {run_dir} already finished: measuring it")
        else:
            resume = run_dir.is_dir() and (run_dir / "config.json").is_file()
            options = FitOptions(resume=resume, force=not resume and run_dir.exists(), max_epochs=max_epochs,
                                 limit=limit, mixed_precision=mixed_precision, verbose=verbose)
            fit(features=feats, config=None if resume else config, out=run_dir, options=options)
        metrics = run_metrics(run_dir, progress=verbose > 0)
        status = json.loads((run_dir / "status.json").read_text())
        run_doc = json.loads((run_dir / "config.json").read_text())
    except (MelsynthError, OSError) as exc:  # a full disk too: this row is lost, the sweep goes on
        log(f"  {run_name} failed: {exc}")
        return None
    try:  # the paper's pictures for each run; a failure here costs the pictures, not the row
        from training.plots import write_run_pictures

        write_run_pictures(run_dir, data=feats.path)
    except (MelsynthError, OSError, ValueError) as exc:
        log(f"  {run_name}: pictures not written ({exc})")
    return metrics, status, run_doc


def run_experiments(
    *,
    data: str | Path,
    out: str | Path,
    runs: str | Path = "runs/paper",
    rows: Sequence[str] | None = None,
    max_epochs: int | None = None,
    limit: int | None = None,
    patience: int | None = None,
    overrides: dict[str, Any] | None = None,
    mixed_precision: bool = False,
    verbose: int = 2,
    log: Callable[[str], None] = print,
) -> Path:
    """Train and measure the selected rows (default all of Tables I-IV), then write ``out/tables.md``.

    Parameters
    ----------
    data : the features folder
    out : results folder (rows/*.json and tables.md)
    runs : where the run folders go
    rows : row names (:data:`ROW_NAMES`); rows that are the same model share one run
    max_epochs, limit : the budget, passed to :func:`training.fit.fit` (epoch bound; at most ``limit``
        training notes)
    patience : early-stopping patience for new runs (default the config's, 10)
    overrides : ModelConfig fields changed in every row (e.g. smaller filters for tests)
    verbose : Keras output of each fit (0, 1 progress bar, 2 a line per epoch)
    log : where progress lines go

    Returns the path of tables.md. A row whose fit fails with a melsynth error is reported and left
    "not run"; the others go on. Raises DataError at the end if any row failed.
    """
    from training.datasets.features import load_features

    names = check_names(list(rows) if rows is not None else list(ROW_NAMES))
    overrides = dict(overrides or {})
    if patience is not None:
        overrides["patience"] = patience
    out, runs = Path(out), Path(runs)
    rows_dir = out / "rows"
    feats = load_features(data)
    feats.subset("test")  # an empty test split is an error before any training
    configs, todo = plan_sweep(names, overrides=overrides, rows_dir=rows_dir, max_epochs=max_epochs, log=log,
                          feats=feats, limit=limit)
    hw: dict[str, Any] | None = None  # found lazily: it imports TensorFlow
    spent: list[float] = []
    failed: list[str] = []
    for i, group in enumerate(todo, start=1):
        run_name, run_dir = group[0], runs / group[0]
        remaining = len(todo) - i + 1
        eta = f", ETA {duration_text(sum(spent) / len(spent) * remaining)}" if spent else ""
        log(f"[{i}/{len(todo)}] {run_name} (rows {', '.join(group)}): start{eta}")
        t0 = time.perf_counter()
        measured = train_and_measure(
            run_dir, run_name=run_name, config=configs[run_name], feats=feats, max_epochs=max_epochs, limit=limit,
            mixed_precision=mixed_precision, verbose=verbose, log=log,
        )
        if measured is None:
            failed.append(run_name)
            continue
        wall = time.perf_counter() - t0
        spent.append(wall)
        hw = hw or hardware()
        metrics, status = write_rows(group, rows_dir=rows_dir, run_dir=run_dir, measured=measured, hw=hw)
        log(
            f"[{i}/{len(todo)}] {run_name}: done in {duration_text(wall)} ({status.get('epochs_done')} epochs, "
            f"{status.get('stopped')}): RMSE {metrics['rmse']:.4f} SSIM {metrics['ssim']:.3f} "
            f"F1 {metrics['f1']:.3f}"
        )
    write_pca_row(Path(out), feats, overrides=overrides, limit=limit, log=log)
    path = write_tables(out, data_description=feats.description())
    log(f"melsynth experiments: wrote {path}")
    if failed:
        raise DataError(
            f"rows failed to train: {', '.join(failed)} (see the messages above); tables.md shows them as not run"
        )
    return path
