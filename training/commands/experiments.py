"""``melsynth experiments``: train every row of the paper's Tables I-IV and write results/paper/tables.md.

See :mod:`training.experiments`. Finished rows are kept as JSON under OUT/rows, so the sweep can be spread
over several sittings: rerun the same command and it skips them (an interrupted run is resumed; a row whose
variant has changed since runs again).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        metavar="FEATURES_DIR",
        help="the features folder (not needed with --tables-only)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results/paper"), help="results folder (default results/paper)"
    )
    parser.add_argument(
        "--runs", type=Path, default=Path("runs/paper"), help="run folders (default runs/paper)"
    )
    parser.add_argument(
        "--rows",
        type=_names,
        default=None,
        metavar="NAME,NAME,...",
        help="only these rows (default all); e.g. no_reg,kr_l2_D,no_dense",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="epoch bound of each run (default the config's)"
    )
    parser.add_argument("--limit", type=int, default=None, help="at most this many training notes per run")
    parser.add_argument("--patience", type=int, default=None, help="early-stopping patience (default 10)")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed precision: float16 on a GPU, bfloat16 on a CPU with native bfloat16")
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=2,
        help="Keras output per run: 0 none, 1 progress bar, 2 a line per epoch (default)",
    )
    parser.add_argument(
        "--tables-only", action="store_true", help="only rewrite tables.md from the rows already there"
    )
    parser.add_argument("--list", action="store_true", help="list the rows and which share a run, then exit")


def run(args: argparse.Namespace) -> int:
    from synth.errors import ParameterError
    from training.quiet_tensorflow import import_tensorflow

    if not args.list:
        import_tensorflow(training=True)

    if args.list:
        from training.experiments import TABLES, row_groups

        for table in TABLES:
            print(f"Table {table.number}: {', '.join(name for name, _ in table.rows)}")
        for group in row_groups():
            print(f"run {group[0]}: rows {', '.join(group)}")
        return 0
    if args.tables_only:
        from training.experiments import write_tables

        print(f"wrote {write_tables(args.out)}")
        return 0
    if args.data is None:
        raise ParameterError("--data FEATURES_DIR is needed to train (or use --tables-only)")
    for flag in ("max_epochs", "limit", "patience"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise ParameterError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    from training.experiments import run_experiments

    run_experiments(
        data=args.data,
        out=args.out,
        runs=args.runs,
        rows=args.rows,
        max_epochs=args.max_epochs,
        limit=args.limit,
        patience=args.patience,
        mixed_precision=args.mixed_precision,
        verbose=args.verbose,
        log=lambda line: print(line, flush=True),
    )
    return 0
