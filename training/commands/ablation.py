"""``melsynth ablation``: tabulate training runs of our own variants beside the paper's no_dense and PCA.

Example::

    melsynth ablation runs/abl_no_dense_b16 runs/abl_clip runs/abl_clip_res --out results/model/ablation.md \\
        --note "8 epochs each, batch 16, Adam 1e-3"
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="finished run folders, one row each")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.md", help="the table to write")
    parser.add_argument("--note", default="", help="a line under the title: the budget the rows share, say")
    parser.add_argument("--decode-repeats", type=int, default=20, metavar="N", help="decodes timed per run (20)")


def run(args: argparse.Namespace) -> int:
    from training.quiet_tensorflow import import_tensorflow

    import_tensorflow()
    from training.ablation import write_ablation

    write_ablation(args.runs, args.out, note=args.note, decode_repeats=args.decode_repeats)
    return 0
