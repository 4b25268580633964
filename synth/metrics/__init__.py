"""The paper's reconstruction metrics on normalised log-mel-spectrograms (numpy, scipy, scikit-image only).

- :func:`rmse`: root mean squared error per note, averaged over notes (:mod:`.error`);
- :func:`ssim`: scikit-image's structural similarity per note, averaged (:mod:`.structural`);
- :func:`harmonic_scores`: the paper's harmonic precision / recall / F1 from spectral peaks (:mod:`.harmonic`);
- :func:`summary`: all of them as one JSON-ready dict with the keys of :data:`SUMMARY_KEYS` (:mod:`.summary`).

Everything here takes arrays on the contract's unit scale ([0, 1], see :mod:`synth.spectrogram`) of shape
(n_mels, frames) for one note or (B, n_mels, frames) for a batch, and never imports TensorFlow, so the
engine's benchmarks and the ONNX-only ``melsynth evaluate --bundle`` use the very same code as training.
"""

from synth.metrics.error import rmse, rmse_per_note
from synth.metrics.harmonic import (
    FrameMatch,
    HarmonicCounts,
    frame_peaks,
    harmonic_counts,
    harmonic_scores,
    match_frame,
    peak_frequencies,
)
from synth.metrics.structural import ssim, ssim_per_note
from synth.metrics.summary import SUMMARY_KEYS, MetricsAccumulator, summary

__all__ = [
    "rmse",
    "rmse_per_note",
    "ssim",
    "ssim_per_note",
    "frame_peaks",
    "peak_frequencies",
    "harmonic_counts",
    "harmonic_scores",
    "match_frame",
    "HarmonicCounts",
    "FrameMatch",
    "summary",
    "SUMMARY_KEYS",
    "MetricsAccumulator",
]
