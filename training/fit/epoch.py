"""One epoch of training, a pure function of (seed, epoch): its shuffle order, its targets, its dropout masks.

Each epoch's shuffle order is drawn from ``numpy.random.default_rng([seed, epoch])`` and every dropout layer's
seed generator is reset to (its seed, epoch) at the start of the epoch, so a run resumed after epoch k draws
what an uninterrupted run would, with no RNG state in its checkpoints.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from training.fit.notes import NoteSource, epoch_order

__all__ = ["DropoutSeeds", "dropout_seeds", "one_epoch_callback", "fit_epoch"]

#: The dropout layers of a run's models and each one's base seed.
DropoutSeeds = tuple[list[Any], list[int]]


def dropout_seeds(models: tuple[Any, ...]) -> DropoutSeeds:
    """The dropout layers of ``models`` and their seed generators' base seeds (read once, before epoch 1)."""
    import keras

    layers = [layer for m in models for layer in m.layers if isinstance(layer, keras.layers.Dropout)]
    return layers, [int(layer.seed_generator.state.numpy()[0]) for layer in layers]


def _reset_dropout_rngs(layers: list[Any], base: list[int], epoch: int) -> None:
    # Each epoch's dropout masks depend only on (layer seed, epoch): resumable without saving RNG state.
    for layer, seed in zip(layers, base, strict=True):
        state = layer.seed_generator.state
        state.assign(np.asarray([seed, epoch * (1 << 24)], dtype=state.dtype))


def one_epoch_callback() -> Any:
    """The callback class that ends Keras fit() after one epoch."""
    import keras

    class _OneEpoch(keras.callbacks.Callback):
        # fit() runs one epoch per call (so shuffling and RNG are per-epoch functions), yet the progress
        # bar shows "Epoch e/max_epochs".
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.model.stop_training = True

    return _OneEpoch


def fit_epoch(
    autoencoder: Any, source: NoteSource, *, train_rows: np.ndarray, notes: list[dict[str, Any]], valid_ds: Any,
    epoch: int, config: Any, dropout: DropoutSeeds, callback: Any, verbose: int,
) -> tuple[float, float, float]:
    """Train epoch ``epoch`` (0-based) with its own shuffle order, targets and dropout seeds: (loss, val_loss,
    seconds)."""
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
