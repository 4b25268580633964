"""Playing one pitch's note at other keys, against the real instrument at those keys.

For SoundFont instruments, FluidSynth renders the note at the base key (60) and at other keys. The base
note is played at each key by:

- ``recording``: the base recording resampled by the playback rate (a sampler with one sample: the formants
  move with the pitch), the baseline;
- each inversion method from the base note's own log-mel at ``pitch_ratio`` (no model involved: what the
  engine's transposition does), with the envelope moved (``harmonic``) or kept in place
  (``harmonic_envelope``: :class:`~synth.inversion.harmonic_noise.HarmonicNoiseInverter` with
  ``keep_envelope``);
- with a bundle, the same two from the model's reconstruction of the base note (encoded, decoded):
  ``model_harmonic`` (the engine before keep_envelope) and ``model_harmonic_envelope`` (the engine now);
- with a keyboard bundle (issue 28), the base note encoded at the base key and decoded at each key:
  ``keyboard_decode`` (the decode itself, no audio) and ``keyboard`` (that decode played by the harmonic
  inverter tuned to the key, as the engine's voice at that key plays it); its pitch error in cents is
  reported too, beside the same pitch estimate of the real note at that key: an instrument whose own note
  is not found within 5 cents of its key (sound effects, bells, the fret noise) has no pitch to keep, so the
  count "within 5 cents" is over the pitched notes (the real one within 5 cents), and the others are named.

With ``--features DIR`` the instruments are the test split's of that features folder (instruments the models
never saw), else the ``--programs`` of every font.

Each is compared with the real note at that key by its sustain spectrum: the mean log-mel over 0.3-2.7 s, on
the bands within 60 dB of the real note's loudest, each spectrum's mean over those bands removed (the level
is not the question), mean |difference| in dB. The real notes come from a renderer the caller hands in
(:func:`training.datasets.soundfont.render_note`): this module never imports training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from synth.spectrogram import SpectrogramParams, log_mel

__all__ = ["sustain_spectrum", "spectrum_error_db", "measure_transposition", "test_instruments", "main", "KEYS",
           "BASE_KEY"]

BASE_KEY = 60
KEYS = (36, 48, 72, 84)
METHODS = ("recording", "harmonic", "harmonic_envelope")
MODEL_METHODS = ("model_harmonic", "model_harmonic_envelope")
KEYBOARD_METHODS = ("keyboard_decode", "keyboard")
#: The keyboard voice's pitch target (issue 28): within 5 cents of the key.
PITCH_TOLERANCE_CENTS = 5.0
OUTPUT_RATE = 48000


def sustain_spectrum(mel: np.ndarray, *, params: SpectrogramParams) -> np.ndarray:
    """Mean dB of each band over 0.3-2.7 s of a unit-scale (n_mels, frames) log-mel."""
    db = params.db_min + np.asarray(mel, dtype=np.float64) * (params.db_max - params.db_min)
    return db[:, params.frame_of(0.3) : params.frame_of(2.7)].mean(axis=1)


def spectrum_error_db(real: np.ndarray, other: np.ndarray) -> float:
    """Mean |difference| of two sustain spectra over the real one's bands within 60 dB of its loudest, each
    with its own mean over those bands removed."""
    loud = real > real.max() - 60.0
    a, b = real[loud] - real[loud].mean(), other[loud] - other[loud].mean()
    return float(np.mean(np.abs(a - b)))


def _play(method: str, y60: np.ndarray, mel60: np.ndarray, *, ratio: float, f0: float, params: SpectrogramParams):
    import soxr

    if method == "recording":
        # Played ratio times faster: the recording read at rate sr * ratio, heard at sr.
        y = soxr.resample(y60.astype(np.float64), params.sample_rate * ratio, params.sample_rate, quality="VHQ")
        return np.pad(y, (0, max(0, params.n_samples - y.size)))[: params.n_samples].astype(np.float32)
    from synth.inversion import invert
    from synth.inversion.harmonic_noise import HarmonicNoiseInverter

    inv = HarmonicNoiseInverter(params=params, output_rate=OUTPUT_RATE, harmonic_f0=f0,
                                keep_envelope=method.endswith("_envelope"))
    audio = invert(mel60, method=inv, params=params, output_rate=OUTPUT_RATE, pitch_ratio=ratio)
    return soxr.resample(audio, OUTPUT_RATE, params.sample_rate, quality="VHQ").astype(np.float32)


def _key_hz(key: float) -> float:
    return 440.0 * 2.0 ** ((key - 69) / 12.0)


def measure_transposition(*, real_note, fonts: list[Path], programs: list[int], keys=KEYS, velocity: int = 100,
                          params: SpectrogramParams, bundle=None, keyboard=None, instruments=None,
                          progress=None) -> dict:
    """Mean spectrum error (dB) of each way of playing the base note, per key, over the instruments
    (font x program, or the (font, program) pairs of ``instruments``) whose notes are not silent at every
    key; and the count. ``keyboard``: a keyboard bundle (its methods, and its pitch error in cents)."""
    from synth.benchmarks.pitch import f0_of

    f0 = _key_hz(BASE_KEY)
    methods = METHODS + (MODEL_METHODS if bundle is not None else ()) + (
        KEYBOARD_METHODS if keyboard is not None else ())
    if bundle is not None:
        encoder, decoder = bundle.encoder(), bundle.decoder()
    if keyboard is not None:
        kb_encoder, kb_decoder = keyboard.encoder(), keyboard.decoder()
        missing = [k for k in (BASE_KEY, *keys) if k not in keyboard.keys]
        if missing:
            raise ValueError(f"keys {missing} are not among the keyboard bundle's trained keys {list(keyboard.keys)}")
    errors = {m: {k: [] for k in keys} for m in methods}
    cents = {k: [] for k in keys}
    real_cents = {k: [] for k in keys}
    off_pitch: list[dict] = []
    done = 0
    jobs = list(instruments) if instruments is not None else [(font, program) for font in fonts for program in programs]
    for i, (font, program) in enumerate(jobs):
        y60 = real_note(font, program=program, pitch=BASE_KEY, velocity=velocity)
        reals = {k: real_note(font, program=program, pitch=k, velocity=velocity) for k in keys}
        if max(np.abs(y).max() for y in (y60, *reals.values())) < 1e-3 or min(
                np.abs(y).max() for y in (y60, *reals.values())) < 1e-4:
            continue  # a program with no sample at one of the keys
        mel60 = log_mel(y60, params=params)
        if bundle is not None:
            model60 = np.clip(np.asarray(decoder.decode(encoder.encode(mel60[None])), dtype=np.float32)[0], 0.0, 1.0)
        if keyboard is not None:
            z60 = kb_encoder.encode(mel60[None], pitch=BASE_KEY)
        for k, y in reals.items():
            real = sustain_spectrum(log_mel(y, params=params), params=params)
            ratio = 2.0 ** ((k - BASE_KEY) / 12.0)
            for method in methods:
                if method in KEYBOARD_METHODS:
                    decoded = np.clip(np.asarray(kb_decoder.decode(z60, pitch=k), dtype=np.float32)[0], 0.0, 1.0)
                    if method == "keyboard_decode":
                        errors[method][k].append(spectrum_error_db(real, sustain_spectrum(decoded, params=params)))
                        continue
                    # As the key's voice plays it: the inverter tuned to the key, at pitch ratio 1.
                    played = _play("harmonic_envelope", y60, decoded, ratio=1.0, f0=_key_hz(k), params=params)
                    hz = _key_hz(k)
                    found = f0_of(played[params.sample_rate // 2 : params.sample_rate * 5 // 2],
                                  rate=params.sample_rate, fmin=hz / 1.5, fmax=hz * 1.5)
                    cents[k].append(1200.0 * np.log2(found / hz))
                    own = f0_of(y[params.sample_rate // 2 : params.sample_rate * 5 // 2], rate=params.sample_rate,
                                fmin=hz / 1.5, fmax=hz * 1.5)
                    real_cents[k].append(1200.0 * np.log2(own / hz))
                    if abs(cents[k][-1]) > PITCH_TOLERANCE_CENTS:
                        off_pitch.append({"font": Path(font).name, "program": int(program), "key": int(k),
                                          "cents": float(cents[k][-1]), "real_note_cents": float(real_cents[k][-1])})
                else:
                    source = model60 if method.startswith("model_") else mel60
                    played = _play(method.removeprefix("model_"), y60, source, ratio=ratio, f0=f0, params=params)
                errors[method][k].append(spectrum_error_db(real, sustain_spectrum(log_mel(played, params=params),
                                                                                   params=params)))
        done += 1
        if progress is not None:
            progress(i + 1, len(jobs))
    out = {"instruments": done, "keys": list(keys),
           "error_db": {m: {str(k): float(np.mean(v)) for k, v in by.items()} for m, by in errors.items()},
           "mean_db": {m: float(np.mean([x for v in by.values() for x in v])) for m, by in errors.items()}}
    if keyboard is not None:
        out["keyboard_cents"] = {}
        for k, v in cents.items():
            if not v:
                continue
            played, real = np.abs(v), np.abs(real_cents[k])
            pitched = real <= PITCH_TOLERANCE_CENTS
            out["keyboard_cents"][str(k)] = {
                "median": float(np.median(played)), "max": float(np.max(played)),
                "within": int(np.sum(played <= PITCH_TOLERANCE_CENTS)), "of": len(v),
                # Over the notes whose real note is itself within the tolerance (the pitched ones):
                "pitched": int(np.sum(pitched)), "within_pitched": int(np.sum(played[pitched] <= PITCH_TOLERANCE_CENTS)),
            }
        out["keyboard_off_pitch"] = off_pitch  # (font, program, key, cents) beyond the tolerance, to look at
    return out


def test_instruments(features: Path, *, fonts: list[Path]) -> list[tuple[Path, int]]:
    """The (font, program) pairs of a SoundFont features folder's test split, in order."""
    from synth.errors import DataError
    from synth.json_files import read_json_file

    try:
        rows = read_json_file(features / "index.json", what="features index", error=DataError)["rows"]
        test = read_json_file(features / "splits.json", what="features splits", error=DataError)["test"]
    except (KeyError, TypeError) as exc:
        raise DataError(f"{features}: not a features folder with a test split ({exc})") from None
    by_name = {f.name: f for f in fonts}
    pairs = sorted({(rows[i]["soundfont"], int(rows[i]["program"])) for i in test
                    if rows[i].get("soundfont") in by_name})
    return [(by_name[name], program) for name, program in pairs]


