"""How to fit a run: one frozen object of the choices :func:`training.fit.fit` takes besides the data, the
config and the run folder, checked when it is made (before any file is read)."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synth.errors import ParameterError
from training.cluster.rendezvous import CONNECT_TIMEOUT_S
from training.fit.devices import XLA_CHOICES
from training.fit.notes import INPUT_PARALLELISM
from training.model.schedule import RESUMABLE_FIELDS

__all__ = ["FitOptions"]


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FitOptions:
    """The choices of one fit.

    resume : continue the run folder from its last checkpoint (excludes ``force`` and ``init_from``)
    force : replace an existing run folder
    max_epochs : overrides ``config.schedule.max_epochs`` (also on resume, to extend a run)
    schedule : overrides of the config's :class:`~training.model.schedule.FitSchedule`, keys from
        ``RESUMABLE_FIELDS`` (learning_rate, patience, max_epochs, lr_patience, lr_factor, min_delta, clipnorm;
        not the seed or the batch, which fix a run's start and data order); also on resume, where a ``learning_rate``
        replaces the optimizer's current rate. A resumed run whose schedule changed is no longer bitwise-equal to
        an uninterrupted one; config.json records the schedule in effect and history.csv each epoch's rate.
        Held read-only.
    limit : use at most this many training notes (a seeded random subset), for small budgets
    mixed_precision : mixed_float16 compute on a GPU, mixed_bfloat16 on a CPU with native bfloat16 (AMX or
        AVX512-BF16); variables and the output layer stay float32, config.json records the policy as
        ``fit.precision``. Refused with a ParameterError on a CPU without native bfloat16, where it is slower
        (see :func:`training.devices.mixed_precision_policy`)
    verbose : Keras progress output (0 silent, 1 progress bar, 2 one line per epoch)
    deterministic : switch on TensorFlow's op determinism (process-wide; slower, see :mod:`training.fit`)
    run_eagerly : Keras eager execution, no graph tracing or XLA: slower steps, but a tiny model (tests,
        debugging) trains in a fraction of the ~10 s that tracing takes on a busy 2-core machine
    xla : "auto" (off on the CPU, on with a GPU; see :func:`training.fit.devices.use_xla`), "on" or "off";
        recorded in config.json
    init_from : a new run starts from the best weights of this run folder (same architecture) instead of a
        random initialisation: fine-tuning, or restarting a run that diverged from its best epoch with a new
        schedule; recorded in config.json
    start_from : a trained model whose part a family's fitted start keeps (the home-key layout: a one-pitch
        patch bundle, whose maps it keeps at its home key; see :meth:`ModelFamily.load_start`); checked
        before anything is written, recorded in config.json
    global_batch : notes per step over every replica of every worker (overrides
        ``config.schedule.batch_size``, which records it; a resumed run keeps its own); each replica computes an even share
    input_parallelism : batches each worker's input pipeline reads at once and prefetches (default 2; more
        feeds a fast GPU from a slow disk; tf.data's autotuning stays off, see
        :class:`~training.fit.notes.NoteSource`)
    connect_timeout : seconds a worker of a cluster (TF_CONFIG) waits for the others to start before it
        names the ones it cannot reach (:mod:`training.cluster.rendezvous`)
    """

    resume: bool = False
    force: bool = False
    max_epochs: int | None = None
    schedule: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    limit: int | None = None
    mixed_precision: bool = False
    verbose: int = 1
    deterministic: bool = False
    run_eagerly: bool = False
    xla: str = "auto"
    init_from: str | Path | None = None
    start_from: str | Path | None = None
    global_batch: int | None = None
    input_parallelism: int = INPUT_PARALLELISM
    connect_timeout: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        _check_positive("max_epochs", self.max_epochs)
        _check_positive("limit", self.limit)
        _check_positive("global_batch", self.global_batch)
        _check_positive("input_parallelism", self.input_parallelism)
        if isinstance(self.connect_timeout, bool) or not isinstance(self.connect_timeout, (int, float)) or not (
                0 < self.connect_timeout < float("inf")):
            raise ParameterError(f"connect_timeout must be a positive number of seconds, got {self.connect_timeout!r}")
        if self.xla not in XLA_CHOICES:
            raise ParameterError(f"xla must be one of {XLA_CHOICES}, got {self.xla!r}")
        # A read-only copy: the options are frozen, and the caller's dict may change after.
        object.__setattr__(self, "schedule", types.MappingProxyType(dict(self.schedule or {})))
        unknown = sorted(set(self.schedule) - set(RESUMABLE_FIELDS))
        if unknown:
            raise ParameterError(f"schedule: unknown keys {unknown}; the schedule fields a fit may override are "
                                 f"{list(RESUMABLE_FIELDS)}")
        if self.init_from is not None and self.resume:
            raise ParameterError("init_from starts a new run; a resumed run continues from its own checkpoint")
        if self.start_from is not None and self.resume:
            raise ParameterError("start_from starts a new run; a resumed run continues from its own checkpoint")
        if self.start_from is not None and self.init_from is not None:
            raise ParameterError("start_from and init_from exclude each other (init_from's weights replace the "
                                 "whole start)")
        if self.resume and self.force:
            raise ParameterError("resume and force exclude each other (resume continues a run, force replaces it)")

    def overrides(self) -> dict[str, Any]:
        """The schedule fields these options change: ``schedule`` with ``max_epochs`` in it when given."""
        found = dict(self.schedule)
        if self.max_epochs is not None:
            found["max_epochs"] = self.max_epochs
        return found
