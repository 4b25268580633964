"""The inversion methods' output pinned sample by sample to what they rendered before their
output stages were rewritten for speed (issue 27): a speed-up must not change the sound.

``tests/data/inversion_pinned.npz`` holds the input frames and each case's rendered blocks, made by
``python tests/test_inversion_pinned.py`` at 3ccd4fb (before the rewrite). The noise path's inverse FFT is
no longer numpy's, so the samples may differ by float rounding: the bound is 1e-5 absolute (the loudest
samples here are 2 to 7, so about 20 float32 steps).

The harmonic cases were pinned again on 2026-12-07 when the sound was meant to change: the noise's density
between two band centres became their geometric, not arithmetic, mean (the error as heard on 128 SoundFont
notes 1.56 -> 1.54 dB, docs/BENCHMARKS.md); the other cases keep their 3ccd4fb pins.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from synth.inversion import frame_lengths, make_inverter
from synth.spectrogram import SpectrogramParams, log_mel

PARAMS = SpectrogramParams()
C4 = 261.6255653005986
FIXTURE = pathlib.Path(__file__).parent / "data" / "inversion_pinned.npz"
TOLERANCE = 1e-5

# name: (method, output rate, constructor keywords, pitch ratio per frame: a function of the frame index).
# The harmonic cases leave the transient envelope (sharpen=0), the noise's consistent phase (consistency=0) and
# its deconvolution from the bands' spread (deconvolve=0) out, which came after the fixture: everything else must still render as it did (their own tests:
# tests/test_inversion_transients.py, tests/test_inversion_harmonic.py).
CASES = {
    # The fill harmonics, the noise and a bend up and back while the note sounds.
    "harmonic_48k_bend": ("harmonic", 48000, {"harmonic_f0": C4, "sharpen": 0.0, "consistency": 0, "deconvolve": 0},
                          lambda k: 1.0 if k < 12 else 1.0 + 0.004 * min(k - 12, 24 - k if k < 24 else 0)),
    # No fundamental (no fill), the fractional frame clock (344/345 samples), a transposition.
    "harmonic_44k_plain": ("harmonic", 44100, {"sharpen": 0.0, "consistency": 0, "deconvolve": 0}, lambda k: 2.0 ** (3 / 12)),
    # The envelope bank: an octave down.
    "harmonic_48k_envelope": ("harmonic", 48000, {"harmonic_f0": C4, "keep_envelope": True, "sharpen": 0.0,
                                                  "consistency": 0, "deconvolve": 0},
                              lambda k: 0.5),
    # The other user of the shared overlap-add output stage.
    "griffinlim_48k": ("griffinlim", 48000, {"harmonic_f0": C4}, lambda k: 1.0),
    # The partials alone, whose per-frame function the harmonic method calls from its own.
    "sinusoidal_44k": ("sinusoidal", 44100, {"harmonic_f0": C4}, lambda k: 1.0 + 0.002 * k),
}


def input_frames() -> np.ndarray:
    """(T, n_mels) float32: the attack and the sustain of a breathy harmonic note, a NaN frame and an
    out-of-range one among them (sanitised by every method)."""
    rng = np.random.default_rng(0)
    sr = PARAMS.sample_rate
    t = np.arange(sr) / sr
    y = sum(0.3 / h**0.5 * np.sin(2 * np.pi * h * C4 * t + rng.uniform(0, 6.3)) for h in range(1, 29))
    y = (y + 0.01 * rng.standard_normal(t.size)) * np.minimum(1.0, t / 0.005)
    mel = log_mel(y.astype(np.float32), params=PARAMS)
    frames = np.ascontiguousarray(mel.T[:28], dtype=np.float32)
    frames[14, 40:60] = np.nan
    frames[15, :20] = 1.5
    return frames


def render(name: str, frames: np.ndarray) -> np.ndarray:
    """Every sample the case's inverter writes for ``frames`` and then its tail of silence."""
    method, rate, kw, ratio = CASES[name]
    inv = make_inverter(method, params=PARAMS, output_rate=rate, **kw)
    total = frames.shape[0] + inv.tail_frames
    lengths = frame_lengths(total, params=PARAMS, output_rate=rate)
    out = np.zeros(int(lengths.sum()), dtype=np.float32)
    silence = np.zeros(PARAMS.n_mels, dtype=np.float32)
    pos = 0
    for k in range(total):
        frame = frames[k] if k < frames.shape[0] else silence
        inv.process_frame(frame, pitch_ratio=ratio(k), out=out[pos : pos + lengths[k]])
        pos += int(lengths[k])
    return out


@pytest.fixture(scope="module")
def pinned():
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_is_what_it_was(pinned, name):
    got = render(name, pinned["frames"])
    want = pinned[name]
    assert got.shape == want.shape
    assert np.abs(want).max() > 0.01  # the case sounds
    np.testing.assert_allclose(got, want, rtol=0.0, atol=TOLERANCE)


if __name__ == "__main__":  # regenerate the fixture (only with the code whose output is to be pinned)
    frames = input_frames()
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, frames=frames, **{name: render(name, frames) for name in CASES})
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
