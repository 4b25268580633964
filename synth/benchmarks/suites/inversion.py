"""Benchmark of the two streaming inversion methods against librosa.griffinlim.

On the same spectrograms (synthetic harmonic notes made with numpy, plus real SoundFont notes when a
features folder is given), reports:

- each streaming method's real-time factor per voice at 48 kHz (seconds of audio per second of one core,
  frame by frame through ``process_frame``, tail frames included), and its cost per frame. The primary
  figures use CPU time (``time.process_time``, best of the repeats): on a shared machine wall time also
  counts the time other processes hold the core. Wall-clock factors are reported too (``*_rtf_wall``);
- librosa.griffinlim (32 iterations, momentum 0.99, on the pseudo-inverse magnitude) at 16 kHz: the
  baseline, which needs the whole spectrogram at once;
- spectral convergence of each against the original audio (mean over notes, dB, lower is better);
- the largest pitch error of each streaming method over pitch ratios of -24 .. +24 semitones (cents).

Usage::

    .venv/bin/python bench/bench_inversion.py [--quick] [--json] [--features DIR [--audio NSYNTH_DIR]]

``--audio`` names the NSynth-format folder the features were computed from (``audio/<note_str>.wav``):
without it, real notes are timed but not scored. Reading a features folder is the training package's
(:func:`training.benchmarks.real_notes`), which this module never imports: :func:`run_inversion_bench`
takes the notes already loaded (``real_notes=``), and :func:`main` a loader (``load_real_notes=``), which
bench/bench_inversion.py hands in. ``run_inversion_bench(quick=...)`` is the function ``melsynth bench``
imports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from synth.benchmarks.suites.inversion_regions import (
    BASELINE,
    format_region_table,
    load_notes,
    measure_regions,
    plot_methods,
)
from synth.inversion import (
    METHODS,
    frame_lengths,
    invert,
    make_inverter,
    mel_to_magnitude,
    spectral_convergence,
)
from synth.spectrogram import SpectrogramParams, log_mel

__all__ = ["run_inversion_bench", "synthetic_note", "real_note_count", "RealNotes"]

OUTPUT_RATE = 48000
PITCH_SEMITONES = (-24, -12, -5, 0, 7, 12, 24)

# Real notes: (log-mels to time, [(audio, log-mel)] to score), as training.benchmarks.real_notes loads them.
RealNotes = tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]


def real_note_count(*, quick: bool) -> int:
    """How many real notes of a features folder's test split a run times (``count=`` of the loader)."""
    return 2 if quick else 8


def synthetic_note(f0: float, *, params: SpectrogramParams, seed: int = 0) -> np.ndarray:
    """A 4 s harmonic note like NSynth's: 20 ms attack, held 3 s, 1 s exponential release, float32.

    Harmonic h has amplitude 0.3 / h (a little random tilt per seed) and a random phase, up to 7.5 kHz.
    """
    rng = np.random.default_rng(seed)
    sr = params.sample_rate
    t = np.arange(params.n_samples) / sr
    y = np.zeros_like(t)
    for h in range(1, 64):
        if h * f0 >= 7500:
            break
        y += (
            0.3
            / h
            * (1.0 + 0.3 * rng.standard_normal())
            * np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 6.3))
        )
    env = np.minimum(1.0, t / 0.02) * np.where(t < 3.0, 1.0, np.exp(-(t - 3.0) * 6.0))
    return (y * env).astype(np.float32)


def _time_streaming(method: str, mels: list[np.ndarray], *, params: SpectrogramParams, repeats: int) -> dict:
    """Best-of-``repeats`` time to push every frame (and the tail) of every note through one voice."""
    inv = make_inverter(method, params=params, output_rate=OUTPUT_RATE)
    silence = np.zeros(params.n_mels, dtype=np.float32)
    # Warm-up: numba compilation (cached on disk after the first run) and first-touch of buffers.
    invert(mels[0][:, :32], method=inv, params=params, output_rate=OUTPUT_RATE)
    total_audio = 0.0
    total_time = 0.0
    total_wall = 0.0
    total_frames = 0
    for mel in mels:
        frames = np.ascontiguousarray(mel.T)
        n = frames.shape[0] + inv.tail_frames
        lengths = frame_lengths(n, params=params, output_rate=OUTPUT_RATE)
        out = np.zeros(int(lengths.sum()), dtype=np.float32)
        best, best_wall = np.inf, np.inf
        for _ in range(repeats):
            inv.reset()
            pos = 0
            start, start_wall = time.process_time(), time.perf_counter()
            for k in range(n):
                frame = frames[k] if k < frames.shape[0] else silence
                size = int(lengths[k])
                inv.process_frame(frame, pitch_ratio=1.0, out=out[pos : pos + size])
                pos += size
            best = min(best, time.process_time() - start)
            best_wall = min(best_wall, time.perf_counter() - start_wall)
        total_time += best
        total_wall += best_wall
        total_audio += out.size / OUTPUT_RATE
        total_frames += n
    return {
        "rtf": total_audio / total_time,
        "rtf_wall": total_audio / total_wall,
        "us_per_frame": 1e6 * total_time / total_frames,
    }


