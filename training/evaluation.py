"""A training run's best weights measured on a split of its features folder, beside PCA (TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.metrics.evaluation import SPLITS, Reconstruct, measure, pca_reconstructors, with_pca

__all__ = ["evaluate_run"]


def _split_rows(feats: Any, split: str) -> np.ndarray:
    if split == "all":
        return np.arange(len(feats.rows))
    return feats.subset(split)


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    split: str = "test",
    batch_size: int = 16,
    progress: bool = True,
    pca: bool = False,
    heard: int = 0,
) -> dict[str, Any]:
    """Metrics of a run's best weights on a split of a features folder (imports TensorFlow).

    Parameters
    ----------
    run_dir : a run folder written by :func:`training.fit.fit`
    data : a features folder with the run's spectrogram contract; default the one recorded in the run
    split : "test", "valid", "train" or "all"
    pca : also measure PCA fitted on the rows the run was trained on (see the module docstring)

    Returns
    -------
    The dict of :func:`synth.metrics.summary`, with a "pca" list when ``pca``.
    """
    from training.datasets.features import load_features
    from training.fit.notes import training_rows
    from training.model.families import latent_shape
    from training.run import load_run

    if split not in SPLITS:
        raise ParameterError(f"split {split!r}: expected one of {SPLITS}")
    the_run = load_run(run_dir)
    path = data if data is not None else the_run.data.get("path")
    if not path:
        raise DataError(f"{the_run.path}: config.json records no features folder; pass --data")
    if not Path(path).is_dir():
        raise DataError(
            f"features folder {path} (recorded in {the_run.path / 'config.json'}) not found; pass --data"
        )
    feats = load_features(path)
    the_run.params.require_equal(feats.params, what=f"features folder {feats.path}")
    the_run.check_same_notes(feats, split=split)
    rows = _split_rows(feats, split)
    autoencoder, _, _ = the_run.models()

    def reconstruct(x: np.ndarray) -> np.ndarray:
        return np.asarray(autoencoder(x, training=False))

    reconstructors: dict[str, Reconstruct] = {"model": reconstruct}
    pca_info: dict[str, int] = {}
    if pca:
        fitted = training_rows(feats, seed=the_run.config.schedule.seed, limit=the_run.fit.get("limit"))
        more, pca_info = pca_reconstructors(
            lambda part: feats.x[fitted[part]], len(fitted), shape=(feats.params.n_mels, feats.params.frames),
            latent_size=int(np.prod(latent_shape(the_run.config, params=the_run.params))),
            what=f"training notes of {feats.path}", progress=progress,
        )
        reconstructors.update(more)
    measured = measure(
        lambda part: feats.x[np.sort(rows[part])],
        reconstructors,
        len(rows),
        params=the_run.params,
        batch_size=batch_size,
        desc=f"evaluate {the_run.path.name}",
        progress=progress,
        heard=heard,
    )
    return with_pca(measured, pca_info)
