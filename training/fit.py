"""Fit one autoencoder variant on a features folder, into a resumable run folder.

Run folder layout (``out``)::

    config.json          {"format", "config": ModelConfig, "spectrogram": contract, "data": features
                          description, "fit": {limit, mixed_precision, train_notes, devices, ...}}
    history.csv          epoch, loss, val_loss, seconds (one row per finished epoch)
    best.weights.h5      autoencoder weights of the best validation epoch (Keras .weights.h5)
    status.json          epochs_done, best_epoch, best_val_loss, stopped ("running", "early_stopping",
                          "max_epochs", "non_finite_loss"), best_weights_sha256, seconds_per_epoch
    checkpoints/epoch-NNNN/   weights.weights.h5, optimizer.npz, state.json, checksums.json
                          (the last ``KEEP_CHECKPOINTS`` epochs while it trains, the newest once it
                          has stopped; each folder appears atomically)
    metrics.json         test-split metrics from synth.metrics.summary, when that module is available

Exact resume: a checkpoint holds the weights, every optimizer variable (Adam moments and step count), the
epoch, the early-stopping state and the history. The rest of the randomness is a pure function of
(seed, epoch): each epoch's shuffle order is drawn from ``numpy.random.default_rng([seed, epoch])`` and every
dropout layer's seed generator is reset to (its seed, epoch) at the start of the epoch. So a run stopped or
killed after epoch k and resumed ends with the same weights as an uninterrupted run with the same seed on
CPU. TensorFlow's CPU kernels gave bitwise-identical weights run to run here without op determinism;
``deterministic=True`` additionally switches on ``tf.config.experimental.enable_op_determinism()`` (a
guarantee rather than an observation, at about 1.5-2x the CPU step time measured here, and needed on GPU).

Input: per epoch a tf.data pipeline of shuffled row-index batches (:class:`NoteSource`): gathered from the
features held in memory when they fit (up to 2 GiB), else read from the memory-mapped ``features.npy`` by a
parallel ``numpy_function``, so only a few batches are in RAM at a time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_directory, atomic_path, atomic_write_text
from synth.errors import DataError, ParameterError
from synth.json_files import read_json_file
from synth.outputs import CHECKPOINT, RUN, check_output_folder
from synth.spectrogram import SpectrogramParams
from training.datasets.features import Features, load_features, sha256_file
from training.model.config import SCHEDULE_FIELDS, ModelConfig

__all__ = ["fit", "NoteSource", "load_weights_whole", "RUN_FORMAT", "KEEP_CHECKPOINTS", "XLA_CHOICES", "latest_checkpoint", "read_checkpoint_state",
           "training_rows", "use_xla"]

RUN_FORMAT = "melsynth-run/1"
KEEP_CHECKPOINTS = 2
_CKPT_FILES = ("weights.weights.h5", "optimizer.npz", "state.json")
XLA_CHOICES = ("auto", "on", "off")


def use_xla(xla: str, *, gpus: int) -> bool:
    """Whether to compile the train step with XLA: ``"on"``, ``"off"``, or ``"auto"``, which is off on the CPU
    and on with a GPU.

    On this project's 2-core CPU machine, XLA made the paper-size model's epochs 2.6 times slower at batch 16
    (64.8 s against 25.2 s for 1025 notes, 15.8 against 40.7 notes/s; 2.65 times in a second run:
    bench/bench_training.py, real epochs of this loop with and without it, 2026-12-02, docs/BENCHMARKS.md).
    On a GPU,
    XLA's kernel fusion is the usual win for convolutional models; "auto" follows that, and bench_training
    measures it whenever TensorFlow sees a GPU.
    """
    if xla not in XLA_CHOICES:
        raise ParameterError(f"xla must be one of {XLA_CHOICES}, got {xla!r}")
    return xla == "on" or (xla == "auto" and gpus > 0)


# ---------------------------------------------------------------------------------------------- small helpers
def _json_dump(path: Path, doc: Any) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` onto ``dst`` so that ``dst`` is always either the old or the complete new file."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["epoch", "loss", "val_loss", "seconds", "learning_rate"], lineterminator="\n"
    )
    writer.writeheader()
    for row in history:
        # Rows from checkpoints written before the learning rate was logged leave it empty.
        writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
    atomic_write_text(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------- checkpoints
def latest_checkpoint(run: str | Path) -> Path | None:
    """The newest ``checkpoints/epoch-NNNN`` folder of a run, or None."""
    folder = Path(run) / "checkpoints"
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.glob("epoch-[0-9][0-9][0-9][0-9]") if p.is_dir())
    return found[-1] if found else None


def read_checkpoint_state(ckpt: Path) -> dict[str, Any]:
    """Verify a checkpoint folder's SHA-256 sums and return its state.json; DataError if corrupt."""
    sums = read_json_file(ckpt / "checksums.json", what="checkpoint checksums", error=DataError)
    if not isinstance(sums, dict):
        raise DataError(f"{ckpt / 'checksums.json'}: expected an object of SHA-256 sums")
    for name in _CKPT_FILES:
        path = ckpt / name
        if not path.is_file():
            raise DataError(f"checkpoint {ckpt}: {name} is missing")
        if sums.get(name) != sha256_file(path):
            raise DataError(f"checkpoint {ckpt}: {name} fails its SHA-256 check (corrupt or changed)")
    state = read_json_file(ckpt / "state.json", what="checkpoint state", error=DataError)
    keys = ("epochs_done", "best_val_loss", "best_epoch", "wait", "history", "n_optimizer_variables")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise DataError(f"{ckpt / 'state.json'}: malformed checkpoint state (needs {list(keys)})")
    return state


