"""The ``melsynth`` console command.

Each subcommand lives in its own module that defines ``add_arguments(parser)`` and ``run(args) -> int``.
Those modules import only argparse-level code at the top; the heavy dependencies (TensorFlow, onnxruntime,
librosa, sounddevice) are imported inside ``run``, so ``melsynth info`` never loads TensorFlow and
``melsynth --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from synth.errors import MelsynthError

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "dataset": ("training.commands.dataset", "make or convert NSynth-format datasets and their features"),
    "train": ("training.commands.train", "fit an autoencoder on a features folder"),
    "experiments": ("training.commands.experiments", "reproduce the paper's Tables I-IV"),
    "ablation": ("training.commands.ablation", "tabulate runs of our own variants beside no_dense and PCA"),
    "evaluate": ("synth.commands.evaluate", "measure RMSE, SSIM and harmonic F1 of a run or a bundle"),
    "export": ("export.commands", "export a trained run to an ONNX model bundle"),
    "info": ("synth.commands.info", "describe a model bundle"),
    "serve": ("synth.commands.serve", "start the real-time engine (OSC in, audio out)"),
    "devices": ("synth.commands.devices", "list audio output devices"),
    "render": ("synth.commands.render", "render presets or a score to audio files offline"),
    "encode": ("synth.commands.encode", "make a preset from audio files"),
    "presets": ("synth.commands.presets", "list, show, remove or save (from a take) the presets of a bundle"),
    "bench": ("synth.commands.bench", "measure decode, inversion and control figures"),
}


def _build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="melsynth", description="melsynth: a real-time neural timbre synthesizer backend."
    )
    from synth import __version__

    parser.add_argument("--version", action="version", version=f"melsynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        # Only the chosen command's module is imported (so a missing optional extra only breaks that one).
        if name == wanted:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                raise MelsynthError(f"melsynth {name} is not available: {exc}") from None
            module.add_arguments(sp)
            modules[name] = module
    return parser, modules


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (kill, timeout, systemd, docker stop) ends every command the way Ctrl-C does: the same
        # cleanup (worker pools terminated, hidden partial outputs removed), exit 130. It once left a dataset
        # command's workers running under PID 1 and a render's 208 MB .wav.tmp behind.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        parser, modules = _build_parser(argv)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return int(modules[args.command].run(args) or 0)
    except MelsynthError as exc:
        print(f"melsynth: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("melsynth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`melsynth presets list | head`): stop quietly, as `ls | head` does. stdout is
        # pointed at /dev/null so that the interpreter's own flush at exit does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a program ended by a closed pipe
    except OSError as exc:
        # What the system refused (a folder that cannot be written, a file that is a folder, a full disk)
        # where no command names it more precisely: the file and the reason, not a traceback.
        print(f"melsynth: error: {_os_error(exc)}", file=sys.stderr)
        return 1


def _os_error(exc: OSError) -> str:
    """``FILE: reason`` (``FILE -> FILE2`` for a rename) of an OSError, or its text when it names no file."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
    return f"{where}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
