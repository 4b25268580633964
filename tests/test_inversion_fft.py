"""The output stage's own inverse FFT against numpy's, and the numpy path kept for other FFT sizes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from inversion_fixtures import C4, PARAMS, harmonic_note, note_mel

from synth.inversion import frame_lengths, make_inverter
from synth.inversion.fft import IrfftPlan, irfft, is_power_of_two, rfft
from synth.inversion.overlap_add import _OWN_FFT


@pytest.mark.parametrize("n", [4, 8, 16, 32, 64, 128, 512, 1024, 2048, 4096])
def test_irfft_is_numpys(n):
    """Every power of two (radix-4 passes with and without the closing radix-2), the imaginary parts of
    the DC and Nyquist bins ignored as numpy does."""
    rng = np.random.default_rng(n)
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    plan = IrfftPlan(n)
    out = np.zeros(n)
    irfft(spec, plan.twiddles, plan.stages, plan.scratch(), out)
    want = np.fft.irfft(spec, n=n)
    assert np.abs(out - want).max() <= 1e-15 * max(1.0, np.abs(want).max() * np.sqrt(n))


@pytest.mark.parametrize("n", [4, 8, 16, 32, 64, 128, 512, 1024, 2048, 4096])
def test_rfft_is_numpys(n):
    """The forward transform (the harmonic method's consistent noise phase analyses with it) on the same
    plans, every bin including DC and Nyquist, and back through irfft to the signal."""
    rng = np.random.default_rng(n + 1)
    x = rng.standard_normal(n)
    plan = IrfftPlan(n)
    spec = np.zeros(n // 2 + 1, dtype=np.complex128)
    rfft(x, plan.twiddles, plan.stages, plan.scratch(), spec)
    want = np.fft.rfft(x)
    assert np.abs(spec - want).max() <= 1e-14 * max(1.0, np.abs(want).max())
    back = np.zeros(n)
    irfft(spec, plan.twiddles, plan.stages, plan.scratch(), back)
    np.testing.assert_allclose(back, x, atol=1e-13)


def test_only_powers_of_two():
    assert [n for n in range(1, 70) if is_power_of_two(n)] == [4, 8, 16, 32, 64]
    with pytest.raises(ValueError, match="power of two"):
        IrfftPlan(1000)


def _render(inv, mel, rate):
    frames = np.ascontiguousarray(mel.T)
    lengths = frame_lengths(len(frames), params=inv.params, output_rate=rate)
    out = np.zeros(int(lengths.sum()), dtype=np.float32)
    pos = 0
    for frame, n in zip(frames, lengths, strict=True):
        inv.process_frame(frame, pitch_ratio=1.0, out=out[pos : pos + n])
        pos += int(n)
    return out


@pytest.mark.parametrize("method", ["harmonic", "griffinlim"])
def test_numpys_path_gives_the_same_audio(method):
    """The path a non-power-of-two FFT takes (numpy's irfft, then the rest of the stage), forced on a
    power-of-two contract, renders what the one-call path renders (the harmonic method's noise with random
    phases: the consistent phase needs the package's own forward FFT, and a contract without one keeps them)."""
    mel = note_mel(harmonic_note(seconds=0.5))
    kw = {"consistency": 0} if method == "harmonic" else {}
    fast = make_inverter(method, params=PARAMS, output_rate=48000, harmonic_f0=C4, **kw)
    slow = make_inverter(method, params=PARAMS, output_rate=48000, harmonic_f0=C4, **kw)
    slow._ola._ints[_OWN_FFT] = 0
    if method == "harmonic":
        slow._own_fft = False
    want = _render(fast, mel, 48000)
    np.testing.assert_allclose(_render(slow, mel, 48000), want, rtol=0, atol=1e-6)
    assert np.abs(want).max() > 0.05


def test_a_contract_of_another_fft_size_plays():
    params = dataclasses.replace(PARAMS, n_fft=960)
    mel = note_mel(harmonic_note(seconds=0.5), params=params)
    inv = make_inverter("harmonic", params=params, output_rate=48000, harmonic_f0=C4)
    assert not inv._ola.own_fft
    audio = _render(inv, mel, 48000)
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0.05
    assert inv.underflows == 0