def _write_checkpoint(run: Path, model: Any, optimizer: Any, state: dict[str, Any], *, improved: bool) -> Path:
    """Write ``checkpoints/epoch-NNNN`` atomically (pruning older ones); with ``improved`` its weights become
    ``best.weights.h5`` too. The checkpoint is written first and records the best weights' SHA-256, so a kill
    between the two steps is repaired on resume (:func:`_check_best`)."""
    folder = run / "checkpoints"
    folder.mkdir(exist_ok=True)
    target = folder / f"epoch-{state['epochs_done']:04d}"
    with atomic_directory(target, kind=CHECKPOINT, force=True) as tmp:
        model.save_weights(tmp / "weights.weights.h5")
        weights_sha = sha256_file(tmp / "weights.weights.h5")
        if improved:
            state["best_weights_sha256"] = weights_sha
        arrays = {f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
        np.savez(tmp / "optimizer.npz", **arrays)
        doc = dict(state, n_optimizer_variables=len(arrays))
        (tmp / "state.json").write_text(json.dumps(doc, indent=2) + "\n")
        sums = {name: sha256_file(tmp / name) for name in _CKPT_FILES}
        (tmp / "checksums.json").write_text(json.dumps(sums, indent=2) + "\n")
    if improved:
        _copy_atomic(target / "weights.weights.h5", run / "best.weights.h5")
    for old in sorted(p for p in folder.glob("epoch-[0-9][0-9][0-9][0-9]") if p.is_dir())[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _keep_newest_checkpoint(run: Path) -> None:
    """Once a run has stopped: only its newest checkpoint, which a resume with a larger --max-epochs continues
    from, and none of the temporary folders a kill left (a paper-size checkpoint is about 680 MB)."""
    folder = run / "checkpoints"
    if not folder.is_dir():
        return
    done = sorted(p for p in folder.glob("epoch-[0-9][0-9][0-9][0-9]") if p.is_dir())
    for old in [*done[:-1], *folder.glob(".epoch-*.tmp")]:
        shutil.rmtree(old, ignore_errors=True)


def _check_best(run: Path, ckpt: Path, state: dict[str, Any]) -> None:
    """Make sure best.weights.h5 is the one the checkpoint names; repair the one gap a kill can leave."""
    best = run / "best.weights.h5"
    want = state.get("best_weights_sha256")
    if state.get("best_epoch") is None or want is None:
        return
    if best.is_file() and sha256_file(best) == want:
        return
    if state["best_epoch"] == state["epochs_done"]:
        # Killed after writing this checkpoint but before copying its weights to best.weights.h5.
        _copy_atomic(ckpt / "weights.weights.h5", best)
        return
    raise DataError(
        f"{best}: missing or not the best weights that checkpoint {ckpt} records (corrupt or changed)"
    )


def _restore_checkpoint(ckpt: Path, state: dict[str, Any], model: Any, optimizer: Any) -> None:
    """Load a checkpoint already verified by :func:`read_checkpoint_state` into ``model`` and ``optimizer``."""
    load_weights_whole(model, ckpt / "weights.weights.h5", what=f"this model (checkpoint {ckpt})")
    try:
        with np.load(ckpt / "optimizer.npz", allow_pickle=False) as data:
            arrays = [data[f"v{i:04d}"] for i in range(len(data.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"checkpoint {ckpt}: optimizer.npz unreadable ({exc})") from None
    variables = list(optimizer.variables)
    if len(arrays) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables, strict=False)):
        raise DataError(f"checkpoint {ckpt}: optimizer state does not fit this model/optimizer")
    for v, a in zip(variables, arrays, strict=True):
        v.assign(a)


# ---------------------------------------------------------------------------------------------- data
#: Feature sets up to this size are held in memory for the run; larger ones are read from the memory map.
IN_MEMORY_BYTES = 2 << 30


class NoteSource:
    """Where a run's batches come from: the features in memory (a TensorFlow constant, gathered by pure
    TensorFlow ops) when they fit in :data:`IN_MEMORY_BYTES`, else rows read from the memory-mapped
    features.npy by a parallel ``numpy_function``.

    tf.data's autotuning is switched off (fixed parallelism and prefetch): its optimisation thread sleeps
    between rounds for ever longer periods, and tearing down an epoch's iterator waits for it to wake. With
    TensorFlow 2.21 that wait was 30-40 s at the end of every epoch (py-spy: the main thread in
    ``UnboundedThreadPool::LogicalThreadWrapper::~LogicalThreadWrapper``, no CPU used): half of each 82 s
    epoch of the 1020 SoundFont notes at batch 16.

    With ``pitch`` (the MIDI key of every row [shape=(N,)], for a pitch-conditioned family) each batch is
    ``((notes, their keys, the targets' keys), targets)`` instead of ``(notes, notes)``.
    """

    def __init__(self, x: np.ndarray, *, params: SpectrogramParams, in_memory: bool | None = None,
                 pitch: np.ndarray | None = None) -> None:
        self.x = x
        self.params = params
        self.pitch = None if pitch is None else np.asarray(pitch, dtype=np.int32)
        self.in_memory = x.nbytes <= IN_MEMORY_BYTES if in_memory is None else in_memory
        self._tensor = None

    def _constant(self) -> Any:
        import tensorflow as tf

        if self._tensor is None:
            with tf.device("/CPU:0"):
                self._tensor = tf.constant(np.asarray(self.x, dtype=np.float32))
        return self._tensor

    def dataset(self, rows: np.ndarray, *, batch_size: int, targets: np.ndarray | None = None) -> Any:
        """A tf.data pipeline of the batches of ``rows`` in order, each row asked to reconstruct the same
        position of ``targets`` (default: itself); float32 notes."""
        import tensorflow as tf

        targets = rows if targets is None else targets
        if len(targets) != len(rows):
            raise ParameterError(f"note source: {len(rows)} rows and {len(targets)} targets")
        # Every row its own target (every family but one learning across keys): each note gathered once.
        own = targets is rows or np.array_equal(targets, rows)
        pairs = np.stack([rows, targets], axis=1).astype(np.int64)
        ds = tf.data.Dataset.from_tensor_slices(pairs).batch(batch_size)
        # Constants are made here, eagerly: made inside a traced map function they would belong to its graph.
        keys = None if self.pitch is None else tf.constant(self.pitch)

        def batch(notes: Any, targets: Any, pairs: Any) -> tuple[Any, Any]:
            if keys is None:
                return notes, targets
            both = tf.gather(keys, pairs)[:, :, None]  # (batch, 2, 1)
            return (notes, both[:, 0], both[:, 1]), targets

        if self.in_memory:
            x = self._constant()

            def gather(pairs: Any) -> tuple[Any, Any]:
                notes = tf.gather(x, pairs[:, 0])
                return batch(notes, notes if own else tf.gather(x, pairs[:, 1]), pairs)

            return ds.map(gather, num_parallel_calls=2, deterministic=True).prefetch(2).with_options(_options())
        memmap, params = self.x, self.params

        def read(rows: np.ndarray) -> np.ndarray:
            # Sorted reads are sequential on disk; each row read once however often the batch names it.
            unique, where = np.unique(rows, return_inverse=True)
            return np.ascontiguousarray(np.asarray(memmap[unique], dtype=np.float32)[where.reshape(rows.shape)])

        def load(pairs: Any) -> tuple[Any, Any]:
            both = tf.numpy_function(read, [pairs], tf.float32, stateful=False)
            both.set_shape([None, 2, params.n_mels, params.frames])
            return batch(both[:, 0], both[:, 1], pairs)

        return ds.map(load, num_parallel_calls=2, deterministic=True).prefetch(2).with_options(_options())


def _options() -> Any:
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False  # see NoteSource
    return options


def note_pitches(feats: Features, *, family: Any) -> np.ndarray | None:
    """The MIDI key of every row of ``feats`` [shape=(N,)] when ``family`` is pitch-conditioned (checked: it
    needs keys 0..127, at least two of them), else None."""
    if not family.pitch_conditioned:
        return None
    try:
        pitch = np.asarray([int(r["pitch"]) for r in feats.rows], dtype=np.int32)
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{feats.path / 'index.json'}: a pitch-conditioned model needs every note's MIDI "
                        "key ('pitch')") from None
    family.check_pitches(pitch, where=str(feats.path))
    return pitch


def training_rows(feats: Features, *, seed: int, limit: int | None) -> np.ndarray:
    """The rows of the training split a run fits on: all of them, or a seeded subset of ``limit``."""
    rows = feats.subset("train")
    if limit is not None and limit < len(rows):
        pick = np.random.default_rng([seed, 7919]).choice(len(rows), size=limit, replace=False)
        rows = np.sort(rows[pick])
    return rows


def epoch_order(rows: np.ndarray, *, seed: int, epoch: int) -> np.ndarray:
    """The training rows of ``epoch`` in their shuffled order (a pure function of seed and epoch)."""
    return rows[np.random.default_rng([seed, epoch]).permutation(len(rows))]


def _dropout_layers(models: tuple[Any, ...]) -> list[Any]:
    import keras

    return [layer for m in models for layer in m.layers if isinstance(layer, keras.layers.Dropout)]


def _reset_dropout_rngs(layers: list[Any], base: list[int], epoch: int) -> None:
    # Each epoch's dropout masks depend only on (layer seed, epoch): resumable without saving RNG state.
    for layer, seed in zip(layers, base, strict=True):
        state = layer.seed_generator.state
        state.assign(np.asarray([seed, epoch * (1 << 24)], dtype=state.dtype))


# ---------------------------------------------------------------------------------------------- the run
def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")


def _data_signature(description: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in description.items() if k != "path"}


def _load_existing(out: Path) -> dict[str, Any]:
    doc = read_json_file(out / "config.json", what="run config", error=DataError)
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise DataError(f"{out / 'config.json'}: not a melsynth run config (format {RUN_FORMAT!r} expected)")
    for key in ("config", "spectrogram", "data", "fit"):
        if key not in doc:
            raise DataError(f"{out / 'config.json'}: missing {key!r}")
    return doc


def _checked_arguments(
    schedule: dict[str, Any] | None, *, max_epochs: int | None, limit: int | None, xla: str, resume: bool,
    force: bool, init_from: str | Path | None,
) -> dict[str, Any]:
    """The checks of :func:`fit`'s arguments that need no file; returns the schedule overrides in effect
    (``max_epochs`` included)."""
    _check_positive("max_epochs", max_epochs)
    _check_positive("limit", limit)
    if xla not in XLA_CHOICES:
        raise ParameterError(f"xla must be one of {XLA_CHOICES}, got {xla!r}")
    schedule = dict(schedule or {})
    unknown = sorted(set(schedule) - set(SCHEDULE_FIELDS))
    if unknown:
        raise ParameterError(f"schedule: unknown keys {unknown}; the schedule fields are {list(SCHEDULE_FIELDS)}")
    if max_epochs is not None:
        schedule["max_epochs"] = max_epochs
    if init_from is not None and resume:
        raise ParameterError("init_from starts a new run; a resumed run continues from its own checkpoint")
    if resume and force:
        raise ParameterError("resume and force exclude each other (resume continues a run, force replaces it)")
    return schedule


def _resolve_run(
    out: Path, *, config: ModelConfig | None, resume: bool, force: bool, limit: int | None,
    mixed_precision: bool, schedule: dict[str, Any], inputs: tuple[str | Path | None, ...],
) -> tuple[dict[str, Any] | None, ModelConfig, int | None]:
    """(the run's config.json when resuming, the config to fit with the schedule applied, the limit): a resumed
    run keeps its own config apart from the schedule, its limit and its precision; a new run needs a config and a
    free folder (or ``force``)."""
    existing: dict[str, Any] | None = None
    if resume:
        if not out.is_dir():
            raise ParameterError(f"{out}: no run folder to resume")
        existing = _load_existing(out)
        saved = ModelConfig.from_dict(existing["config"], source=f"{out / 'config.json'} config")
        if config is not None and config.replace(**{k: getattr(saved, k) for k in SCHEDULE_FIELDS}) != saved:
            raise ParameterError(
                f"{out}: the given config differs from the run's own config.json beyond the schedule fields "
                f"{list(SCHEDULE_FIELDS)}; resume without a config or start a new run"
            )
        config = saved
        if limit is not None and limit != existing["fit"].get("limit"):
            raise ParameterError(f"{out}: limit {limit} differs from the run's {existing['fit'].get('limit')}")
        limit = existing["fit"].get("limit")
        if bool(mixed_precision) != bool(existing["fit"].get("mixed_precision", False)):
            raise ParameterError(f"{out}: mixed_precision must match the run's ({existing['fit'].get('mixed_precision')})")
    else:
        if config is None:
            raise ParameterError("a model config is needed for a new run")
        # --force replaces an earlier run (or an empty folder), never the features it is to train on.
        check_output_folder(out, kind=RUN, force=force, inputs=inputs,
                            hint="resume it (--resume) or replace it (--force)")
    if not isinstance(config, ModelConfig):
        raise ParameterError(f"config must be a ModelConfig, got {type(config).__name__}")
    if schedule:
        config = config.replace(**schedule)
    return existing, config, limit


def _load_data(
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
        if _data_signature(existing["data"]) != _data_signature(feats.description()):
            raise DataError(f"features folder {feats.path} is not the data run {out} was started on")

    config.family.check_input_shape(config, params=params)
    note_pitches(feats, family=config.family)
    train_rows = training_rows(feats, seed=config.seed, limit=limit)
    valid_rows, test_rows = (feats.subset(s) for s in ("valid", "test"))
    return feats, (train_rows, valid_rows, test_rows)


def _devices(
    *, mixed_precision: bool, strategy: Any, deterministic: bool, run_eagerly: bool, xla: str,
    existing: dict[str, Any] | None, out: Path,
) -> tuple[list[Any], Any, bool, str]:
    """(visible GPUs, the distribution strategy, whether to XLA-compile, the Keras precision policy); switches on
    op determinism if asked, once the precision is known to suit the run being resumed (``existing``)."""
    import tensorflow as tf

    from training.devices import mixed_precision_policy

    gpus = tf.config.list_physical_devices("GPU")
    # refuses a CPU without native bfloat16 before anything is written
    policy = mixed_precision_policy(gpus=len(gpus)) if mixed_precision else "float32"
    if existing is not None:
        # Runs written before fit.precision was recorded trained in float16 when mixed (GPU only then).
        trained = existing["fit"].get("precision", "mixed_float16" if existing["fit"].get("mixed_precision") else
                                      "float32")
        if trained != policy:
            raise ParameterError(f"{out}: this machine would train in {policy}, the run was trained in {trained}; "
                                 "resume it where that precision is available")
    if strategy is None:
        strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    jit = False if run_eagerly else use_xla(xla, gpus=len(gpus))
    return gpus, strategy, jit, policy


def _start_point(out: Path, *, resume: bool, init_from: str | Path | None) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint to resume from and its verified state (None, None for a new run); checks ``init_from``'s
    weights too, so that a bad one fails before the run folder is touched."""
    if init_from is not None:
        _initial_weights(Path(init_from))
    ckpt, ckpt_state = (latest_checkpoint(out) if resume else None), None
    if ckpt is not None:
        ckpt_state = read_checkpoint_state(ckpt)
        _check_best(out, ckpt, ckpt_state)
    return ckpt, ckpt_state


def _run_doc(
    *, config: ModelConfig, feats: Features, limit: int | None, rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    mixed_precision: bool, policy: str, strategy: Any, gpus: list[Any], deterministic: bool, jit: bool,
    init_from: str | Path | None,
) -> dict[str, Any]:
    """The run's config.json: the config, the contract and data it fits, and how (budget, devices, versions)."""
    import keras
    import tensorflow as tf

    train_rows, valid_rows, test_rows = rows
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
            "precision": policy,
            "replicas": int(strategy.num_replicas_in_sync),
            "devices": f"GPU x {len(gpus)}" if gpus else "CPU",
            "deterministic": bool(deterministic),
            "xla": bool(jit),
            "init_from": None if init_from is None else str(init_from),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keep_checkpoints": KEEP_CHECKPOINTS,
        },
    }


