"""A run's models: built by the config's family, compiled with Adam and MSE, and started from a run's weights
(``init_from``) or from the training notes (a family with a fitted start)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError
from synth.spectrogram import SpectrogramParams
from training.datasets.features import Features
from training.fit.notes import note_pitches
from training.fit.weights import load_initial_weights
from training.model.config import ModelConfig

__all__ = ["START_NOTES", "compiled_models", "start_from_data"]

#: A family that starts from its training notes (a PCA) reads at most this many of them, a seeded sample: the
#: 1275-note sets whole, the keyboard set's 17,375 training notes not. They are streamed a batch at a time
#: (training.model.patch.patch_pca), so the bound is one of time (the PCA reads them 9 times), not memory.
START_NOTES = 2048


def compiled_models(
    config: ModelConfig, *, params: SpectrogramParams, jit: bool, run_eagerly: bool, init_from: str | Path | None,
    out: Path, new_run: bool,
) -> tuple[tuple[Any, Any, Any], Any]:
    """((autoencoder, encoder, decoder), the optimizer to checkpoint), compiled and built; called inside the
    strategy's scope."""
    import keras

    autoencoder, encoder, decoder = config.family.build(config, params=params)
    schedule = config.schedule
    optimizer = keras.optimizers.Adam(learning_rate=schedule.learning_rate, clipnorm=schedule.clipnorm)
    autoencoder.compile(optimizer=optimizer, loss="mse", jit_compile=jit, run_eagerly=run_eagerly)
    if init_from is not None:
        try:
            load_initial_weights(autoencoder, Path(init_from))
        except DataError:
            if new_run:  # nothing of a new run is kept; a resumed one stays as it was
                shutil.rmtree(out, ignore_errors=True)
            raise
    # Under mixed_float16 Keras wraps Adam in a LossScaleOptimizer whose scale is optimizer state
    # too: checkpoint the wrapper's variables.
    optimizer = autoencoder.optimizer
    optimizer.build(autoencoder.trainable_variables)
    return (autoencoder, encoder, decoder), optimizer


def start_from_data(models: tuple[Any, Any, Any], feats: Features, train_rows: np.ndarray, *, config: ModelConfig,
                    out: Path | None, verbose: int, start_map: Any = None) -> None:
    """A new run of a family with a fitted start (the PCA of its training patches) starts from up to
    :data:`START_NOTES` training notes; ``out``, a new run's folder, is removed when that fails (None: a
    resumed run's, which stays)."""
    rows = np.sort(train_rows)
    if len(rows) > START_NOTES:
        rng = np.random.default_rng([config.schedule.seed, 15485863])
        rows = np.sort(rng.choice(rows, START_NOTES, replace=False))
    pitch = note_pitches(feats, family=config.family)
    log = print if verbose else None
    try:
        if config.family.starts_from_features:
            config.family.start(models, feats, train_rows, pitch=pitch, config=config, log=log, start_map=start_map)
        else:
            config.family.initialise(models, feats.notes(rows),
                                     pitch=np.zeros(len(rows), np.int32) if pitch is None else pitch[rows],
                                     config=config, log=log)
    except DataError:
        if out is not None:  # a new run: nothing of it is kept
            shutil.rmtree(out, ignore_errors=True)
        raise
