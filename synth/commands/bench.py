"""``melsynth bench``: measure decode, inversion and control figures on this machine.

``--quick`` prints the headline figures (decode ms p50/p99, the inversion real-time factors against
librosa.griffinlim, control latency, the most voices held) in under a minute, without TensorFlow; without
``--quick`` it runs every benchmark of the project (bench/run_all.py, what ``make bench`` runs) and rewrites
docs/BENCHMARKS.md. The measuring code lives in bench/ (scripts) and synth/benchmarks/, so this needs the
source checkout.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="headline figures only, under a minute, no TensorFlow")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--soak-minutes", type=float, default=60.0, help="full run: soak length (default 60)")


def _run_all_module():
    import importlib.util
    from pathlib import Path

    from synth.errors import ParameterError

    path = Path(__file__).resolve().parents[2] / "bench" / "run_all.py"
    if not path.exists():
        raise ParameterError(f"melsynth bench needs the source checkout's bench/ folder ({path} is missing)")
    spec = importlib.util.spec_from_file_location("melsynth_bench_run_all", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger().setLevel(logging.ERROR)  # python-osc logs each odd packet; figures only here
    module = _run_all_module()
    if args.quick:
        figures = module.quick_figures()
        if args.json:
            print(json.dumps(figures, indent=2, default=str))
        else:
            for key, value in figures.items():
                print(f"{key}: {value}")
        return 0
    argv = ["--soak-minutes", str(args.soak_minutes)] + (["--json"] if args.json else [])
    return module.main(argv)
