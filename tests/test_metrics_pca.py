"""The PCA baseline: exact on data of rank k, the sizes compared, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from synth.errors import DataError, ParameterError
from synth.metrics.pca import fit_pca, pca_component_counts


def rank_k_notes(n: int, k: int, *, shape=(16, 32), seed: int = 0) -> np.ndarray:
    """(n, *shape) notes that are a mean plus k fixed patterns with random weights, inside [0, 1]."""
    rng = np.random.default_rng(seed)
    patterns = rng.standard_normal((k, shape[0] * shape[1]))
    weights = rng.standard_normal((n, k))
    flat = 0.5 + 0.02 * weights @ patterns
    assert flat.min() > 0 and flat.max() < 1
    return flat.reshape(n, *shape).astype(np.float32)


def test_k_components_reconstruct_a_rank_k_set_exactly_and_fewer_do_not():
    train = rank_k_notes(40, 5)
    unseen = rank_k_notes(10, 5, seed=1)  # other patterns: outside the training span
    pca = fit_pca(train, components=5)
    assert pca.k == 5 and pca.notes == 40
    np.testing.assert_allclose(pca.reconstruct(train), train, atol=1e-5)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(5), atol=1e-5)
    # Four directions cannot hold five independent patterns.
    assert np.abs(pca.truncate(4).reconstruct(train) - train).max() > 1e-2
    # None at all is the mean training note, whatever the input: the floor every model is read beside.
    np.testing.assert_allclose(pca.truncate(0).reconstruct(unseen), np.broadcast_to(train.mean(axis=0), unseen.shape),
                               atol=1e-6)
    # Notes outside the training span are not reproduced: the baseline is a projection, not a copy.
    assert np.abs(pca.reconstruct(unseen) - unseen).max() > 1e-2


def test_a_note_in_the_span_but_not_in_the_training_set_is_reconstructed_exactly():
    notes = rank_k_notes(41, 3)
    pca = fit_pca(notes[:40], components=3)
    np.testing.assert_allclose(pca.reconstruct(notes[40:]), notes[40:], atol=1e-5)


def test_reconstructions_stay_on_the_unit_scale():
    rng = np.random.default_rng(0)
    train = rng.random((20, 8, 8)).astype(np.float32)
    out = fit_pca(train, components=3).reconstruct(rng.random((5, 8, 8)).astype(np.float32) * 3 - 1)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_component_counts_compared():
    assert pca_component_counts(latent_size=2048, training_notes=1020) == (1020, 128)
    assert pca_component_counts(latent_size=64, training_notes=1020) == (64,)
    assert pca_component_counts(latent_size=2048, training_notes=100) == (100,)


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="at least 2 notes.*got 1"):
        fit_pca(np.zeros((1, 4, 4), np.float32), components=1, name="the one note")
    with pytest.raises(DataError, match="at least 2 notes.*got 0"):
        fit_pca(np.zeros((0, 4, 4), np.float32), components=1)
    with pytest.raises(ParameterError, match="components must be an int in 1..3"):
        fit_pca(np.zeros((3, 4, 4), np.float32), components=4)
    bad = np.zeros((3, 4, 4), np.float32)
    bad[1, 2, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fit_pca(bad, components=2)
    with pytest.raises(ParameterError, match="expected notes of shape"):
        fit_pca(rank_k_notes(4, 2), components=2).reconstruct(np.zeros((2, 4, 4), np.float32))