def _librosa_griffinlim(mel: np.ndarray, *, params: SpectrogramParams, seed: int = 0) -> np.ndarray:
    import librosa

    return librosa.griffinlim(
        mel_to_magnitude(mel, params=params),
        n_iter=32,
        hop_length=params.hop_length,
        win_length=params.win_length,
        n_fft=params.n_fft,
        window=params.window,
        center=params.center,
        momentum=0.99,
        init="random",
        random_state=seed,
    ).astype(np.float32)


def _time_librosa(mels: list[np.ndarray], *, params: SpectrogramParams, repeats: int) -> dict:
    _librosa_griffinlim(mels[0][:, :64], params=params)  # its first call in a process is slow (~2 s)
    total_audio = 0.0
    total_time = 0.0
    total_wall = 0.0
    for mel in mels:
        best, best_wall = np.inf, np.inf
        for _ in range(repeats):
            start, start_wall = time.process_time(), time.perf_counter()
            audio = _librosa_griffinlim(mel, params=params)
            best = min(best, time.process_time() - start)
            best_wall = min(best_wall, time.perf_counter() - start_wall)
        total_time += best
        total_wall += best_wall
        total_audio += audio.size / params.sample_rate
    return {
        "rtf": total_audio / total_time,
        "rtf_wall": total_audio / total_wall,
        "us_per_frame": 1e6 * total_time / sum(m.shape[1] for m in mels),
    }


def _convergence(
    notes: list[tuple[np.ndarray, np.ndarray]], *, params: SpectrogramParams
) -> dict[str, float]:
    scores: dict[str, list[float]] = {m: [] for m in (*METHODS, "librosa_griffinlim")}
    for y, mel in notes:
        for method in METHODS:
            audio = invert(mel, method=method, params=params, output_rate=OUTPUT_RATE)
            scores[method].append(spectral_convergence(y, audio, params=params, audio_rate=OUTPUT_RATE))
        audio = _librosa_griffinlim(mel, params=params)
        scores["librosa_griffinlim"].append(spectral_convergence(y, audio, params=params))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def _pitch_errors(params: SpectrogramParams) -> dict[str, float]:
    """Largest |cents| error of the fundamental over PITCH_SEMITONES, per method, on a 1.5 s C4 note."""
    f0 = 261.6255653005986
    y = synthetic_note(f0, params=params)[: int(1.5 * params.sample_rate)]
    mel = log_mel(y, params=params)[:, : y.size // params.hop_length]
    result = {}
    n_fft = 1 << 20
    for method in METHODS:
        worst = 0.0
        for st in PITCH_SEMITONES:
            ratio = 2.0 ** (st / 12)
            audio = invert(mel, method=method, params=params, output_rate=OUTPUT_RATE, pitch_ratio=ratio)
            seg = audio[OUTPUT_RATE // 4 : -OUTPUT_RATE // 8]
            spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), n=n_fft))
            freqs = np.fft.rfftfreq(n_fft, 1.0 / OUTPUT_RATE)
            want = f0 * ratio
            idx = np.flatnonzero((freqs > want * 0.92) & (freqs < want * 1.08))
            i = int(idx[np.argmax(spec[idx])])
            a, b, c = np.log(spec[i - 1 : i + 2])
            got = (i + 0.5 * (a - c) / (a - 2 * b + c)) * OUTPUT_RATE / n_fft
            worst = max(worst, abs(1200 * np.log2(got / want)))
        result[method] = float(worst)
    return result


def run_inversion_bench(*, quick: bool, real_notes: RealNotes | None = None) -> dict:
    """Measure everything in the module docstring; returns the JSON-ready dict (keys in ``main``'s output).

    ``quick`` uses two synthetic notes and single timing runs (well under a minute on 2 shared cores).
    ``real_notes``: the real notes to add, already loaded (:func:`training.benchmarks.real_notes`, with
    ``count=real_note_count(quick=quick)``); in a quick run only the synthetic ones are scored.
    """
    params = SpectrogramParams()
    pitches = (261.6255653005986, 110.0) if quick else (261.6255653005986, 110.0, 440.0, 659.25)
    notes = []
    for i, f0 in enumerate(pitches):
        y = synthetic_note(f0, params=params, seed=i)
        notes.append((y, log_mel(y, params=params)))
    mels = [mel for _, mel in notes]
    scored = list(notes)
    n_real = 0
    if real_notes is not None:
        real_mels, real_scored = real_notes
        mels += real_mels
        scored += real_scored
        n_real = len(real_mels)
    repeats = 1 if quick else 3
    timed = {m: _time_streaming(m, mels, params=params, repeats=repeats) for m in METHODS}
    lib = _time_librosa(mels[:2] if quick else mels, params=params, repeats=repeats)
    sc = _convergence(scored[:2] if quick else scored, params=params)
    pitch = _pitch_errors(params)
    figures = {}
    for m in METHODS:
        figures |= {f"{m}_rtf": timed[m]["rtf"], f"{m}_rtf_wall": timed[m]["rtf_wall"],
                    f"{m}_us_per_frame": timed[m]["us_per_frame"], f"{m}_sc_db": sc[m],
                    f"{m}_pitch_max_cents": pitch[m]}
    # Where each method loses a note, region by region (synthetic notes here; real ones with --regions).
    region_notes = [("synthetic", f0, mel) for f0, (_, mel) in zip(pitches, notes, strict=True)]
    regions = measure_regions(region_notes[:1] if quick else region_notes, params=params,
                              methods=METHODS if quick else (*METHODS, BASELINE))
    return {
        **figures,
        "librosa_griffinlim_rtf": lib["rtf"],
        "librosa_griffinlim_rtf_wall": lib["rtf_wall"],
        "librosa_griffinlim_us_per_frame": lib["us_per_frame"],
        "griffinlim_speedup_vs_librosa": timed["griffinlim"]["rtf"] / lib["rtf"],
        "librosa_griffinlim_sc_db": sc["librosa_griffinlim"],
        "regions": regions,
        "notes_timed": len(mels),
        "real_notes_timed": n_real,
        "notes_scored": len(scored[:2] if quick else scored),
        "output_rate": OUTPUT_RATE,
        "quick": quick,
    }


