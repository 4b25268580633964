"""Is model A worse than model B on the same notes? A paired difference with a bootstrap over instruments.

Two models measured on the same notes differ note by note far less than their means vary across instruments,
so their difference is judged per note, paired, and its uncertainty drawn by resampling whole instruments (the
unit the split holds out: notes of one instrument are not independent of each other).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth.errors import ParameterError

__all__ = ["PairedDifference", "paired_difference"]


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """``mean`` of A - B over the instruments' mean differences, its bootstrap ``low`` and ``high`` (the
    central ``confidence`` interval), over ``groups`` instruments and ``notes`` notes."""

    mean: float
    low: float
    high: float
    confidence: float
    groups: int
    notes: int

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def paired_difference(
    a: np.ndarray, b: np.ndarray, *, groups: np.ndarray, draws: int = 10000, confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """The mean of ``a - b`` per group, averaged over groups, with a bootstrap interval over groups.

    Parameters
    ----------
    a, b : np.ndarray [shape=(notes,)] one figure per note for each model (NaN notes are left out of both)
    groups : np.ndarray [shape=(notes,)] the instrument of each note
    draws : bootstrap resamples of the groups
    confidence : the interval's coverage, in (0, 1)
    """
    a, b, groups = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), np.asarray(groups)
    if a.shape != b.shape or a.shape != groups.shape or a.ndim != 1:
        raise ParameterError(f"a, b and groups must be 1-D of one length, got {a.shape}, {b.shape}, {groups.shape}")
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"confidence must lie in (0, 1), got {confidence}")
    if draws < 1:
        raise ParameterError(f"draws must be positive, got {draws}")
    keep = np.isfinite(a) & np.isfinite(b)
    diff, groups = (a - b)[keep], groups[keep]
    names, index = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise ParameterError(f"a paired difference needs notes of at least 2 groups, got {len(names)}")
    per_group = np.bincount(index, weights=diff) / np.bincount(index)
    rng = np.random.default_rng(seed)
    means = per_group[rng.integers(0, len(per_group), size=(draws, len(per_group)))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    return PairedDifference(
        mean=float(per_group.mean()), low=float(np.quantile(means, tail)), high=float(np.quantile(means, 1 - tail)),
        confidence=float(confidence), groups=int(len(names)), notes=int(diff.size))
