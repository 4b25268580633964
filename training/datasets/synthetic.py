"""A small synthetic NSynth-format dataset: harmonic notes with varied spectra and envelopes, for fast tests.

Each "instrument" is a random spectral envelope (partial amplitudes falling with a random slope, with a
random odd/even balance and a formant bump) and a random ADSR envelope; velocity scales the level and
brightens the spectrum, as real instruments do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.atomic import atomic_directory
from synth.data.nsynth_format import FAMILIES, make_example, write_examples, write_note_audio
from synth.errors import ParameterError
from synth.outputs import NSYNTH_DATASET, check_output_folder

__all__ = ["synth_note", "make_synthetic_dataset"]


def synth_note(
    *, pitch: int, velocity: int, rng: np.random.Generator, sample_rate: int = 16000, seconds: float = 4.0,
    hold: float = 3.0, slope: float | None = None, odd_even: float | None = None, attack: float | None = None,
    release: float | None = None,
) -> np.ndarray:
    """One harmonic note; unspecified timbre parameters are drawn from ``rng``.

    Returns
    -------
    np.ndarray [shape=(seconds * sample_rate,), dtype=float32], peak below 1.
    """
    if not 0 <= pitch <= 127 or not 1 <= velocity <= 127:
        raise ParameterError(f"pitch {pitch} / velocity {velocity} out of MIDI range")
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12)
    slope = rng.uniform(0.6, 2.0) if slope is None else slope
    odd_even = rng.uniform(0.2, 1.0) if odd_even is None else odd_even
    attack = rng.uniform(0.005, 0.2) if attack is None else attack
    release = rng.uniform(0.1, 0.8) if release is None else release
    formant = rng.uniform(500, 3000)
    brightness = 0.5 + velocity / 127
    k = np.arange(1, int((sample_rate / 2 - 100) // f0) + 1)
    amps = k ** (-slope / brightness) * np.where(k % 2 == 0, odd_even, 1.0)
    amps *= 1 + 2 * np.exp(-0.5 * ((k * f0 - formant) / 400) ** 2)
    phases = rng.uniform(0, 2 * np.pi, k.size)
    y = np.sin(2 * np.pi * f0 * np.outer(t, k) + phases) @ amps
    env = np.minimum(t / attack, 1.0) * np.exp(-0.3 * t)
    env *= np.where(t < hold, 1.0, np.exp(-(t - hold) / (release / 5)))
    y *= env
    y *= (velocity / 127) ** 1.5 * 0.8 / max(np.max(np.abs(y)), 1e-9)
    return y.astype(np.float32)


def make_synthetic_dataset(
    *, out: str | Path, instruments: int = 10, pitch: int | tuple[int, ...] = 60,
    velocities: tuple[int, ...] = (25, 50, 75, 100, 127), seed: int = 0, force: bool = False,
) -> Path:
    """Write an NSynth-format folder of ``instruments x len(velocities)`` synthetic notes at ``pitch`` (one
    MIDI key, or several: each instrument's notes at every one of them, with the same timbre)."""
    out = Path(out)
    check_output_folder(out, kind=NSYNTH_DATASET, force=force)
    if instruments < 1:
        raise ParameterError(f"instruments {instruments}: need at least 1")
    rng = np.random.default_rng(seed)
    examples = {}
    with atomic_directory(out, kind=NSYNTH_DATASET, force=force) as tmp:
        (tmp / "audio").mkdir()
        for i in range(instruments):
            family = FAMILIES[i % len(FAMILIES)]
            timbre = {"slope": rng.uniform(0.6, 2.0), "odd_even": rng.uniform(0.2, 1.0),
                      "attack": rng.uniform(0.005, 0.2), "release": rng.uniform(0.1, 0.8)}
            for key in (pitch,) if isinstance(pitch, int) else tuple(pitch):
                for v in velocities:
                    rec = make_example(family=family, source="synthetic", instrument_index=i, instrument_id=i,
                                       note_id=len(examples), pitch=key, velocity=v, dataset_source="synthetic")
                    y = synth_note(pitch=key, velocity=v, rng=np.random.default_rng([seed, i, v]), **timbre)
                    write_note_audio(tmp / "audio" / f"{rec['note_str']}.wav", y, sample_rate=16000)
                    examples[rec["note_str"]] = rec
        write_examples(tmp, examples)
    return out
