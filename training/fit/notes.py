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

__all__ = ["IN_MEMORY_BYTES", "INPUT_PARALLELISM", "NoteSource", "note_pitches", "training_rows", "epoch_order",
           "replica_pieces"]

#: Feature sets up to this size are held in memory for the run; larger ones are read from the memory map.
IN_MEMORY_BYTES = 2 << 30

#: Batches read (or gathered) at once and batches prefetched, by default (``FitOptions.input_parallelism``).
INPUT_PARALLELISM = 2


class NoteSource:
    """Where a run's batches come from: the features in memory (a TensorFlow constant, gathered by pure
    TensorFlow ops) when they fit in :data:`IN_MEMORY_BYTES`, else rows read from the memory-mapped
    features.npy by a parallel ``numpy_function``.

    tf.data's autotuning is switched off (``parallelism`` batches read at once and prefetched): its optimisation thread sleeps
    between rounds for ever longer periods, and tearing down an epoch's iterator waits for it to wake. With
    TensorFlow 2.21 that wait was 30-40 s at the end of every epoch (py-spy: the main thread in
    ``UnboundedThreadPool::LogicalThreadWrapper::~LogicalThreadWrapper``, no CPU used): half of each 82 s
    epoch of the 1020 SoundFont notes at batch 16.

    With ``pitch`` (the MIDI key of every row [shape=(N,)], for a pitch-conditioned family) each batch is
    ``((notes, their keys, the targets' keys), targets)`` instead of ``(notes, notes)``.
    """

    def __init__(self, x: np.ndarray, *, params: SpectrogramParams, in_memory: bool | None = None,
                 pitch: np.ndarray | None = None, parallelism: int = INPUT_PARALLELISM) -> None:
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise ParameterError(f"note source: parallelism must be a positive integer, got {parallelism!r}")
        self.x = x
        self.params = params
        self.pitch = None if pitch is None else np.asarray(pitch, dtype=np.int32)
        self.in_memory = x.nbytes <= IN_MEMORY_BYTES if in_memory is None else in_memory
        self.parallelism = parallelism
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

        pairs = self._pairs(rows, targets)
        return self._read(tf.data.Dataset.from_tensor_slices(pairs).batch(batch_size), own=_own(rows, targets))

    def replica_dataset(self, rows: np.ndarray, *, global_batch: int, replicas: int, local: range,
                        targets: np.ndarray | None = None) -> Any:
        """The pieces of the global batches of ``rows`` that replicas ``local`` (of ``replicas`` in all) train on,
        in step order and, within a step, replica order: elements ``(inputs, targets, notes in the global
        batch)``. Each global batch of ``global_batch`` rows (the last may be short) is cut into ``replicas``
        consecutive pieces whose sizes differ by at most one (:func:`replica_pieces`; a piece may be empty
        when the last batch has fewer rows than there are replicas), so every replica runs the same number of
        steps and one replica's pieces are the global batches themselves."""
        import tensorflow as tf

        pairs = self._pairs(rows, targets)
        starts, sizes, totals = replica_pieces(len(rows), global_batch=global_batch, replicas=replicas, local=local)
        picked = np.concatenate([pairs[a : a + n] for a, n in zip(starts, sizes, strict=True)] or
                                [np.zeros((0, 2), np.int64)])
        pieces = tf.RaggedTensor.from_row_lengths(picked, np.asarray(sizes, np.int64))
        ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices(pieces),
                                 tf.data.Dataset.from_tensor_slices(np.asarray(totals, np.float32)))
        return self._read(ds, own=_own(rows, targets), with_total=True)

    def _pairs(self, rows: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
        targets = rows if targets is None else targets
        if len(targets) != len(rows):
            raise ParameterError(f"note source: {len(rows)} rows and {len(targets)} targets")
        return np.stack([rows, targets], axis=1).astype(np.int64)

    def _read(self, ds: Any, *, own: bool, with_total: bool = False) -> Any:
        """Map a dataset of (batch, 2) row pairs (and, ``with_total``, each step's global batch size) to the
        notes: gathered from memory or read from the features by a parallel ``numpy_function``."""
        import tensorflow as tf

        # Constants are made here, eagerly: made inside a traced map function they would belong to its graph.
        keys = None if self.pitch is None else tf.constant(self.pitch)

        def batch(notes: Any, targets: Any, pairs: Any) -> tuple[Any, Any]:
            if keys is None:
                return notes, targets
            both = tf.gather(keys, pairs)[:, :, None]  # (batch, 2, 1)
            return (notes, both[:, 0], both[:, 1]), targets

        if self.in_memory:
            x = self._constant()

            def notes_of(pairs: Any) -> tuple[Any, Any]:
                notes = tf.gather(x, pairs[:, 0])
                # Every row its own target (every family but one learning across keys): each note gathered once.
                return batch(notes, notes if own else tf.gather(x, pairs[:, 1]), pairs)
        else:
            memmap, params = self.x, self.params

            def read(rows: np.ndarray) -> np.ndarray:
                # Sorted reads are sequential on disk; each row read once however often the batch names it.
                unique, where = np.unique(rows, return_inverse=True)
                return np.ascontiguousarray(np.asarray(memmap[unique], dtype=np.float32)[where.reshape(rows.shape)])

            def notes_of(pairs: Any) -> tuple[Any, Any]:
                both = tf.numpy_function(read, [pairs], tf.float32, stateful=False)
                both.set_shape([None, 2, params.n_mels, params.frames])
                return batch(both[:, 0], both[:, 1], pairs)

        if with_total:
            def load(pairs: Any, total: Any) -> tuple[Any, Any, Any]:
                return (*notes_of(pairs), total)
        else:
            load = notes_of
        parallel = self.parallelism
        return ds.map(load, num_parallel_calls=parallel, deterministic=True).prefetch(parallel).with_options(
            _tf_data_options())


def _own(rows: np.ndarray, targets: np.ndarray | None) -> bool:
    return targets is None or targets is rows or np.array_equal(targets, rows)


def replica_pieces(n: int, *, global_batch: int, replicas: int, local: range) -> tuple[list[int], list[int], list[int]]:
    """(start, size and global batch size of every piece) that replicas ``local`` train on when ``n`` rows are
    cut into global batches of ``global_batch`` and each of those into ``replicas`` pieces (see
    :meth:`NoteSource.replica_dataset`); pieces in step order, then replica order."""
    if global_batch < 1 or replicas < 1 or not local or local.start < 0 or local.stop > replicas:
        raise ParameterError(f"note source: replicas {local} of {replicas} at global batch {global_batch}")
    starts, sizes, totals = [], [], []
    for first in range(0, n, global_batch):
        size = min(global_batch, n - first)
        bounds = [first + (size * r) // replicas for r in range(replicas + 1)]
        for r in local:
            starts.append(bounds[r])
            sizes.append(bounds[r + 1] - bounds[r])
            totals.append(size)
    return starts, sizes, totals


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
