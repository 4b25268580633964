"""``melsynth devices``: list the audio output devices PortAudio sees."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from synth.engine.output import list_output_devices

    devices = list_output_devices()
    if args.json:
        print(json.dumps(devices, indent=2))
        return 0
    if not devices:
        print("no audio output device found (melsynth serve will fall back to --output null with a recording)")
        return 0
    for d in devices:
        mark = "*" if d["default"] else " "
        print(
            f"{mark} {d['index']:>3}  {d['name']}  [{d['hostapi']}]  {d['channels']} ch, "
            f"{d['default_samplerate']:g} Hz"
        )
    print("(* default; pass --device INDEX or a part of the name to melsynth serve)")
    return 0
