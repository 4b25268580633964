"""The harmonic tuning both inverters share: which fundamental, if any, a note's partials are tuned onto.

A model spreads a note's fundamental over two neighbouring mel bands, so a partial read straight off the mel
peak comes out mistuned; both inversion methods tune each partial that lies within ``harmonic_snap`` band
spacings of a harmonic of ``harmonic_f0`` onto that harmonic.
"""

from __future__ import annotations

import math

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams

__all__ = ["harmonic_tuning"]


def harmonic_tuning(
    owner: str, *, harmonic_f0: float | None, harmonic_snap: float, params: SpectrogramParams
) -> float | None:
    """Check an inverter's ``harmonic_f0`` / ``harmonic_snap`` pair; returns the fundamental to tune to, or None
    (no fundamental, or a snap distance of 0)."""
    nyquist = params.sample_rate / 2
    if harmonic_f0 is not None and not (math.isfinite(harmonic_f0) and 0 < harmonic_f0 < nyquist):
        raise ParameterError(
            f"{owner}: harmonic_f0 must be a frequency in (0, {nyquist:g}) Hz or None, got {harmonic_f0!r}"
        )
    if not (math.isfinite(harmonic_snap) and 0 <= harmonic_snap <= 2):
        raise ParameterError(f"{owner}: harmonic_snap must be in 0..2 band spacings, got {harmonic_snap!r}")
    return None if harmonic_f0 is None or harmonic_snap == 0 else float(harmonic_f0)