def format_table(result: dict) -> str:
    keys = result["keys"]
    lines = ["| played from the key-60 note by | " + " | ".join(f"key {k}" for k in keys) + " | mean |",
             "|---|" + "---|" * (len(keys) + 1)]
    for m, by in result["error_db"].items():
        lines.append(f"| {m} | " + " | ".join(f"{by[str(k)]:.1f}" for k in keys) + f" | {result['mean_db'][m]:.1f} |")
    if "keyboard_cents" in result:
        lines += ["", "keyboard pitch error (|cents|, median / max over instruments): " + ", ".join(
            f"key {k} {c['median']:.1f} / {c['max']:.1f} ({c.get('within', '?')} of {c.get('of', '?')} within 5; "
            f"{c.get('within_pitched', '?')} of the {c.get('pitched', '?')} whose real note is within 5)"
            for k, c in result["keyboard_cents"].items())]
    return "\n".join(lines)


def main(argv=None, *, real_note, fonts) -> int:
    """``bench/bench_transposition.py``."""
    parser = argparse.ArgumentParser(description="Playing one pitch's note at other keys, against the real ones")
    parser.add_argument("--programs", default="0,6,11,19,21,24,40,42,48,52,56,60,65,68,71,73,80,81,88,104",
                        help="GM programs (comma-separated; default: 20 across the families)")
    parser.add_argument("--bundle", default=None, help="also through this bundle's model (encode, decode)")
    parser.add_argument("--keyboard", default=None, help="also this keyboard bundle (encode at 60, decode at each key)")
    parser.add_argument("--features", default=None,
                        help="the instruments of this features folder's test split (unseen by its models) "
                             "instead of --programs")
    parser.add_argument("--keys", default=",".join(map(str, KEYS)),
                        help=f"keys to play the key-{BASE_KEY} note at (comma-separated; default {','.join(map(str, KEYS))})")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        keys = tuple(int(k) for k in args.keys.split(","))
    except ValueError:
        parser.error(f"--keys: expected comma-separated MIDI keys, got {args.keys!r}")
    if any(not 0 <= k <= 127 for k in keys):
        parser.error(f"--keys: MIDI keys are 0..127, got {args.keys!r}")
    from synth.bundle import load_bundle

    bundle = load_bundle(Path(args.bundle)) if args.bundle else None
    keyboard = load_bundle(Path(args.keyboard)) if args.keyboard else None
    programs = [int(p) for p in args.programs.split(",")]
    fonts = [Path(f) for f in fonts]
    instruments = test_instruments(Path(args.features), fonts=fonts) if args.features else None
    result = measure_transposition(real_note=real_note, fonts=fonts, programs=programs, params=SpectrogramParams(), keys=keys,
                                   bundle=bundle, keyboard=keyboard, instruments=instruments,
                                   progress=lambda i, n: print(f"\r{i}/{n} instruments", end="", file=sys.stderr))
    print(file=sys.stderr)
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0
