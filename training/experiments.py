"""Reproduce the paper's Tables I-IV: train every row, measure it, write results/paper/tables.md.

Layout::

    OUT/rows/<row>.json   one finished row: metrics (test split), config, epochs, wall time, budget,
                          hardware, data description (written atomically; a rerun skips rows already there,
                          unless the row's variant has changed since: then it runs again; or unless it
                          stopped at a lower epoch bound than --max-epochs: then its run trains on)
    OUT/tables.md         the four tables, ours beside the paper's, with a header (data, split, budget,
                          hardware) and a sentence per table on where our F1 ranking differs from the paper's
    RUNS/<run>/           the run folders (training.fit), not committed

Rows that are the same model share one run: the paper's baseline appears as "No Reg" (Table I),
"Max Pooling" (II), "Latent Dim 8192" (III) and "Dense" (IV). Rows are grouped by equal
:class:`training.model.config.ModelConfig` (all fields but the name), so any such identity is found, and a run
is named after the first row of its group in table order ("no_reg"). An interrupted run is resumed; a run
that already finished is measured without training again; a run folder that trained another model than its
row has now (the fields compared are those of the model, not the fitting schedule) is refused, never trained
over.

Metrics are those of :func:`synth.metrics.summary` on the features' test split (the run's metrics.json,
written by the fit; recomputed if missing).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synth.atomic import atomic_write_text
from synth.errors import DataError, MelsynthError, ParameterError
from training.model.config import SCHEDULE_FIELDS

__all__ = [
    "TABLES",
    "PAPER",
    "ROW_NAMES",
    "ROW_FORMAT",
    "Table",
    "row_groups",
    "hardware",
    "run_experiments",
    "load_rows",
    "render_tables",
    "write_tables",
    "ranking_sentence",
    "overall_sentence",
]

ROW_FORMAT = "melsynth.experiment-row/1"
METRIC_COLUMNS = (
    ("rmse", "RMSE"),
    ("ssim", "SSIM"),
    ("recall", "Recall"),
    ("precision", "Precision"),
    ("f1", "F1"),
)


@dataclasses.dataclass(frozen=True)
class Table:
    """One of the paper's tables: its number, caption and rows as (variant name, the paper's label)."""

    number: str
    caption: str
    rows: tuple[tuple[str, str], ...]


TABLES: tuple[Table, ...] = (
    Table(
        "I",
        "Regularization techniques",
        (
            ("no_reg", "No Reg"),
            ("dropout_E", "Dropout E"),
            ("dropout_D", "Dropout D"),
            ("dropout_ED", "Dropout ED"),
            ("kr_l1_E", "KR L1 E"),
            ("kr_l1_D", "KR L1 D"),
            ("kr_l1_ED", "KR L1 ED"),
            ("kr_l2_E", "KR L2 E"),
            ("kr_l2_D", "KR L2 D"),
            ("kr_l2_ED", "KR L2 ED"),
            ("ar_l1_E", "AR L1 E"),
            ("ar_l1_D", "AR L1 D"),
            ("ar_l1_ED", "AR L1 ED"),
            ("ar_l2_E", "AR L2 E"),
            ("ar_l2_D", "AR L2 D"),
            ("ar_l2_ED", "AR L2 ED"),
        ),
    ),
    Table(
        "II",
        "Max pooling, average pooling and no pooling",
        (
            ("pool_max", "Max Pooling"),
            ("pool_avg", "Average Pooling"),
            ("pool_none", "No Pooling"),
        ),
    ),
    Table(
        "III",
        "Further compression of the latent space",
        (
            ("latent_8192", "Latent Dim 8192"),
            ("latent_4096", "Latent Dim 4096"),
            ("latent_2048", "Latent Dim 2048"),
        ),
    ),
    Table("IV", "Network without a fully connected layer", (("dense", "Dense"), ("no_dense", "No Dense"))),
)
ROW_NAMES: tuple[str, ...] = tuple(name for table in TABLES for name, _ in table.rows)
_TABLE_OF = {name: table for table in TABLES for name, _ in table.rows}
_LABEL_OF = {name: label for table in TABLES for name, label in table.rows}

# The paper's numbers (Natsiou & O'Leary, Tables I-IV): (RMSE, SSIM, recall, precision, F1).
_PAPER_ROWS: dict[str, tuple[float, float, float, float, float]] = {
    "no_reg": (0.087, 0.733, 0.777, 0.786, 0.772),
    "dropout_E": (0.097, 0.686, 0.707, 0.797, 0.732),
    "dropout_D": (0.087, 0.640, 0.832, 0.738, 0.769),
    "dropout_ED": (0.102, 0.548, 0.765, 0.753, 0.740),
    "kr_l1_E": (0.102, 0.631, 0.762, 0.752, 0.743),
    "kr_l1_D": (0.079, 0.757, 0.820, 0.804, 0.804),
    "kr_l1_ED": (0.080, 0.761, 0.829, 0.794, 0.804),
    "kr_l2_E": (0.086, 0.722, 0.804, 0.791, 0.790),
    "kr_l2_D": (0.077, 0.782, 0.819, 0.829, 0.817),
    "kr_l2_ED": (0.079, 0.766, 0.793, 0.830, 0.801),
    "ar_l1_E": (0.085, 0.778, 0.788, 0.826, 0.798),
    "ar_l1_D": (0.244, 0.214, 0.0, 0.0, 0.0),
    "ar_l1_ED": (0.244, 0.215, 0.0, 0.0, 0.0),
    "ar_l2_E": (0.162, 0.395, 0.541, 0.697, 0.552),
    "ar_l2_D": (0.244, 0.177, 0.0, 0.0, 0.0),
    "ar_l2_ED": (0.238, 0.210, 0.0, 0.0, 0.0),
    "pool_max": (0.087, 0.733, 0.777, 0.786, 0.772),
    "pool_avg": (0.089, 0.708, 0.787, 0.770, 0.770),
    "pool_none": (0.106, 0.676, 0.692, 0.732, 0.692),
    "latent_8192": (0.087, 0.733, 0.777, 0.786, 0.772),
    "latent_4096": (0.077, 0.796, 0.813, 0.828, 0.814),
    "latent_2048": (0.078, 0.798, 0.810, 0.837, 0.817),
    "dense": (0.087, 0.733, 0.777, 0.786, 0.772),
    "no_dense": (0.063, 0.861, 0.856, 0.859, 0.855),
}
PAPER: dict[str, dict[str, float]] = {
    name: dict(zip(("rmse", "ssim", "recall", "precision", "f1"), values, strict=True))
    for name, values in _PAPER_ROWS.items()
}


# ---------------------------------------------------------------------------------------------- rows and runs
def _check_names(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in ROW_NAMES]
    if unknown:
        raise ParameterError(f"unknown table rows {unknown}; known: {', '.join(ROW_NAMES)}")
    if not names:
        raise ParameterError("no table rows selected")
    return list(dict.fromkeys(names))


def _configs(overrides: dict[str, Any] | None) -> dict[str, Any]:
    from training.model.config import variant

    return {name: variant(name).replace(**(overrides or {})) for name in ROW_NAMES}


def row_groups(
    names: Sequence[str] | None = None, *, overrides: dict[str, Any] | None = None
) -> list[list[str]]:
    """Rows that are the same model, grouped; each group in table order, groups in order of first row.

    Only groups holding one of ``names`` (default all) are returned, but each group lists all its rows (the
    run's measurement answers every one of them). The run of a group is named after its first row.
    """
    wanted = set(_check_names(list(names) if names is not None else list(ROW_NAMES)))
    configs = _configs(overrides)
    groups: dict[str, list[str]] = {}
    for name in ROW_NAMES:
        key = json.dumps(dict(configs[name].to_dict(), name=None), sort_keys=True)
        groups.setdefault(key, []).append(name)
    return [g for g in groups.values() if wanted.intersection(g)]


def hardware() -> dict[str, Any]:
    """The machine: CPU model and cores (from /proc/cpuinfo), GPUs visible to TensorFlow, platform."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpus: list[str] = []
    try:
        import tensorflow as tf

        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            gpus.append(str(details.get("device_name", device.name)))
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus, "platform": platform.platform()}