def fit(
    *,
    features: str | Path | Features,
    config: ModelConfig | None,
    out: str | Path,
    resume: bool = False,
    force: bool = False,
    max_epochs: int | None = None,
    schedule: dict[str, Any] | None = None,
    limit: int | None = None,
    mixed_precision: bool = False,
    verbose: int = 1,
    strategy: Any = None,
    deterministic: bool = False,
    run_eagerly: bool = False,
    xla: str = "auto",
    init_from: str | Path | None = None,
) -> Path:
    """Train ``config`` on the features folder ``features`` and write the run folder ``out``.

    Parameters
    ----------
    features : a features folder (see :mod:`training.datasets.features`) or an already loaded Features
    config : the variant to fit; with ``resume`` it may be None (the run's own config is used), otherwise it
        must equal the run's config apart from the schedule fields (``SCHEDULE_FIELDS``)
    out : the run folder; must not exist unless ``resume`` (continue it) or ``force`` (replace it)
    max_epochs : overrides ``config.max_epochs`` (also on resume, to extend a run)
    schedule : overrides of the fitting schedule, keys from ``SCHEDULE_FIELDS`` (learning_rate, patience,
        max_epochs, lr_patience, lr_factor, min_delta); also on resume, where a ``learning_rate`` replaces the
        optimizer's current rate. A resumed run whose schedule changed is no longer bitwise-equal to an
        uninterrupted one; config.json records the schedule in effect and history.csv each epoch's rate.
    limit : use at most this many training notes (a seeded random subset), for small budgets
    mixed_precision : mixed_float16 compute on a GPU, mixed_bfloat16 on a CPU with native bfloat16 (AMX or
        AVX512-BF16); variables and the output layer stay float32, config.json records the policy as
        ``fit.precision``. Refused with a ParameterError on a CPU without native bfloat16, where it is slower
        (see :func:`training.devices.mixed_precision_policy`)
    verbose : Keras progress output (0 silent, 1 progress bar, 2 one line per epoch)
    strategy : a tf.distribute strategy; default MirroredStrategy when more than one GPU is visible
    deterministic : switch on TensorFlow's op determinism (process-wide; slower, see the module docstring)
    run_eagerly : Keras eager execution, no graph tracing or XLA: slower steps, but a tiny model (tests,
        debugging) trains in a fraction of the ~10 s that tracing takes on a busy 2-core machine
    xla : "auto" (off on the CPU, on with a GPU; see :func:`use_xla`), "on" or "off"; recorded in config.json
    init_from : a new run starts from the best weights of this run folder (same architecture) instead of a
        random initialisation: fine-tuning, or restarting a run that diverged from its best epoch with a new
        schedule; recorded in config.json

    Returns
    -------
    Path of the run folder.

    Raises
    ------
    ParameterError for bad arguments, an existing run folder without resume/force, a shape the architecture
    cannot divide; ContractError for features from another spectrogram contract than the run's;
    DataError for a bad features folder (NaN, checksum, empty split) or a corrupt checkpoint.
    Nothing in ``out`` is written or removed before all of these checks pass.
    """
    schedule = _checked_arguments(schedule, max_epochs=max_epochs, limit=limit, xla=xla, resume=resume, force=force,
                                  init_from=init_from)
    out = Path(out)
    if init_from is not None and out.resolve() in (Path(init_from).resolve(), *Path(init_from).resolve().parents):
        # force would delete the very weights the new run is to start from.
        raise ParameterError(f"init_from {init_from} is the run folder {out} (or inside it): name another --out")
    inputs = (features.path if isinstance(features, Features) else features, init_from)
    existing, config, limit = _resolve_run(out, config=config, resume=resume, force=force, limit=limit,
                                           mixed_precision=mixed_precision, schedule=schedule, inputs=inputs)
    feats, rows = _load_data(features, out=out, existing=existing, config=config, limit=limit)
    gpus, strategy, jit, policy = _devices(mixed_precision=mixed_precision, strategy=strategy,
                                           deterministic=deterministic, run_eagerly=run_eagerly, xla=xla,
                                           existing=existing, out=out)
    ckpt, ckpt_state = _start_point(out, resume=resume, init_from=init_from)
    # A resumed run keeps the weights it was started from in its record; killed before its first checkpoint,
    # it starts from them again (checked here, before anything is touched), not from fresh ones.
    started_from = existing["fit"].get("init_from") if existing else init_from
    if resume and ckpt is None and started_from:
        _initial_weights(Path(started_from))
        init_from = started_from

    # ------------------------------------------------------------------ all checks passed: touch the run folder
    if not resume:
        if out.exists():
            # Checked again: the checks above read the features, and what holds the name may have changed.
            check_output_folder(out, kind=RUN, force=force, inputs=inputs)
            shutil.rmtree(out)
        out.mkdir(parents=True)
    _json_dump(out / "config.json", _run_doc(
        config=config, feats=feats, limit=limit, rows=rows, mixed_precision=mixed_precision, policy=policy,
        strategy=strategy, gpus=gpus, deterministic=deterministic, jit=jit, init_from=started_from,
    ))
    return _build_and_train(
        out=out, feats=feats, config=config, rows=rows, ckpt=ckpt, ckpt_state=ckpt_state,
        policy=policy, strategy=strategy, jit=jit, run_eagerly=run_eagerly, init_from=init_from,
        verbose=verbose, set_learning_rate="learning_rate" in schedule, new_run=not resume,
    )


