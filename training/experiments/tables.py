"""The paper's Tables I-IV: each table's rows (variant name, the paper's label) and the paper's numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from synth.errors import ParameterError

__all__ = ["METRIC_COLUMNS", "Table", "TABLES", "ROW_NAMES", "TABLE_OF", "LABEL_OF", "PAPER", "check_names"]


METRIC_COLUMNS = (
    ("rmse", "RMSE"),
    ("ssim", "SSIM"),
    ("recall", "Recall"),
    ("precision", "Precision"),
    ("f1", "F1"),
)


@dataclasses.dataclass(frozen=True)
class Table:
    """One of the paper's tables: its number, caption and rows as (variant name, the paper's label)."""

    number: str
    caption: str
    rows: tuple[tuple[str, str], ...]


TABLES: tuple[Table, ...] = (
    Table(
        "I",
        "Regularization techniques",
        (
            ("no_reg", "No Reg"),
            ("dropout_E", "Dropout E"),
            ("dropout_D", "Dropout D"),
            ("dropout_ED", "Dropout ED"),
            ("kr_l1_E", "KR L1 E"),
            ("kr_l1_D", "KR L1 D"),
            ("kr_l1_ED", "KR L1 ED"),
            ("kr_l2_E", "KR L2 E"),
            ("kr_l2_D", "KR L2 D"),
            ("kr_l2_ED", "KR L2 ED"),
            ("ar_l1_E", "AR L1 E"),
            ("ar_l1_D", "AR L1 D"),
            ("ar_l1_ED", "AR L1 ED"),
            ("ar_l2_E", "AR L2 E"),
            ("ar_l2_D", "AR L2 D"),
            ("ar_l2_ED", "AR L2 ED"),
        ),
    ),
    Table(
        "II",
        "Max pooling, average pooling and no pooling",
        (
            ("pool_max", "Max Pooling"),
            ("pool_avg", "Average Pooling"),
            ("pool_none", "No Pooling"),
        ),
    ),
    Table(
        "III",
        "Further compression of the latent space",
        (
            ("latent_8192", "Latent Dim 8192"),
            ("latent_4096", "Latent Dim 4096"),
            ("latent_2048", "Latent Dim 2048"),
        ),
    ),
    Table("IV", "Network without a fully connected layer", (("dense", "Dense"), ("no_dense", "No Dense"))),
)


ROW_NAMES: tuple[str, ...] = tuple(name for table in TABLES for name, _ in table.rows)


TABLE_OF = {name: table for table in TABLES for name, _ in table.rows}


LABEL_OF = {name: label for table in TABLES for name, label in table.rows}


# The paper's numbers (Natsiou & O'Leary, Tables I-IV): (RMSE, SSIM, recall, precision, F1).
_PAPER_ROWS: dict[str, tuple[float, float, float, float, float]] = {
    "no_reg": (0.087, 0.733, 0.777, 0.786, 0.772),
    "dropout_E": (0.097, 0.686, 0.707, 0.797, 0.732),
    "dropout_D": (0.087, 0.640, 0.832, 0.738, 0.769),
    "dropout_ED": (0.102, 0.548, 0.765, 0.753, 0.740),
    "kr_l1_E": (0.102, 0.631, 0.762, 0.752, 0.743),
    "kr_l1_D": (0.079, 0.757, 0.820, 0.804, 0.804),
    "kr_l1_ED": (0.080, 0.761, 0.829, 0.794, 0.804),
    "kr_l2_E": (0.086, 0.722, 0.804, 0.791, 0.790),
    "kr_l2_D": (0.077, 0.782, 0.819, 0.829, 0.817),
    "kr_l2_ED": (0.079, 0.766, 0.793, 0.830, 0.801),
    "ar_l1_E": (0.085, 0.778, 0.788, 0.826, 0.798),
    "ar_l1_D": (0.244, 0.214, 0.0, 0.0, 0.0),
    "ar_l1_ED": (0.244, 0.215, 0.0, 0.0, 0.0),
    "ar_l2_E": (0.162, 0.395, 0.541, 0.697, 0.552),
    "ar_l2_D": (0.244, 0.177, 0.0, 0.0, 0.0),
    "ar_l2_ED": (0.238, 0.210, 0.0, 0.0, 0.0),
    "pool_max": (0.087, 0.733, 0.777, 0.786, 0.772),
    "pool_avg": (0.089, 0.708, 0.787, 0.770, 0.770),
    "pool_none": (0.106, 0.676, 0.692, 0.732, 0.692),
    "latent_8192": (0.087, 0.733, 0.777, 0.786, 0.772),
    "latent_4096": (0.077, 0.796, 0.813, 0.828, 0.814),
    "latent_2048": (0.078, 0.798, 0.810, 0.837, 0.817),
    "dense": (0.087, 0.733, 0.777, 0.786, 0.772),
    "no_dense": (0.063, 0.861, 0.856, 0.859, 0.855),
}


PAPER: dict[str, dict[str, float]] = {
    name: dict(zip(("rmse", "ssim", "recall", "precision", "f1"), values, strict=True))
    for name, values in _PAPER_ROWS.items()
}


def check_names(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in ROW_NAMES]
    if unknown:
        raise ParameterError(f"unknown table rows {unknown}; known: {', '.join(ROW_NAMES)}")
    if not names:
        raise ParameterError("no table rows selected")
    return list(dict.fromkeys(names))
