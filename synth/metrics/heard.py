"""The error as heard: invert a spectrogram to audio with an inversion method, analyse that audio again, and
compare the result with the original note's log-mel.

The paper's metrics compare spectrograms; a listener hears audio. This measures the whole path a note takes
in the engine (a model's reconstruction, then an inverter) against the note itself: the mean absolute
difference in dB over the original's loud bins (unit value above ``loud``, 0.35 by default: above -54.5 dB
on the default -100..+30 dB contract). Inverting the original mel itself gives the inverter's own floor.
"""

from __future__ import annotations

import numpy as np

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams

__all__ = ["heard_error_db", "LOUD"]

LOUD = 0.35


def heard_error_db(
    original: np.ndarray, spectrogram: np.ndarray, *, method: str, params: SpectrogramParams, loud: float = LOUD
) -> float:
    """Mean |original - log_mel(invert(spectrogram))| in dB over the loud bins of ``original``.

    Parameters
    ----------
    original : np.ndarray [shape=(n_mels, frames)], unit scale: the note as analysed from its audio
    spectrogram : np.ndarray [shape=(n_mels, frames)], unit scale: what is inverted (a reconstruction, or the
        original itself)
    method : "sinusoidal" or "griffinlim"

    Returns NaN when the original has no loud bin.
    """
    from synth.inversion.base import invert
    from synth.spectrogram import log_mel

    original = np.asarray(original, dtype=np.float32)
    spectrogram = np.clip(np.asarray(spectrogram, dtype=np.float32), 0.0, 1.0)
    if original.shape != spectrogram.shape or original.shape != (params.n_mels, params.frames):
        raise ParameterError(f"heard error: expected two ({params.n_mels}, {params.frames}) spectrograms, "
                             f"got {original.shape} and {spectrogram.shape}")
    mask = original > loud
    if not mask.any():
        return float("nan")
    audio = invert(spectrogram, method=method, params=params, output_rate=params.sample_rate)
    again = log_mel(audio, params=params)
    return float(np.mean(np.abs(original - again)[mask]) * (params.db_max - params.db_min))
