"""Decode time (one latent -> one 4 s log-mel), p50/p99: onnxruntime (CPU; CUDA when usable) against the
Keras model of the same decoder.

Two decoders are timed:
- the bundle's ONNX decoder (presets/default when it exists, else the synthetic test bundle: say which);
- a paper-size decoder (training's default config, the paper's best variant) built in Keras, with the
  weights of runs/default when that run has any (timing does not depend on the weights), exported with
  tf2onnx like `melsynth export` does, then timed in Keras (a tf.function call, the fastest Keras path)
  and in onnxruntime on the same graph. Only this file imports TensorFlow.

Usage: .venv/bin/python bench/bench_decode.py [--quick] [--json] [--bundle DIR] [--no-keras]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, resolve_bundle  # noqa: E402

__all__ = ["run_decode_bench", "bundle_decode"]


def bundle_decode(*, quick: bool, bundle: str | None = None) -> dict:
    """onnxruntime decode timing of the bundle's decoder (no TensorFlow)."""
    from synth.benchmarks.decode import decode_timing, estimate_error
    from synth.bundle import load_bundle
    from synth.bundle.runtime import cuda_usable

    path, which = resolve_bundle(bundle)
    b = load_bundle(path)
    runs = 30 if quick else 200
    out = {"decode_bundle": which}
    cpu = b.decoder(providers=["CPUExecutionProvider"])
    t = decode_timing(cpu, latent_shape=b.latent_shape, runs=runs)
    out.update({"decode_ms_p50": t["p50"], "decode_ms_p99": t["p99"], "decode_provider": getattr(cpu, "provider", "?")})
    # The live engine's estimates against the exact decode (and against the stale sound they replace).
    out.update(estimate_error(b, pairs=4 if quick else 8, steps=4 if quick else 8))
    if cuda_usable():
        gpu = b.decoder()
        t = decode_timing(gpu, latent_shape=b.latent_shape, runs=runs)
        out.update({"decode_cuda_ms_p50": t["p50"], "decode_cuda_ms_p99": t["p99"]})
    return out


def paper_decoder(*, quick: bool) -> dict:
    """Keras vs onnxruntime on a paper-size decoder (imports TensorFlow)."""
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf

    from export.onnx_convert import keras_to_onnx
    from synth.benchmarks.decode import time_calls
    from synth.spectrogram import SpectrogramParams
    from training.model.build import build_models
    from training.model.config import default_config

    params = SpectrogramParams()
    config = default_config()
    source = "random initial weights (runs/default has none yet)"
    decoder = None
    run_dir = REPO / "runs" / "default"
    if (run_dir / "best.weights.h5").exists():
        try:
            from training.run import load_run

            _, _, decoder = load_run(run_dir).models()
            source = "the weights of runs/default"
        except Exception as exc:  # a run still being written: fall back to fresh weights, and say so
            source = f"random initial weights (runs/default could not be loaded: {type(exc).__name__})"
    if decoder is None:
        _, _, decoder = build_models(config, params=params)
    latent_shape = tuple(int(d) for d in decoder.input_shape[1:])
    onnx_bytes = keras_to_onnx(decoder, input_name="latent", input_shape=latent_shape, output_name="mel")
    runs = 20 if quick else 100
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1, *latent_shape)).astype(np.float32)
    call = tf.function(lambda x: decoder(x, training=False))
    keras_t = time_calls(lambda: call(z).numpy(), runs=runs)
    eager_t = time_calls(lambda: decoder.predict_on_batch(z), runs=max(5, runs // 4))
    out = {
        "paper_decoder": "training's default config (the paper's best, no dense layer), "
                         f"latent {latent_shape}, {decoder.count_params()} parameters, {source}",
        "paper_keras_ms_p50": keras_t["p50"], "paper_keras_ms_p99": keras_t["p99"],
        "paper_keras_predict_on_batch_ms_p50": eager_t["p50"],
    }
    providers = ["CPUExecutionProvider"]
    sess = ort.InferenceSession(onnx_bytes, providers=providers)
    ort_t = time_calls(lambda: sess.run(None, {"latent": z}), runs=runs)
    out.update({"paper_ort_cpu_ms_p50": ort_t["p50"], "paper_ort_cpu_ms_p99": ort_t["p99"],
                "paper_ort_speedup_vs_keras": keras_t["p50"] / ort_t["p50"]})
    if "CUDAExecutionProvider" in ort.get_available_providers():
        try:
            gpu = ort.InferenceSession(onnx_bytes, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            if "CUDAExecutionProvider" in gpu.get_providers():
                t = time_calls(lambda: gpu.run(None, {"latent": z}), runs=runs)
                out.update({"paper_ort_cuda_ms_p50": t["p50"], "paper_ort_cuda_ms_p99": t["p99"]})
        except Exception as exc:  # no usable GPU: the CPU figures stand alone
            out["paper_ort_cuda"] = f"not usable: {type(exc).__name__}"
    return out


def run_decode_bench(*, quick: bool, bundle: str | None = None, keras: bool = True) -> dict:
    """Both measurements above; ``keras=False`` skips the TensorFlow part."""
    out = bundle_decode(quick=quick, bundle=bundle)
    if keras:
        out.update(paper_decoder(quick=quick))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--no-keras", action="store_true", help="skip the TensorFlow baseline")
    args = parser.parse_args(argv)
    emit(run_decode_bench(quick=args.quick, bundle=args.bundle, keras=not args.no_keras), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
