"""The paper's metrics on hand-made spectrograms whose peaks, matches and scores are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from synth.errors import ParameterError
from synth.metrics import (
    SUMMARY_KEYS,
    frame_peaks,
    harmonic_counts,
    harmonic_scores,
    match_frame,
    peak_frequencies,
    rmse,
    ssim,
    summary,
)
from synth.spectrogram import SpectrogramParams, mel_band_frequencies

P = SpectrogramParams()
FREQS = mel_band_frequencies(params=P)


def unit(db: np.ndarray) -> np.ndarray:
    """dB -> the contract's unit scale."""
    return ((np.asarray(db, dtype=np.float64) - P.db_min) / (P.db_max - P.db_min)).astype(np.float32)


def frame(peaks: dict[int, float]) -> np.ndarray:
    """One frame in dB at the floor, with a peak at each band (value in dB) and shoulders 10 dB lower."""
    db = np.full(P.n_mels, P.db_min)
    for band, level in peaks.items():
        db[band - 1] = max(db[band - 1], level - 10)
        db[band + 1] = max(db[band + 1], level - 10)
    for band, level in peaks.items():
        db[band] = level
    return db


def note(*frames_db: np.ndarray, frames: int = 16) -> np.ndarray:
    """A (n_mels, frames) unit-scale note: the given frames first, then silence."""
    out = np.zeros((P.n_mels, frames), dtype=np.float32)
    for i, db in enumerate(frames_db):
        out[:, i] = unit(db)
    return out


def test_two_of_three_matched_plus_one_spurious():
    orig = note(frame({30: 0, 60: 0, 90: 0}))
    rec = note(frame({30: -3, 60: 2, 110: -5}))
    counts = harmonic_counts(orig, rec, params=P)
    assert (counts.original_peaks[0], counts.reconstructed_peaks[0], counts.matched[0]) == (3, 3, 2)
    scores = harmonic_scores(orig, rec, params=P)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["notes"] == 1


def test_counts_are_summed_over_frames_before_dividing():
    orig = note(frame({30: 0, 60: 0}), frame({30: 0, 60: 0, 90: 0, 110: 0}))
    rec = note(frame({30: 0, 60: 0}), frame({30: 0}))
    scores = harmonic_scores(orig, rec, params=P)
    assert scores["recall"] == pytest.approx(3 / 6)  # not the mean of per-frame recalls (0.625)
    assert scores["precision"] == pytest.approx(1.0)
    assert scores["f1"] == pytest.approx(2 * 0.5 / 1.5)


@pytest.mark.parametrize("offset, matches", [(0, True), (1, True), (2, False), (-1, True), (-2, False)])
def test_three_percent_tolerance_at_high_frequency(offset, matches):
    band = 110  # above 1 kHz neighbouring Slaney bands are 2.44 % apart, two bands 4.9 %
    ratio = abs(FREQS[band + offset] - FREQS[band]) / FREQS[band]
    assert (ratio <= 0.03) == matches
    assert offset in (0,) or 0.02 < ratio < 0.03 or 0.045 < ratio < 0.05
    m = match_frame(unit(frame({band: 0})), unit(frame({band + offset: 0})), params=P)
    assert (m.pairs == [(band, band + offset)]) == matches


def test_neighbouring_band_at_low_frequency_is_more_than_three_percent():
    band = 20  # below 1 kHz bands are 23.4 Hz apart: at 491 Hz that is 4.8 %
    assert abs(FREQS[band + 1] - FREQS[band]) / FREQS[band] > 0.03
    assert match_frame(unit(frame({band: 0})), unit(frame({band + 1: 0})), params=P).pairs == []


def test_tolerance_is_relative_to_the_original():
    band = 110
    up = (FREQS[band + 1] - FREQS[band]) / FREQS[band]
    m = match_frame(unit(frame({band: 0})), unit(frame({band + 1: 0})), params=P, tolerance=up * 0.999)
    assert m.pairs == []
    m = match_frame(unit(frame({band: 0})), unit(frame({band + 1: 0})), params=P, tolerance=up * 1.001)
    assert m.pairs == [(band, band + 1)]


def test_matching_is_one_to_one_and_maximum():
    # Original peaks at 110 and 112, reconstructed at 109 and 111: 109-110 and 111-112 is the maximum;
    # a nearest-first greedy that paired 110 with 111 would leave only one match.
    o = unit(frame({110: 0, 112: 0}))
    r = unit(frame({109: 0, 111: 0}))
    assert match_frame(o, r, params=P).pairs == [(110, 109), (112, 111)]
    # One reconstructed peak between two original ones matches only one of them.
    r = unit(frame({111: 0}))
    assert len(match_frame(o, r, params=P).pairs) == 1


