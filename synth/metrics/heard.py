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
from synth.metrics.regions import LOUD
from synth.spectrogram import SpectrogramParams

__all__ = ["heard_error_db", "heard_region_errors", "LOUD"]



def heard_region_errors(original: np.ndarray, spectrogram: np.ndarray, *, method: str, params: SpectrogramParams,
                        loud: float = LOUD):
    """Invert ``spectrogram`` with ``method``, analyse the audio again and compare it with ``original`` region
    by region (:class:`synth.metrics.regions.RegionErrors`; its ``heard`` is :func:`heard_error_db`).

    Parameters
    ----------
    original, spectrogram : np.ndarray [shape=(n_mels, frames)], unit scale (as for :func:`heard_error_db`)
    """
    from synth.inversion.base import invert
    from synth.metrics.regions import region_errors
    from synth.spectrogram import log_mel

    original = np.asarray(original, dtype=np.float32)
    spectrogram = np.clip(np.asarray(spectrogram, dtype=np.float32), 0.0, 1.0)
    if original.shape != spectrogram.shape or original.shape != (params.n_mels, params.frames):
        raise ParameterError(f"heard error: expected two ({params.n_mels}, {params.frames}) spectrograms, "
                             f"got {original.shape} and {spectrogram.shape}")
    audio = invert(spectrogram, method=method, params=params, output_rate=params.sample_rate)
    return region_errors(original, log_mel(audio, params=params), params=params, loud=loud)


def heard_error_db(
    original: np.ndarray, spectrogram: np.ndarray, *, method: str, params: SpectrogramParams, loud: float = LOUD
) -> float:
    """Mean |original - log_mel(invert(spectrogram))| in dB over the loud bins of ``original``.

    Parameters
    ----------
    original : np.ndarray [shape=(n_mels, frames)], unit scale: the note as analysed from its audio
    spectrogram : np.ndarray [shape=(n_mels, frames)], unit scale: what is inverted (a reconstruction, or the
        original itself)
    method : one of :data:`synth.inversion.METHODS`

    Returns NaN when the original has no loud bin.
    """
    return heard_region_errors(original, spectrogram, method=method, params=params, loud=loud).heard
