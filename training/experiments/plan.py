"""Planning a sweep and resuming it: which rows share a run, which rows are done, and whether a run folder is
the row's own (finished, to be resumed, or another model's).

Rows that are the same model share one run: the paper's baseline appears as "No Reg" (Table I),
"Max Pooling" (II), "Latent Dim 8192" (III) and "Dense" (IV). Rows are grouped by equal
:class:`training.model.config.ModelConfig` (all fields but the name), so any such identity is found, and a run
is named after the first row of its group in table order ("no_reg"). A row is done when its JSON exists,
measured the model its row has now, on this sweep's data and note limit, within the epoch budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synth.errors import DataError, ParameterError
from training.experiments.rows import row_on_disk
from training.experiments.tables import ROW_NAMES, check_names
from training.fit.stopping import Stop
from training.model.flat_config import flatten
from training.model.schedule import RESUMABLE_FIELDS

__all__ = ["row_configs", "row_groups", "config_differences", "epoch_budget", "plan_sweep", "run_finished",
           "check_run_is_of"]


def row_configs(overrides: dict[str, Any] | None) -> dict[str, Any]:
    from training.model.config import variant

    return {name: variant(name).with_changes(**(overrides or {})) for name in ROW_NAMES}


def row_groups(
    names: Sequence[str] | None = None, *, overrides: dict[str, Any] | None = None
) -> list[list[str]]:
    """Rows that are the same model, grouped; each group in table order, groups in order of first row.

    Only groups holding one of ``names`` (default all) are returned, but each group lists all its rows (the
    run's measurement answers every one of them). The run of a group is named after its first row.
    """
    wanted = set(check_names(list(names) if names is not None else list(ROW_NAMES)))
    configs = row_configs(overrides)
    groups: dict[str, list[str]] = {}
    for name in ROW_NAMES:
        key = json.dumps(dict(configs[name].to_dict(), name=None), sort_keys=True)
        groups.setdefault(key, []).append(name)
    return [g for g in groups.values() if wanted.intersection(g)]


def _the_model(config: dict[str, Any]) -> dict[str, Any]:
    """A config dict's fields that make its run, flat: not the name (rows sharing a run differ by it) nor the
    schedule fields a resumed run may change (--max-epochs extends a run, --patience is for new runs;
    training.fit allows both on --resume), but the seed and batch, which fix the run's start and data order."""
    return {k: v for k, v in flatten(config).items() if k not in ("name", *RESUMABLE_FIELDS)}


def config_differences(recorded: Any, *, planned: Any) -> list[str]:
    """How the model config ``recorded`` (a run's or row's "config" dict, read as :meth:`ModelConfig.from_dict`
    reads it, with the defaults of fields added since) differs from ``planned`` (a ModelConfig), as
    "field recorded -> planned" strings; empty when they are the same model."""
    from training.model.config import ModelConfig

    try:
        have = _the_model(ModelConfig.from_dict(recorded).to_dict())
    except ParameterError:
        # Unreadable: every field it lacks differs.
        have = _the_model(recorded) if isinstance(recorded, dict) else {}
    want = _the_model(planned.to_dict())
    return [f"{key} {have.get(key)!r} -> {want[key]!r}" for key in sorted(want) if have.get(key) != want[key]]


def _stale_row(doc: dict[str, Any], *, planned: Any) -> list[str]:
    """Differences between the model a row document measured and its row's model now (empty: current)."""
    recorded = doc.get("config")
    # A row that recorded no config cannot be checked; it stands as measured.
    return config_differences(recorded, planned=planned) if isinstance(recorded, dict) else []


def _short_of_budget(doc: dict[str, Any], *, max_epochs: int) -> int | None:
    """The epochs of a row stopped by its epoch bound below ``max_epochs`` (its run trains on), else None."""
    if doc.get("stopped") != Stop.MAX_EPOCHS.value:
        return None
    epochs = doc.get("epochs")
    return epochs if isinstance(epochs, int) and epochs < max_epochs else None


def epoch_budget(config: Any, max_epochs: int | None) -> int:
    """A row's epoch bound: ``max_epochs``, or without one the config's own (which a run stopped by a smaller
    bound has not had)."""
    return config.schedule.max_epochs if max_epochs is None else max_epochs


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


def plan_sweep(
    names: list[str], *, overrides: dict[str, Any], rows_dir: Path, max_epochs: int | None,
    log: Callable[[str], None], feats: Any = None, limit: int | None = None,
) -> tuple[dict[str, Any], list[list[str]]]:
    """(every row's config, the row groups still to run): a group is done when all its rows' JSONs exist,
    measured the model its rows have now (a row of a variant changed since runs again) and had the budget
    (a row stopped by a lower epoch bound than ``max_epochs``, or without one than its config's, trains on).

    Raises DataError, before any training, for a row measured on other data than the loaded features folder
    ``feats`` or under another note ``limit``: its table would mix two measurements under one header."""
    configs = row_configs(overrides)
    groups = row_groups(names, overrides=overrides)
    todo = []
    for group in groups:
        paths = {n: rows_dir / f"{n}.json" for n in group}
        docs = {n: doc for n, p in paths.items() if p.is_file() and (doc := row_on_disk(p)) is not None}
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
                 if (e := _short_of_budget(doc, max_epochs=epoch_budget(configs[n], max_epochs)))}
        for name, epochs in short.items():
            log(f"  row {name}: stopped at its bound of {epochs} epochs, the budget is now "
                f"{epoch_budget(configs[name], max_epochs)}: it trains on")
        if stale or short or any(not p.is_file() for p in paths.values()):
            todo.append(group)
    log(
        f"melsynth experiments: {len(groups)} runs for {len(names)} rows; {len(groups) - len(todo)} already done"
    )
    return configs, todo


def run_finished(run_dir: Path, max_epochs: int) -> bool:
    status_path = run_dir / "status.json"
    if not status_path.is_file():
        return False
    try:
        status = json.loads(status_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    try:
        stopped = Stop(status.get("stopped"))
    except ValueError:  # no reason recorded: not finished
        return False
    if stopped.for_good:
        return True
    if stopped is Stop.MAX_EPOCHS:
        # A longer budget than the run had extends it.
        return int(status.get("epochs_done", 0)) >= max_epochs
    return False


def check_run_is_of(run_dir: Path, *, config: Any) -> None:
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
    diff = config_differences(recorded, planned=config)
    if diff:
        raise DataError(f"{run_dir} trained another model than row {config.name} has now ({'; '.join(diff)}); "
                        f"move or delete that folder to train the row again")
