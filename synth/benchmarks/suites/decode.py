"""Decode time (one latent -> one 4 s log-mel), p50/p99: onnxruntime (CPU; CUDA when usable) against the
Keras model of the same decoder.

Two decoders are timed:
- the bundle's ONNX decoder (presets/default when it exists, else the synthetic test bundle: say which);
- a paper-size decoder (training's default config, the paper's best variant) built in Keras, with the
  weights of runs/default when that run has any (timing does not depend on the weights), exported with
  tf2onnx like `melsynth export` does, then timed in Keras (a tf.function call, the fastest Keras path)
  and in onnxruntime on the same graph. That part needs TensorFlow, so it lives in
  :func:`training.benchmarks.paper_decoder` and is handed in by the caller (``paper_decoder=``): this module
  never imports TensorFlow or the training package.

Usage: .venv/bin/python bench/bench_decode.py [--quick] [--json] [--bundle DIR] [--no-keras]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from synth.benchmarks.common import emit, resolve_bundle

__all__ = ["run_decode_bench", "bundle_decode"]


def bundle_decode(*, quick: bool, bundle: str | None = None) -> dict:
    """onnxruntime decode timing of the bundle's decoder (no TensorFlow)."""
    from synth.benchmarks.decode import at_home_key, decode_timing, estimate_error
    from synth.bundle import load_bundle
    from synth.bundle.runtime import cuda_usable

    path, which = resolve_bundle(bundle)
    b = load_bundle(path)
    runs = 30 if quick else 200
    out = {"decode_bundle": which if b.keys is None else f"{which}, decoding at its home key {b.base_pitch}"}
    cpu = at_home_key(b, b.decoder(providers=["CPUExecutionProvider"]))
    t = decode_timing(cpu, latent_shape=b.latent_shape, runs=runs)
    out.update({"decode_ms_p50": t["p50"], "decode_ms_p99": t["p99"], "decode_provider": getattr(cpu, "provider", "?")})
    # One thread, as the live engine decodes (the figure a latent change waits for), whole and tile.
    t = decode_timing(at_home_key(b, b.decoder(providers=["CPUExecutionProvider"], threads=1)),
                      latent_shape=b.latent_shape, runs=runs)
    out.update({"decode_1thread_ms_p50": t["p50"], "decode_1thread_ms_p99": t["p99"]})
    if b.tiles is not None:
        rows, _, channels = b.latent_shape
        tile = at_home_key(b, b.tile_decoder(providers=["CPUExecutionProvider"], threads=1))
        t = decode_timing(tile, latent_shape=(rows, b.tiles.columns, channels), runs=runs)
        out.update({"tile_1thread_ms_p50": t["p50"], "tile_1thread_ms_p99": t["p99"], "tile_columns": b.tiles.columns,
                    "tile_total_columns": b.tiles.total_columns})
    # The live engine's estimates against the exact decode (and against the stale sound they replace).
    out.update(estimate_error(b, pairs=4 if quick else 8, steps=4 if quick else 8))
    if cuda_usable():
        gpu = at_home_key(b, b.decoder())
        t = decode_timing(gpu, latent_shape=b.latent_shape, runs=runs)
        out.update({"decode_cuda_ms_p50": t["p50"], "decode_cuda_ms_p99": t["p99"]})
    return out


def run_decode_bench(*, quick: bool, bundle: str | None = None,
                     paper_decoder: Callable[..., dict] | None = None) -> dict:
    """The bundle's decode timing, and the Keras baseline when ``paper_decoder`` is given (it is
    :func:`training.benchmarks.paper_decoder`, called as ``paper_decoder(quick=quick)``)."""
    out = bundle_decode(quick=quick, bundle=bundle)
    if paper_decoder is not None:
        out.update(paper_decoder(quick=quick))
    return out


def main(argv=None, *, paper_decoder: Callable[..., dict] | None = None) -> int:
    """The command line above; without ``paper_decoder`` only ``--no-keras`` runs can be measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--no-keras", action="store_true", help="skip the TensorFlow baseline")
    args = parser.parse_args(argv)
    if paper_decoder is None and not args.no_keras:
        parser.error("the Keras baseline needs training.benchmarks.paper_decoder (bench/bench_decode.py hands it "
                     "in); add --no-keras to time the bundle alone")
    emit(run_decode_bench(quick=args.quick, bundle=args.bundle, paper_decoder=None if args.no_keras else paper_decoder),
         as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
