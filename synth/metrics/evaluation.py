"""Measuring reconstructions note by note: the paper's metrics of a model beside its PCA baselines, batch by
batch, and optionally the error as heard. Shared by ``melsynth evaluate`` (bundles and runs), the training
package's run evaluation and the experiments; numpy only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.inversion.base import METHODS

__all__ = ["Reconstruct", "HEARD_METHODS", "SPLITS", "measure", "pca_reconstructors", "with_pca", "batches"]

#: The splits a model is measured on ("all": every note).
SPLITS = ("test", "valid", "train", "all")

Reconstruct = Callable[[np.ndarray], np.ndarray]
HEARD_METHODS = METHODS


def batches(n: int, size: int, *, desc: str, progress: bool) -> Iterator[slice]:
    from tqdm import tqdm

    with tqdm(total=n, desc=desc, unit="note", disable=not progress, file=sys.stderr, leave=False) as bar:
        for start in range(0, n, size):
            stop = min(start + size, n)
            yield slice(start, stop)
            bar.update(stop - start)


def measure(
    originals: Callable[[slice], np.ndarray],
    reconstructors: dict[str, Reconstruct],
    n: int,
    *,
    params: Any,
    batch_size: int,
    desc: str,
    progress: bool,
    heard: int = 0,
) -> dict[str, dict[str, Any]]:
    """The metrics of each reconstructor on the same ``n`` notes, reading every batch of originals once; with
    ``heard``, also the error as heard (:mod:`synth.metrics.heard`) on that many notes spread evenly."""
    from synth.metrics import MetricsAccumulator
    from synth.metrics.heard import heard_region_errors
    from synth.metrics.regions import mean_region_errors

    if batch_size < 1:
        raise ParameterError(f"batch size must be positive, got {batch_size}")
    if n == 0:
        raise DataError("no notes to evaluate")
    accs = {name: MetricsAccumulator(params=params) for name in reconstructors}
    heard_at = set(np.linspace(0, n - 1, min(heard, n)).astype(int).tolist()) if heard > 0 else set()
    errors: dict[str, dict[str, list]] = {name: {m: [] for m in HEARD_METHODS}
                                                 for name in ("original", *reconstructors)}
    for part in batches(n, batch_size, desc=desc, progress=progress):
        x = np.ascontiguousarray(originals(part), dtype=np.float32)
        outputs = {}
        for name, reconstruct in reconstructors.items():
            # Outputs are on the unit scale; float rounding in ONNX/Keras may step a hair outside.
            outputs[name] = np.clip(np.asarray(reconstruct(x), dtype=np.float32), 0.0, 1.0)
            accs[name].add(x, outputs[name])
        for i in sorted(heard_at & set(range(part.start, part.stop))):
            j = i - part.start
            for name in errors:
                spec = x[j] if name == "original" else outputs[name][j]
                for method in HEARD_METHODS:
                    errors[name][method].append(heard_region_errors(x[j], spec, method=method, params=params))
    out: dict[str, dict[str, Any]] = {name: acc.result() for name, acc in accs.items()}
    if heard_at:
        out["heard"] = {name: {m: float(np.nanmean([r.heard for r in v])) if v else float("nan")
                               for m, v in by.items()} for name, by in errors.items()} | {"notes": len(heard_at)}
        # The same by region of the note (attack, sustain below 1.5 kHz and from 2 kHz, release).
        out["heard_regions"] = {name: {m: mean_region_errors(v) for m, v in by.items() if v}
                                for name, by in errors.items()}
    return out


def pca_reconstructors(
    train: Callable[[slice], np.ndarray], n: int, *, shape: tuple[int, int], latent_size: int, what: str,
    progress: bool,
) -> tuple[dict[str, Reconstruct], dict[str, int]]:
    """PCA reconstructors named "pca_K" for each compared size K, and the training notes they were fitted on.

    ``train(slice(a, b))`` reads training notes a..b-1 of the ``n`` [shape=(b - a, *shape)]; it is called a
    batch at a time, several times per batch (:func:`synth.metrics.pca.fit_pca_streamed`), so the split is
    never held."""
    from synth.metrics.pca import fit_pca_streamed, pca_component_counts

    sizes = pca_component_counts(latent_size=latent_size, training_notes=n) if n >= 2 else (2,)
    if progress:
        print(f"fitting PCA ({', '.join(map(str, sizes))} components) on {n} {what}", file=sys.stderr)
    base = fit_pca_streamed(train, n, shape=shape, components=sizes[0], name=what)
    return {f"pca_{k}": base.truncate(k).reconstruct for k in sizes}, {"train_notes": base.notes}


def with_pca(measured: dict[str, dict[str, Any]], pca_info: dict[str, int]) -> dict[str, Any]:
    """The model's result, with a "pca" list of each PCA size's result (largest first) when measured, and the
    error as heard ("heard": source -> method -> dB) when measured."""
    result = dict(measured["model"])
    for key in ("heard", "heard_regions"):
        if key in measured:
            result[key] = measured[key]
    rows = [dict(r, components=int(name.split("_")[1]), **pca_info) for name, r in measured.items()
            if name.startswith("pca_")]
    if rows:
        result["pca"] = rows
    return result
