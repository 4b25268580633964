"""The frame clock: which output samples each model frame owns, at any output rate.

Frame k starts at output sample ``round(k H)`` with ``H = hop_length * output_rate / sample_rate`` (125
samples at 16 kHz, 375 at 48 kHz, 344.53125 at 44.1 kHz), computed with integers only, so the engine, the
inverters and the offline driver agree to the sample however a stream is cut into blocks.
"""

from __future__ import annotations

import numpy as np

from synth.spectrogram import SpectrogramParams

__all__ = ["frame_lengths"]


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
