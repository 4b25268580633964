"""Live-engine figures with the null output (paced by the clock like a 48 kHz device, 256-sample blocks):
control latency from OSC packet to the first output sample carrying the change (p50/p99, which includes
the engine's output buffer, also reported) for latent changes, preset switches and notes, the most voices
held without underflow for each inversion method, and the engine's resident memory once started.

Usage: .venv/bin/python bench/bench_engine.py [--quick] [--json] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import sys

from synth.benchmarks.common import emit, resolve_bundle
from synth.inversion.base import DEFAULT_METHOD, METHODS

__all__ = ["run_engine_bench"]


def run_engine_bench(*, quick: bool, bundle: str | None = None) -> dict:
    from synth.benchmarks.live import control_latency, engine_session, max_voices
    from synth.benchmarks.soak import rss_mb
    from synth.bundle import load_bundle
    from synth.engine import LiveDecoding

    path, which = resolve_bundle(bundle)
    b = load_bundle(path)
    out: dict = {"engine_bundle": which, "rate": 48000, "blocksize": 256}
    counts = (8, 16, 24, 32) if quick else (4, 8, 12, 16, 20, 24, 32, 40, 48)
    hold = 1.5 if quick else 4.0
    with engine_session(b, max_voices=48) as (live, server):
        out["engine_rss_start_mb"] = rss_mb()
        lat = control_latency(live, server, seconds=3.0 if quick else 20.0)
        out.update(lat)
        out["latency_underflows"] = out.pop("underflows")
        # Preset switches (answered from the timbre cache) and notes (no decode) against the latent changes
        # above (one decode each): the same path, with and without the decoder in it.
        # Morphs and macros need a decode too, but sound an estimate from decoded timbres at once.
        # A fader on one latent coordinate at 50 messages/s (a Max slider's pace): the first points of each
        # sweep wait for decodes, the rest are estimated along them.
        for kind in ("sweep", "morph", "macro", "preset", "note"):
            lat = control_latency(live, server, seconds=2.0 if quick else 10.0, kind=kind,
                                  rate=50.0 if kind == "sweep" else 20.0)
            for stat in ("p50", "p90", "p99", "max"):
                out[f"{kind}_latency_ms_{stat}"] = lat[f"control_latency_ms_{stat}"]
            out[f"{kind}_latency_events"] = lat["control_events"]
            out[f"{kind}_estimated"] = lat["timbre_estimates"]
            if kind in ("sweep", "morph", "macro"):
                out[f"{kind}_exact_latency_ms_p50"] = lat["exact_latency_ms_p50"]
                out[f"{kind}_exact_latency_ms_p99"] = lat["exact_latency_ms_p99"]
        voices = max_voices(live, counts=counts, hold=hold)
        out["max_voices"] = voices["max_voices"]
        out["max_voices_tried"] = voices["tried"]
        timbres = live.engine.stats().timbres
        out["decodes_inline"] = timbres.decodes_inline
        out["inline_decodes"] = timbres.inline_decodes
    # The same random latent jumps with every decode on the worker (the path of a slow decoder), with the
    # bundle's tiles and decoded whole only: the baselines of inline decoding and of the tiles, in the same run.
    out["tiles"] = b.tiles is not None
    for name, tiles in (("worker", True), ("whole", False)):
        if name == "worker" and (b.tiles is None or not out["decodes_inline"]):
            continue  # without inline decoding the main figure is the worker's already
        with engine_session(b, max_voices=48, decoding=LiveDecoding(tiles=tiles, inline_ms=0)) as (live, server):
            lat = control_latency(live, server, seconds=3.0 if quick else 20.0)
        out[f"{name}_latency_ms_p50"] = lat["control_latency_ms_p50"]
        out[f"{name}_latency_ms_p99"] = lat["control_latency_ms_p99"]
        out[f"{name}_latency_events"] = lat["control_events"]
    out["max_voices_method"] = DEFAULT_METHOD
    if not quick:  # the other methods, on the same machine in the same run
        for method in (m for m in METHODS if m != DEFAULT_METHOD):
            with engine_session(b, max_voices=48, method=method) as (live, _):
                voices = max_voices(live, counts=counts, hold=hold)
                out[f"max_voices_{method}"] = voices["max_voices"]
                out[f"max_voices_{method}_tried"] = voices["tried"]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args(argv)
    emit(run_engine_bench(quick=args.quick, bundle=args.bundle), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
