"""``melsynth encode --bundle DIR input.wav [more.wav ...] --name NAME [--force]``: a preset from audio.

Any file soundfile reads (WAV, FLAC, OGG, MP3 ...), at any rate and channel count: mixed to mono, resampled
to the bundle's rate, started at its onset, trimmed or padded to the model's 4 s, encoded; several files
give the mean of their latents. The preset is written atomically to ``<bundle>/presets/NAME.json``; an
existing preset is only replaced with ``--force``. Everything (the name, the bundle, every file) is checked
before the preset is written.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="model bundle folder")
    parser.add_argument("inputs", nargs="+", metavar="AUDIO", help="audio files (several: their mean latent)")
    parser.add_argument("--name", required=True, help="preset name (A-Z a-z 0-9 _ . -, up to 100 characters)")
    parser.add_argument("--force", action="store_true", help="replace an existing preset of that name")
    parser.add_argument("--note", type=float, default=None, metavar="MIDI",
                        help="a keyboard model's: the recordings' pitch (MIDI number; default: found in each)")
    parser.add_argument("--keep-leading-silence", action="store_true",
                        help="do not skip what comes before the sound's onset (-60 dB below its peak)")


def run(args: argparse.Namespace) -> int:
    from synth.bundle import save_preset, validate_preset_name
    from synth.commands.bundle_loading import load_bundle_for_command as load_bundle
    from synth.commands.bundle_loading import refuse_existing_preset
    from synth.render.encode import encode_audio_files

    name = validate_preset_name(args.name)
    bundle = load_bundle(args.bundle)
    refuse_existing_preset(bundle, name, force=args.force)
    encoding = encode_audio_files(bundle, args.inputs, trim_onset=not args.keep_leading_silence, note=args.note)
    preset = bundle.make_preset(name, encoding.latent, source=encoding.source())
    path = save_preset(bundle, preset, overwrite=args.force)
    for f, rmse in zip(encoding.files, encoding.rmse, strict=True):
        channels = {1: "mono", 2: "stereo"}.get(f.channels, f"{f.channels} channels")
        onset = f", onset at {f.onset_seconds:.3f} s" if f.onset_seconds >= 0.0005 else ""
        if f.key is not None:
            onset += f", pitch {f.pitch:.2f} encoded at key {f.key}"
        print(f"read {f.path}: {f.sample_rate} Hz {channels}, {f.seconds:.2f} s{onset}; "
              f"reconstruction RMSE {rmse:.4f} (unit scale)")
    how = f"the mean latent of {len(encoding.files)} files" if len(encoding.files) > 1 else "its latent"
    print(f"wrote preset {name!r} ({how}, {bundle.latent_size} values) to {path}")
    return 0