def test_greedy_count_equals_hungarian_maximum_on_random_frames():
    rng = np.random.default_rng(7)
    for _ in range(200):
        o = unit(np.clip(rng.normal(-40, 25, P.n_mels), P.db_min, P.db_max))
        r = unit(np.clip(rng.normal(-40, 25, P.n_mels), P.db_min, P.db_max))
        m = match_frame(o, r, params=P)
        if not len(m.original_bands) or not len(m.reconstructed_bands):
            continue
        fo, fr = m.original_hz[:, None], m.reconstructed_hz[None, :]
        allowed = np.abs(fr - fo) <= 0.03 * fo
        rows, cols = linear_sum_assignment(np.where(allowed, 0.0, 1.0))
        assert len(m.pairs) == int(allowed[rows, cols].sum())
        for b_o, b_r in m.pairs:
            assert abs(FREQS[b_r] - FREQS[b_o]) <= 0.03 * FREQS[b_o]
        assert len({b for _, b in m.pairs}) == len(m.pairs)


def test_peaks_more_than_30_db_below_the_highest_are_ignored():
    orig = note(frame({30: 0, 60: -29, 90: -31}))
    peaks = frame_peaks(orig, params=P)
    assert list(np.flatnonzero(peaks[:, 0])) == [30, 60]
    # Missing the ignored peak costs nothing; a reconstructed peak that quiet is not counted either.
    rec = note(frame({30: 0, 60: -29, 110: -35}))
    scores = harmonic_scores(orig, rec, params=P)
    assert scores["precision"] == pytest.approx(1.0) and scores["recall"] == pytest.approx(1.0)
    # The threshold follows each frame's own highest peak.
    assert list(np.flatnonzero(frame_peaks(unit(frame({60: -50, 90: -75}))[:, None], params=P))) == [60, 90]
    assert list(np.flatnonzero(frame_peaks(unit(frame({60: -50, 90: -85}))[:, None], params=P))) == [60]


def test_silent_frames_are_skipped():
    silent = np.full(P.n_mels, P.db_min)
    orig = note(frame({30: 0, 60: 0}), silent, silent)
    rec = note(frame({30: 0, 60: 0}), frame({40: 0, 70: 0}), frame({50: 0}))
    counts = harmonic_counts(orig, rec, params=P)
    assert counts.frames[0] == 1
    assert (counts.original_peaks[0], counts.reconstructed_peaks[0], counts.matched[0]) == (2, 2, 2)
    assert match_frame(orig[:, 1], rec[:, 1], params=P).silent


def test_a_frame_just_above_the_floor_is_not_silent():
    db = np.full(P.n_mels, P.db_min)
    db[50] = P.db_min + 1
    orig = note(db)
    counts = harmonic_counts(orig, orig, params=P)
    assert counts.frames[0] == 1 and counts.original_peaks[0] == 1


def test_no_reconstructed_peak_scores_zero_like_the_papers_activity_rows():
    orig = note(frame({30: 0, 60: 0}))
    rec = np.full_like(orig, 0.3)  # flat: no local maximum anywhere
    scores = harmonic_scores(orig, rec, params=P)
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "notes": 1}


def test_notes_without_original_peaks_are_left_out_of_the_means():
    good = note(frame({30: 0, 60: 0}))
    silent = np.zeros_like(good)
    both = np.stack([good, silent])
    scores = harmonic_scores(both, both, params=P)
    assert scores["notes"] == 1 and scores["f1"] == pytest.approx(1.0)
    assert np.isnan(harmonic_scores(silent, silent, params=P)["f1"])


def test_the_mean_is_over_notes():
    a = note(frame({30: 0, 60: 0}))
    b = note(frame({30: 0, 60: 0, 90: 0, 110: 0}))
    rec_b = note(frame({30: 0}))
    scores = harmonic_scores(np.stack([a, b]), np.stack([a, rec_b]), params=P)
    assert scores["recall"] == pytest.approx((1.0 + 0.25) / 2)
    assert scores["f1"] == pytest.approx((1.0 + 0.4) / 2)


def test_plateaus_and_edges():
    db = np.full(P.n_mels, P.db_min)
    db[40:43] = 0.0  # flat top: one peak, at its lowest band
    db[70:72] = -5.0
    db[72] = 0.0  # flat shoulder that rises again: the peak is at 72 only
    db[0] = 10.0  # edges are never peaks
    db[-1] = 10.0
    assert list(np.flatnonzero(frame_peaks(unit(db)[:, None], params=P))) == [40, 72]


