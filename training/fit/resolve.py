"""What a call to fit() resolves to, all checked before the run folder is touched: a new or resumed run and its
config, the features and rows it fits, and the checkpoint it starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.outputs import RUN, check_output_folder
from synth.spectrogram import SpectrogramParams
from training.datasets.features import Features, load_features
from training.fit.checkpoints import TrainingState, check_best, latest_checkpoint, read_checkpoint_state
from training.fit.notes import note_pitches, training_rows
from training.fit.options import FitOptions
from training.fit.run_folder import data_signature, load_existing
from training.fit.weights import initial_weights
from training.model.config import ModelConfig
from training.model.schedule import RESUMABLE_FIELDS

__all__ = ["resolve_run", "load_data", "start_point"]


def resolve_run(
    out: Path, *, config: ModelConfig | None, options: FitOptions, inputs: tuple[str | Path | None, ...],
    check_folder: bool = True,
) -> tuple[dict[str, Any] | None, ModelConfig, int | None]:
    """(the run's config.json when resuming, the config to fit with the schedule and the global batch applied,
    the limit): a resumed run keeps its own config apart from the schedule, its limit, its precision and its
    global batch; a new run needs a config and (``check_folder``: the process that writes it) a free folder
    (or ``force``)."""
    existing: dict[str, Any] | None = None
    limit = options.limit
    if options.resume:
        if not out.is_dir():
            raise ParameterError(f"{out}: no run folder to resume")
        existing = load_existing(out)
        saved = ModelConfig.from_dict(existing["config"], source=f"{out / 'config.json'} config")
        if config is not None and \
                config.with_schedule(**{k: getattr(saved.schedule, k) for k in RESUMABLE_FIELDS}) != saved:
            raise ParameterError(
                f"{out}: the given config differs from the run's own config.json beyond the schedule fields "
                f"{list(RESUMABLE_FIELDS)}; resume without a config or start a new run"
            )
        config = saved
        if limit is not None and limit != existing["fit"].get("limit"):
            raise ParameterError(f"{out}: limit {limit} differs from the run's {existing['fit'].get('limit')}")
        limit = existing["fit"].get("limit")
        if bool(options.mixed_precision) != bool(existing["fit"].get("mixed_precision", False)):
            raise ParameterError(f"{out}: mixed_precision must match the run's ({existing['fit'].get('mixed_precision')})")
        if options.global_batch is not None and options.global_batch != config.schedule.batch_size:
            raise ParameterError(f"{out}: global batch {options.global_batch} differs from the run's "
                                 f"{config.schedule.batch_size}; a resumed run keeps its batch")
    else:
        if config is None:
            raise ParameterError("a model config is needed for a new run")
        if options.global_batch is not None:
            config = config.with_schedule(batch_size=options.global_batch)
        # --force replaces an earlier run (or an empty folder), never the features it is to train on. A cluster's
        # other workers do not write it (and may find the chief's new folder there already).
        if check_folder:
            check_output_folder(out, kind=RUN, force=options.force, inputs=inputs,
                                hint="resume it (--resume) or replace it (--force)")
    if not isinstance(config, ModelConfig):
        raise ParameterError(f"config must be a ModelConfig, got {type(config).__name__}")
    schedule = options.overrides()
    if schedule:
        config = config.with_schedule(**schedule)
    return existing, config, limit


def load_data(
    features: str | Path | Features, *, out: Path, existing: dict[str, Any] | None, config: ModelConfig,
    limit: int | None,
) -> tuple[Features, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The features and the (train, valid, test) rows, checked against the data a resumed run was started on
    and against the shapes the architecture can divide."""
    feats = features if isinstance(features, Features) else load_features(features)
    params = feats.params
    if existing is not None:
        saved_params = SpectrogramParams.from_dict(existing["spectrogram"], source=f"{out / 'config.json'}")
        saved_params.require_equal(params, what=f"features folder {feats.path} (resuming {out})")
        if data_signature(existing["data"]) != data_signature(feats.description()):
            raise DataError(f"features folder {feats.path} is not the data run {out} was started on")

    config.family.check_input_shape(config, params=params)
    note_pitches(feats, family=config.family)
    train_rows = training_rows(feats, seed=config.schedule.seed, limit=limit)
    valid_rows, test_rows = (feats.subset(s) for s in ("valid", "test"))
    return feats, (train_rows, valid_rows, test_rows)


def start_point(out: Path, *, resume: bool, init_from: str | Path | None,
                repair: bool = True) -> tuple[Path | None, TrainingState | None]:
    """The checkpoint to resume from and its verified state (None, None for a new run); checks ``init_from``'s
    weights too, so that a bad one fails before the run folder is touched. ``repair``: the run's writer checks
    best.weights.h5 against the checkpoint (and repairs the one gap a kill leaves); the other workers of a
    cluster only read the checkpoint."""
    if init_from is not None:
        initial_weights(Path(init_from))
    ckpt, state = (latest_checkpoint(out) if resume else None), None
    if ckpt is not None:
        state = TrainingState.from_doc(read_checkpoint_state(ckpt), source=str(ckpt / "state.json"))
        if repair:
            check_best(out, ckpt, state)
    return ckpt, state
