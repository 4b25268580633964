"""``melsynth dataset``: make NSynth-format folders and their features."""

from __future__ import annotations

import argparse
from pathlib import Path


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of processes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _pitches(text: str) -> int | list[int] | None:
    """A pitch, comma-separated pitches, or every pitch ("all", or -1): None."""
    if text.strip().lower() == "all" or text.strip() == "-1":
        return None
    values = _ints(text)
    if not values or any(not 0 <= v <= 127 for v in values):
        raise argparse.ArgumentTypeError(f"expected MIDI pitches 0..127 or 'all', got {text!r}")
    return values[0] if len(values) == 1 else values


def _strs(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset_command", metavar="KIND", required=True)

    p = sub.add_parser("nsynth", help="select notes of real NSynth splits (folders or .tfrecord files), as an "
                                      "NSynth-format folder or, with --features, straight into features")
    p.add_argument("src", type=Path, nargs="+", help="nsynth-{split} folders or nsynth-{split}.tfrecord files "
                                                     "(several only with --features)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pitch", type=_pitches, default=60,
                   help="MIDI pitch or comma-separated pitches to keep, or 'all' (default 60; -1 is 'all')")
    p.add_argument("--family", type=_strs, default=None, help="comma-separated families, e.g. guitar,brass")
    p.add_argument("--source", type=_strs, default=None, help="comma-separated sources, e.g. acoustic")
    p.add_argument("--velocity", type=_ints, default=None, help="comma-separated velocities")
    p.add_argument("--features", action="store_true",
                   help="write a features folder (float16 shards) of the selected notes directly: no WAV copy, "
                        "TFRecords read in parallel by tf.data")
    p.add_argument("--split", choices=["official", "instrument", "random"], default="official",
                   help="with --features: official keeps NSynth's own split of each source (default); instrument "
                        "or random split the selected notes anew")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shards", type=int, default=512, metavar="NOTES", help="with --features: notes a shard (512)")
    p.add_argument("--spectrogram", type=Path, default=None, help="a spectrogram.json contract (default: the paper's)")
    p.add_argument("--parallel", type=_workers, default=None,
                   help="TFRecord parsers run at once (default: tf.data's autotuning)")
    p.add_argument("--resume", action="store_true", help="with --features: continue a run that stopped part-way")
    p.add_argument("--workers", type=_workers, default=None, help="processes computing the log-mels")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")

    p = sub.add_parser("soundfont", help="render an NSynth-format folder from General MIDI SoundFonts")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--font", type=Path, action="append", default=None,
                   help="SoundFont file (repeatable; default: FluidR3_GM.sf2 and TimGM6mb.sf2)")
    p.add_argument("--pitch", type=_ints, default=[60],
                   help="MIDI key or comma-separated keys to render (default 60); one instrument's notes at "
                        "every key stay in one split")
    p.add_argument("--velocities", type=_ints, default=[25, 50, 75, 100, 127])
    p.add_argument("--programs", type=_ints, default=None, help="GM programs 0..127 (default all)")
    p.add_argument("--workers", type=_workers, default=None)
    p.add_argument("--resume", action="store_true",
                   help="continue a render that stopped part-way (OUT.partial), keeping the notes it finished")
    p.add_argument("--force", action="store_true", help="replace --out if it exists; start a partial render again")

    p = sub.add_parser("audio", help="make an NSynth-format folder from a folder of your own single-note recordings")
    p.add_argument("src", type=Path, help="folder of recordings (searched recursively; family/instrument/file)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pitch", type=int, default=60, help="MIDI pitch the notes are kept at (default 60)")
    p.add_argument("--tolerance", type=float, default=0.5,
                   help="semitones from --pitch a note may be and be kept as it is (default 0.5)")
    p.add_argument("--transpose", type=float, default=2.0,
                   help="semitones from --pitch within which a note is transposed onto it (default 2)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")

    p = sub.add_parser("synthetic", help="write a small synthetic NSynth-format folder (for tests)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--instruments", type=int, default=10)
    p.add_argument("--pitch", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")

    p = sub.add_parser("features", help="compute normalised log-mels of an NSynth-format folder")
    p.add_argument("src", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", choices=["instrument", "random"], default="instrument",
                   help="instrument: no instrument in two splits (NSynth's rule, default); random: the paper's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--spectrogram", type=Path, default=None, help="a spectrogram.json contract (default: the paper's)")
    p.add_argument("--shards", type=int, default=None, metavar="NOTES",
                   help="float16 shards of this many notes, resumable, bad notes skipped and listed (large sets; "
                        "default: one float32 features.npy)")
    p.add_argument("--resume", action="store_true", help="with --shards: continue a run that stopped part-way")
    p.add_argument("--workers", type=_workers, default=None)
    p.add_argument("--force", action="store_true")


def run(args: argparse.Namespace) -> int:
    import time

    kind = args.dataset_command
    start = time.perf_counter()
    if kind == "nsynth" and args.features:
        from synth.spectrogram import SpectrogramParams
        from training.datasets.nsynth import nsynth_features

        params = SpectrogramParams.load(args.spectrogram) if args.spectrogram else SpectrogramParams()
        nsynth_features(args.src, out=args.out, params=params, pitch=args.pitch, families=args.family,
                        sources=args.source, velocities=args.velocity, split=args.split, seed=args.seed,
                        shard_notes=args.shards, workers=args.workers, parallel=args.parallel, resume=args.resume,
                        force=args.force)
        print(f"wrote features of {', '.join(map(str, args.src))} into {args.out} in "
              f"{time.perf_counter() - start:.1f} s")
    elif kind == "nsynth":
        from synth.errors import ParameterError
        from training.datasets.nsynth import select_nsynth

        if len(args.src) != 1 or args.resume:
            raise ParameterError("dataset nsynth copies one split without --features (several sources and --resume "
                                 "need --features)")
        n = select_nsynth(args.src[0], out=args.out, pitch=args.pitch, families=args.family, sources=args.source,
                          velocities=args.velocity, force=args.force)
        print(f"selected {n} notes into {args.out} in {time.perf_counter() - start:.1f} s")
    elif kind == "soundfont":
        from training.datasets.soundfont import DEFAULT_FONTS, render_soundfont_dataset

        report = render_soundfont_dataset(
            fonts=args.font or DEFAULT_FONTS, out=args.out, pitch=args.pitch, velocities=args.velocities,
            programs=args.programs, workers=args.workers, force=args.force, resume=args.resume,
        )
        total = report.rendered + len(report.skipped)
        earlier = f" ({report.kept} of the {total} notes finished by the run it resumed)" if report.kept else ""
        print(f"rendered {report.rendered} notes into {args.out} in {report.seconds:.1f} s{earlier}; "
              f"skipped {len(report.skipped)} silent notes (listed in {args.out / 'render_report.json'})")
    elif kind == "audio":

        from training.datasets.audio_folder import make_audio_dataset

        report = make_audio_dataset(args.src, out=args.out, pitch=args.pitch, tolerance=args.tolerance,
                                    transpose=args.transpose, force=args.force, progress=True)
        for entry in report.transposed:
            print(f"transposed {entry['file']}: found at {entry['pitch_found']:.2f}, moved "
                  f"{entry['transposed_semitones']:+.2f} semitones onto {args.pitch}")
        for entry in report.skipped:
            print(f"skipped {entry['file']}: {entry['reason']}")
        print(f"kept {len(report.kept)} of {len(report.kept) + len(report.skipped)} files "
              f"({len(report.transposed)} transposed) into {args.out} in {time.perf_counter() - start:.1f} s "
              f"(the list: {args.out / 'audio_report.json'})")
    elif kind == "synthetic":
        from training.datasets.synthetic import make_synthetic_dataset

        make_synthetic_dataset(out=args.out, instruments=args.instruments, pitch=args.pitch, seed=args.seed,
                               force=args.force)
        print(f"wrote {args.instruments * 5} synthetic notes into {args.out}")
    else:
        from synth.spectrogram import SpectrogramParams
        from training.datasets.compute_features import compute_features

        params = SpectrogramParams.load(args.spectrogram) if args.spectrogram else SpectrogramParams()
        compute_features(args.src, out=args.out, params=params, split=args.split, seed=args.seed,
                         workers=args.workers, force=args.force, shard_notes=args.shards, resume=args.resume)
        print(f"wrote features of {args.src} into {args.out} in {time.perf_counter() - start:.1f} s")
    return 0
