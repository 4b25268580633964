"""Reproduce the paper's Tables I-IV: train every row, measure it, write results/paper/tables.md.

Layout::

    OUT/rows/<row>.json   one finished row: metrics (test split), config, epochs, wall time, budget,
                          hardware, data description (written atomically; a rerun skips rows already there,
                          unless the row's variant has changed since: then it runs again; or unless it
                          stopped at a lower epoch bound than --max-epochs: then its run trains on)
    OUT/tables.md         the four tables, ours beside the paper's, with a header (data, split, budget,
                          hardware) and a sentence per table on where our F1 ranking differs from the paper's
    OUT/pca.json          the PCA baseline on the same training notes
    RUNS/<run>/           the run folders (training.fit), not committed

One idea a module:

    tables    the paper's tables, their rows and the paper's numbers
    plan      which rows share a run, which are done, whether a run folder is the row's own
    sweep     train, resume or only measure each run; write its rows, then the tables
    rows      the row files (format, write, read)
    pca       the PCA baseline beside the tables
    report    tables.md
    hardware  the machine a row was measured on
"""

from __future__ import annotations

from training.experiments.hardware import hardware
from training.experiments.pca import PCA_FILE, load_pca
from training.experiments.plan import row_groups
from training.experiments.report import overall_sentence, ranking_sentence, render_tables, write_tables
from training.experiments.rows import ROW_FORMAT, load_rows
from training.experiments.sweep import run_experiments
from training.experiments.tables import PAPER, ROW_NAMES, TABLES, Table

__all__ = [
    "TABLES",
    "PAPER",
    "ROW_NAMES",
    "ROW_FORMAT",
    "Table",
    "row_groups",
    "hardware",
    "run_experiments",
    "load_rows",
    "load_pca",
    "PCA_FILE",
    "render_tables",
    "write_tables",
    "ranking_sentence",
    "overall_sentence",
]
