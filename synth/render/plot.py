"""A picture of a render: the preset's decoded log-mel beside the log-mel of the rendered audio.

The render is resampled to the model's rate with soxr and analysed with the contract's own
:func:`synth.spectrogram.mel_power`, so both panels are on the same bands and the same fixed dB range: what
the inversion lost or added shows as a difference between them. The render's panel covers the whole render
(its hold may differ from the model's 3 s; its pitch from the base pitch). matplotlib (the ``plot`` extra)
with the Agg backend; the PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.atomic import atomic_path
from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams, mel_band_frequencies, mel_power, power_to_unit, unit_to_db

__all__ = ["render_log_mel", "plot_render", "require_matplotlib"]


def render_log_mel(audio: np.ndarray, *, rate: int, params: SpectrogramParams) -> np.ndarray:
    """Unit-scale log-mel of rendered audio, analysed at the model's rate.

    Parameters
    ----------
    audio : np.ndarray [shape=(n,), float] mono at ``rate``

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + m // hop_length), float32] with ``m`` the length at the model's rate (not
    fitted to the contract's frame count)
    """
    import soxr

    y = np.asarray(audio, dtype=np.float64)
    if rate != params.sample_rate:
        y = soxr.resample(y, rate, params.sample_rate, quality="HQ")
    if y.size < params.n_fft:
        y = np.concatenate([y, np.zeros(params.n_fft - y.size)])
    return power_to_unit(mel_power(y, params=params, name="render"), params=params).astype(np.float32)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ParameterError("--plot needs matplotlib: pip install 'melsynth[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def require_matplotlib() -> None:
    """Raise :class:`ParameterError` now if matplotlib is missing (before any work that would need it)."""
    _pyplot()


def plot_render(
    path: str | Path,
    *,
    decoded: np.ndarray,
    audio: np.ndarray,
    rate: int,
    params: SpectrogramParams,
    title: str | None = None,
    force: bool | None = None,
) -> Path:
    """Write the two-panel PNG to ``path`` and return it (``force`` as :func:`synth.render.wav.open_wav`'s).

    Parameters
    ----------
    decoded : np.ndarray [shape=(n_mels, frames)] the decoder's unit-scale log-mel of the preset
    audio : np.ndarray [shape=(n,)] the render, mono at ``rate``
    """
    decoded = np.asarray(decoded, dtype=np.float64)
    if decoded.ndim != 2 or decoded.shape[0] != params.n_mels:
        raise ParameterError(f"decoded log-mel must have shape ({params.n_mels}, frames), got {decoded.shape}")
    rendered = render_log_mel(audio, rate=rate, params=params)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, constrained_layout=True)
    image = None
    for ax, x, label in (
        (axes[0], decoded, "decoded (the model's note)"),
        (axes[1], rendered, f"render ({rate} Hz, analysed at {params.sample_rate} Hz)"),
    ):
        extent = (0.0, x.shape[1] / params.frame_rate, -0.5, params.n_mels - 0.5)
        image = ax.imshow(
            unit_to_db(x, params=params), origin="lower", aspect="auto", extent=extent,
            vmin=params.db_min, vmax=params.db_max, cmap="magma", interpolation="nearest",
        )
        ax.set_title(label)
        ax.set_xlabel("time (s)")
    freqs = mel_band_frequencies(params=params)
    ticks = np.linspace(0, params.n_mels - 1, min(params.n_mels, 8)).round().astype(int)
    axes[0].set_yticks(ticks, [f"{freqs[t]:.0f}" if freqs[t] < 1000 else f"{freqs[t] / 1000:.1f}k" for t in ticks])
    axes[0].set_ylabel("mel band centre (Hz)")
    fig.colorbar(image, ax=axes, label="dB", shrink=0.9)
    if title:
        fig.suptitle(title)
    path = Path(path)
    try:
        with atomic_path(path, suffix=".png", force=force) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    except OSError as exc:
        raise ParameterError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path
