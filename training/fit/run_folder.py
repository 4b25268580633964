"""The files of a run folder other than its checkpoints: config.json, history.csv and status.json.

    config.json    {"format", "config": ModelConfig, "spectrogram": contract, "data": features description,
                    "fit": {limit, mixed_precision, precision, train_notes, devices, xla, init_from, ...}}
    history.csv    epoch, loss, val_loss, seconds, learning_rate (one row per finished epoch)
    status.json    epochs_done, best_epoch, best_val_loss, wait, stopped (a :class:`~training.fit.stopping.Stop`
                   value: "running", "early_stopping", "max_epochs", "non_finite_loss"), best_weights_sha256,
                   seconds_per_epoch_median
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_write_text
from synth.errors import DataError
from synth.json_files import read_json_file
from training.datasets.features import Features
from training.fit.checkpoints import KEEP_CHECKPOINTS, TrainingState
from training.fit.devices import Placement
from training.fit.stopping import Stop

__all__ = ["RUN_FORMAT", "json_dump", "write_history", "write_status", "load_existing", "data_signature",
           "run_doc"]

RUN_FORMAT = "melsynth-run/1"


def json_dump(path: Path, doc: Any) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def write_history(path: Path, history: tuple[dict[str, float], ...]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["epoch", "loss", "val_loss", "seconds", "learning_rate"], lineterminator="\n"
    )
    writer.writeheader()
    for row in history:
        # Rows from checkpoints written before the learning rate was logged leave it empty.
        writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
    atomic_write_text(path, buf.getvalue())


def write_status(out: Path, state: TrainingState, stopped: Stop) -> None:
    secs = [row["seconds"] for row in state.history]
    json_dump(out / "status.json", {
        "epochs_done": state.stopping.epochs_done,
        "best_epoch": state.stopping.best_epoch,
        "best_val_loss": state.stopping.best_val_loss,
        "wait": state.stopping.wait,
        "stopped": stopped.value,
        "best_weights_sha256": state.best_weights_sha256,
        "seconds_per_epoch_median": float(np.median(secs)) if secs else None,
    })


def load_existing(out: Path) -> dict[str, Any]:
    """A run folder's config.json, checked for its format and sections; DataError otherwise."""
    doc = read_json_file(out / "config.json", what="run config", error=DataError)
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise DataError(f"{out / 'config.json'}: not a melsynth run config (format {RUN_FORMAT!r} expected)")
    for key in ("config", "spectrogram", "data", "fit"):
        if key not in doc:
            raise DataError(f"{out / 'config.json'}: missing {key!r}")
    return doc


def data_signature(description: dict[str, Any]) -> dict[str, Any]:
    """A features description without its path: the same notes may move."""
    return {k: v for k, v in description.items() if k != "path"}


def run_doc(
    *, config: Any, feats: Features, limit: int | None, rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    mixed_precision: bool, placement: Placement, deterministic: bool, init_from: str | Path | None,
    input_parallelism: int = 2, start_from: str | Path | None = None,
) -> dict[str, Any]:
    """The run's config.json: the config, the contract and data it fits, and how (budget, devices, versions)."""
    import keras
    import tensorflow as tf

    train_rows, valid_rows, test_rows = rows
    gpus = placement.gpus
    return {
        "format": RUN_FORMAT,
        "config": config.to_dict(),
        "spectrogram": feats.params.to_dict(),
        "data": feats.description(),
        "fit": {
            "limit": limit,
            "train_notes": int(len(train_rows)),
            "valid_notes": int(len(valid_rows)),
            "test_notes": int(len(test_rows)),
            "mixed_precision": bool(mixed_precision),
            "precision": placement.policy,
            "replicas": int(placement.strategy.num_replicas_in_sync),
            "workers": placement.workers,
            "global_batch": int(config.schedule.batch_size),
            "input_parallelism": int(input_parallelism),
            "devices": f"GPU x {len(gpus)}" if gpus else "CPU",
            "deterministic": bool(deterministic),
            "xla": bool(placement.jit),
            "init_from": None if init_from is None else str(init_from),
            "start_from": None if start_from is None else str(start_from),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keep_checkpoints": KEEP_CHECKPOINTS,
        },
    }
