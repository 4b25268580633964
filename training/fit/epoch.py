"""One epoch of training, a pure function of (seed, epoch): its shuffle order, its targets, its dropout masks.

Each epoch's shuffle order is drawn from ``numpy.random.default_rng([seed, epoch])`` and every dropout layer's
seed generator is reset to (its seed, epoch) at the start of the epoch, so a run resumed after epoch k draws
what an uninterrupted run would, with no RNG state in its checkpoints. Every worker of a cluster draws the
same order and reads its own replicas' pieces of it (:meth:`~training.fit.notes.NoteSource.replica_dataset`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from training.fit.notes import NoteSource, epoch_order
from training.fit.steps import Steps

__all__ = ["DropoutSeeds", "dropout_seeds", "distributed_batches", "run_epoch", "validation_loss"]

#: The dropout layers of a run's models and each one's base seed.
DropoutSeeds = tuple[list[Any], list[int]]


def dropout_seeds(models: tuple[Any, ...]) -> DropoutSeeds:
    """The dropout layers of ``models`` and their seed generators' base seeds (read once, before epoch 1)."""
    import keras

    layers = [layer for m in models for layer in m.layers if isinstance(layer, keras.layers.Dropout)]
    return layers, [int(np.asarray(layer.seed_generator.state.numpy())[0]) for layer in layers]


def _reset_dropout_rngs(layers: list[Any], base: list[int], epoch: int) -> None:
    # Each epoch's dropout masks depend only on (layer seed, epoch): resumable without saving RNG state.
    for layer, seed in zip(layers, base, strict=True):
        state = layer.seed_generator.state
        state.assign(np.asarray([seed, epoch * (1 << 24)], dtype=state.dtype))


def distributed_batches(strategy: Any, source: NoteSource, rows: np.ndarray, *, global_batch: int,
                        targets: np.ndarray | None = None) -> tuple[Any, int]:
    """(the distributed dataset of ``rows`` cut into global batches, its number of steps): each worker's
    pipeline holds only its own replicas' pieces."""
    def per_worker(context: Any) -> Any:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        first = context.input_pipeline_id * local
        return source.replica_dataset(rows, targets=targets, global_batch=global_batch,
                                      replicas=context.num_replicas_in_sync, local=range(first, first + local))

    return strategy.distribute_datasets_from_function(per_worker), -(-len(rows) // global_batch)


def validation_loss(steps: Steps, batches: tuple[Any, int]) -> float:
    """The mean loss over every validation note of every worker."""
    dataset, count = batches
    summed, notes = 0.0, 0.0
    it = iter(dataset)
    for _ in range(count):
        s, n = steps.evaluate(next(it))
        summed, notes = summed + float(s), notes + float(n)
    return summed / notes


def run_epoch(
    steps: Steps, source: NoteSource, *, train_rows: np.ndarray, notes: list[dict[str, Any]], valid: tuple[Any, int],
    epoch: int, config: Any, dropout: DropoutSeeds, verbose: int,
) -> tuple[float, float, float]:
    """Train epoch ``epoch`` (0-based) with its own shuffle order, targets and dropout seeds: (loss, val_loss,
    seconds), the loss being the mean of the steps' losses weighted by their notes (as Keras' fit reports it)."""
    import keras

    _reset_dropout_rngs(*dropout, epoch)
    schedule = config.schedule
    order = epoch_order(train_rows, seed=schedule.seed, epoch=epoch)
    targets = config.family.targets(order, notes=notes, seed=schedule.seed, epoch=epoch)
    dataset, count = distributed_batches(steps.strategy, source, order, global_batch=schedule.batch_size,
                                         targets=targets)
    bar = None
    if verbose:
        print(f"Epoch {epoch + 1}/{schedule.max_epochs}")
        bar = keras.utils.Progbar(count, verbose=verbose, stateful_metrics=["loss", "val_loss"])
    t0 = time.perf_counter()
    weighted, running, seen = [], 0.0, 0.0
    it = iter(dataset)
    for i in range(count):
        loss, total = steps.train(next(it))
        weighted.append(loss * total)
        if bar is not None and i + 1 < count:
            running, seen = running + float(weighted[-1]), seen + float(total)
            bar.update(i + 1, [("loss", running / seen)])
    # The steps' losses are summed once the epoch is done: no wait for each step's result while it trains.
    total_notes = float(len(order))
    train_loss = float(sum(float(w) for w in weighted)) / total_notes
    val_loss = validation_loss(steps, valid)
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.update(count, [("loss", train_loss), ("val_loss", val_loss)], finalize=True)
    return train_loss, val_loss, seconds
