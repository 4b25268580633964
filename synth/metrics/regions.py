"""Where an inversion loses a note: the error as heard, split by region of the note.

The audio an inverter renders is analysed again with the contract's own log-mel and compared with the
original note's log-mel over the original's loud bins (as :mod:`synth.metrics.heard` does), but reported
per region, since a listener hears a dull top, a soft attack and a smeared release as different faults:

====================  =============================================================
region                bins
====================  =============================================================
``attack``            frames of the first 0.1 s, every band
``sustain_low``       0.1 s .. note-off, bands centred below 1.5 kHz
``sustain_high``      0.1 s .. note-off, bands centred at and above 2 kHz (upper partials)
``release``           note-off (3 s) .. the end (4 s), every band
====================  =============================================================

Each region gives a bias (mean signed error, dB: negative = the rendering is quieter than the note) and
an abs (mean absolute error, dB). ``top_band_ratio`` compares the highest band holding energy (more than
``TOP_BAND_BELOW_PEAK_DB`` below the loudest bin of the sustain, in the note's mean sustain spectrum) of the
rendering with the original's: below 1 means the top of the spectrum is gone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams, mel_band_frequencies

__all__ = ["REGIONS", "LOUD", "RegionErrors", "region_errors", "mean_region_errors", "top_band"]

# A bin of the original counts when its unit value is above this: -54.5 dB on the default -100..+30 dB contract.
LOUD = 0.35
REGIONS = ("attack", "sustain_low", "sustain_high", "release")
ATTACK_SECONDS = 0.1
NOTE_OFF_SECONDS = 3.0
LOW_BELOW_HZ = 1500.0
HIGH_FROM_HZ = 2000.0
TOP_BAND_BELOW_PEAK_DB = 60.0


@dataclasses.dataclass(frozen=True)
class RegionErrors:
    """Per-region bias and mean absolute error (dB; NaN where the region holds no loud bin), the error
    over all loud bins (``heard``, as :func:`synth.metrics.heard.heard_error_db` gives it) and the top band
    ratio."""

    bias: dict[str, float]
    abs: dict[str, float]
    heard: float
    top_band_ratio: float

    def to_dict(self) -> dict:
        return {"bias": dict(self.bias), "abs": dict(self.abs), "heard": self.heard,
                "top_band_ratio": self.top_band_ratio}


def _masks(*, params: SpectrogramParams) -> dict[str, np.ndarray]:
    """(n_mels, frames) boolean masks of each region."""
    frames = np.arange(params.frames)
    attack_end = params.frame_of(ATTACK_SECONDS)
    off = params.frame_of(NOTE_OFF_SECONDS) if params.frames > params.frame_of(NOTE_OFF_SECONDS) else params.frames
    centres = mel_band_frequencies(params=params)[:, None]
    sustain = ((frames >= attack_end) & (frames < off))[None, :]
    return {
        "attack": np.broadcast_to((frames < attack_end)[None, :], (params.n_mels, params.frames)),
        "sustain_low": sustain & (centres < LOW_BELOW_HZ),
        "sustain_high": sustain & (centres >= HIGH_FROM_HZ),
        "release": np.broadcast_to((frames >= off)[None, :], (params.n_mels, params.frames)),
    }


def top_band(mel: np.ndarray, *, params: SpectrogramParams) -> int:
    """Index of the highest band of the mean sustain spectrum within ``TOP_BAND_BELOW_PEAK_DB`` of its
    loudest band (-1 for a silent note).

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, frames), unit scale]
    """
    attack_end = params.frame_of(ATTACK_SECONDS)
    off = min(params.frame_of(NOTE_OFF_SECONDS), mel.shape[1])
    mean_db = np.mean(mel[:, attack_end:off], axis=1) * (params.db_max - params.db_min)
    above = np.flatnonzero(mean_db >= mean_db.max() - TOP_BAND_BELOW_PEAK_DB)
    above = above[mean_db[above] > 10.0]  # 10 dB above the floor: the silent top of a note is not energy
    return int(above[-1]) if above.size else -1


def region_errors(
    original: np.ndarray, again: np.ndarray, *, params: SpectrogramParams, loud: float = LOUD
) -> RegionErrors:
    """Compare a rendering, analysed again, with the original note's log-mel, region by region.

    Parameters
    ----------
    original : np.ndarray [shape=(n_mels, frames), unit scale] the note as analysed from its own audio
    again : np.ndarray [shape=(n_mels, frames), unit scale] the log-mel of the rendered audio
    loud : unit value above which a bin of ``original`` counts (0.35: -54.5 dB on the default contract)
    """
    original = np.asarray(original, dtype=np.float64)
    again = np.asarray(again, dtype=np.float64)
    shape = (params.n_mels, params.frames)
    if original.shape != shape or again.shape != shape:
        raise ParameterError(f"region errors: expected two {shape} spectrograms, got {original.shape} and {again.shape}")
    scale = params.db_max - params.db_min
    diff = (again - original) * scale
    mask = original > loud
    bias, absolute = {}, {}
    for name, region in _masks(params=params).items():
        sel = mask & region
        bias[name] = float(np.mean(diff[sel])) if sel.any() else float("nan")
        absolute[name] = float(np.mean(np.abs(diff[sel]))) if sel.any() else float("nan")
    heard = float(np.mean(np.abs(diff[mask]))) if mask.any() else float("nan")
    top_o, top_a = top_band(original, params=params), top_band(again, params=params)
    ratio = float(mel_band_frequencies(params=params)[top_a] / mel_band_frequencies(params=params)[top_o]) \
        if top_o > 0 and top_a >= 0 else float("nan")
    return RegionErrors(bias=bias, abs=absolute, heard=heard, top_band_ratio=ratio)


def mean_region_errors(results: list[RegionErrors]) -> dict:
    """Mean over notes of every figure (NaNs left out), and the median top-band ratio."""
    if not results:
        raise ParameterError("mean_region_errors: no notes")

    def mean(values: list[float]) -> float:
        v = np.array(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")

    ratios = np.array([r.top_band_ratio for r in results])
    ratios = ratios[np.isfinite(ratios)]
    return {
        "bias": {k: mean([r.bias[k] for r in results]) for k in REGIONS},
        "abs": {k: mean([r.abs[k] for r in results]) for k in REGIONS},
        "heard": mean([r.heard for r in results]),
        "top_band_ratio": float(np.median(ratios)) if ratios.size else float("nan"),
        "notes": len(results),
    }
