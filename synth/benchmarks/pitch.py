"""Fundamental frequency of a recorded harmonic note, for checking that the engine still plays in tune."""

from __future__ import annotations

import numpy as np

__all__ = ["f0_of"]


def f0_of(y: np.ndarray, *, rate: int, fmin: float = 40.0, fmax: float = 2000.0) -> float:
    """Fundamental (Hz) of harmonic signal ``y`` (shape (n,)): the candidate whose first 5 harmonics hold
    the most spectral energy, refined by a parabolic fit on its strongest harmonic."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    spec = np.abs(np.fft.rfft(y * np.hanning(n), n=4 * n))
    freqs = np.fft.rfftfreq(4 * n, 1 / rate)
    cands = np.exp(np.linspace(np.log(fmin), np.log(fmax), 4000))
    score = np.zeros_like(cands)
    for h in range(1, 6):
        score += np.interp(cands * h, freqs, spec) / h
    f = cands[np.argmax(score)]
    best = None
    for h in range(1, 6):
        i = int(round(f * h / freqs[1]))
        lo, hi = max(i - 8, 1), min(i + 9, len(spec) - 1)
        j = lo + int(np.argmax(spec[lo:hi]))
        if best is None or spec[j] > best[0]:
            a, b, c = spec[j - 1], spec[j], spec[j + 1]
            den = a - 2 * b + c
            off = 0.5 * (a - c) / den if den != 0 else 0.0
            best = (spec[j], (j + off) * freqs[1] / h)
    return float(best[1])
