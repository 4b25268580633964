"""``melsynth devices``: the audio outputs PortAudio sees, MIDI ports, and what onnxruntime and TensorFlow compute on."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print everything as one JSON object")


def _compute() -> dict:
    """onnxruntime's providers (decoding) and, when the train extra is installed, TensorFlow's GPUs."""
    import onnxruntime as ort

    from synth.bundle.runtime import cuda_status

    usable, why = cuda_status()
    out = {"onnxruntime": {"version": ort.__version__, "providers": ort.get_available_providers(),
                           "cuda": usable, "why_not_cuda": why}}
    try:
        from training.quiet_tensorflow import import_tensorflow

        import_tensorflow()
    except ImportError:
        out["tensorflow"] = None
    else:
        from training.devices import tensorflow_devices

        out["tensorflow"] = tensorflow_devices()
    return out


def run(args: argparse.Namespace) -> int:
    import json

    from synth.host.output import list_output_devices
    from synth.midi.port import list_midi_ports

    devices = list_output_devices()
    midi = list_midi_ports()
    compute = _compute()
    if args.json:
        print(json.dumps({"audio_outputs": devices, "midi": midi, **compute}, indent=2))
        return 0
    print("audio outputs:")
    if not devices:
        print("  none found (melsynth serve will fall back to --output null with a recording)")
    for d in devices:
        mark = "*" if d["default"] else " "
        print(
            f"{mark} {d['index']:>3}  {d['name']}  [{d['hostapi']}]  {d['channels']} ch, "
            f"{d['default_samplerate']:g} Hz"
        )
    if devices:
        print("  (* default; pass --device INDEX or a part of the name to melsynth serve)")
    if midi["api"] is None:
        print(f"MIDI: none ({midi['why']})")
    else:
        print(f"MIDI ({midi['api']}): " + (", ".join(f"{i}: {p}" for i, p in enumerate(midi["inputs"])) or
                                          "no ports to open yet")
              + " (melsynth serve --midi [PORT]; without PORT a virtual port to connect to)")
    ort = compute["onnxruntime"]
    where = "CUDA" if ort["cuda"] else f"CPU ({ort['why_not_cuda']})"
    print(f"decoding: onnxruntime {ort['version']} on {where}")
    tf = compute["tensorflow"]
    if tf is None:
        print("training: TensorFlow is not installed (pip install -e '.[train]')")
    elif tf["gpus"]:
        print(f"training: TensorFlow {tf['version']} on {', '.join(tf['gpus'])}")
    else:
        print(f"training: TensorFlow {tf['version']} on the CPU ({tf['why_none']})")
    if tf is not None and not tf["gpus"]:
        print("  mixed precision (melsynth train --mixed-precision): " +
              ("bfloat16, native on this CPU" if tf["cpu_bfloat16"] else f"refused: {tf['why_no_bfloat16']}"))
    return 0
