"""Both inversion methods put a note where it was: latency_samples and tail_frames are honest."""

from __future__ import annotations

import numpy as np
import pytest
from inversion_fixtures import PARAMS, harmonic_note, note_mel

from synth.inversion import METHODS, invert, make_inverter


def _onset(x: np.ndarray, rate: int) -> float:
    env = np.convolve(np.abs(x), np.ones(rate // 500) / (rate // 500), mode="same")
    return float(np.argmax(env > 0.5 * env.max()) / rate)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_note_starts_and_ends_where_the_original_does(method, rate):
    sr = 16000
    y = np.zeros(sr, dtype=np.float32)
    y[sr // 4 : 3 * sr // 4] = harmonic_note(seconds=0.5)  # sounds from 0.25 s to 0.75 s
    audio = invert(note_mel(y), method=method, params=PARAMS, output_rate=rate)
    assert abs(_onset(audio, rate) - _onset(y, sr)) < 0.008
    # Reversed in time: the release edge.
    assert abs(_onset(audio[::-1], rate) - _onset(y[::-1], sr)) < 0.012


@pytest.mark.parametrize("method", METHODS)
def test_tail_frames_flush_everything(method):
    rate = 48000
    inv = make_inverter(method, params=PARAMS, output_rate=rate)
    frames = np.ascontiguousarray(note_mel(harmonic_note(seconds=0.5)).T)
    out = np.zeros(375, dtype=np.float32)
    for frame in frames:
        inv.process_frame(frame, pitch_ratio=1.0, out=out)
    for _ in range(inv.tail_frames):
        inv.process_frame(np.zeros(128, dtype=np.float32), pitch_ratio=1.0, out=out)
    # After the tail, more silence in gives (next to) nothing out.
    inv.process_frame(np.zeros(128, dtype=np.float32), pitch_ratio=1.0, out=out)
    assert np.abs(out).max() < 1e-4