def test_batch_and_single_note_agree():
    rng = np.random.default_rng(1)
    x = rng.random((3, P.n_mels, 40)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
    counts = harmonic_counts(x, y, params=P)
    for i in range(3):
        one = harmonic_counts(x[i], y[i], params=P)
        assert one.matched[0] == counts.matched[i]
        assert one.original_peaks[0] == counts.original_peaks[i]
    assert frame_peaks(x, params=P)[1].tolist() == frame_peaks(x[1], params=P).tolist()


def test_refined_frequencies_find_a_partial_between_band_centres():
    from synth.spectrogram import log_mel

    t = np.arange(P.n_samples) / P.sample_rate
    f0 = 0.5 * (FREQS[20] + FREQS[21]) + 4.0  # between two centres, nearer band 21
    x = log_mel(0.5 * np.sin(2 * np.pi * f0 * t), params=P)
    peaks = frame_peaks(x, params=P)
    frame_idx = P.frames // 2
    band = int(np.flatnonzero(peaks[:, frame_idx])[0])
    assert band == 21
    centre = peak_frequencies(x, params=P)[band, frame_idx]
    refined = peak_frequencies(x, params=P, refine=True)[band, frame_idx]
    assert centre == pytest.approx(FREQS[21])
    assert abs(refined - f0) < abs(centre - f0) / 2


def test_rmse_and_ssim_of_identical_and_different_notes():
    rng = np.random.default_rng(2)
    x = rng.random((2, P.n_mels, 32)).astype(np.float32)
    assert rmse(x, x) == 0.0
    assert ssim(x, x) == pytest.approx(1.0)
    y = np.clip(x + 0.1, 0, 1)
    assert 0 < rmse(x, y) <= 0.1 + 1e-6
    assert ssim(x, y) < 1.0
    # RMSE is per note, then averaged: one note exact, one off by 0.2 everywhere.
    z = x.copy()
    z[1] = np.where(x[1] > 0.5, x[1] - 0.2, x[1] + 0.2)
    assert rmse(x, z) == pytest.approx(0.1, abs=1e-6)


def test_ssim_is_scikit_images_with_data_range_one():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    x = rng.random((P.n_mels, 32))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    assert ssim(x, y) == pytest.approx(structural_similarity(x, y, data_range=1.0))


def test_summary_keys_and_identity():
    x = note(frame({30: 0, 60: -10, 90: -20}), frame({31: 0, 61: -5}), frames=32)
    s = summary(np.stack([x, x]), np.stack([x, x]), params=P)
    assert tuple(s) == SUMMARY_KEYS
    assert s["rmse"] == 0.0 and s["ssim"] == pytest.approx(1.0)
    assert s["precision"] == s["recall"] == s["f1"] == 1.0
    assert s["notes"] == 2 and isinstance(s["notes"], int)


@pytest.mark.parametrize(
    "a, b, message",
    [
        (np.zeros((P.n_mels, 8)), np.zeros((P.n_mels, 9)), "differ in shape"),
        (np.zeros(8), np.zeros(8), "expected shape"),
        (np.full((P.n_mels, 8), np.nan), np.zeros((P.n_mels, 8)), "NaN"),
        (np.zeros((P.n_mels, 8)), np.full((P.n_mels, 8), 1.5), "unit scale"),
        (np.zeros((0, P.n_mels, 8)), np.zeros((0, P.n_mels, 8)), "no spectrogram"),
    ],
)
def test_bad_input_is_a_clear_error(a, b, message):
    with pytest.raises(ParameterError, match=message):
        summary(a, b, params=P)


def test_wrong_number_of_bands_and_bad_options():
    x = np.zeros((64, 8))
    with pytest.raises(ParameterError, match="64 mel bands"):
        harmonic_counts(x, x, params=P)
    y = np.zeros((P.n_mels, 8))
    with pytest.raises(ParameterError, match="tolerance"):
        harmonic_counts(y, y, params=P, tolerance=-0.1)
    with pytest.raises(ParameterError, match="threshold_db"):
        harmonic_counts(y, y, params=P, threshold_db=0)


def test_accumulated_batches_equal_one_summary():
    from synth.metrics import MetricsAccumulator

    rng = np.random.default_rng(4)
    x = rng.random((5, P.n_mels, 24)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
    acc = MetricsAccumulator(params=P)
    acc.add(x[:2], y[:2])
    acc.add(x[2:], y[2:])
    whole = summary(x, y, params=P)
    assert acc.result() == pytest.approx(whole)
    acc.reset()
    with pytest.raises(ParameterError):
        acc.result()