def _hardware_text(hw: dict[str, Any]) -> str:
    gpus = ", ".join(hw.get("gpus") or []) or "no GPU"
    return f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {gpus}"


def _history_seconds(run: Path) -> float:
    import csv

    try:
        with open(run / "history.csv", newline="") as fh:
            return float(sum(float(r.get("seconds") or 0.0) for r in csv.DictReader(fh)))
    except (OSError, ValueError):
        return float("nan")


def _run_metrics(run_dir: Path, *, progress: bool) -> dict[str, Any]:
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


def _finished(run_dir: Path, max_epochs: int) -> bool:
    status_path = run_dir / "status.json"
    if not status_path.is_file():
        return False
    try:
        status = json.loads(status_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    stopped = status.get("stopped")
    if stopped in ("early_stopping", "non_finite_loss"):
        return True
    if stopped == "max_epochs":
        # A longer budget than the run had extends it.
        return int(status.get("epochs_done", 0)) >= max_epochs
    return False


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


# Not the model: the name (rows sharing a run differ by it) and the fitting schedule, which a resumed run may
# change (--max-epochs extends a run, --patience is for new runs; training.fit allows both on --resume).
_NOT_THE_MODEL = ("name", *SCHEDULE_FIELDS)


def _config_differences(recorded: Any, *, planned: Any) -> list[str]:
    """How the model config ``recorded`` (a run's or row's "config" dict, read as :meth:`ModelConfig.from_dict`
    reads it, with the defaults of fields added since) differs from ``planned`` (a ModelConfig), as
    "field recorded -> planned" strings; empty when they are the same model."""
    from training.model.config import ModelConfig

    try:
        have = ModelConfig.from_dict(recorded).to_dict()
    except ParameterError:
        have = recorded if isinstance(recorded, dict) else {}  # unreadable: every field it lacks differs
    want = planned.to_dict()
    return [f"{key} {have.get(key)!r} -> {want[key]!r}" for key in sorted(want)
            if key not in _NOT_THE_MODEL and have.get(key) != want[key]]


def _row_on_disk(path: Path) -> dict[str, Any] | None:
    """The row file's document, None when there is none or it is unreadable (load_rows names a broken file
    when the tables are written)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _stale_row(doc: dict[str, Any], *, planned: Any) -> list[str]:
    """Differences between the model a row document measured and its row's model now (empty: current)."""
    recorded = doc.get("config")
    # A row that recorded no config cannot be checked; it stands as measured.
    return _config_differences(recorded, planned=planned) if isinstance(recorded, dict) else []


def _short_of_budget(doc: dict[str, Any], *, max_epochs: int) -> int | None:
    """The epochs of a row stopped by its epoch bound below ``max_epochs`` (its run trains on), else None."""
    if doc.get("stopped") != "max_epochs":
        return None
    epochs = doc.get("epochs")
    return epochs if isinstance(epochs, int) and epochs < max_epochs else None


def _epoch_budget(config: Any, max_epochs: int | None) -> int:
    """A row's epoch bound: ``max_epochs``, or without one the config's own (which a run stopped by a smaller
    bound has not had)."""
    return config.max_epochs if max_epochs is None else max_epochs


def _other_measurement(doc: dict[str, Any], *, feats: Any, limit: int | None) -> list[str]:
    """How the data and note limit a row was measured on differ from this sweep's (empty: the same)."""
    recorded = doc.get("data")
    diff = []
    if isinstance(recorded, dict):
        # A key the row lacks differs too (None -> now): a row's table states every one of them.
        diff = feats.differences({key: recorded.get(key) for key in feats.description()})
    budget = doc.get("budget")
    if isinstance(budget, dict) and budget.get("limit") != limit:
        diff.append(f"--limit {budget.get('limit')} -> {limit}")
    return diff


def _plan(
    names: list[str], *, overrides: dict[str, Any], rows_dir: Path, max_epochs: int | None,
    log: Callable[[str], None], feats: Any = None, limit: int | None = None,
) -> tuple[dict[str, Any], list[list[str]]]:
    """(every row's config, the row groups still to run): a group is done when all its rows' JSONs exist,
    measured the model its rows have now (a row of a variant changed since runs again) and had the budget
    (a row stopped by a lower epoch bound than ``max_epochs``, or without one than its config's, trains on).

    Raises DataError, before any training, for a row measured on other data than the loaded features folder
    ``feats`` or under another note ``limit``: its table would mix two measurements under one header."""
    configs = _configs(overrides)
    groups = row_groups(names, overrides=overrides)
    todo = []
    for group in groups:
        paths = {n: rows_dir / f"{n}.json" for n in group}
        docs = {n: doc for n, p in paths.items() if p.is_file() and (doc := _row_on_disk(p)) is not None}
        if feats is not None:
            for name, doc in docs.items():
                if diff := _other_measurement(doc, feats=feats, limit=limit):
                    raise DataError(
                        f"{paths[name]}: measured on other data than this sweep's ({'; '.join(diff)}): "
                        "write these tables to another --out, or delete the row to measure it again"
                    )
        stale = {n: d for n, doc in docs.items() if (d := _stale_row(doc, planned=configs[n]))}
        for name, diff in stale.items():
            log(f"  row {name}: measured another model ({'; '.join(diff)}): it runs again")
        short = {n: e for n, doc in docs.items()
                 if (e := _short_of_budget(doc, max_epochs=_epoch_budget(configs[n], max_epochs)))}
        for name, epochs in short.items():
            log(f"  row {name}: stopped at its bound of {epochs} epochs, the budget is now "
                f"{_epoch_budget(configs[name], max_epochs)}: it trains on")
        if stale or short or any(not p.is_file() for p in paths.values()):
            todo.append(group)
    log(
        f"melsynth experiments: {len(groups)} runs for {len(names)} rows; {len(groups) - len(todo)} already done"
    )
    return configs, todo


def _check_run_is_of(run_dir: Path, *, config: Any) -> None:
    """DataError when the run folder there trained another model than ``config`` (a variant changed since):
    resuming or measuring it would give the row a model it no longer has, and training over it would lose
    the run, so the user decides."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text()).get("config")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return  # fit() itself names a broken run folder
    if not isinstance(recorded, dict):
        return  # likewise
    diff = _config_differences(recorded, planned=config)
    if diff:
        raise DataError(f"{run_dir} trained another model than row {config.name} has now ({'; '.join(diff)}); "
                        f"move or delete that folder to train the row again")


def _train_and_measure(
    run_dir: Path, *, run_name: str, config: Any, feats: Any, max_epochs: int | None, limit: int | None,
    mixed_precision: bool, verbose: int, log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """Fit one run (new, resumed, or not at all when it already finished), then (its test metrics, status.json,
    config.json) and its pictures; None, reported, when a melsynth error stops it."""
    from training.fit import fit

    max_epochs = _epoch_budget(config, max_epochs)
    try:
        _check_run_is_of(run_dir, config=config)
        if _finished(run_dir, max_epochs):
            log(f"  {run_dir} already finished: measuring it")
        elif run_dir.is_dir() and (run_dir / "config.json").is_file():
            fit(
                features=feats,
                config=None,
                out=run_dir,
                resume=True,
                max_epochs=max_epochs,
                limit=limit,
                mixed_precision=mixed_precision,
                verbose=verbose,
            )
        else:
            fit(
                features=feats,
                config=config,
                out=run_dir,
                force=run_dir.exists(),
                max_epochs=max_epochs,
                limit=limit,
                mixed_precision=mixed_precision,
                verbose=verbose,
            )
        metrics = _run_metrics(run_dir, progress=verbose > 0)
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


def _row_doc(
    name: str, group: list[str], *, run_dir: Path, metrics: dict[str, Any], status: dict[str, Any],
    run_doc: dict[str, Any], hw: dict[str, Any],
) -> dict[str, Any]:
    """``rows/<name>.json``: one row's measurement (its group's run), the paper's numbers and the budget."""
    return {
        "format": ROW_FORMAT,
        "name": name,
        "table": _TABLE_OF[name].number,
        "label": _LABEL_OF[name],
        "run": group[0],
        "run_path": str(run_dir),
        "same_model_as": [n for n in group if n != name],
        "split": "test",
        "metrics": metrics,
        "paper": PAPER[name],
        "config": run_doc.get("config"),
        "epochs": status.get("epochs_done"),
        "best_epoch": status.get("best_epoch"),
        "stopped": status.get("stopped"),
        "wall_s": round(_history_seconds(run_dir), 1),
        "budget": {
            "max_epochs": (run_doc.get("config") or {}).get("max_epochs"),
            "limit": (run_doc.get("fit") or {}).get("limit"),
            "patience": (run_doc.get("config") or {}).get("patience"),
        },
        "train_notes": (run_doc.get("fit") or {}).get("train_notes"),
        "devices": (run_doc.get("fit") or {}).get("devices"),
        "hardware": hw,
        "data": run_doc.get("data"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_rows(
    group: list[str], *, rows_dir: Path, run_dir: Path,
    measured: tuple[dict[str, Any], dict[str, Any], dict[str, Any]], hw: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write ``rows/<name>.json`` (atomically) for every row of a measured group; returns (metrics, status)."""
    metrics, status, run_doc = measured
    for name in group:
        doc = _row_doc(name, group, run_dir=run_dir, metrics=metrics, status=status, run_doc=run_doc, hw=hw)
        atomic_write_text(rows_dir / f"{name}.json", json.dumps(doc, indent=2) + "\n")
    return metrics, status


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

    names = _check_names(list(rows) if rows is not None else list(ROW_NAMES))
    overrides = dict(overrides or {})
    if patience is not None:
        overrides["patience"] = patience
    out, runs = Path(out), Path(runs)
    rows_dir = out / "rows"
    feats = load_features(data)
    feats.subset("test")  # an empty test split is an error before any training
    configs, todo = _plan(names, overrides=overrides, rows_dir=rows_dir, max_epochs=max_epochs, log=log,
                          feats=feats, limit=limit)
    hw: dict[str, Any] | None = None  # found lazily: it imports TensorFlow
    spent: list[float] = []
    failed: list[str] = []
    for i, group in enumerate(todo, start=1):
        run_name, run_dir = group[0], runs / group[0]
        remaining = len(todo) - i + 1
        eta = f", ETA {_duration(sum(spent) / len(spent) * remaining)}" if spent else ""
        log(f"[{i}/{len(todo)}] {run_name} (rows {', '.join(group)}): start{eta}")
        t0 = time.perf_counter()
        measured = _train_and_measure(
            run_dir, run_name=run_name, config=configs[run_name], feats=feats, max_epochs=max_epochs, limit=limit,
            mixed_precision=mixed_precision, verbose=verbose, log=log,
        )
        if measured is None:
            failed.append(run_name)
            continue
        wall = time.perf_counter() - t0
        spent.append(wall)
        hw = hw or hardware()
        metrics, status = _write_rows(group, rows_dir=rows_dir, run_dir=run_dir, measured=measured, hw=hw)
        log(
            f"[{i}/{len(todo)}] {run_name}: done in {_duration(wall)} ({status.get('epochs_done')} epochs, "
            f"{status.get('stopped')}): RMSE {metrics['rmse']:.4f} SSIM {metrics['ssim']:.3f} "
            f"F1 {metrics['f1']:.3f}"
        )
    _write_pca_row(Path(out), feats, overrides=overrides, limit=limit, log=log)
    path = write_tables(out, data_description=feats.description())
    log(f"melsynth experiments: wrote {path}")
    if failed:
        raise DataError(
            f"rows failed to train: {', '.join(failed)} (see the messages above); tables.md shows them as not run"
        )
    return path


PCA_FILE = "pca.json"


def _write_pca_row(out: Path, feats: Any, *, overrides: dict[str, Any] | None, limit: int | None, log) -> None:
    """``out/pca.json``: PCA of the rows' training notes beside the tables (k = min(2048, notes), and 128),
    measured once per features folder and note limit (kept while both are the same)."""
    from training.fit import training_rows
    from training.model.families import latent_shape
    from training.pca_baseline import pca_test_metrics

    path = out / PCA_FILE
    signature = {**{k: v for k, v in feats.description().items() if k != "path"}, "limit": limit}
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            if doc.get("data") == signature and any(r.get("components") == 0 for r in doc.get("rows", [])):
                return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            pass  # rewritten below
    config = _configs(overrides)["no_dense"]
    latent = math.prod(latent_shape(config, params=feats.params))
    rows = pca_test_metrics(feats, train_rows=training_rows(feats, seed=config.seed, limit=limit),
                            latent_size=latent, log=log, with_mean=True)
    atomic_write_text(path, json.dumps({"data": signature, "rows": rows}, indent=2) + "\n")


def load_pca(out: str | Path) -> list[dict[str, Any]]:
    """The PCA rows of ``out/pca.json`` (empty when not measured yet)."""
    path = Path(out) / PCA_FILE
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()).get("rows") or [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); delete it to measure PCA again") from None


# ---------------------------------------------------------------------------------------------- the tables
def load_rows(out: str | Path) -> dict[str, dict[str, Any]]:
    """The finished rows under ``out/rows`` (name -> document); unreadable or foreign files are an error."""
    rows_dir = Path(out) / "rows"
    found: dict[str, dict[str, Any]] = {}
    if not rows_dir.is_dir():
        return found
    for path in sorted(rows_dir.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not valid JSON ({exc}); delete it to rerun that row") from None
        if not isinstance(doc, dict) or doc.get("format") != ROW_FORMAT or doc.get("name") != path.stem:
            raise DataError(f"{path}: not a melsynth experiment row named {path.stem!r}")
        found[path.stem] = doc
    return found


def _cell(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _order(scores: dict[str, float], labels: dict[str, str]) -> str:
    """ "A > B = C" by descending score."""
    ranked = sorted(scores, key=lambda n: -scores[n])
    text = labels[ranked[0]]
    for prev, name in zip(ranked, ranked[1:], strict=False):
        text += (" = " if round(scores[prev], 3) == round(scores[name], 3) else " > ") + labels[name]
    return text


def ranking_sentence(table: Table, rows: dict[str, dict[str, Any]]) -> str:
    """Where our F1 order of the table's rows differs from the paper's (rows not run are left out).

    Two rows are ordered differently when one has the strictly higher F1 (to 3 decimals) in ours and the
    strictly lower in the paper's; ties on either side do not count as disagreement.
    """
    labels = dict(table.rows)
    ours: dict[str, float] = {}
    for name, _ in table.rows:
        f1 = ((rows.get(name) or {}).get("metrics") or {}).get("f1")
        if isinstance(f1, (int, float)) and math.isfinite(f1):
            ours[name] = float(f1)
    if len(ours) < 2:
        return f"Ranking: {len(ours)} row(s) of table {table.number} measured, too few to compare with the paper."
    paper = {n: PAPER[n]["f1"] for n in ours}
    names = list(ours)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    swapped = []
    for a, b in pairs:
        da, db = round(ours[a] - ours[b], 3), round(paper[a] - paper[b], 3)
        if da * db < 0:
            swapped.append((a, b))
    best_ours = max(ours, key=ours.get)
    best_paper = max(paper, key=paper.get)
    partial = "" if len(ours) == len(table.rows) else f" (over the {len(ours)} rows measured)"
    if not swapped:
        return f"Our F1 ranking agrees with the paper's{partial}: {_order(ours, labels)}."
    detail = "; ".join(
        f"{labels[a]} above {labels[b]}" if ours[a] > ours[b] else f"{labels[b]} above {labels[a]}"
        for a, b in swapped[:6]
    )
    more = f" and {len(swapped) - 6} more" if len(swapped) > 6 else ""
    best = (
        f" Best row: ours {labels[best_ours]}, the paper's {labels[best_paper]}."
        if best_ours != best_paper
        else f" Both rank {labels[best_ours]} best."
    )
    return (
        f"Our F1 ranking differs from the paper's in {len(swapped)} of {len(pairs)} pairs{partial}: "
        f"ours {_order(ours, labels)}; the paper's {_order(paper, labels)}. We put {detail}{more}.{best}"
    )


def _data_text(description: dict[str, Any] | None) -> str:
    if not description:
        return "unknown (no row measured yet)"
    sizes = description.get("split_sizes") or {}
    parts = [
        f"{description.get('notes', '?')} notes"
        + (
            f" (train {sizes.get('train')}, valid {sizes.get('valid')}, test {sizes.get('test')})"
            if sizes
            else ""
        ),
        f"sources {', '.join(map(str, description.get('sources') or ['?']))}",
        f"pitches {', '.join(map(str, description.get('pitches') or ['?']))}",
        f"families {', '.join(map(str, description.get('families') or ['?']))}",
        f"split by {description.get('split_rule', '?')} (seed {description.get('split_seed', '?')})",
    ]
    path = description.get("path")
    if path:
        parts.append(f"features folder `{Path(str(path)).name}`")
    return "; ".join(parts)


def _choices_text(rows: dict[str, dict[str, Any]]) -> str:
    """The settings of the measured rows that the paper does not publish: the dropout rate and each kind of
    penalty's weight ("" when no measured row has one)."""
    configs = [d.get("config") for d in rows.values() if isinstance(d.get("config"), dict)]
    rates = sorted({c.get("dropout_rate") for c in configs if c.get("dropout_where", "none") != "none"} - {None})
    weights: dict[str, set] = {}
    for c in configs:
        if c.get("regularizer", "none") != "none":
            if c.get("regularizer_weight") is not None:
                weights.setdefault(f"{c['regularizer']} {str(c.get('regularizer_norm', '')).upper()}", set()).add(
                    c["regularizer_weight"])
    parts = [f"dropout rate {', '.join(map(str, rates))}"] if rates else []
    parts += [f"{label} weight {', '.join(f'{w:g}' for w in sorted(ws))}" for label, ws in sorted(weights.items())]
    return "; ".join(parts)


def _budget_text(rows: dict[str, dict[str, Any]]) -> str:
    if not rows:
        return "no row run yet"
    budgets = sorted({json.dumps(d.get("budget") or {}, sort_keys=True) for d in rows.values()})
    texts = []
    for b in map(json.loads, budgets):
        limit = b.get("limit")
        texts.append(
            f"at most {b.get('max_epochs', '?')} epochs, early stopping patience {b.get('patience', '?')}, "
            + (f"at most {limit} training notes" if limit else "all training notes")
        )
    epochs = [d.get("epochs") for d in rows.values() if isinstance(d.get("epochs"), int)]
    stops = sorted({str(d.get("stopped")) for d in rows.values()})
    text = " | ".join(texts)
    if epochs:
        text += f"; epochs run {min(epochs)}-{max(epochs)} (stopped by: {', '.join(stops)})"
    walls = {d.get("run"): d.get("wall_s") for d in rows.values()}
    total = sum(w for w in walls.values() if isinstance(w, (int, float)) and math.isfinite(w))
    text += f"; training time {_duration(total)} over {len(walls)} runs"
    return text


def render_tables(
    rows: dict[str, dict[str, Any]],
    *,
    data_description: dict[str, Any] | None = None,
    split: str = "test",
    generated: str | None = None,
    pca: list[dict[str, Any]] | None = None,
) -> str:
    """tables.md as text: header, the four tables (ours beside the paper's), a ranking sentence each, and the
    PCA baseline's rows (``pca``, from :func:`load_pca`)."""
    if data_description is None and rows:
        data_description = next(iter(rows.values())).get("data")
    signatures = {
        json.dumps({k: v for k, v in (d.get("data") or {}).items() if k != "path"}, sort_keys=True)
        for d in rows.values()
    }
    hardware_set = sorted({_hardware_text(d.get("hardware") or {}) for d in rows.values()})
    notes = sorted({(d.get("metrics") or {}).get("notes") for d in rows.values()} - {None})
    lines = [
        "# Reproduction of the paper's Tables I-IV",
        "",
        f"- **Data**: {_data_text(data_description)}."
        + (" **Warning: the rows were measured on different data.**" if len(signatures) > 1 else ""),
        f"- **Split measured**: {split}"
        + (f" ({', '.join(map(str, notes))} notes)" if notes else "")
        + "; the paper used a 3750-note single-pitch NSynth subset split 80/10/10.",
        f"- **Budget**: {_budget_text(rows)}. The paper trained to early stopping (patience 10) on a Tesla P100.",
        f"- **Hardware**: {'; '.join(hardware_set) if hardware_set else 'none yet'}.",
        *([f"- **Not in the paper, our choice** (training/model/config.py says why): {choices}."]
          if (choices := _choices_text(rows)) else []),
        "- **Metrics**: `synth.metrics.summary`: per-note RMSE and SSIM (scikit-image, data_range 1, 7x7 window) "
        "on the unit scale, and the paper's harmonic recall/precision/F1 (peaks of each frame in dB within 30 dB "
        "of the frame's highest, band-centre frequencies, one-to-one matches within 3 %, silent frames "
        "skipped), each averaged over notes.",
        "- Columns: ours, then the paper's in parentheses. Rows that are one model (No Reg = Max Pooling = "
        "Latent Dim 8192 = Dense) share one run.",
    ]
    if generated:
        lines.append(f"- Generated by `melsynth experiments` on {generated}.")
    for table in TABLES:
        lines += ["", f"## Table {table.number}: {table.caption}", ""]
        header = "| Experiment | " + " | ".join(label for _, label in METRIC_COLUMNS) + " | Epochs |"
        lines += [header, "|" + "---|" * (len(METRIC_COLUMNS) + 2)]
        for name, label in table.rows:
            doc = rows.get(name)
            paper = PAPER[name]
            if doc is None:
                cells = [f"not run ({_cell(paper[k])})" for k, _ in METRIC_COLUMNS] + ["-"]
            else:
                metrics = doc.get("metrics") or {}
                cells = [f"{_cell(metrics.get(k))} ({_cell(paper[k])})" for k, _ in METRIC_COLUMNS]
                cells.append(
                    f"{doc.get('epochs', '?')}"
                    + (f" (best {doc['best_epoch']})" if doc.get("best_epoch") else "")
                )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", ranking_sentence(table, rows)]
    if pca:
        lines += ["", "## PCA baseline", "",
                  "PCA fitted on the same training notes (numpy's SVD), the first K principal directions, on the same "
                  "test notes: the linear code an autoencoder has to beat.", "",
                  "| PCA | " + " | ".join(label for _, label in METRIC_COLUMNS) + " |",
                  "|" + "---|" * (len(METRIC_COLUMNS) + 1)]
        for row in pca:
            label = (f"{row['components']} components of {row['train_notes']} notes" if row["components"]
                     else f"0 components: the mean of the {row['train_notes']} notes")
            lines.append(f"| {label} | " + " | ".join(_cell(row.get(k)) for k, _ in METRIC_COLUMNS) + " |")
        mean = next((row for row in pca if row["components"] == 0), None)
        if mean is not None:
            lines += ["", f"The mean training note is the same output whatever the input, yet its harmonic F1 is "
                      f"{_cell(mean.get('f1'))}: at one pitch every note's harmonics lie at the same frequencies, so "
                      "F1 rewards peaks in the right places before it rewards the right note. Read each row's F1 "
                      "beside this one, and a row that collapsed to nearly one output (activity penalties on the "
                      "decoder) by its RMSE and SSIM; the paper reports F1 0 for such rows."]
    lines += ["", "## Overall", "", overall_sentence(rows)]
    return "\n".join(lines) + "\n"


def overall_sentence(rows: dict[str, dict[str, Any]]) -> str:
    """Our best row by F1 over every table, beside the paper's best (No Dense)."""
    scored = {
        name: float(doc["metrics"]["f1"])
        for name, doc in rows.items()
        if isinstance((doc.get("metrics") or {}).get("f1"), (int, float))
        and math.isfinite(doc["metrics"]["f1"])
    }
    if not scored:
        return "No row measured yet."
    best = max(scored, key=scored.get)
    m = rows[best]["metrics"]
    same = " as in the paper" if best == "no_dense" else " (the paper's best is No Dense)"
    return (
        f"Our best row by F1 is {_LABEL_OF[best]}{same}: RMSE {_cell(m.get('rmse'))}, SSIM {_cell(m.get('ssim'))}, "
        f"F1 {_cell(m.get('f1'))}; the paper's No Dense has RMSE 0.063, SSIM 0.861, F1 0.855."
    )


def write_tables(
    out: str | Path, *, data_description: dict[str, Any] | None = None, split: str = "test"
) -> Path:
    """Render tables.md from the row JSONs under ``out/rows`` and write it atomically; returns its path."""
    out = Path(out)
    rows = load_rows(out)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = render_tables(rows, data_description=data_description, split=split, generated=when, pca=load_pca(out))
    path = out / "tables.md"
    atomic_write_text(path, text)
    return path
