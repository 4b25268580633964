"""Benchmark of offline rendering: one note of a preset, start to finish, on one core.

A "one-note render" is what ``melsynth render --preset`` does per preset once the bundle is loaded: build
an offline engine (one voice), decode the preset, render note-on, a 3 s hold and the release until the voice
has rung out (4 s of audio at 48 kHz), through the engine's limiter. Reported per method:

- ``render_<method>_x_realtime``: seconds of audio per second of CPU time (``time.process_time``, best of
  the repeats; on a shared machine wall time also counts other processes), the headline figure;
- ``render_<method>_x_realtime_wall``: the same against wall-clock time;
- ``render_<method>_loop_x_realtime``: the rendering loop alone (engine already built, decode done).

One core: the process is pinned to one CPU while it measures, and the decoder runs with one thread
(OMP/ORT threads = 1). Target (issue 6): sinusoidal >= 50x real time.

Usage::

    .venv/bin/python bench/bench_render.py [--quick] [--json] [--bundle DIR]

Without ``--bundle`` it uses ``presets/default`` when present, else the synthetic test bundle
(``synth/benchmarks/synthetic_bundle.py``, real ONNX graphs, a cheaper decoder than a trained model's), as
:func:`synth.benchmarks.common.resolve_bundle` picks it for every suite.
``run_render_bench(quick=...)`` is the function ``melsynth bench`` imports.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from synth.benchmarks.common import resolve_bundle  # noqa: E402

__all__ = ["run_render_bench"]

OUTPUT_RATE = 48000
TARGET_SINUSOIDAL = 50.0


@contextlib.contextmanager
def _one_core():
    """Pin this process to one CPU (and BLAS pools to one thread) for the measurement, then restore."""
    saved = None
    if hasattr(os, "sched_getaffinity"):
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(saved)})
    limits = contextlib.nullcontext()
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
    try:
        with limits:
            yield
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)


def _time_method(bundle, decoder, preset: str, method: str, *, repeats: int) -> dict:
    from synth.render import render_note

    render_note(bundle, preset=preset, method=method, hold=0.2, decoder=decoder)  # JIT and first-touch costs
    best_cpu = best_wall = best_loop = float("inf")
    seconds = 0.0
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        r = render_note(bundle, preset=preset, method=method, hold=3.0, output_rate=OUTPUT_RATE, decoder=decoder)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_loop = min(best_loop, r.figures.wall_seconds)
        seconds = r.seconds
    return {
        "x_realtime": seconds / best_cpu,
        "x_realtime_wall": seconds / best_wall,
        "loop_x_realtime": seconds / best_loop,
        "ms": 1e3 * best_cpu,
        "seconds": seconds,
    }


def run_render_bench(*, quick: bool, bundle: str | Path | None = None) -> dict:
    """Measure one-note renders with both methods; returns the JSON-ready dict (see the module docstring).

    ``quick`` takes the best of 3 renders instead of 7 (a few seconds on 2 shared cores, plus the first
    Griffin-Lim compilation when numba's cache is cold).
    """
    from synth.bundle import load_bundle

    path, label = resolve_bundle(bundle)
    b = load_bundle(path)
    if not b.presets:
        raise SystemExit(f"{path}: the bundle has no presets to render")
    preset = sorted(b.presets)[0]
    repeats = 3 if quick else 7
    result: dict = {}
    with _one_core():
        decoder = b.decoder(threads=1)
        for method in ("sinusoidal", "griffinlim"):
            t = _time_method(b, decoder, preset, method, repeats=repeats)
            for key in ("x_realtime", "x_realtime_wall", "loop_x_realtime", "ms"):
                result[f"render_{method}_{key}"] = t[key]
            result["note_seconds"] = t["seconds"]
        result["decoder_provider"] = decoder.provider
    if not quick:  # every preset at two pitches with both methods: a minute or two
        from synth.benchmarks.pitch import preset_tuning

        result.update(preset_tuning(b, decoder=b.decoder()))
    result.update(
        {
            "bundle": label,
            "preset": preset,
            "output_rate": OUTPUT_RATE,
            "repeats": repeats,
            "target_sinusoidal_x_realtime": TARGET_SINUSOIDAL,
            "meets_target": result["render_sinusoidal_x_realtime"] >= TARGET_SINUSOIDAL,
            "quick": quick,
        }
    )
    return result


def _markdown(r: dict) -> str:
    lines = [
        f"Offline render benchmark: one {r['note_seconds']:.2f} s note (3 s hold + release) of preset "
        f"{r['preset']!r} ({r['bundle']}) at {r['output_rate']} Hz, one core, best of {r['repeats']}",
        "",
        "| method | x real time (CPU) | x real time (wall) | render loop alone | ms per note (CPU) |",
        "|---|---:|---:|---:|---:|",
    ]
    for method in ("sinusoidal", "griffinlim"):
        lines.append(
            f"| {method} | {r[f'render_{method}_x_realtime']:.0f}x | {r[f'render_{method}_x_realtime_wall']:.0f}x | "
            f"{r[f'render_{method}_loop_x_realtime']:.0f}x | {r[f'render_{method}_ms']:.1f} |"
        )
    verdict = "meets" if r["meets_target"] else "misses"
    lines += ["", f"Sinusoidal {verdict} the target of {r['target_sinusoidal_x_realtime']:.0f}x real time."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="best of 3 renders instead of 7")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    parser.add_argument("--bundle", type=Path, help="model bundle (default: presets/default, else synthetic)")
    args = parser.parse_args(argv)
    result = run_render_bench(quick=args.quick, bundle=args.bundle)
    print(json.dumps(result, indent=2) if args.json else _markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
