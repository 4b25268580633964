"""Run-long timing histograms: percentiles within half a bin of numpy's, windows, overflow, empty runs."""

import numpy as np
import pytest

from synth.host.histogram import Histogram


def test_percentiles_are_within_half_a_bin_of_the_exact_order_statistics():
    values = np.random.default_rng(0).gamma(2.0, 15.0, 20000)
    h = Histogram(resolution=0.1, limit=2000.0)
    for v in values:
        h.add(float(v))
    assert h.count == h.total() == values.size
    for q in (1, 50, 90, 99, 99.9):
        exact = float(np.percentile(values, q, method="inverted_cdf"))
        assert abs(h.percentile(q) - exact) <= 0.05 + 1e-9, q
    assert abs(h.maximum() - values.max()) <= 0.05 + 1e-9


def test_a_window_since_a_snapshot_counts_only_what_came_after():
    h = Histogram(resolution=1.0, limit=100.0)
    for v in (5.0, 6.0, 7.0):
        h.add(v)
    before = h.counts()
    for v in (50.2, 60.7):
        h.add(v)
    assert h.total(since=before) == 2
    assert h.percentile(50, since=before) == 50.5 and h.maximum(since=before) == 60.5
    assert h.percentile(50) == 7.5  # the whole run: 5, 6, 7, 50, 60


def test_values_beyond_the_limit_read_as_the_limit_and_negatives_as_zero():
    h = Histogram(resolution=0.5, limit=10.0)
    h.add(1e6)
    h.add(-3.0)
    assert h.maximum() == 10.0 and h.percentile(100) == 10.0
    assert h.percentile(1) == 0.25


def test_an_empty_histogram_reads_zero():
    h = Histogram()
    assert (h.percentile(99), h.maximum(), h.total(), h.count) == (0.0, 0.0, 0, 0)


def test_bad_bins_are_refused():
    with pytest.raises(ValueError, match="resolution"):
        Histogram(resolution=0.0)
    with pytest.raises(ValueError, match="resolution"):
        Histogram(resolution=5.0, limit=1.0)
