"""``melsynth render``: presets or a score to WAV files, offline, with the live engine's own code.

One note of a preset::

    melsynth render --bundle DIR --preset NAME [--note 60] [--velocity 100] [--hold 3.0]
                    [--method sinusoidal|griffinlim] [--samplerate 48000] [--format pcm24|float]
                    [--plot] --out note.wav

``--preset-file FILE.json`` renders a preset file from outside the bundle; ``--all --out DIR/`` renders every
preset of the bundle to ``DIR/NAME.wav`` (with a progress bar). A score (timed OSC messages, e.g. what
``melsynth serve --log-osc`` wrote)::

    melsynth render --bundle DIR --score performance.json --out take.wav

Everything is checked before anything is written (the bundle, the preset, the whole score, the output
paths); an existing output file is only replaced with ``--force``. Files are written atomically.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["add_arguments", "run"]

FORMAT_NAMES = {"pcm24": "24-bit PCM", "float": "32-bit float"}


def _number(kind, *, lo: float, hi: float):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {lo:g}..{hi:g}, got {text}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from synth.inversion.base import DEFAULT_METHOD, METHODS

    parser.add_argument("--bundle", required=True, help="model bundle folder")
    what = parser.add_argument_group("what to render (one of --preset, --preset-file, --all, --score)")
    what.add_argument("--preset", help="preset name (with --score: the preset sounding at the start)")
    what.add_argument("--preset-file", metavar="FILE.json", help="a preset file of this bundle, from anywhere")
    what.add_argument("--all", action="store_true", help="every preset of the bundle, to --out DIR/NAME.wav")
    what.add_argument("--score", metavar="FILE.json", help="a score: timed OSC messages (melsynth serve --log-osc)")
    note = parser.add_argument_group("the note (presets)")
    note.add_argument("--note", type=_number(int, lo=0, hi=127), default=None,
                      help="MIDI note (default: the bundle's base pitch; within +-24 of it)")
    note.add_argument("--velocity", type=_number(float, lo=1, hi=127), default=100.0, help="1..127 (default 100)")
    note.add_argument("--hold", type=_number(float, lo=0, hi=600), default=3.0,
                      help="seconds from note-on to note-off (default 3.0, the model's own note)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", required=True, help="output .wav file (with --all: a folder)")
    out.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                     help="inversion method (a score may switch it)")
    out.add_argument("--samplerate", type=_number(int, lo=8000, hi=384000), default=48000,
                     help="output sample rate in Hz (default 48000)")
    out.add_argument("--format", choices=("pcm24", "float"), default="pcm24",
                     help="pcm24 (24-bit PCM, default) or float (32-bit float)")
    out.add_argument("--gain", type=_number(float, lo=0, hi=4), default=None,
                     help="output gain before the limiter (default: the live engine's 0.5)")
    out.add_argument("--voices", type=_number(int, lo=1, hi=256), default=None,
                     help="polyphony for a score (default 16)")
    out.add_argument("--release-after", type=_number(float, lo=0, hi=3600), default=None, metavar="SECONDS",
                     help="release notes still held this long after a score's last message (default 2.0)")
    out.add_argument("--plot", action="store_true",
                     help="also write NAME.png: the decoded log-mel beside the render's (presets only)")
    out.add_argument("--force", action="store_true", help="replace existing output files")
    out.add_argument("--raw-levels", action="store_true",
                     help="each preset at the level its decode has (default: every timbre at one loudness, as live)")


def _check_modes(args: argparse.Namespace) -> None:
    from synth.errors import ParameterError

    chosen = [name for name, on in (("--preset-file", args.preset_file), ("--all", args.all),
                                    ("--score", args.score)) if on]
    if len(chosen) > 1:
        raise ParameterError(f"choose one of --preset-file, --all and --score (got {' and '.join(chosen)})")
    if args.preset is not None and (args.preset_file or args.all):
        raise ParameterError("--preset goes with a note render or a score, not with --preset-file or --all")
    if not chosen and args.preset is None:
        raise ParameterError("say what to render: --preset NAME, --preset-file FILE.json, --all or --score FILE.json")
    if args.score and args.plot:
        raise ParameterError("--plot draws a preset's decoded note beside its render; a score has no single note")
    for flag, value in (("--release-after", args.release_after), ("--voices", args.voices)):
        if not args.score and value is not None:
            raise ParameterError(f"{flag} applies to --score renders")


def _db(peak: float) -> str:
    return f"{20 * math.log10(peak):.1f} dBFS" if peak > 0 else "silent"


def _report(path, writer, *, rate: int, fmt: str, seconds: float, wall: float, what: str) -> None:
    speed = f", rendered {seconds / wall:.0f}x faster than real time" if wall > 0 else ""
    print(
        f"wrote {path}: {what}; {seconds:.2f} s at {rate} Hz, {FORMAT_NAMES[fmt]}, peak {_db(writer.peak)}{speed}"
    )
    if writer.guarded:
        print(f"melsynth: warning: {writer.guarded} samples were beyond full scale or not finite and were clipped")


def _note_renders(args, bundle, names, outs, plots) -> int:
    from tqdm import tqdm

    from synth.engine.decoding import bundle_decoder
    from synth.engine.engine import DEFAULT_GAIN
    from synth.render.note import render_note
    from synth.render.plot import plot_render
    from synth.render.wav import write_wav

    decoder = bundle_decoder(bundle)
    gain = DEFAULT_GAIN if args.gain is None else args.gain
    items = list(zip(names, outs, plots, strict=True))
    bar = tqdm(items, desc="rendering", unit="preset", disable=not args.all)
    for name, out, png in bar:
        r = render_note(
            bundle, preset=name, note=args.note, velocity=args.velocity, hold=args.hold, method=args.method,
            output_rate=args.samplerate, gain=gain, decoder=decoder, match_loudness=not args.raw_levels,
        )
        # Published under the rule checked before the work, checked again at the rename (synth.atomic).
        writer = write_wav(out, r.audio, rate=args.samplerate, fmt=args.format, force=args.force)
        if png is not None:
            plot_render(png, decoded=r.decoded, audio=r.audio, rate=r.rate, params=bundle.params,
                        title=f"{name}: note {r.note}, velocity {r.velocity:g}, hold {r.hold:g} s, {r.method}",
                        force=args.force)
        what = f"preset {name}, note {r.note}, velocity {r.velocity:g}, hold {r.hold:g} s, {r.method}"
        if args.all:
            bar.write(f"wrote {out} ({r.seconds:.2f} s, peak {_db(writer.peak)})")
        else:
            _report(out, writer, rate=args.samplerate, fmt=args.format, seconds=r.seconds,
                    wall=r.figures.wall_seconds, what=what)
            if png is not None:
                print(f"wrote {png}")
    if args.all:
        print(f"rendered {len(items)} presets to {args.out} ({FORMAT_NAMES[args.format]}, {args.samplerate} Hz)")
    return 0


def _score_render(args, bundle, initial) -> int:
    from synth.engine.engine import DEFAULT_GAIN
    from synth.render.performance import iter_score, score_engine
    from synth.render.score import load_score, score_spec
    from synth.render.timeline import RELEASE_AFTER, TimelineResult
    from synth.render.wav import check_output_path, open_wav

    score = load_score(args.score, spec=score_spec(bundle))
    out = check_output_path(args.out, force=args.force)
    engine = score_engine(
        bundle, score, method=args.method, output_rate=args.samplerate,
        gain=DEFAULT_GAIN if args.gain is None else args.gain,
        max_voices=16 if args.voices is None else args.voices, initial_preset=initial,
        match_loudness=not args.raw_levels,
    )
    figures = TimelineResult()
    release_after = RELEASE_AFTER if args.release_after is None else args.release_after
    with open_wav(out, rate=args.samplerate, fmt=args.format, force=args.force) as writer:
        for block in iter_score(engine, score, release_after=release_after, result=figures):
            writer.write(block)
    seconds = figures.samples / args.samplerate
    _report(out, writer, rate=args.samplerate, fmt=args.format, seconds=seconds, wall=figures.wall_seconds,
            what=f"score {args.score}, {len(score)} messages over {score.duration:.2f} s")
    if figures.released_at_end:
        notes = " ".join(str(n) for n in figures.released_at_end)
        print(f"melsynth: notes still held after the last message were released {release_after:g} s after it: {notes}")
    if figures.cut_short:
        print("melsynth: warning: voices were still sounding when the render stopped")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from synth.bundle import load_preset_file
    from synth.commands.bundle_loading import load_bundle_for_command as load_bundle
    from synth.errors import ParameterError
    from synth.render.note import BundleView
    from synth.render.wav import check_output_path

    _check_modes(args)
    bundle = load_bundle(args.bundle)
    if args.note is not None:
        from synth.control.spec import NOTE_SPAN

        lo, hi = bundle.base_pitch - NOTE_SPAN, bundle.base_pitch + NOTE_SPAN
        if not lo <= args.note <= hi:
            raise ParameterError(
                f"--note {args.note} out of range {lo}..{hi} (base pitch {bundle.base_pitch} +- {NOTE_SPAN})"
            )
    view = bundle
    name = args.preset
    if args.preset_file:
        preset = load_preset_file(args.preset_file, bundle=bundle)
        view = BundleView(bundle, extra_presets=[preset])
        name = preset.name
    elif name is not None:
        bundle.preset(name)  # PresetError naming the known presets
        view = BundleView(bundle)

    if args.score:
        return _score_render(args, view, name)
    if args.all:
        names = sorted(bundle.presets)
        if not names:
            raise ParameterError(f"{bundle.presets_dir}: the bundle has no presets to render")
        folder = Path(args.out)
        if folder.exists() and not folder.is_dir():
            raise ParameterError(f"{folder}: not a folder (--all writes one file per preset into --out DIR)")
        outs = [folder / f"{n}.wav" for n in names]
    else:
        names = [name]
        outs = [Path(args.out)]
    plots = [o.with_suffix(".png") if args.plot else None for o in outs]
    existing = [str(p) for p in [*outs, *plots] if p is not None and p.exists()]
    if existing and not args.force:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise ParameterError(f"{shown} already exist{'s' if len(existing) == 1 else ''} (use --force to replace)")
    for o in outs:
        check_output_path(o, force=True)
    for png in plots:
        if png is not None:
            check_output_path(png, suffix=".png", force=True)
    if args.plot:
        from synth.render.plot import require_matplotlib

        require_matplotlib()  # a missing matplotlib is reported before anything is rendered
    return _note_renders(args, view, names, outs, plots)
