"""The region table's measure: which part of a note a rendering loses, from its log-mel against the original's."""

from __future__ import annotations

import numpy as np
import pytest

from synth.errors import ParameterError
from synth.metrics.regions import REGIONS, mean_region_errors, region_errors, top_band
from synth.spectrogram import SpectrogramParams, mel_band_frequencies

PARAMS = SpectrogramParams()
DB = PARAMS.db_max - PARAMS.db_min


def note() -> np.ndarray:
    """Every band loud (-20 dB) for 3 s, then -40 dB; bands above 6 kHz silent."""
    x = np.full((PARAMS.n_mels, PARAMS.frames), (-20.0 - PARAMS.db_min) / DB, dtype=np.float32)
    x[:, PARAMS.frame_of(3.0):] = (-40.0 - PARAMS.db_min) / DB
    x[mel_band_frequencies(params=PARAMS) > 6000] = 0.0
    return x


def test_a_faithful_rendering_loses_nothing():
    x = note()
    r = region_errors(x, x, params=PARAMS)
    assert all(r.bias[k] == 0 and r.abs[k] == 0 for k in REGIONS) and r.heard == 0 and r.top_band_ratio == 1.0


def test_each_fault_lands_in_its_own_region():
    x = note()
    again = x.copy()
    high = mel_band_frequencies(params=PARAMS) >= 2000
    again[high, PARAMS.frame_of(0.1) : PARAMS.frame_of(3.0)] -= 6.0 / DB  # dull upper partials
    again[:, : PARAMS.frame_of(0.1)] -= 3.0 / DB  # a soft attack
    r = region_errors(x, again, params=PARAMS)
    assert r.bias["sustain_high"] == pytest.approx(-6.0, abs=1e-3) and r.abs["sustain_high"] == pytest.approx(6.0, abs=1e-3)
    assert r.bias["attack"] == pytest.approx(-3.0, abs=1e-3)
    assert r.bias["sustain_low"] == 0 and r.bias["release"] == 0


def test_the_top_band_ratio_sees_a_lost_top():
    x = note()
    again = x.copy()
    again[mel_band_frequencies(params=PARAMS) > 4000] = 0.0
    r = region_errors(x, again, params=PARAMS)
    assert 0.6 < r.top_band_ratio < 0.7  # 4 kHz of 6 kHz
    assert top_band(np.zeros_like(x), params=PARAMS) == -1


def test_means_leave_out_regions_a_note_lacks_and_shapes_are_checked():
    x = note()
    quiet = np.zeros_like(x)
    quiet[:, :40] = x[:, :40]  # loud only in its first 40 frames: no release region
    rows = [region_errors(x, x, params=PARAMS), region_errors(quiet, quiet, params=PARAMS)]
    assert np.isnan(rows[1].bias["release"])
    mean = mean_region_errors(rows)
    assert mean["notes"] == 2 and mean["bias"]["release"] == 0.0
    with pytest.raises(ParameterError, match="expected two"):
        region_errors(x, x[:, :10], params=PARAMS)
    with pytest.raises(ParameterError, match="no notes"):
        mean_region_errors([])
