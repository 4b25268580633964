"""The PCA baseline's test metrics on a features folder: what every table of this project puts a model beside."""

from __future__ import annotations

from typing import Any

import numpy as np

from synth.metrics.evaluation import measure
from synth.metrics.pca import fit_pca_streamed, pca_component_counts

__all__ = ["pca_test_metrics", "PCA_NOTES"]

#: PCA is fitted on at most this many training notes (a seeded sample): its cost grows as the square of the
#: notes (their Gram matrix), and a sample of 2048 of the keyboard set's 17,375 gives the same baseline
#: within the figures' noise. The fit reads them a batch at a time (:func:`fit_pca_streamed`), never all.
PCA_NOTES = 2048
#: Test notes measured at once: the split is streamed, never held.
_BATCH = 64


def pca_test_metrics(features: Any, *, train_rows: np.ndarray, latent_size: int, log=None,
                     with_mean: bool = False) -> list[dict[str, Any]]:
    """Test-split metrics of PCA fitted on ``train_rows`` of the loaded features folder ``features``, with
    k = min(latent size, training notes) components and with 128 (when smaller), and with 0 when
    ``with_mean`` (the mean training note, the same output whatever the input: the floor any model must
    clear): one dict each, with the keys of :func:`synth.metrics.summary` plus ``components``,
    ``train_notes`` and ``split``. Empty when the test split is empty or there are fewer than 2 training
    notes. At most :data:`PCA_NOTES` training notes are used (a seeded sample; ``train_notes`` says how
    many)."""
    test = np.sort(features.subset("test"))
    if len(train_rows) > PCA_NOTES:
        train_rows = np.random.default_rng(104395301).choice(np.sort(train_rows), PCA_NOTES, replace=False)
        if log:
            log(f"  PCA baseline fitted on a seeded sample of {PCA_NOTES} training notes")
    if test.size == 0 or len(train_rows) < 2:
        if log:
            log("  no PCA baseline: the test split is empty or there are fewer than 2 training notes")
        return []
    sizes = pca_component_counts(latent_size=latent_size, training_notes=len(train_rows)) + ((0,) if with_mean else ())
    if log:
        log(f"  PCA baseline: {', '.join(map(str, sizes))} components of {len(train_rows)} training notes")
    fitted, params = np.sort(train_rows), features.params
    base = fit_pca_streamed(lambda part: features.x[fitted[part]], len(fitted), shape=(params.n_mels, params.frames),
                            components=sizes[0], name=f"training notes of {features.path}")
    reconstructors = {f"pca_{k}": base.truncate(k).reconstruct for k in sizes}
    measured = measure(lambda part: features.x[test[part]], reconstructors, len(test), params=params,
                       batch_size=_BATCH, desc="PCA baseline", progress=False)
    return [{key: (float(v) if isinstance(v, float) else v) for key, v in measured[f"pca_{k}"].items()}
            | {"components": k, "train_notes": int(len(train_rows)), "split": "test"} for k in sizes]
