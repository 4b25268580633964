"""Every benchmark of the project in one run (``melsynth bench``, ``make bench``), and the headline figures.

The measuring code is the package's (:mod:`synth.benchmarks.suites`), so this works from an installed wheel;
the TensorFlow parts (the Keras decode baseline, training throughput) are :mod:`training.benchmarks`, which the
command hands in as :class:`TensorFlowParts` (imported only for those sections).
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from collections.abc import Callable

__all__ = ["run_all", "quick_figures", "SECTIONS", "TensorFlowParts"]

# The --only names, in the order a full run measures them (TensorFlow last: once imported it stays in the
# process's memory and threads). "soak" also runs the soak with a busy core ("soak_busy" in the result).
SECTIONS = ("inversion", "engine", "render", "fuzz", "flood", "soak", "jack_latency", "decode", "training")



@dataclasses.dataclass(frozen=True)
class TensorFlowParts:
    """The benchmarks that need TensorFlow: the paper's Keras decoder (the decode baseline) and training."""

    paper_decoder: Callable
    training_bench: Callable[..., dict]


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
            keras: bool = True, only: tuple[str, ...] = (), tensorflow: TensorFlowParts | None = None) -> dict:
    """Run the benchmarks (those of ``only``, else all); returns {"machine", "when", "settings", "results":
    {name: dict}, "seconds"}, what :func:`synth.benchmarks.report.document` writes up. A benchmark that fails
    is its error in the results, and the others still run. ``tensorflow``: the TensorFlow benchmarks
    (training/ has them; synth/ never imports TensorFlow), None to leave them out."""
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
    if want("flood"):
        from synth.benchmarks.suites.flood import run_flood_bench

        _section("flood", lambda: run_flood_bench(seconds=3.0 if quick else 10.0), results, timings)
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
            paper = tensorflow.paper_decoder if keras and tensorflow is not None else None
            return run_decode_bench(quick=quick, paper_decoder=paper)

        _section("decode", decode, results, timings)
    if want("training") and tensorflow is not None:
        _section("training", lambda: tensorflow.training_bench(quick=quick), results, timings)
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
