"""The row files ``OUT/rows/<row>.json``: one finished row's measurement, written atomically, read back whole.

A row file holds the metrics (test split), the config, epochs, wall time, budget, hardware and the data
description; rows that share a run each get their own file with the same measurement.
"""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path
from typing import Any

from synth.atomic import atomic_write_text
from synth.errors import DataError
from training.experiments.tables import LABEL_OF, PAPER, TABLE_OF

__all__ = ["ROW_FORMAT", "row_on_disk", "history_seconds", "row_doc", "write_rows", "load_rows"]


ROW_FORMAT = "melsynth.experiment-row/1"


def row_on_disk(path: Path) -> dict[str, Any] | None:
    """The row file's document, None when there is none or it is unreadable (load_rows names a broken file
    when the tables are written)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def history_seconds(run: Path) -> float:
    """The run's training time: the sum of history.csv's epoch seconds (NaN when unreadable)."""
    try:
        with open(run / "history.csv", newline="") as fh:
            return float(sum(float(r.get("seconds") or 0.0) for r in csv.DictReader(fh)))
    except (OSError, ValueError):
        return float("nan")


def row_doc(
    name: str, group: list[str], *, run_dir: Path, metrics: dict[str, Any], status: dict[str, Any],
    run_doc: dict[str, Any], hw: dict[str, Any],
) -> dict[str, Any]:
    """``rows/<name>.json``: one row's measurement (its group's run), the paper's numbers and the budget."""
    config = run_doc.get("config") or {}
    # A run written before the config's split keeps its schedule's fields at the top level of its config.
    schedule = config.get("schedule") or config
    return {
        "format": ROW_FORMAT,
        "name": name,
        "table": TABLE_OF[name].number,
        "label": LABEL_OF[name],
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
        "wall_s": round(history_seconds(run_dir), 1),
        "budget": {
            "max_epochs": schedule.get("max_epochs"),
            "limit": (run_doc.get("fit") or {}).get("limit"),
            "patience": schedule.get("patience"),
        },
        "train_notes": (run_doc.get("fit") or {}).get("train_notes"),
        "devices": (run_doc.get("fit") or {}).get("devices"),
        "hardware": hw,
        "data": run_doc.get("data"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_rows(
    group: list[str], *, rows_dir: Path, run_dir: Path,
    measured: tuple[dict[str, Any], dict[str, Any], dict[str, Any]], hw: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write ``rows/<name>.json`` (atomically) for every row of a measured group; returns (metrics, status)."""
    metrics, status, run_doc = measured
    for name in group:
        doc = row_doc(name, group, run_dir=run_dir, metrics=metrics, status=status, run_doc=run_doc, hw=hw)
        atomic_write_text(rows_dir / f"{name}.json", json.dumps(doc, indent=2) + "\n")
    return metrics, status


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