def _compiled_models(
    config: ModelConfig, *, params: SpectrogramParams, jit: bool, run_eagerly: bool, init_from: str | Path | None,
    out: Path, new_run: bool,
) -> tuple[tuple[Any, Any, Any], Any]:
    """((autoencoder, encoder, decoder), the optimizer to checkpoint), compiled and built; called inside the
    strategy's scope."""
    import keras

    autoencoder, encoder, decoder = config.family.build(config, params=params)
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=config.clipnorm)
    autoencoder.compile(optimizer=optimizer, loss="mse", jit_compile=jit, run_eagerly=run_eagerly)
    if init_from is not None:
        try:
            _load_initial_weights(autoencoder, Path(init_from))
        except DataError:
            if new_run:  # nothing of a new run is kept; a resumed one stays as it was
                shutil.rmtree(out, ignore_errors=True)
            raise
    # Under mixed_float16 Keras wraps Adam in a LossScaleOptimizer whose scale is optimizer state
    # too: checkpoint the wrapper's variables.
    optimizer = autoencoder.optimizer
    optimizer.build(autoencoder.trainable_variables)
    return (autoencoder, encoder, decoder), optimizer


def _build_and_train(
    *, out: Path, feats: Features, config: ModelConfig, rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    ckpt: Path | None, ckpt_state: dict[str, Any] | None, policy: str, strategy: Any, jit: bool,
    run_eagerly: bool, init_from: str | Path | None, verbose: int, set_learning_rate: bool, new_run: bool,
) -> Path:
    """Build the models under the run's precision policy and seed, then train; the process-wide Keras policy
    is restored whatever happens."""
    import keras

    old_policy = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            models, optimizer = _compiled_models(config, params=feats.params, jit=jit, run_eagerly=run_eagerly,
                                                 init_from=init_from, out=out, new_run=new_run)
            if config.family.fitted_start and ckpt is None and init_from is None:
                _start_from_data(models, feats, rows[0], config=config, out=out if new_run else None,
                                 verbose=verbose)
        return _train(
            out=out, feats=feats, config=config, params=feats.params, models=models, optimizer=optimizer,
            rows=rows, ckpt=ckpt, ckpt_state=ckpt_state, verbose=verbose, set_learning_rate=set_learning_rate,
        )
    finally:
        keras.mixed_precision.set_global_policy(old_policy)


