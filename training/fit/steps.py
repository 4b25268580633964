"""The training and validation steps, one pair of functions for every tf.distribute strategy: the CPU's or one
GPU's default strategy, MirroredStrategy over a machine's GPUs, MultiWorkerMirroredStrategy over machines.

Keras' ``fit`` cannot train under MultiWorkerMirroredStrategy in Keras 3 (keras-team/keras#20585: two workers
on 127.0.0.1 fail inside it, for a toy model and for melsynth's alike), so melsynth runs its own steps, which
do what ``fit``'s train step does (forward, MSE plus the model's regularisation losses, the loss-scale
optimizer's scaling, gradients, Adam with Keras' own all-reduce of the gradients) with one difference that
only matters on several replicas: each replica's squared error is divided by the number of notes in the
whole global batch, not in its own piece, so the summed gradients are exactly the gradient of the global
batch's mean loss however unevenly the last batch is cut. On one replica that is fit's loss, and the
weights agree with fit's within float rounding (tests/test_fit.py).

Each step takes one element of a distributed dataset (:meth:`~training.fit.notes.NoteSource.replica_dataset`:
per replica ``(inputs, targets, notes in the global batch)``) and returns global figures, reduced over every
replica of every worker, so every worker judges the same losses.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Steps", "barrier"]


class Steps:
    """``train(batch)`` -> (the global batch's mean loss, its notes); ``evaluate(batch)`` -> (the global batch's
    summed loss over notes, its notes): scalars, the same on every worker. Compiled with ``tf.function`` (with
    XLA when ``jit``) unless ``run_eagerly``."""

    def __init__(self, strategy: Any, model: Any, optimizer: Any, *, jit: bool, run_eagerly: bool) -> None:
        import numpy as np
        import tensorflow as tf

        self.strategy = strategy
        replicas = float(strategy.num_replicas_in_sync)
        weights = model.trainable_variables

        def mean_squares(outputs: Any, targets: Any) -> tuple[Any, Any]:
            # (sum over the piece of each note's mean squared error, the piece's notes)
            per_value = tf.square(tf.cast(outputs, tf.float32) - tf.cast(targets, tf.float32))
            values = float(np.prod(targets.shape[1:]))
            return tf.reduce_sum(per_value) / values, tf.cast(tf.shape(targets)[0], tf.float32)

        def regularisation() -> Any:
            losses = [tf.cast(v, tf.float32) for v in model.losses]
            return tf.add_n(losses) if losses else tf.constant(0.0)

        def train_replica(inputs: Any, targets: Any, total: Any) -> Any:
            with tf.GradientTape() as tape:
                outputs = model(inputs, training=True)
                summed, _ = mean_squares(outputs, targets)
                # Summed over the replicas: the global batch's mean plus the model's losses once.
                loss = summed / total + regularisation() / replicas
                scaled = optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, weights)
            optimizer.apply_gradients(zip(grads, weights, strict=True))  # all-reduces the gradients (a sum)
            return loss

        def evaluate_replica(inputs: Any, targets: Any, total: Any) -> tuple[Any, Any]:
            outputs = model(inputs, training=False)
            summed, notes = mean_squares(outputs, targets)
            return summed + regularisation() * notes, notes

        if not run_eagerly:
            train_replica = tf.function(train_replica, jit_compile=jit, reduce_retracing=True)
            evaluate_replica = tf.function(evaluate_replica, jit_compile=jit, reduce_retracing=True)

        def train(batch: Any) -> tuple[Any, Any]:
            loss = strategy.run(train_replica, args=batch)
            return strategy.reduce("SUM", loss, axis=None), _first(strategy, batch[2])

        def evaluate(batch: Any) -> tuple[Any, Any]:
            summed, notes = strategy.run(evaluate_replica, args=batch)
            return strategy.reduce("SUM", summed, axis=None), strategy.reduce("SUM", notes, axis=None)

        self.train = train if run_eagerly else tf.function(train, reduce_retracing=True)
        self.evaluate = evaluate if run_eagerly else tf.function(evaluate, reduce_retracing=True)


def _first(strategy: Any, value: Any) -> Any:
    """One replica's copy of a value every replica holds alike (the global batch size)."""
    return strategy.experimental_local_results(value)[0]


def barrier(strategy: Any) -> None:
    """Return once every worker has reached this call (a collective of one number): no worker leaves the
    cluster while another still needs it."""
    import tensorflow as tf

    if strategy.num_replicas_in_sync < 2:
        return

    def one() -> Any:
        return tf.constant(1.0)

    def everyone() -> Any:
        return strategy.reduce("SUM", strategy.run(one), axis=None)

    # In a tf.function: run eagerly, the collective strategy warns of its overhead.
    tf.function(everyone)().numpy()
