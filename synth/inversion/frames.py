"""The frame clock: which output samples each model frame owns, at any output rate.

Frame k starts at output sample ``round(k H)`` with ``H = hop_length * output_rate / sample_rate`` (125
samples at 16 kHz, 375 at 48 kHz, 344.53125 at 44.1 kHz), computed with integers only, so the engine, the
inverters and the offline driver agree to the sample however a stream is cut into blocks.
"""

from __future__ import annotations

import math

import numpy as np

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams

__all__ = ["frame_lengths", "frame_start", "hop_samples", "check_output_rate", "check_frame_arguments"]


def check_output_rate(output_rate, *, who: str) -> None:
    """Raise :class:`ParameterError` naming ``who`` unless ``output_rate`` is a positive int (Hz)."""
    if not isinstance(output_rate, (int, np.integer)) or isinstance(output_rate, bool) or output_rate <= 0:
        raise ParameterError(f"{who}: output_rate must be a positive int, got {output_rate!r}")


def check_frame_arguments(
    mel_frame: np.ndarray, *, pitch_ratio: float, out: np.ndarray, n_mels: int, gain: float = 1.0
) -> None:
    """The checks of every inverter's ``process_frame``: a (n_mels,) frame, a 1-D float32 ``out``, a positive
    finite pitch ratio and gain (:class:`ParameterError` naming the argument)."""
    if mel_frame.shape != (n_mels,):
        raise ParameterError(f"process_frame: mel_frame must have shape ({n_mels},), got {mel_frame.shape}")
    if out.ndim != 1 or out.dtype != np.float32:
        raise ParameterError(f"process_frame: out must be 1-D float32, got {out.dtype} {out.shape}")
    if not pitch_ratio > 0 or not math.isfinite(pitch_ratio):
        raise ParameterError(f"process_frame: pitch_ratio must be positive and finite, got {pitch_ratio!r}")
    if not gain > 0 or not math.isfinite(gain):
        raise ParameterError(f"process_frame: gain must be positive and finite, got {gain!r}")


def hop_samples(*, params: SpectrogramParams, output_rate: int) -> float:
    """H, the output samples per model frame (fractional in general: 344.53125 at 44.1 kHz)."""
    return params.hop_length * output_rate / params.sample_rate


def frame_start(k: int, *, params: SpectrogramParams, output_rate: int) -> int:
    """The first output sample of frame ``k``: ``round(k H)``, rounded half up, with integers only."""
    num = k * params.hop_length * output_rate
    return (2 * num + params.sample_rate) // (2 * params.sample_rate)


def frame_lengths(
    n_frames: int, *, params: SpectrogramParams, output_rate: int, start: int = 0
) -> np.ndarray:
    """Output samples owned by frames ``start .. start + n_frames - 1``: ``round((k+1)H) - round(kH)``.

    Returns
    -------
    np.ndarray [shape=(n_frames,), int64]
    """
    k = np.arange(start, start + n_frames + 1, dtype=np.int64)
    # Exact rational arithmetic: k * hop * rate / sr, rounded half up, with integers only.
    num = k * params.hop_length * output_rate
    edges = (2 * num + params.sample_rate) // (2 * params.sample_rate)
    return np.diff(edges)
