"""The PCA baseline: exact on data of rank k, the sizes compared, and its errors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from synth.errors import DataError, ParameterError
from synth.metrics.pca import fit_pca, fit_pca_streamed, pca_component_counts


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


def in_memory_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, first k directions) by the thin SVD of all the centred notes at once: the fit before streaming."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    return mean, np.linalg.svd(flat - mean, full_matrices=False)[2][:k]


def noisy_notes(n: int, *, rank: int = 6, shape=(8, 16), seed: int = 0) -> np.ndarray:
    """Notes of ``rank`` patterns of falling weight plus a little noise: every direction has some variance."""
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(99).standard_normal((rank, shape[0] * shape[1]))
    weights = rng.standard_normal((n, rank)) * np.geomspace(1.0, 0.1, rank)
    flat = 0.5 + 0.02 * weights @ patterns + 0.0005 * rng.standard_normal((n, shape[0] * shape[1]))
    return flat.reshape(n, *shape).astype(np.float32)


@pytest.mark.parametrize("gram_notes", [4096, 0], ids=["gram", "range_finder"])
@pytest.mark.parametrize("batch_notes", [7, 128])
def test_the_streamed_fit_equals_the_in_memory_svd(gram_notes, batch_notes):
    train, unseen = noisy_notes(60), noisy_notes(20, seed=1)
    for k in (4, 6):
        pca = fit_pca(train, components=k, batch_notes=batch_notes, gram_notes=gram_notes)
        mean, vt = in_memory_pca(train, k)
        np.testing.assert_allclose(pca.mean, mean, atol=1e-6)
        np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(k), atol=1e-5)
        # The same subspace (directions agree up to sign, so compare the projectors) and the same notes out.
        np.testing.assert_allclose(pca.components.T @ pca.components, vt.T @ vt, atol=1e-4)
        centred = unseen.reshape(len(unseen), -1) - mean
        want = np.clip(mean + centred @ vt.T @ vt, 0, 1).reshape(unseen.shape)
        np.testing.assert_allclose(pca.reconstruct(unseen), want, atol=1e-5)


def test_all_n_directions_of_n_notes_are_orthonormal_and_reconstruct_them():
    # n centred notes span n - 1 directions: the n-th is completed, not 0 / 0.
    train = noisy_notes(12)
    pca = fit_pca(train, components=12, batch_notes=5)
    assert np.all(np.isfinite(pca.components))
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(12), atol=1e-5)
    np.testing.assert_allclose(pca.reconstruct(train), train, atol=1e-5)


def test_a_streamed_fit_checks_what_it_reads():
    with pytest.raises(DataError, match=r"notes 0\.\.1 came as shape"):
        fit_pca_streamed(lambda part: np.zeros((2, 4, 5), np.float32), 2, shape=(4, 4), components=1)
    with pytest.raises(ParameterError, match="batch_notes must be a positive int"):
        fit_pca(rank_k_notes(4, 2), components=2, batch_notes=0)


def generated_notes(part: slice, *, shape=(8, 16)) -> np.ndarray:
    """Notes ``part`` of an endless deterministic set (each from its own index), so the set itself is never held."""
    patterns = np.random.default_rng(5).standard_normal((6, shape[0] * shape[1]))
    weights = np.stack([np.random.default_rng(i).standard_normal(6) for i in range(part.start, part.stop)])
    return (0.5 + 0.01 * weights @ patterns).reshape(-1, *shape).astype(np.float32)


def peak_bytes(n: int, *, gram_notes: int) -> int:
    tracemalloc.start()
    try:
        fit_pca_streamed(generated_notes, n, shape=(8, 16), components=4, batch_notes=32, gram_notes=gram_notes)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_fit_s_memory_does_not_grow_with_the_notes():
    # The range finder holds batches and (k + 16, D) bases, nothing of size n: 8 times the notes, same peak.
    small, large = peak_bytes(256, gram_notes=0), peak_bytes(2048, gram_notes=0)
    assert large <= small * 1.1, (small, large)
    # The Gram path holds the n x n Gram matrix and its eigenvectors besides: bounded by gram_notes.
    gram = peak_bytes(512, gram_notes=512)
    assert gram <= small + 4 * 512 * 512 * 8, (small, gram)
    assert gram >= 512 * 512 * 8  # it did take the Gram path
