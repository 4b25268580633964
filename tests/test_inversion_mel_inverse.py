"""Mel -> linear magnitude by the pseudo-inverse."""

from __future__ import annotations

import numpy as np
import pytest
from inversion_fixtures import PARAMS, note_mel

from synth.errors import ParameterError
from synth.inversion.mel_inverse import mel_pseudo_inverse, mel_to_magnitude, unit_to_mel_power
from synth.spectrogram import mel_basis, unit_to_power


def test_pseudo_inverse_shape_and_read_only():
    pinv = mel_pseudo_inverse(params=PARAMS)
    assert pinv.shape == (513, 128) and pinv.dtype == np.float32
    assert not pinv.flags.writeable
    # A pseudo-inverse: basis @ pinv @ basis == basis.
    basis = mel_basis(params=PARAMS).astype(np.float64)
    np.testing.assert_allclose(basis @ pinv.astype(np.float64) @ basis, basis, atol=1e-4)


def test_unit_to_mel_power_matches_the_contract():
    x = np.linspace(0, 1, 128, dtype=np.float32)
    np.testing.assert_allclose(
        unit_to_mel_power(x, params=PARAMS), unit_to_power(x, params=PARAMS), rtol=1e-4
    )


@pytest.mark.parametrize("freq", [220.0, 1000.0, 4000.0])
def test_a_tone_comes_back_at_its_bin(freq):
    t = np.arange(8000) / 16000
    mel = note_mel((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    mag = mel_to_magnitude(mel, params=PARAMS)
    assert mag.shape == (513, mel.shape[1]) and np.all(mag >= 0)
    peak_bin = int(np.argmax(mag[:, 30]))
    assert abs(peak_bin - freq * 1024 / 16000) <= 2.5


def test_frame_and_batch_agree_and_out_is_reused():
    mel = note_mel(np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1)
    whole = mel_to_magnitude(mel, params=PARAMS)
    out = np.empty(513, dtype=np.float32)
    result = mel_to_magnitude(mel[:, 7], params=PARAMS, out=out)
    assert result is out
    np.testing.assert_allclose(out, whole[:, 7], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("shape", [(127,), (128, 2, 2), (64, 10)])
def test_bad_shape(shape):
    with pytest.raises(ParameterError, match="mel_to_magnitude"):
        mel_to_magnitude(np.zeros(shape, dtype=np.float32), params=PARAMS)
