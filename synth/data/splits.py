"""80/10/10 splits: by instrument (NSynth's rule, the default) or at random (the paper's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from synth.errors import ParameterError

__all__ = ["make_splits", "SPLIT_RULES"]

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
    if rule not in SPLIT_RULES:
        raise ParameterError(f"split rule {rule!r}: expected one of {SPLIT_RULES}")
    rng = np.random.default_rng(seed)
    if rule == "random":
        order = rng.permutation(len(rows))
        n_train, n_valid = _cut(len(rows), fractions)
        groups = [[int(i)] for i in order]
    else:
        names = sorted({str(r["instrument_str"]) for r in rows})
        order = rng.permutation(len(names))
        by_name: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_name.setdefault(str(r["instrument_str"]), []).append(i)
        groups = [by_name[names[i]] for i in order]
        n_train, n_valid = _cut(len(groups), fractions)
    out = {
        "train": sorted(i for g in groups[:n_train] for i in g),
        "valid": sorted(i for g in groups[n_train : n_train + n_valid] for i in g),
        "test": sorted(i for g in groups[n_train + n_valid :] for i in g),
    }
    return out
