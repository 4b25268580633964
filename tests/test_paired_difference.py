"""The paired comparison of two models on the same notes, resampled by instrument (synth.metrics.paired)."""

from __future__ import annotations

import numpy as np
import pytest

from synth.errors import ParameterError
from synth.metrics.paired import paired_difference


def test_a_constant_difference_is_its_own_mean_and_interval():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.6, 0.9, 60)  # instruments differ a lot; the models differ by exactly 0.01 on each note
    d = paired_difference(b - 0.01, b, groups=np.repeat(np.arange(12), 5))
    assert d.mean == pytest.approx(-0.01) and d.low == pytest.approx(-0.01) and d.high == pytest.approx(-0.01)
    assert (d.groups, d.notes) == (12, 60)


def test_the_interval_comes_from_whole_instruments_and_weights_each_instrument_once():
    # One instrument of 10 notes is 0.1 worse, four of one note each are equal: per instrument the mean
    # difference is -0.02 (not -0.071 per note), and resampling instruments spans 0 .. -0.1.
    groups = np.array(["a"] * 10 + ["b", "c", "d", "e"])
    b = np.full(14, 0.8)
    a = b - np.where(groups == "a", 0.1, 0.0)
    d = paired_difference(a, b, groups=groups, draws=4000)
    assert d.mean == pytest.approx(-0.02)
    assert d.high == pytest.approx(0.0) and d.low <= -0.05


def test_nan_notes_are_left_out_of_both():
    d = paired_difference(np.array([0.5, np.nan, 0.7, 0.9]), np.array([0.4, 0.2, 0.6, 0.8]),
                          groups=np.array([0, 0, 1, 1]))
    assert d.mean == pytest.approx(0.1) and d.notes == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"a": np.zeros(3), "b": np.zeros(4), "groups": np.zeros(3)}, "one length"),
    ({"a": np.zeros(3), "b": np.zeros(3), "groups": np.zeros(3)}, "at least 2 groups"),
    ({"a": np.zeros(2), "b": np.zeros(2), "groups": np.arange(2), "confidence": 1.0}, "confidence"),
    ({"a": np.zeros(2), "b": np.zeros(2), "groups": np.arange(2), "draws": 0}, "draws"),
])
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        paired_difference(**kwargs)
