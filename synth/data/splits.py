"""80/10/10 splits: by instrument (NSynth's rule, the default) or at random (the paper's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from synth.errors import ParameterError

__all__ = ["make_splits", "split_rows", "SPLIT_RULES"]

SPLIT_RULES = ("instrument", "random")


def _cut(n: int, fractions: tuple[float, float, float]) -> tuple[int, int]:
    n_train = int(round(n * fractions[0]))
    n_valid = int(round(n * fractions[1]))
    if n >= 3:  # every split gets at least one item when there are enough
        n_valid = max(n_valid, 1)
        n_train = min(max(n_train, 1), n - n_valid - 1)
    return n_train, n_valid


def make_splits(
    rows: list[dict[str, Any]], *, rule: str = "instrument", seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> dict[str, list[int]]:
    """Assign row indices to train/valid/test.

    With ``rule="instrument"`` all notes of one ``instrument_str`` land in the same split, and the instruments
    are shuffled with ``seed`` and cut 80/10/10 by instrument count. With ``rule="random"`` notes are shuffled
    and cut individually. The same rows, rule and seed always give the same splits.
    """
    instruments = [str(r["instrument_str"]) for r in rows] if rule == "instrument" else None
    split = split_rows(len(rows), instruments=instruments, rule=rule, seed=seed, fractions=fractions)
    return {name: idx.tolist() for name, idx in split.items()}


def split_rows(
    n: int, *, instruments: Sequence[str] | None, rule: str = "instrument", seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> dict[str, np.ndarray]:
    """:func:`make_splits` of ``n`` rows given only what the rule reads: each row's instrument name
    (``instruments``, for "instrument"; None for "random"). Sorted int64 row indices per split, the very
    ones :func:`make_splits` gives, held as arrays (8 bytes a row) for a set too large to hold as rows."""
    if rule not in SPLIT_RULES:
        raise ParameterError(f"split rule {rule!r}: expected one of {SPLIT_RULES}")
    rng = np.random.default_rng(seed)
    if rule == "random":
        order = rng.permutation(n)
        n_train, n_valid = _cut(n, fractions)
        cuts = {"train": order[:n_train], "valid": order[n_train : n_train + n_valid],
                "test": order[n_train + n_valid :]}
        return {name: np.sort(idx).astype(np.int64) for name, idx in cuts.items()}
    if instruments is None or len(instruments) != n:
        raise ParameterError("an instrument split needs each row's instrument name")
    names, codes = np.unique(np.asarray(instruments, dtype=object).astype(str), return_inverse=True)
    order = rng.permutation(len(names))
    n_train, n_valid = _cut(len(names), fractions)
    place = np.empty(len(names), dtype=np.int64)  # each instrument's place in the shuffled order
    place[order] = np.arange(len(names))
    at = place[codes]
    return {"train": np.flatnonzero(at < n_train), "valid": np.flatnonzero((at >= n_train) & (at < n_train + n_valid)),
            "test": np.flatnonzero(at >= n_train + n_valid)}
