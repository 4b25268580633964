"""fit(): check the arguments, the run folder, the data and the devices, then build the models and train.

On one machine, and for the chief of a cluster (TF_CONFIG), the run folder is ``out``, locked for the run
(:mod:`training.fit.run_lock`). Every other worker reads ``out`` (the data, and on ``--resume`` the checkpoint
all workers continue from: a folder every worker can read, a shared file system on a cluster) and writes a
scratch folder of its own, removed at the end, so the same loop runs unchanged on every worker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import ClusterError, DataError, OutputError, ParameterError
from synth.outputs import RUN, check_output_folder
from training.cluster.tf_config import ClusterSpec, read_tf_config
from training.datasets.features import Features
from training.fit.checkpoints import TrainingState, latest_checkpoint
from training.fit.devices import Placement, place
from training.fit.loop import train_epochs
from training.fit.models import compiled_models, start_from_data
from training.fit.options import FitOptions
from training.fit.resolve import load_data, resolve_run, start_point
from training.fit.run_folder import json_dump, run_doc
from training.fit.run_lock import run_lock
from training.fit.weights import initial_weights
from training.model.config import ModelConfig

__all__ = ["fit"]


def fit(
    *, features: str | Path | Features, config: ModelConfig | None, out: str | Path,
    options: FitOptions | None = None, strategy: Any = None,
) -> Path:
    """Train ``config`` on the features folder ``features`` and write the run folder ``out``.

    Parameters
    ----------
    features : a features folder (see :mod:`training.datasets.features`) or an already loaded Features
    config : the variant to fit; with ``options.resume`` it may be None (the run's own config is used),
        otherwise it must equal the run's config apart from the schedule fields a resume may change
        (``training.model.schedule.RESUMABLE_FIELDS``)
    out : the run folder; must not exist unless ``options.resume`` (continue it) or ``options.force`` (replace it)
    options : how to fit (:class:`~training.fit.options.FitOptions`: resume, force, the schedule and note
        budget, precision, devices, init_from); default ``FitOptions()``
    strategy : a tf.distribute strategy; default MultiWorkerMirroredStrategy when TF_CONFIG names a cluster,
        else MirroredStrategy when more than one GPU is visible

    Returns
    -------
    Path of the run folder.

    Raises
    ------
    ParameterError for bad arguments, an existing run folder without resume/force, a shape the architecture
    cannot divide; ContractError for features from another spectrogram contract than the run's;
    DataError for a bad features folder (NaN, checksum, empty split) or a corrupt checkpoint; OutputError when
    another run is writing ``out``; ClusterError when a worker of a cluster cannot start or reach the others.
    Nothing in ``out`` is written or removed before all of these checks pass.
    """
    options = FitOptions() if options is None else options
    if not isinstance(options, FitOptions):
        raise ParameterError(f"options must be a FitOptions, got {type(options).__name__}")
    out = Path(out)
    cluster = read_tf_config(os.environ.get("TF_CONFIG")) if strategy is None else None
    if cluster is not None and not cluster.is_chief:
        with tempfile.TemporaryDirectory(prefix=f"melsynth-{cluster.name(cluster.rank).replace(' ', '')}-") as scratch, \
                _lost_workers(cluster, out):
            return _fit(features=features, config=config, out=out, options=options, strategy=strategy,
                        cluster=cluster, writes=Path(scratch) / out.name)
    with run_lock(out), _lost_workers(cluster, out):
        return _fit(features=features, config=config, out=out, options=options, strategy=strategy, cluster=cluster,
                    writes=out)


@contextlib.contextmanager
def _lost_workers(cluster: ClusterSpec | None, out: Path):
    """A worker lost while the cluster trains becomes a ClusterError that says how to go on."""
    if cluster is None:
        yield
        return
    from training.cluster.strategy import lost_worker_errors

    try:
        yield
    except lost_worker_errors() as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"{cluster.name(cluster.rank)} at {cluster.address}: the cluster lost a worker while "
                           f"training ({first}); {out} keeps its last checkpoint: start every worker again with "
                           "--resume") from None


def _fit(
    *, features: str | Path | Features, config: ModelConfig | None, out: Path, options: FitOptions, strategy: Any,
    cluster: ClusterSpec | None, writes: Path,
) -> Path:
    """fit() of this process: read ``out``, write ``writes`` (``out`` itself but for a cluster's non-chief)."""
    chief = writes == out
    init_from = options.init_from
    if init_from is not None and out.resolve() in (Path(init_from).resolve(), *Path(init_from).resolve().parents):
        # force would delete the very weights the new run is to start from.
        raise ParameterError(f"init_from {init_from} is the run folder {out} (or inside it): name another --out")
    inputs = (features.path if isinstance(features, Features) else features, init_from, options.start_from)
    existing, config, limit = resolve_run(out, config=config, options=options, inputs=inputs, check_folder=chief)
    feats, rows = load_data(features, out=out, existing=existing, config=config, limit=limit)
    placement = place(mixed_precision=options.mixed_precision, strategy=strategy,
                      deterministic=options.deterministic, run_eagerly=options.run_eagerly, xla=options.xla,
                      existing=existing, out=out, cluster=cluster, connect_timeout=options.connect_timeout,
                      verbose=options.verbose)
    ckpt, ckpt_state = start_point(out, resume=options.resume, init_from=init_from, repair=chief)
    # A resumed run keeps the weights it was started from in its record; killed before its first checkpoint,
    # it starts from them again (checked here, before anything is touched), not from fresh ones.
    started_from = existing["fit"].get("init_from") if existing else init_from
    if options.resume and ckpt is None and started_from:
        initial_weights(Path(started_from))
        init_from = started_from
    # The trained part a fitted start keeps, read and checked now (a resumed run killed before its first
    # checkpoint starts again from the one it recorded).
    start_from = existing["fit"].get("start_from") if existing else options.start_from
    start_map = None
    if start_from is not None and ckpt is None and init_from is None:
        start_map = config.family.load_start(start_from, config, params=feats.params)

    # ------------------------------------------------------------------ all checks passed: touch the run folder
    if chief and not options.resume:
        if out.exists():
            # Checked again: the checks above read the features, and what holds the name may have changed.
            check_output_folder(out, kind=RUN, force=options.force, inputs=inputs)
            shutil.rmtree(out)
        out.mkdir(parents=True)
    writes.mkdir(parents=True, exist_ok=True)
    json_dump(writes / "config.json", run_doc(
        config=config, feats=feats, limit=limit, rows=rows, mixed_precision=options.mixed_precision,
        placement=placement, deterministic=options.deterministic, init_from=started_from,
        input_parallelism=options.input_parallelism, start_from=start_from,
    ))
    try:
        _build_and_train(
            out=writes, feats=feats, config=config, rows=rows, ckpt=ckpt, ckpt_state=ckpt_state,
            placement=placement, run_eagerly=options.run_eagerly, init_from=init_from,
            verbose=options.verbose if chief else 0, set_learning_rate="learning_rate" in options.schedule,
            new_run=not options.resume, input_parallelism=options.input_parallelism, start_map=start_map,
        )
    except Exception as exc:
        if _disk_full(exc):
            kept = latest_checkpoint(out) if chief else None
            if chief and not options.resume and kept is None:
                shutil.rmtree(out, ignore_errors=True)  # nothing to resume: nothing of the run is kept
                raise OutputError(f"{out}: the disk is full ({exc}); nothing of the run is kept") from None
            raise OutputError(f"{writes}: the disk is full ({exc}); {out} keeps its last checkpoint"
                              f"{f' ({kept.name})' if kept else ''}: free some space and go on with --resume") from None
        failure = _data_failure(feats, exc)
        if failure is None:
            raise
        # A shard or block of the features failed its check when training first read it.
        if chief and not options.resume and latest_checkpoint(out) is None:
            shutil.rmtree(out, ignore_errors=True)  # a new run with nothing to resume: nothing of it is kept
            raise failure from None
        raise DataError(f"{failure}; {out} keeps its last checkpoint: once the features are repaired, go on with "
                        "--resume") from None
    return out


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system is out of space (or quota); h5py's OSError (the weights) carries
    the errno only in its message."""
    import errno

    return isinstance(exc, OSError) and (exc.errno in (errno.ENOSPC, errno.EDQUOT)
                                         or os.strerror(errno.ENOSPC) in str(exc))


def _data_failure(feats: Features, exc: BaseException) -> DataError | None:
    """The features' own check failure behind ``exc``: the DataError a shard or block raised when first read,
    whether it reached here as itself or wrapped by TensorFlow (raised inside a tf.data ``numpy_function``)."""
    failure = getattr(feats.x, "failure", None)
    if failure is None:
        return None
    if isinstance(exc, DataError):
        return failure
    import tensorflow as tf

    return failure if isinstance(exc, tf.errors.OpError) else None


def _build_and_train(
    *, out: Path, feats: Features, config: ModelConfig, rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    ckpt: Path | None, ckpt_state: TrainingState | None, placement: Placement, run_eagerly: bool,
    init_from: str | Path | None, verbose: int, set_learning_rate: bool, new_run: bool, input_parallelism: int,
    start_map: Any = None,
) -> Path:
    """Build the models under the run's precision policy and seed, then train; the process-wide Keras policy
    is restored whatever happens."""
    import keras

    old_policy = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy(placement.policy)
        keras.utils.set_random_seed(config.schedule.seed)
        with placement.strategy.scope():
            models, optimizer = compiled_models(config, params=feats.params, jit=placement.jit,
                                                run_eagerly=run_eagerly, init_from=init_from, out=out,
                                                new_run=new_run)
            if config.family.fitted_start and ckpt is None and init_from is None:
                start_from_data(models, feats, rows[0], config=config, out=out if new_run else None,
                                verbose=verbose, start_map=start_map)
        # stacklevel 2: the training's warnings point at fit()'s call of this function.
        return train_epochs(
            out=out, feats=feats, config=config, models=models, optimizer=optimizer, rows=rows, ckpt=ckpt,
            ckpt_state=ckpt_state, verbose=verbose, set_learning_rate=set_learning_rate, strategy=placement.strategy,
            jit=placement.jit, run_eagerly=run_eagerly, input_parallelism=input_parallelism,
            chief=placement.chief, stacklevel=2,
        )
    finally:
        keras.mixed_precision.set_global_policy(old_policy)
