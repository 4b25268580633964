"""Loading a run's weights files whole: a file that fits the model in full, or a DataError, never a partial load."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from synth.errors import DataError
from synth.json_files import read_json_file
from training.datasets.features import sha256_file

__all__ = ["load_weights_whole", "initial_weights", "load_initial_weights"]


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


def initial_weights(run: Path) -> Path:
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


def load_initial_weights(autoencoder: Any, run: Path) -> None:
    """The best weights of run folder ``run`` into ``autoencoder``; DataError naming the problem."""
    load_weights_whole(autoencoder, initial_weights(run), what="this model (init_from needs the same architecture)")