#: A family that starts from its training notes (a PCA) reads at most this many of them, a seeded sample: the
#: 1275-note sets whole, the keyboard set's 17,375 training notes (4.6 GB as float32) not.
START_NOTES = 2048


def _start_from_data(models: tuple[Any, Any, Any], feats: Features, train_rows: np.ndarray, *, config: ModelConfig,
                     out: Path | None, verbose: int) -> None:
    """A new run of a family with a fitted start (the PCA of its training patches) starts from up to
    :data:`START_NOTES` training notes; ``out``, a new run's folder, is removed when that fails (None: a
    resumed run's, which stays)."""
    rows = np.sort(train_rows)
    if len(rows) > START_NOTES:
        rows = np.sort(np.random.default_rng([config.seed, 15485863]).choice(rows, START_NOTES, replace=False))
    pitch = note_pitches(feats, family=config.family)
    try:
        config.family.initialise(models, np.asarray(feats.x[rows], dtype=np.float32),
                                 pitch=np.zeros(len(rows), np.int32) if pitch is None else pitch[rows],
                                 config=config, log=print if verbose else None)
    except DataError:
        if out is not None:  # a new run: nothing of it is kept
            shutil.rmtree(out, ignore_errors=True)
        raise


def _start_state(
    out: Path, autoencoder: Any, optimizer: Any, *, ckpt: Path | None, ckpt_state: dict[str, Any] | None,
    config: ModelConfig, verbose: int, set_learning_rate: bool,
) -> dict[str, Any]:
    """The epoch loop's state: a fresh one, or the checkpoint's, with its weights and optimizer restored."""
    state: dict[str, Any] = {"epochs_done": 0, "best_val_loss": None, "best_epoch": None, "wait": 0, "history": []}
    if ckpt is not None and ckpt_state is not None:
        _restore_checkpoint(ckpt, ckpt_state, autoencoder, optimizer)
        state = ckpt_state
        if set_learning_rate:
            # The checkpoint restored the rate the run had reached; an explicit one replaces it.
            optimizer.learning_rate.assign(config.learning_rate)
        if verbose:
            print(f"melsynth train: resuming {out} after epoch {state['epochs_done']} ({ckpt.name}), "
                  f"learning rate {float(optimizer.learning_rate.numpy()):.3g}")
    return state


