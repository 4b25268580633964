"""The epoch loop: one epoch of :class:`~training.fit.steps.Steps` at a time under the run's tf.distribute
strategy, each judged on the global validation loss by the :class:`~training.fit.stopping.StoppingRule` and
followed by its history, checkpoint and status; then the best epoch's weights back into the models and the
test metrics.

Every worker of a cluster runs this same loop on the same global losses, so each takes the same decisions
(learning rate, stopping) without asking the others; the chief writes into the run folder, the others into a
scratch folder of their own (:func:`training.fit.fit`), and only the chief measures the test split.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError
from training.datasets.features import Features
from training.fit.checkpoints import (
    TrainingState,
    keep_newest_checkpoint,
    restore_checkpoint,
    write_checkpoint,
)
from training.fit.epoch import distributed_batches, dropout_seeds, run_epoch
from training.fit.metrics import write_metrics
from training.fit.notes import NoteSource, note_pitches
from training.fit.run_folder import write_history, write_status
from training.fit.steps import Steps, barrier
from training.fit.stopping import Stop, StoppingRule
from training.fit.weights import load_weights_whole
from training.model.config import ModelConfig

__all__ = ["start_state", "train_epochs"]


def start_state(
    out: Path, autoencoder: Any, optimizer: Any, *, ckpt: Path | None, ckpt_state: TrainingState | None,
    config: ModelConfig, verbose: int, set_learning_rate: bool,
) -> TrainingState:
    """The epoch loop's state: a fresh one, or the checkpoint's, with its weights and optimizer restored."""
    if ckpt is None or ckpt_state is None:
        return TrainingState()
    restore_checkpoint(ckpt, autoencoder, optimizer)
    if set_learning_rate:
        # The checkpoint restored the rate the run had reached; an explicit one replaces it.
        optimizer.learning_rate.assign(config.schedule.learning_rate)
    if verbose:
        print(f"melsynth train: resuming {out} after epoch {ckpt_state.stopping.epochs_done} ({ckpt.name}), "
              f"learning rate {float(optimizer.learning_rate.numpy()):.3g}")
    return ckpt_state


def train_epochs(
    *, out: Path, feats: Features, config: ModelConfig, models: tuple[Any, Any, Any], optimizer: Any,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray], ckpt: Path | None, ckpt_state: TrainingState | None,
    verbose: int, set_learning_rate: bool, strategy: Any, jit: bool, run_eagerly: bool, input_parallelism: int,
    chief: bool = True, stacklevel: int = 1,
) -> Path:
    """Train until the stopping rule says stop, then (the chief) restore the best weights and write the test
    metrics; every worker leaves together. Warnings (a non-finite loss) point ``stacklevel`` frames above the
    caller."""
    autoencoder = models[0]
    train_rows, valid_rows, test_rows = rows
    state = start_state(out, autoencoder, optimizer, ckpt=ckpt, ckpt_state=ckpt_state, config=config,
                        verbose=verbose, set_learning_rate=set_learning_rate)
    rule = StoppingRule.from_schedule(config.schedule)
    # A run that already stopped for good stays stopped; one stopped by max_epochs may be extended.
    stop = rule.on_resume(state.stopping)

    dropout = dropout_seeds(models[1:])
    source = NoteSource(feats.x, params=feats.params, pitch=note_pitches(feats, family=config.family),
                        parallelism=input_parallelism)
    steps = Steps(strategy, autoencoder, optimizer, jit=jit, run_eagerly=run_eagerly)
    # Validation pairs are drawn once (epoch -1), so every epoch is judged on the same task.
    valid_targets = config.family.targets(valid_rows, notes=feats.rows, seed=config.schedule.seed, epoch=-1)
    valid = distributed_batches(strategy, source, valid_rows, global_batch=config.schedule.batch_size,
                                targets=valid_targets)

    while stop is Stop.RUNNING:
        epoch = state.stopping.epochs_done
        loss, val_loss, seconds = run_epoch(
            steps, source, train_rows=train_rows, notes=feats.rows, valid=valid, epoch=epoch, config=config,
            dropout=dropout, verbose=verbose,
        )
        rate = float(optimizer.learning_rate.numpy())
        verdict = rule.judge(state.stopping, loss=loss, val_loss=val_loss, learning_rate=rate)
        stop = verdict.stop
        if stop is Stop.NON_FINITE:
            warnings.warn(f"{out}: loss became {loss} / {val_loss} at epoch {epoch + 1}; stopping",
                          stacklevel=stacklevel + 1)
        if verdict.learning_rate != rate:
            # The rate is optimizer state, so checkpoints carry it.
            optimizer.learning_rate.assign(verdict.learning_rate)
            if verbose:
                print(f"melsynth train: no better validation loss for {rule.lr_patience} epochs; "
                      f"learning rate {rate:.3g} -> {verdict.learning_rate:.3g}")
        row = {"epoch": epoch + 1, "loss": loss, "val_loss": val_loss, "seconds": round(seconds, 3),
               "learning_rate": rate}
        state = dataclasses.replace(state, stopping=verdict.state, history=(*state.history, row))
        write_history(out / "history.csv", state.history)
        state = write_checkpoint(out, autoencoder, optimizer, state, improved=verdict.improved)
        write_status(out, state, stop)
    write_history(out / "history.csv", state.history)
    write_status(out, state, stop)
    keep_newest_checkpoint(out)
    if state.stopping.best_epoch is None:
        raise DataError(f"{out}: no epoch finished with a finite loss; nothing to keep")

    if chief:
        # Like EarlyStopping(restore_best_weights=True): the models end with the best epoch's weights.
        load_weights_whole(autoencoder, out / "best.weights.h5", what="the model it was saved from")
        write_metrics(out, feats, autoencoder, test_rows, source=source,
                      batch_size=config.schedule.batch_size, params=feats.params, verbose=verbose, stacklevel=stacklevel + 1)
    # The others wait here while the chief measures: a worker leaving early would look lost to the cluster.
    barrier(strategy)
    return out
