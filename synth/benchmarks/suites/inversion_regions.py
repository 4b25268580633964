"""The region table: where each inversion method loses a note, measured on the notes' own log-mels.

Every note's original log-mel (no model involved) is inverted by each streaming method at the engine's
settings (48 kHz, tuned to the note's known fundamental as the engine tunes to its model's base pitch),
resampled to the contract's rate, analysed again with the contract's log-mel and compared with the original
by region (:mod:`synth.metrics.regions`). librosa.griffinlim (32 iterations of FGLA on the pseudo-inverse
magnitude, whole note at once, 16 kHz) is the baseline.

Usage::

    .venv/bin/python bench/bench_inversion.py --regions NSYNTH_DIR [--limit N] [--json]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from synth.errors import DataError
from synth.inversion import METHODS, invert, make_inverter
from synth.json_files import read_json_file
from synth.metrics.regions import REGIONS, mean_region_errors, region_errors
from synth.spectrogram import SpectrogramParams, log_mel

__all__ = ["load_notes", "measure_regions", "format_region_table", "plot_methods", "OUTPUT_RATE", "BASELINE"]

OUTPUT_RATE = 48000
BASELINE = "librosa_griffinlim"


def load_notes(folder: Path, *, limit: int | None = None, params: SpectrogramParams) -> list[tuple[str, float, np.ndarray]]:
    """``(note_str, f0 Hz, unit log-mel)`` of the notes of an NSynth-format folder, in name order (every
    ``len // limit``-th note when ``limit`` is given)."""
    import soundfile

    folder = Path(folder)
    examples = read_json_file(folder / "examples.json", what="NSynth examples", error=DataError)
    if not isinstance(examples, dict):
        raise DataError(f"{folder / 'examples.json'}: expected an object keyed by note_str")
    names = sorted(examples)
    if limit is not None and 0 < limit < len(names):
        names = names[:: max(1, len(names) // limit)][:limit]
    notes = []
    for name in names:
        y, sr = soundfile.read(folder / "audio" / f"{name}.wav", dtype="float32")
        if sr != params.sample_rate:
            raise DataError(f"{folder}/audio/{name}.wav: {sr} Hz, the contract needs {params.sample_rate}")
        f0 = 440.0 * 2.0 ** ((int(examples[name]["pitch"]) - 69) / 12.0)
        notes.append((name, f0, log_mel(y, params=params)))
    return notes


def _librosa_griffinlim(mel: np.ndarray, *, params: SpectrogramParams) -> np.ndarray:
    import librosa

    from synth.inversion import mel_to_magnitude

    return librosa.griffinlim(
        mel_to_magnitude(mel, params=params), n_iter=32, hop_length=params.hop_length,
        win_length=params.win_length, n_fft=params.n_fft, window=params.window, center=params.center,
        momentum=0.99, init="random", random_state=0,
    ).astype(np.float32)


def render_method(method: str, mel: np.ndarray, *, f0: float, params: SpectrogramParams) -> np.ndarray:
    """The audio one method makes of ``mel``, at the contract's rate (resampled from 48 kHz for the
    streaming methods)."""
    import soxr

    if method == BASELINE:
        return _librosa_griffinlim(mel, params=params)
    inv = make_inverter(method, params=params, output_rate=OUTPUT_RATE, harmonic_f0=f0)
    audio = invert(mel, method=inv, params=params, output_rate=OUTPUT_RATE)
    return soxr.resample(audio, OUTPUT_RATE, params.sample_rate, quality="VHQ").astype(np.float32)


def measure_regions(
    notes: list[tuple[str, float, np.ndarray]], *, methods: tuple[str, ...] = METHODS + (BASELINE,),
    params: SpectrogramParams, progress=None,
) -> dict[str, dict]:
    """Mean region figures of every method over ``notes`` (:func:`mean_region_errors`'s dict per method,
    plus ``seconds``: the wall time the method took over all notes)."""
    results: dict[str, list] = {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    for i, (_name, f0, mel) in enumerate(notes):
        for method in methods:
            start = time.perf_counter()
            audio = render_method(method, mel, f0=f0, params=params)
            seconds[method] += time.perf_counter() - start
            again = log_mel(audio, params=params)
            results[method].append(region_errors(mel, again, params=params))
        if progress is not None:
            progress(i + 1, len(notes))
    return {m: {**mean_region_errors(r), "seconds": seconds[m]} for m, r in results.items()}


def format_region_table(table: dict[str, dict]) -> str:
    """Markdown: one row per method, bias / abs per region, error as heard, top band ratio."""
    head = "| method | " + " | ".join(f"{r} bias / abs (dB)" for r in REGIONS) + " | as heard (dB) | top band |"
    lines = [head, "|" + "---|" * (len(REGIONS) + 3)]
    for method, row in table.items():
        cells = [f"{row['bias'][r]:+.1f} / {row['abs'][r]:.1f}" for r in REGIONS]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {row['heard']:.2f} | {row['top_band_ratio']:.2f} |")
    return "\n".join(lines)


def plot_methods(path: Path, *, name: str, f0: float, mel: np.ndarray, params: SpectrogramParams,
                 methods: tuple[str, ...] = METHODS + (BASELINE,)) -> Path:
    """A picture of one note: its original log-mel, then each method's rendering analysed again, each with
    its difference from the original (red: louder than the note, blue: quieter), 0-1.2 s and 2.8-4 s."""
    from synth.atomic import atomic_path
    from synth.render.plot import _pyplot

    plt = _pyplot()
    db = params.db_max - params.db_min
    frames = np.r_[0 : params.frame_of(1.2), params.frame_of(2.8) : params.frames]
    fig, axes = plt.subplots(2, len(methods) + 1, figsize=(3.2 * (len(methods) + 1), 6.4), sharey=True)
    show = dict(origin="lower", aspect="auto", interpolation="nearest")
    axes[0, 0].imshow(params.db_min + db * mel[:, frames], vmin=params.db_min, vmax=params.db_max, **show)
    axes[0, 0].set_title(f"original: {name}")
    axes[1, 0].axis("off")
    for k, method in enumerate(methods, start=1):
        again = log_mel(render_method(method, mel, f0=f0, params=params), params=params)
        r = region_errors(mel, again, params=params)
        axes[0, k].imshow(params.db_min + db * again[:, frames], vmin=params.db_min, vmax=params.db_max, **show)
        axes[0, k].set_title(f"{method}: as heard {r.heard:.1f} dB")
        diff = np.where(mel > 0.35, (again - mel) * db, 0.0)[:, frames]
        axes[1, k].imshow(diff, vmin=-12, vmax=12, cmap="RdBu_r", **show)
        axes[1, k].set_title("minus original (loud bins, +-12 dB)", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
    axes[0, 0].set_ylabel("mel band")
    fig.tight_layout()
    with atomic_path(Path(path), suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return Path(path)