def _markdown(r: dict) -> str:
    names = {"harmonic": "harmonic + noise", "sinusoidal": "sinusoidal", "griffinlim": "Griffin-Lim RTPGHI"}
    lines = [
        f"Inversion benchmark: {r['notes_timed']} notes timed ({r['real_notes_timed']} real), "
        f"{r['notes_scored']} scored, streaming at {r['output_rate']} Hz, one voice, one core",
        "",
        "| method | real-time factor | us / frame | spectral convergence (dB) | max pitch error (cents) |",
        "|---|---:|---:|---:|---:|",
        *[f"| {names[m]} (streaming, {r['output_rate'] // 1000} kHz) | {r[m + '_rtf']:.0f}x | "
          f"{r[m + '_us_per_frame']:.1f} | {r[m + '_sc_db']:.1f} | {r[m + '_pitch_max_cents']:.2f} |" for m in METHODS],
        f"| librosa.griffinlim, 32 iterations (whole note, 16 kHz) | {r['librosa_griffinlim_rtf']:.1f}x | "
        f"{r['librosa_griffinlim_us_per_frame']:.1f} | {r['librosa_griffinlim_sc_db']:.1f} | - |",
        "",
        f"Streaming Griffin-Lim is {r['griffinlim_speedup_vs_librosa']:.1f}x faster than the librosa baseline.",
        "Real-time factors are CPU time; by wall clock: " + ", ".join(
            f"{m} {r[m + '_rtf_wall']:.0f}x" for m in METHODS) + f", librosa {r['librosa_griffinlim_rtf_wall']:.1f}x.",
        "",
        f"Where each loses a note ({r['regions'][METHODS[0]]['notes']} synthetic notes, original mel inverted and "
        "analysed again):",
        "",
        format_region_table(r["regions"]),
    ]
    if "real_regions" in r:
        lines += ["", f"The same on {r['real_regions'][METHODS[0]]['notes']} real notes:", "",
                  format_region_table(r["real_regions"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, load_real_notes: Callable[..., RealNotes] | None = None) -> int:
    """The command line above; ``--features`` needs ``load_real_notes`` (called as
    ``load_real_notes(features, audio, params=..., count=...)``: :func:`training.benchmarks.real_notes`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two synthetic notes, single runs")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    parser.add_argument("--features", type=Path, help="features folder: add real notes of its test split")
    parser.add_argument("--audio", type=Path, help="NSynth-format folder the features came from (for scores)")
    parser.add_argument("--regions", type=Path, help="NSynth-format folder: the region table on its notes too")
    parser.add_argument("--limit", type=int, default=100, help="with --regions: at most this many notes")
    parser.add_argument("--picture", type=Path, help="with --regions: a PNG of one of its notes, every method")
    parser.add_argument("--picture-note", default=None, help="that note's name (default: the first)")
    args = parser.parse_args(argv)
    real = None
    if args.features is not None:
        if load_real_notes is None:
            parser.error("--features needs a loader of features folders (training.benchmarks.real_notes): run "
                         "bench/bench_inversion.py")
        real = load_real_notes(args.features, args.audio, params=SpectrogramParams(),
                               count=real_note_count(quick=args.quick))
    result = run_inversion_bench(quick=args.quick, real_notes=real)
    if args.regions is not None:
        params = SpectrogramParams()
        notes = load_notes(args.regions, limit=args.limit, params=params)
        result["real_regions"] = measure_regions(notes, params=params, progress=lambda i, n: print(
            f"\rregions: {i}/{n} notes", end="", file=sys.stderr))
        print(file=sys.stderr)
        if args.picture is not None:
            chosen = [n for n in notes if args.picture_note in (None, n[0])][:1]
            if not chosen:
                parser.error(f"--picture-note {args.picture_note!r} is not among the notes measured")
            name, f0, mel = chosen[0]
            print(f"wrote {plot_methods(args.picture, name=name, f0=f0, mel=mel, params=params)}", file=sys.stderr)
    print(json.dumps(result, indent=2) if args.json else _markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
