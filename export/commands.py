"""``melsynth export --run runs/NAME --out presets/NAME [--force] [--base-pitch P] [--presets-per-family N]``."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="trained run folder (runs/NAME)")
    parser.add_argument("--out", required=True, help="bundle folder to write (presets/NAME)")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle folder")
    parser.add_argument(
        "--base-pitch",
        type=int,
        default=None,
        help="MIDI pitch of the training notes (default: their most common pitch)",
    )
    parser.add_argument(
        "--presets-per-family",
        type=int,
        default=2,
        help="instruments per family made into presets, each at velocity 127 and 50 (default 2)",
    )
    parser.add_argument(
        "--features",
        default=None,
        help="the run's features folder, if it moved since training (default: as recorded)",
    )


def run(args: argparse.Namespace) -> int:
    from training.quiet_tensorflow import import_tensorflow

    import_tensorflow()
    from export.bundle_writer import export_run

    def log(message: str) -> None:
        print(message, flush=True)

    export_run(
        args.run,
        args.out,
        force=args.force,
        base_pitch=args.base_pitch,
        presets_per_family=args.presets_per_family,
        features=args.features,
        log=log,
    )
    return 0
