"""Spectral convergence."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from inversion_fixtures import PARAMS, harmonic_note

from synth.errors import ParameterError
from synth.inversion import spectral_convergence


def test_identical_and_shifted_copies():
    y = harmonic_note(seconds=0.5)
    assert spectral_convergence(y, y, params=PARAMS) < -100
    shifted = np.concatenate([np.zeros(40, dtype=np.float32), y])  # 40 samples late
    assert spectral_convergence(y, shifted, params=PARAMS) < -40
    assert spectral_convergence(y, shifted, params=PARAMS, max_lag=0) > -30


def test_other_rates_are_resampled():
    y = harmonic_note(seconds=0.5)
    up = soxr.resample(y, 16000, 48000)
    assert spectral_convergence(y, up, params=PARAMS, audio_rate=48000) < -30


def test_noise_scores_badly():
    y = harmonic_note(seconds=0.5)
    noise = np.random.default_rng(0).standard_normal(y.size).astype(np.float32) * 0.1
    assert spectral_convergence(y, noise, params=PARAMS) > -3


def test_bad_input():
    with pytest.raises(ParameterError, match="silent"):
        spectral_convergence(np.zeros(4000), np.ones(4000), params=PARAMS)
    with pytest.raises(ParameterError, match="1-D"):
        spectral_convergence(np.zeros((2, 4000)), np.ones(4000), params=PARAMS)