def _one_epoch_callback() -> Any:
    """The callback class that ends Keras fit() after one epoch."""
    import keras

    class _OneEpoch(keras.callbacks.Callback):
        # fit() runs one epoch per call (so shuffling and RNG are per-epoch functions), yet the progress
        # bar shows "Epoch e/max_epochs".
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.model.stop_training = True

    return _OneEpoch


def _fit_epoch(
    autoencoder: Any, source: NoteSource, *, train_rows: np.ndarray, notes: list[dict[str, Any]], valid_ds: Any,
    epoch: int, config: ModelConfig, dropout: tuple[list[Any], list[int]], callback: Any, verbose: int,
) -> tuple[float, float, float]:
    """Train epoch ``epoch`` with its own shuffle order, targets and dropout seeds: (loss, val_loss, seconds)."""
    _reset_dropout_rngs(*dropout, epoch)
    order = epoch_order(train_rows, seed=config.seed, epoch=epoch)
    targets = config.family.targets(order, notes=notes, seed=config.seed, epoch=epoch)
    train_ds = source.dataset(order, batch_size=config.batch_size, targets=targets)
    t0 = time.perf_counter()
    hist = autoencoder.fit(
        train_ds, validation_data=valid_ds, epochs=config.max_epochs, initial_epoch=epoch,
        verbose=verbose, callbacks=[callback()], shuffle=False,
    )
    seconds = time.perf_counter() - t0
    return float(hist.history["loss"][-1]), float(hist.history["val_loss"][-1]), seconds


