"""All the paper's metrics of a set of reconstructions, as one JSON-ready dict."""

from __future__ import annotations

import numpy as np

from synth.errors import ParameterError
from synth.metrics.error import rmse_per_note
from synth.metrics.harmonic import HarmonicCounts, harmonic_counts
from synth.metrics.structural import ssim_per_note
from synth.spectrogram import SpectrogramParams

__all__ = ["SUMMARY_KEYS", "summary", "MetricsAccumulator"]

SUMMARY_KEYS = ("rmse", "ssim", "precision", "recall", "f1", "notes")


class MetricsAccumulator:
    """Per-note metrics collected batch by batch, so a large split never has to sit in memory at once.

    ``add(originals, reconstructions)`` any number of times, then ``result()`` gives exactly what
    :func:`summary` of all the batches concatenated would give. ``reset()`` empties it.
    """

    def __init__(self, *, params: SpectrogramParams) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._rmse: list[np.ndarray] = []
        self._ssim: list[np.ndarray] = []
        self._counts: list[HarmonicCounts] = []

    def add(self, originals: np.ndarray, reconstructions: np.ndarray) -> None:
        """Measure one batch; shapes as in :func:`summary`."""
        self._rmse.append(rmse_per_note(originals, reconstructions))
        self._ssim.append(ssim_per_note(originals, reconstructions))
        self._counts.append(harmonic_counts(originals, reconstructions, params=self.params))

    @property
    def notes(self) -> int:
        return int(sum(len(r) for r in self._rmse))

    def per_note(self) -> dict[str, np.ndarray]:
        """Per-note arrays [shape=(B,)]: rmse, ssim, precision, recall, f1 (NaN for notes left out)."""
        if not self._rmse:
            raise ParameterError("no notes measured yet")
        counts = HarmonicCounts(
            *(
                np.concatenate([getattr(c, f) for c in self._counts])
                for f in HarmonicCounts.__dataclass_fields__
            )
        )
        return {
            "rmse": np.concatenate(self._rmse),
            "ssim": np.concatenate(self._ssim),
            "precision": counts.precision,
            "recall": counts.recall,
            "f1": counts.f1,
        }

    def result(self) -> dict[str, float | int]:
        """The dict of :func:`summary` over every note added so far."""
        values = self.per_note()
        counted = ~np.isnan(values["recall"])
        out: dict[str, float | int] = {
            "rmse": float(np.mean(values["rmse"])),
            "ssim": float(np.mean(values["ssim"])),
        }
        for key in ("precision", "recall", "f1"):
            out[key] = float(np.mean(values[key][counted])) if counted.any() else float("nan")
        out["notes"] = self.notes
        return out


def summary(
    originals: np.ndarray, reconstructions: np.ndarray, *, params: SpectrogramParams
) -> dict[str, float | int]:
    """RMSE, SSIM and harmonic precision / recall / F1 of reconstructions against their originals.

    Parameters
    ----------
    originals, reconstructions : np.ndarray [shape=(B, n_mels, frames) or (n_mels, frames)], unit scale
        [0, 1] of the contract ``params``; memory-mapped arrays are fine.
    params : the spectrogram contract the spectrograms were made with

    Returns
    -------
    dict with exactly the keys of :data:`SUMMARY_KEYS`:

    - "rmse": per-note RMSE on the unit scale, mean over notes (:func:`synth.metrics.rmse`);
    - "ssim": per-note scikit-image SSIM, data_range 1, 7 x 7 window, mean over notes
      (:func:`synth.metrics.ssim`);
    - "precision", "recall", "f1": the paper's harmonic scores with the defaults of
      :mod:`synth.metrics.harmonic` (30 dB relative peak threshold, 3 % match tolerance, band-centre
      frequencies, maximum one-to-one matching, silent original frames skipped), per note and then averaged
      over the notes whose original has a peak (NaN if none has);
    - "notes": the number of notes measured (all of them; RMSE and SSIM average over all).
    """
    acc = MetricsAccumulator(params=params)
    acc.add(originals, reconstructions)
    return acc.result()
