"""``melsynth evaluate``: the paper's metrics (RMSE, SSIM, harmonic precision/recall/F1) of a run or a bundle.

Two sources, the same metrics (:func:`synth.metrics.summary`, batch by batch):

- ``--run RUN_DIR [--data FEATURES_DIR] [--split test]``: a training run's best weights through Keras
  (TensorFlow is imported only then), on a split of its features folder (default: the folder recorded in the
  run's config.json);
- ``--bundle DIR --data NSYNTH_DIR [--split ...]``: an exported bundle through onnxruntime, no TensorFlow.
  The features are computed by the bundle's contract (:func:`synth.spectrogram.log_mel`) from the
  NSynth-format folder's ``examples.json`` and ``audio/*.wav``. ``NSYNTH_DIR`` is either one such folder or a
  folder holding ``nsynth-train``, ``nsynth-valid``, ``nsynth-test``. For one folder, ``--split`` selects the
  notes by the split rule and seed recorded in the bundle's data description (the same rows
  ``melsynth dataset features`` put in that split), and ``--split all`` takes every note; without a recorded
  split the default is all notes. Only notes at the bundle's ``base_pitch`` are measured unless
  ``--all-pitches`` (the model was trained on that pitch alone).

Beside the model, the same notes are measured through PCA (:mod:`synth.metrics.pca`) fitted on the same
training notes, with k = min(latent size, training notes) components and with 128: the linear baseline an
autoencoder has to beat (``--no-pca`` skips it). For a run the training notes are the rows the run was fitted
on; for a bundle, the train split of the NSynth folder by the bundle's recorded rule, at its base pitch.

``--json`` prints one JSON object with the keys rmse, ssim, precision, recall, f1, notes of the model and,
unless ``--no-pca``, ``pca``: a list of the same keys for each PCA size, with ``components`` and
``train_notes`` (NaN, which JSON lacks, is written as null); otherwise a table beside PCA and the paper's
best model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synth.errors import ParameterError
from synth.metrics.bundle_evaluation import evaluate_bundle, format_table, json_ready, nan_to_none
from synth.metrics.evaluation import SPLITS

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, metavar="RUN_DIR", help="a training run folder (uses TensorFlow)")
    source.add_argument(
        "--bundle", type=Path, metavar="DIR", help="an exported model bundle (onnxruntime only)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="with --run: a features folder (default: the run's own); with --bundle: an NSynth-format folder",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default=None,
        help="which notes: test (default), valid, train or all (see the module help for bundles)",
    )
    parser.add_argument(
        "--all-pitches", action="store_true", help="with --bundle: do not keep only base_pitch"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="notes per model call (default 16)")
    parser.add_argument(
        "--pictures",
        action="store_true",
        help="with --run: also write reconstruction.png, peaks.png, history.png into the run",
    )
    parser.add_argument("--heard", type=int, default=0, metavar="N",
                        help="also the error as heard on N of the notes (evenly spread): each inversion method's "
                             "audio analysed again against the original, for the model, PCA and the original mel")
    parser.add_argument("--no-pca", action="store_true",
                        help="skip the PCA baseline (fitted on the same training notes)")
    parser.add_argument("--per-key", action="store_true",
                        help="with --bundle of a keyboard model and --data FEATURES_DIR: the per-key and cross-key "
                             "tables beside PCA and the patch code fitted per key (training.keyboard_evaluation)")
    parser.add_argument("--default", type=Path, metavar="DIR", default=None,
                        help="with --per-key: also this one-pitch bundle at its own pitch")
    parser.add_argument("--json", action="store_true", help="print only a JSON object of the metrics")


def run(args: argparse.Namespace) -> int:
    progress = sys.stderr.isatty()
    if args.per_key and args.run is not None:
        raise ParameterError("--per-key measures an exported keyboard bundle: give --bundle DIR")
    if args.run is not None:
        if args.all_pitches:
            raise ParameterError("--all-pitches applies to --bundle only")
        from training.quiet_tensorflow import import_tensorflow

        import_tensorflow()
        split = args.split or "test"
        from training.evaluation import evaluate_run

        result = evaluate_run(
            args.run, data=args.data, split=split, batch_size=args.batch_size, progress=progress,
            pca=not args.no_pca, heard=args.heard,
        )
        what = f"run {args.run}, {split} split"
        if args.pictures:
            from training.plots import write_run_pictures

            for path in write_run_pictures(
                args.run, data=args.data, split="test" if split == "all" else split
            ):
                print(f"wrote {path}", file=sys.stderr)
    elif args.per_key:
        if args.data is None:
            raise ParameterError("--per-key needs --data FEATURES_DIR (a features folder with notes at several keys)")
        from training.keyboard_evaluation import evaluate_keyboard, format_keyboard_tables

        result = evaluate_keyboard(features=args.data, bundle=args.bundle, default=args.default,
                                   split=args.split or "test", heard=args.heard, progress=progress)
        print(json.dumps(nan_to_none(result)) if args.json else format_keyboard_tables(result))
        return 0
    else:
        if args.data is None:
            raise ParameterError("--bundle needs --data NSYNTH_DIR (an NSynth-format folder)")
        if args.pictures:
            raise ParameterError("--pictures applies to --run only")
        result, notes = evaluate_bundle(
            args.bundle,
            data=args.data,
            split=args.split,
            all_pitches=args.all_pitches,
            batch_size=args.batch_size,
            progress=progress,
            pca=not args.no_pca,
            heard=args.heard,
        )
        what = f"bundle {args.bundle}, {notes}"
    if args.json:
        print(json.dumps(json_ready(result)))
    else:
        print(format_table(result, what=what))
    return 0
