"""Fundamental frequency of a recorded harmonic note, for checking that the engine still plays in tune."""

from __future__ import annotations

import numpy as np

from synth.inversion.base import METHODS

__all__ = ["f0_of", "harmonic_error_cents", "preset_tuning"]


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


def harmonic_error_cents(y: np.ndarray, *, rate: int, f0: float, harmonics: int = 4) -> float:
    """Signed tuning error (cents) of a note meant to sound at ``f0``: of its first ``harmonics`` harmonics,
    the one with the most energy within a semitone of where it belongs, measured at its spectral peak
    (parabolic fit). Robust where :func:`f0_of` would jump an octave, e.g. a guitar-harmonics patch whose
    fundamental is weak."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    spec = np.abs(np.fft.rfft(y * np.hanning(n), n=4 * n))
    step = rate / (4 * n)
    best = None
    for h in range(1, harmonics + 1):
        lo = int(h * f0 * 2 ** (-1 / 12) / step)
        hi = min(int(h * f0 * 2 ** (1 / 12) / step) + 1, len(spec) - 1)
        if hi - lo < 3:
            continue
        j = lo + int(np.argmax(spec[lo:hi]))
        if best is None or spec[j] > best[0]:
            a, b, c = spec[j - 1], spec[j], spec[j + 1]
            den = a - 2 * b + c
            off = 0.5 * (a - c) / den if den != 0 else 0.0
            best = (spec[j], (j + off) * step / h)
    if best is None:
        return float("nan")
    return float(1200.0 * np.log2(best[1] / f0))


def preset_tuning(bundle, *, methods=METHODS, offsets=(0, 7), decoder=None,
                  rate: int = 48000) -> dict:
    """How far each preset's rendered partials lie from equal temperament, per inversion method.

    Every preset is rendered offline (the live engine's voices) at the base pitch plus each of ``offsets``
    semitones, held 1.5 s; 0.3-1.3 s after note-on is measured by :func:`harmonic_error_cents` (resolution
    about 2.5 cents at the base pitch). Returns per method the largest error in cents, how many presets stay
    within 10 cents (the engine's target) and within 2.5 cents at every offset, and the worst presets.
    """
    from synth.render import render_note

    out: dict = {"tuning_presets": len(bundle.presets), "tuning_offsets": list(offsets)}
    for method in methods:
        worst: dict[str, float] = {}
        for name in bundle.presets:
            errors = []
            for offset in offsets:
                note = int(bundle.base_pitch) + offset
                r = render_note(bundle, preset=name, note=note, hold=1.5, method=method, output_rate=rate,
                                decoder=decoder)
                target = 440.0 * 2.0 ** ((note - 69) / 12.0)
                errors.append(abs(harmonic_error_cents(r.audio[int(0.3 * rate):int(1.3 * rate)], rate=rate,
                                                       f0=target)))
            worst[name] = float(max(errors))
        values = np.array(list(worst.values()))
        out[f"tuning_{method}_max_cents"] = float(values.max())
        out[f"tuning_{method}_within_10_cents"] = int((values <= 10.0).sum())
        out[f"tuning_{method}_within_2_5_cents"] = int((values <= 2.5).sum())
        out[f"tuning_{method}_worst"] = dict(sorted(worst.items(), key=lambda kv: -kv[1])[:4])
    return out
