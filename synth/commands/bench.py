"""``melsynth bench``: measure decode, inversion and control figures on this machine.

``--quick`` prints the headline figures (decode ms p50/p99, the inversion real-time factors against
librosa.griffinlim, control latency, the most voices held) in under a minute, without TensorFlow
(:func:`quick_figures`). Without ``--quick`` (or with ``--all``, or any of ``--only``, ``--fuzz-packets``,
``--out``, ``--no-write``, ``--no-keras``) it runs every benchmark of the project (:func:`run_all`, what
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
import time
import traceback

__all__ = ["add_arguments", "run", "run_all", "quick_figures", "SECTIONS"]

# The --only names, in the order a full run measures them (TensorFlow last: once imported it stays in the
# process's memory and threads). "soak" also runs the soak with a busy core ("soak_busy" in the result).
SECTIONS = ("inversion", "engine", "render", "fuzz", "soak", "jack_latency", "decode", "training")


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


def _section(name: str, fn, results: dict, timings: dict) -> None:
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        results[name] = fn()
    except Exception as exc:  # one broken bench must not hide the others' figures
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
    timings[name] = time.monotonic() - t0
    print(f"bench: {name} done in {timings[name]:.0f} s", file=sys.stderr, flush=True)


def run_all(*, quick: bool = False, soak_minutes: float = 60.0, fuzz_packets: int = 100_000,
            keras: bool = True, only: tuple[str, ...] = ()) -> dict:
    """Run the benchmarks (those of ``only``, else all); returns {"machine", "when", "settings", "results":
    {name: dict}, "seconds"}, what :func:`synth.benchmarks.report.document` writes up. A benchmark that fails
    is its error in the results, and the others still run."""
    import datetime
    import os

    from synth.benchmarks.machine import describe_machine

    machine = describe_machine()
    results: dict = {}
    timings: dict = {}

    def want(name):
        return not only or name in only

    if want("inversion"):
        from synth.benchmarks.suites.inversion import run_inversion_bench

        _section("inversion", lambda: run_inversion_bench(quick=quick), results, timings)
    if want("engine"):
        from synth.benchmarks.suites.engine import run_engine_bench

        _section("engine", lambda: run_engine_bench(quick=quick), results, timings)
    if want("render"):
        from synth.benchmarks.suites.render import run_render_bench

        _section("render", lambda: run_render_bench(quick=quick), results, timings)
    if want("fuzz"):
        from synth.benchmarks.suites.fuzz import run_fuzz_bench

        _section("fuzz", lambda: run_fuzz_bench(packets=fuzz_packets), results, timings)
    if want("soak"):
        from synth.benchmarks.suites.soak import run_soak_bench

        _section("soak", lambda: run_soak_bench(minutes=soak_minutes), results, timings)
        # The same soak with a busy loop holding one core (10 minutes at most).
        _section("soak_busy", lambda: run_soak_bench(minutes=min(10.0, soak_minutes), busy_core=True), results,
                 timings)
    if want("jack_latency"):
        from synth.benchmarks.suites.jack_latency import run_jack_latency_bench

        def jack_latency() -> dict:
            trials = 10 if quick else 20
            default = run_jack_latency_bench(trials=trials)
            if "jack_latency_skipped" not in default:
                # The low-latency setting: a note onto silence waits one block, playing keeps the default margin;
                # beside it, one block ahead all the time (what that margin alone costs in underflows).
                default["low_latency"] = run_jack_latency_bench(trials=trials, onset=1, change_trials=False)
                default["one_block"] = run_jack_latency_bench(trials=trials, ahead=1, max_ahead=1,
                                                              change_trials=False)
            return default

        _section("jack_latency", jack_latency, results, timings)
    # TensorFlow last: once imported it stays in this process's memory and threads.
    if want("decode"):
        from synth.benchmarks.suites.decode import run_decode_bench

        def decode():
            paper = None
            if keras:
                from training.benchmarks import paper_decoder as paper
            return run_decode_bench(quick=quick, paper_decoder=paper)

        _section("decode", decode, results, timings)
    if want("training"):
        def training():
            from training.benchmarks import run_training_bench

            return run_training_bench(quick=quick)

        _section("training", training, results, timings)
    machine["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    return {
        "machine": machine,
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"quick": quick, "soak_minutes": soak_minutes, "fuzz_packets": fuzz_packets},
        "results": results,
        "seconds": timings,
    }


def quick_figures() -> dict:
    """What `melsynth bench --quick --json` prints: the headline figures in well under a minute, no TF."""
    import os

    from synth.benchmarks.suites.decode import bundle_decode
    from synth.benchmarks.suites.engine import run_engine_bench
    from synth.benchmarks.suites.inversion import run_inversion_bench

    out: dict = {}
    out.update(bundle_decode(quick=True))
    inv = run_inversion_bench(quick=True)
    out.update({k: inv[k] for k in ("sinusoidal_rtf", "griffinlim_rtf", "librosa_griffinlim_rtf") if k in inv})
    eng = run_engine_bench(quick=True)
    out.update({k: eng[k] for k in ("control_latency_ms_p50", "control_latency_ms_p99", "preset_latency_ms_p99",
                                    "sweep_latency_ms_p99", "morph_latency_ms_p99", "morph_exact_latency_ms_p99",
                                    "macro_latency_ms_p99",
                                    "note_latency_ms_p99", "buffer_ms", "max_voices", "engine_rss_start_mb")})
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    out["cores"] = os.cpu_count()
    return out


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
        emit(quick_figures(), as_json=args.json)
        return 0
    only = tuple(args.only or ())
    out = Path(args.out if args.out is not None else Path("docs") / "BENCHMARKS.md")
    result = run_all(quick=args.quick, soak_minutes=args.soak_minutes,
                     fuzz_packets=100_000 if args.fuzz_packets is None else args.fuzz_packets,
                     keras=not args.no_keras, only=only)
    if not args.no_write:
        from synth.benchmarks.report import write_document

        write_document(result, out, only=only)
        print(f"bench: wrote {out}", file=sys.stderr)
    if args.json:
        emit(result, as_json=True)
    return 0