def _judge_epoch(
    state: dict[str, Any], config: ModelConfig, optimizer: Any, *, out: Path, epoch: int, loss: float,
    val_loss: float, rate: float, verbose: int,
) -> tuple[str, bool]:
    """(whether the run goes on, "running", or why it stops; whether the epoch is the best so far), updating
    the best-epoch and early-stopping counters of ``state``."""
    if not (math.isfinite(loss) and math.isfinite(val_loss)):
        # stacklevel 4: the warning points at fit() (_judge_epoch <- _train <- _build_and_train <- fit).
        warnings.warn(f"{out}: loss became {loss} / {val_loss} at epoch {epoch}; stopping", stacklevel=4)
        return "non_finite_loss", False
    best = state["best_val_loss"]
    improved = best is None or val_loss < best
    # Any better loss keeps its weights. The patience counters are reset by one better by more than min_delta
    # (relative) than the loss that last reset them, as Keras' EarlyStopping judges: judged against the
    # latest tiny improvement instead, a run improving steadily by less than min_delta an epoch would stop.
    reference = state.get("patience_reference", best)  # checkpoints from before it was kept: the best
    significant = reference is None or val_loss < reference * (1.0 - config.min_delta)
    if improved:
        state.update(best_val_loss=val_loss, best_epoch=epoch)
    if significant:
        state.update(wait=0, lr_wait=0, patience_reference=val_loss)
        return "running", improved
    return _plateau_epoch(state, config, optimizer, rate, verbose=verbose), improved


def _train(
    *, out: Path, feats: Features, config: ModelConfig, params: SpectrogramParams, models: tuple[Any, Any, Any],
    optimizer: Any, rows: tuple[np.ndarray, np.ndarray, np.ndarray], ckpt: Path | None,
    ckpt_state: dict[str, Any] | None, verbose: int, set_learning_rate: bool,
) -> Path:
    """The epoch loop: one Keras fit() per epoch, each followed by its history, checkpoint and status, then the
    best epoch's weights back into the models and the test metrics."""
    autoencoder = models[0]
    train_rows, valid_rows, test_rows = rows
    state = _start_state(out, autoencoder, optimizer, ckpt=ckpt, ckpt_state=ckpt_state, config=config,
                         verbose=verbose, set_learning_rate=set_learning_rate)
    best_path = out / "best.weights.h5"
    # A run that already stopped for good stays stopped; one stopped by max_epochs may be extended.
    stopped = state.get("stopped") if state.get("stopped") in ("early_stopping", "non_finite_loss") else "running"

    drops = _dropout_layers(models[1:])
    drop_seeds = [int(layer.seed_generator.state.numpy()[0]) for layer in drops]
    source = NoteSource(feats.x, params=params, pitch=note_pitches(feats, family=config.family))
    # Validation pairs are drawn once (epoch -1), so every epoch is judged on the same task.
    valid_ds = source.dataset(valid_rows, batch_size=config.batch_size,
                              targets=config.family.targets(valid_rows, notes=feats.rows, seed=config.seed, epoch=-1))
    callback = _one_epoch_callback()

    epoch = state["epochs_done"]
    while stopped == "running" and epoch < config.max_epochs:
        loss, val_loss, seconds = _fit_epoch(
            autoencoder, source, train_rows=train_rows, notes=feats.rows, valid_ds=valid_ds, epoch=epoch, config=config,
            dropout=(drops, drop_seeds), callback=callback, verbose=verbose,
        )
        epoch += 1
        rate = float(optimizer.learning_rate.numpy())
        state["history"].append(
            {"epoch": epoch, "loss": loss, "val_loss": val_loss, "seconds": round(seconds, 3), "learning_rate": rate}
        )
        stopped, improved = _judge_epoch(state, config, optimizer, out=out, epoch=epoch, loss=loss,
                                         val_loss=val_loss, rate=rate, verbose=verbose)
        state["epochs_done"] = epoch
        state["stopped"] = stopped
        _write_history(out / "history.csv", state["history"])
        _write_checkpoint(out, autoencoder, optimizer, state, improved=improved)
        _write_status(out, state, "running" if stopped == "running" else stopped)
    if stopped == "running":
        stopped = "max_epochs"
    _write_history(out / "history.csv", state["history"])
    _write_status(out, state, stopped)
    _keep_newest_checkpoint(out)
    if state["best_epoch"] is None:
        raise DataError(f"{out}: no epoch finished with a finite loss; nothing to keep")

    # Like EarlyStopping(restore_best_weights=True): the models end with the best epoch's weights.
    load_weights_whole(autoencoder, best_path, what="the model it was saved from")
    _write_metrics(out, feats, autoencoder, test_rows, source=source, config=config, params=params,
                   verbose=verbose)
    return out


