"""The steady-rate streaming sinc resampler behind the Griffin-Lim stream."""

from __future__ import annotations

import numpy as np
import pytest

from synth.errors import ParameterError
from synth.inversion.resample import SincResampler


def _stream(res: SincResampler, x: np.ndarray, chunk: int) -> tuple[np.ndarray, list[int]]:
    buf = np.empty(res.max_output(chunk), dtype=np.float32)
    out, counts = [], []
    for i in range(0, len(x), chunk):
        n = res.process(x[i : i + chunk], buf)
        out.append(buf[:n].copy())
        counts.append(n)
    return np.concatenate(out), counts


def _tones(rate: int, n: int) -> np.ndarray:
    t = np.arange(n) / rate
    return np.sin(2 * np.pi * 1000.0 * t) + 0.5 * np.sin(2 * np.pi * 5000.0 * t + 1.0)


@pytest.mark.parametrize("out_rate", [48000, 44100, 22050, 8000])
def test_band_limited_tones_are_reproduced_in_time(out_rate):
    res = SincResampler(in_rate=16000, out_rate=out_rate, max_chunk=125)
    y, counts = _stream(res, _tones(16000, 16000).astype(np.float32), 125)
    ref = _tones(out_rate, len(y))
    if out_rate == 8000:  # 5 kHz is above the new Nyquist: it must be gone
        ref = np.sin(2 * np.pi * 1000.0 * np.arange(len(y)) / out_rate)
    err = (y - ref)[100:-100]
    assert 20 * np.log10(np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(ref**2))) < -60
    # Steady: after the first chunk every call answers with floor or ceil of the ideal count.
    ideal = 125 * out_rate / 16000
    assert all(np.floor(ideal) <= c <= np.ceil(ideal) for c in counts[1:])


def test_chunking_does_not_change_the_output():
    x = np.random.default_rng(1).standard_normal(3000).astype(np.float32)
    whole, _ = _stream(SincResampler(in_rate=16000, out_rate=44100, max_chunk=3000), x, 3000)
    for chunk in (1, 7, 125):
        part, _ = _stream(SincResampler(in_rate=16000, out_rate=44100, max_chunk=3000), x, chunk)
        np.testing.assert_array_equal(part, whole[: len(part)])
        assert len(whole) - len(part) <= 1


def test_limits():
    with pytest.raises(ParameterError, match="phases"):
        SincResampler(in_rate=16000, out_rate=44101)
    res = SincResampler(in_rate=16000, out_rate=48000, max_chunk=125)
    with pytest.raises(ParameterError, match="max_chunk"):
        res.process(np.zeros(126, dtype=np.float32), np.zeros(1000, dtype=np.float32))
