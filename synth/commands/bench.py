"""``melsynth bench``: measure decode, inversion and control figures on this machine.

``--quick`` prints the headline figures (decode ms p50/p99, the inversion real-time factors against
librosa.griffinlim, control latency, the most voices held) in under a minute, without TensorFlow
(:func:`synth.benchmarks.run_all.quick_figures`). Without ``--quick`` (or with ``--all``, or any of ``--only``, ``--fuzz-packets``,
``--out``, ``--no-write``, ``--no-keras``) it runs every benchmark of the project (:func:`synth.benchmarks.run_all.run_all`, what
bench/run_all.py and ``make bench`` run: ``--quick`` then shortens each one) and rewrites docs/BENCHMARKS.md
under the current folder (:mod:`synth.benchmarks.report`); with ``--only NAME ...`` only those sections are
measured, and the document keeps every other section of its previous run.

The measuring code is the package's (:mod:`synth.benchmarks.suites`, :mod:`synth.benchmarks`), so this works
from an installed wheel; the TensorFlow parts (the Keras decode baseline, training throughput) are
:mod:`training.benchmarks`, imported only for those sections.
"""

from __future__ import annotations

import argparse
import sys

from synth.benchmarks import run_all as suites
from synth.benchmarks.run_all import SECTIONS

__all__ = ["add_arguments", "run"]

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="headline figures only, under a minute, no TensorFlow; with a full run (--all, "
                             "--only, ...): short versions of every benchmark")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (a full run: its whole result, beside the document)")
    parser.add_argument("--all", action="store_true",
                        help="run every benchmark and write the document even with --quick (what bench/run_all.py "
                             "and make bench do); implied by --only, --fuzz-packets, --out, --no-write, --no-keras")
    parser.add_argument("--soak-minutes", type=float, default=60.0, help="full run: soak length (default 60)")
    parser.add_argument("--fuzz-packets", type=int, default=None, help="full run: OSC fuzz packets (default 100000)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", choices=SECTIONS,
                        help="full run: only these sections (" + " ".join(SECTIONS) + "); the document keeps "
                             "the others from its previous run")
    parser.add_argument("--no-keras", action="store_true", help="full run: skip the TensorFlow decode baseline")
    parser.add_argument("--no-write", action="store_true", help="full run: do not rewrite the document")
    parser.add_argument("--out", default=None,
                        help="full run: the document to write (default docs/BENCHMARKS.md in the current folder)")


def _tensorflow_parts():
    """training/'s benchmarks, each importing TensorFlow only when its section runs."""

    def paper_decoder(*args, **kwargs):
        from training.benchmarks import paper_decoder

        return paper_decoder(*args, **kwargs)

    def training_bench(**kwargs):
        from training.benchmarks import run_training_bench

        return run_training_bench(**kwargs)

    return suites.TensorFlowParts(paper_decoder=paper_decoder, training_bench=training_bench)


def run(args: argparse.Namespace) -> int:
    import logging
    import os
    from pathlib import Path

    from synth.benchmarks.common import emit

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger().setLevel(logging.ERROR)  # python-osc logs each odd packet; figures only here
    full = (args.all or not args.quick or args.only is not None or args.fuzz_packets is not None
            or args.out is not None or args.no_write or args.no_keras)
    if not full:
        emit(suites.quick_figures(), as_json=args.json)
        return 0
    only = tuple(args.only or ())
    out = Path(args.out if args.out is not None else Path("docs") / "BENCHMARKS.md")
    result = suites.run_all(quick=args.quick, soak_minutes=args.soak_minutes,
                            fuzz_packets=100_000 if args.fuzz_packets is None else args.fuzz_packets,
                            keras=not args.no_keras, only=only, tensorflow=_tensorflow_parts())
    if not args.no_write:
        from synth.benchmarks.report import write_document

        write_document(result, out, only=only)
        print(f"bench: wrote {out}", file=sys.stderr)
    if args.json:
        emit(result, as_json=True)
    return 0