def _initial_weights(run: Path) -> Path:
    """The checked best weights of run folder ``run`` (to start a new run from); DataError naming the problem."""
    if not run.is_dir():
        raise DataError(f"{run}: no run folder to start from")
    weights = run / "best.weights.h5"
    status = read_json_file(run / "status.json", what="run status", error=DataError)
    if not weights.is_file():
        raise DataError(f"{weights}: missing (init_from needs a run that finished an epoch)")
    want = status.get("best_weights_sha256") if isinstance(status, dict) else None
    if want and sha256_file(weights) != want:
        raise DataError(f"{weights}: fails its SHA-256 check")
    return weights


def load_weights_whole(model: Any, weights: Path, *, what: str) -> None:
    """Load a .weights.h5 file into ``model``, all of it or not at all: DataError (``what`` says what was
    expected) for a file that does not fit, including one Keras would load only in part (it warns "Affected
    layers will retain their freshly-initialized weights" and goes on). The optimizer state such a file may
    hold is not taken (a model loads its weights; a run restores its optimizer from its checkpoint)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(weights)
        except (ValueError, OSError) as exc:
            raise DataError(f"{weights}: does not fit {what}: {exc}") from None
    partial = [str(w.message) for w in caught if "freshly-initialized weights" in str(w.message)]
    if partial:
        raise DataError(f"{weights}: does not fit {what}: Keras would leave layers at their initial weights "
                        f"({partial[0][:200]})")
    for w in caught:
        if "Skipping variable loading for optimizer" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _load_initial_weights(autoencoder: Any, run: Path) -> None:
    """The best weights of run folder ``run`` into ``autoencoder``; DataError naming the problem."""
    load_weights_whole(autoencoder, _initial_weights(run),
                       what="this model (init_from needs the same architecture)")


def _plateau_epoch(state: dict[str, Any], config: ModelConfig, optimizer: Any, rate: float, *, verbose: int) -> str:
    """Count an epoch without a (significantly) better validation loss: "early_stopping" once ``patience`` is
    reached, else "running", halving the rate (ReduceLROnPlateau) after every ``lr_patience`` such epochs."""
    state["wait"] += 1
    state["lr_wait"] = state.get("lr_wait", 0) + 1
    if state["wait"] >= config.patience:
        return "early_stopping"
    if config.lr_patience and state["lr_wait"] >= config.lr_patience:
        # The rate is optimizer state, so checkpoints carry it.
        optimizer.learning_rate.assign(rate * config.lr_factor)
        state["lr_wait"] = 0
        if verbose:
            print(f"melsynth train: no better validation loss for {config.lr_patience} epochs; "
                  f"learning rate {rate:.3g} -> {rate * config.lr_factor:.3g}")
    return "running"


def _write_status(out: Path, state: dict[str, Any], stopped: str) -> None:
    secs = [row["seconds"] for row in state["history"]]
    _json_dump(out / "status.json", {
        "epochs_done": state["epochs_done"],
        "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val_loss"],
        "wait": state["wait"],
        "stopped": stopped,
        "best_weights_sha256": state.get("best_weights_sha256"),
        "seconds_per_epoch_median": float(np.median(secs)) if secs else None,
    })


def _write_metrics(
    out: Path, feats: Features, autoencoder: Any, test_rows: np.ndarray, *, source: NoteSource,
    config: ModelConfig, params: SpectrogramParams, verbose: int,
) -> None:
    try:
        from synth.metrics import summary
    except ImportError as exc:
        # stacklevel 4: the warning points at fit() (_write_metrics <- _train <- _build_and_train <- fit).
        warnings.warn(f"synth.metrics is not available ({exc}); {out}/metrics.json not written", stacklevel=4)
        return
    ds = source.dataset(test_rows, batch_size=config.batch_size).map(lambda a, b: (a,))  # (a,): a is no (x, y, w)
    recon = np.asarray(autoencoder.predict(ds, verbose=0), dtype=np.float32)
    originals = np.asarray(feats.x[test_rows], dtype=np.float32)
    result = summary(originals, recon, params=params)
    result = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in dict(result).items()}
    _json_dump(out / "metrics.json", dict(result, split="test"))
    if verbose:
        print("melsynth train: test metrics " + ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))
