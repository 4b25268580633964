"""The paper's pictures as PNGs: original vs reconstruction (Fig. 2), peaks of one frame (Fig. 3), training curves.

matplotlib with the Agg backend (no display needed); every file is written atomically, so a picture is
complete under its final name or absent. The peaks picture uses :func:`synth.metrics.match_frame`, i.e.
exactly the detection and matching rules of the harmonic F1.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_path
from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams, mel_band_frequencies, unit_to_db

__all__ = [
    "plot_reconstruction",
    "plot_peaks",
    "plot_history",
    "write_run_pictures",
    "RUN_PICTURES",
]

RUN_PICTURES = ("reconstruction.png", "peaks.png", "history.png")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _check_note(x: np.ndarray, *, name: str, params: SpectrogramParams) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (params.n_mels, params.frames):
        raise ParameterError(f"{name}: expected shape ({params.n_mels}, {params.frames}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ParameterError(f"{name}: contains NaN or Inf")
    return x


def _band_ticks(ax: Any, params: SpectrogramParams, *, axis: str = "y") -> None:
    """Label a mel-band-index axis with band centre frequencies."""
    freqs = mel_band_frequencies(params=params)
    ticks = np.linspace(0, params.n_mels - 1, min(params.n_mels, 8)).round().astype(int)
    labels = [f"{freqs[t]:.0f}" if freqs[t] < 1000 else f"{freqs[t] / 1000:.1f}k" for t in ticks]
    if axis == "y":
        ax.set_yticks(ticks, labels)
        ax.set_ylabel("mel band centre (Hz)")
    else:
        ax.set_xticks(ticks, labels)
        ax.set_xlabel("mel band centre (Hz)")


def plot_reconstruction(
    original: np.ndarray,
    reconstruction: np.ndarray,
    *,
    params: SpectrogramParams,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """The paper's Fig. 2: original and reconstructed log-mel-spectrogram side by side, in dB.

    Parameters
    ----------
    original, reconstruction : np.ndarray [shape=(n_mels, frames)], unit scale
    params : the spectrogram contract (time axis in seconds, band frequencies, dB range)
    path : the PNG to write (atomically)
    title : optional figure title (e.g. the note's name)

    Returns the path written.
    """
    a = _check_note(original, name="original", params=params)
    b = _check_note(reconstruction, name="reconstruction", params=params)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, constrained_layout=True)
    extent = (0.0, params.frames / params.frame_rate, -0.5, params.n_mels - 0.5)
    image = None
    for ax, x, label in ((axes[0], a, "original"), (axes[1], b, "reconstruction")):
        image = ax.imshow(
            unit_to_db(x, params=params),
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=params.db_min,
            vmax=params.db_max,
            cmap="magma",
            interpolation="nearest",
        )
        ax.set_title(label)
        ax.set_xlabel("time (s)")
    _band_ticks(axes[0], params)
    fig.colorbar(image, ax=axes, label="dB", shrink=0.9)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_peaks(
    original: np.ndarray,
    reconstruction: np.ndarray,
    *,
    params: SpectrogramParams,
    frame: int,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """The paper's Fig. 3: one frame of both spectrograms in dB, their detected peaks and the matches.

    Peaks and matches follow :mod:`synth.metrics.harmonic` exactly (30 dB relative threshold, 3 % match,
    maximum one-to-one matching). Matched pairs are joined by a green line; the dotted lines are each frame's
    30 dB threshold.

    Parameters
    ----------
    original, reconstruction : np.ndarray [shape=(n_mels, frames)], unit scale
    frame : the frame index to show (0 <= frame < frames)
    path : the PNG to write (atomically)

    Returns the path written.
    """
    from synth.metrics import match_frame
    from synth.metrics.harmonic import DEFAULT_THRESHOLD_DB

    a = _check_note(original, name="original", params=params)
    b = _check_note(reconstruction, name="reconstruction", params=params)
    if not isinstance(frame, (int, np.integer)) or not 0 <= frame < params.frames:
        raise ParameterError(f"frame must be an index in 0..{params.frames - 1}, got {frame!r}")
    m = match_frame(a[:, frame], b[:, frame], params=params)
    freqs = mel_band_frequencies(params=params)
    db_a, db_b = unit_to_db(a[:, frame], params=params), unit_to_db(b[:, frame], params=params)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4), constrained_layout=True)
    ax.plot(freqs, db_a, color="tab:blue", lw=1.2, label="original")
    ax.plot(freqs, db_b, color="tab:orange", lw=1.2, label="reconstruction")
    ax.plot(
        freqs[m.original_bands],
        db_a[m.original_bands],
        "o",
        color="tab:blue",
        mfc="none",
        ms=8,
        label=f"original peaks ({len(m.original_bands)})",
    )
    ax.plot(
        freqs[m.reconstructed_bands],
        db_b[m.reconstructed_bands],
        "x",
        color="tab:orange",
        ms=7,
        label=f"reconstructed peaks ({len(m.reconstructed_bands)})",
    )
    for i, (bo, br) in enumerate(m.pairs):
        ax.plot(
            [freqs[bo], freqs[br]],
            [db_a[bo], db_b[br]],
            color="tab:green",
            lw=2,
            label=f"matched ({len(m.pairs)})" if i == 0 else None,
        )
    for bands, db, color in (
        (m.original_bands, db_a, "tab:blue"),
        (m.reconstructed_bands, db_b, "tab:orange"),
    ):
        if len(bands):
            ax.axhline(db[bands].max() - DEFAULT_THRESHOLD_DB, color=color, ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(freqs[0], freqs[-1])
    ax.set_ylim(params.db_min - 2, params.db_max + 2)
    ax.set_xlabel("mel band centre frequency (Hz)")
    ax.set_ylabel("dB")
    seconds = frame / params.frame_rate
    status = (
        "original silent: frame skipped"
        if m.silent
        else (
            f"precision {m.precision:.2f}, recall {m.recall:.2f}"
            if len(m.original_bands)
            else "no original peak"
        )
    )
    ax.set_title(f"{title + ': ' if title else ''}frame {frame} ({seconds:.2f} s), {status}")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def _read_history(history_csv: Path) -> dict[str, np.ndarray]:
    try:
        with open(history_csv, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise DataError(f"{history_csv}: missing training history") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{history_csv}: unreadable ({exc})") from None
    if not rows or "epoch" not in rows[0]:
        raise DataError(f"{history_csv}: no epochs (expected a CSV with an 'epoch' column)")
    out: dict[str, np.ndarray] = {}
    for key in rows[0]:
        try:
            out[key] = np.array([float(r[key]) for r in rows])
        except (TypeError, ValueError):
            continue  # a non-numeric column is not a curve
    return out


def plot_history(history_csv: str | Path, path: str | Path, *, title: str | None = None) -> Path:
    """Training curves from a run's history.csv: every column whose name contains "loss", per epoch.

    The loss axis is logarithmic (MSE falls over decades); the best validation epoch is marked.
    Returns the path written.
    """
    history = _read_history(Path(history_csv))
    curves = {k: v for k, v in history.items() if "loss" in k}
    if not curves:
        raise DataError(f"{history_csv}: no loss column")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    epochs = history["epoch"]
    for key, values in curves.items():
        ax.plot(epochs, values, marker="." if len(epochs) < 30 else None, label=key)
    if "val_loss" in curves and np.isfinite(curves["val_loss"]).any():
        best = int(np.nanargmin(curves["val_loss"]))
        ax.axvline(epochs[best], color="grey", ls=":", lw=1)
        ax.annotate(
            f"best {curves['val_loss'][best]:.4g} (epoch {epochs[best]:.0f})",
            (epochs[best], curves["val_loss"][best]),
            textcoords="offset points",
            xytext=(5, 10),
            fontsize=8,
        )
    if all(np.all(v[np.isfinite(v)] > 0) for v in curves.values()):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (unit scale)")
    ax.legend()
    ax.set_title(title or "training history")
    return _save(fig, path)


def _loudest_frame(x: np.ndarray, params: SpectrogramParams) -> int:
    """A frame in the held part of the note: 1 s in, or the loudest frame if that one is silent."""
    frame = min(params.frame_of(1.0), params.frames - 1)
    if x[:, frame].max() <= 0:
        frame = int(np.argmax(x.max(axis=0)))
    return frame


def write_run_pictures(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    note: int = 0,
    frame: int | None = None,
    split: str = "test",
) -> list[Path]:
    """Write reconstruction.png, peaks.png and history.png into a run folder.

    Parameters
    ----------
    run_dir : a run folder (:func:`training.run.load_run`); loads its best weights (imports TensorFlow)
    data : its features folder; default the path recorded in the run's config.json
    note : which note of ``split`` to draw (index into the split)
    frame : the frame of the peaks picture; default 1 s into the note (the loudest frame if that is silent)

    Returns the paths written. The history picture is skipped (not an error) while the run has no history.
    """
    from training.datasets.features import load_features
    from training.run import load_run

    run = load_run(run_dir)
    path = data if data is not None else run.data.get("path")
    if not path:
        raise DataError(f"{run.path}: config.json records no features path; pass the features folder")
    feats = load_features(path, verify=False)
    run.params.require_equal(feats.params, what=f"features folder {feats.path}")
    rows = feats.subset(split)
    if not 0 <= note < len(rows):
        raise ParameterError(f"note {note} is not in the {split} split (0..{len(rows) - 1})")
    row = int(rows[note])
    x = np.asarray(feats.x[row], dtype=np.float32)
    autoencoder, _, _ = run.models()
    y = np.clip(np.asarray(autoencoder(x[None], training=False), dtype=np.float32)[0], 0.0, 1.0)
    name = str(feats.rows[row].get("note_str", f"row {row}"))
    frame = _loudest_frame(x, run.params) if frame is None else frame
    written = [
        plot_reconstruction(x, y, params=run.params, path=run.path / RUN_PICTURES[0], title=name),
        plot_peaks(x, y, params=run.params, frame=frame, path=run.path / RUN_PICTURES[1], title=name),
    ]
    history = run.path / "history.csv"
    if history.is_file():
        written.append(plot_history(history, run.path / RUN_PICTURES[2], title=run.config.name))
    return written
