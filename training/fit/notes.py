"""Where a run's notes come from: the training rows, each epoch's order, and the tf.data pipeline of batches.

Input: per epoch a tf.data pipeline of shuffled row-index batches (:class:`NoteSource`): gathered from the
features held in memory when they fit (up to 2 GiB), else read from the memory-mapped ``features.npy`` by a
parallel ``numpy_function``, so only a few batches are in RAM at a time. Each epoch's order is a pure function
of (seed, epoch) (:func:`epoch_order`), so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.datasets.features import Features

__all__ = ["IN_MEMORY_BYTES", "NoteSource", "note_pitches", "training_rows", "epoch_order"]

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

            return ds.map(gather, num_parallel_calls=2, deterministic=True).prefetch(2).with_options(_tf_data_options())
        memmap, params = self.x, self.params

        def read(rows: np.ndarray) -> np.ndarray:
            # Sorted reads are sequential on disk; each row read once however often the batch names it.
            unique, where = np.unique(rows, return_inverse=True)
            return np.ascontiguousarray(np.asarray(memmap[unique], dtype=np.float32)[where.reshape(rows.shape)])

        def load(pairs: Any) -> tuple[Any, Any]:
            both = tf.numpy_function(read, [pairs], tf.float32, stateful=False)
            both.set_shape([None, 2, params.n_mels, params.frames])
            return batch(both[:, 0], both[:, 1], pairs)

        return ds.map(load, num_parallel_calls=2, deterministic=True).prefetch(2).with_options(_tf_data_options())


def _tf_data_options() -> Any:
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
