"""The patch layout (training/model/patch.py): its PCA start, its columns, its config checks, and a run of it."""

from __future__ import annotations

import numpy as np
import pytest
from training_fixtures import SMALL_PARAMS, small_config, synthetic_notes, write_features

from synth.errors import DataError, ParameterError

keras = pytest.importorskip("keras")
from training.model.families import build_models, latent_shape  # noqa: E402
from training.model.patch import initialise_from_pca, note_patches  # noqa: E402

P = 16  # small_config("patch"): 4 columns of 16 frames, 8 latent values each


def _notes_of_rank(k: int, n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` notes whose every patch is ``mean + coefficients @ basis`` with a rank-``k`` basis, inside
    (0, 1) so that the output's clip never acts; and (mean, basis)."""
    rng = np.random.default_rng(seed)
    dims = P * SMALL_PARAMS.n_mels
    basis = np.linalg.qr(rng.standard_normal((dims, k)))[0].T  # (k, dims), orthonormal rows
    mean = rng.uniform(0.4, 0.6, dims)
    columns = SMALL_PARAMS.frames // P
    coefficients = rng.uniform(-1.0, 1.0, (n * columns, k))
    patches = mean + coefficients @ basis
    notes = patches.reshape(n, SMALL_PARAMS.frames, SMALL_PARAMS.n_mels).transpose(0, 2, 1)
    assert 0.0 < notes.min() and notes.max() < 1.0
    return notes.astype(np.float32), mean, basis


def test_note_patches_are_the_frames_of_each_latent_column():
    x = synthetic_notes(2)
    patches = note_patches(x, patch_frames=P)
    assert patches.shape == (2 * 4, P * SMALL_PARAMS.n_mels)
    # Row 1 * 4 + 2 is note 1's column 2: its frames 32..47, frame-major (all mel rows of frame 32 first).
    np.testing.assert_array_equal(patches[6].reshape(P, SMALL_PARAMS.n_mels), x[1, :, 32:48].T)
    with pytest.raises(ParameterError, match="multiple of 24"):
        note_patches(x, patch_frames=24)


def test_the_pca_start_reconstructs_notes_of_its_rank_exactly():
    """Notes whose patches span an 8-dimensional subspace: the PCA start finds it, so notes it never saw from
    the same subspace come back exactly, and a note off it comes back as its projection."""
    config = small_config("patch")
    train, mean, basis = _notes_of_rank(8, 12, seed=0)
    rng = np.random.default_rng(5)
    columns = SMALL_PARAMS.frames // P
    unseen = (mean + rng.uniform(-1.0, 1.0, (3 * columns, 8)) @ basis).reshape(
        3, SMALL_PARAMS.frames, SMALL_PARAMS.n_mels).transpose(0, 2, 1).astype(np.float32)
    autoencoder, encoder, decoder = build_models(config, params=SMALL_PARAMS)
    info = initialise_from_pca(encoder, decoder, train, config=config)
    assert info["patches"] == 12 * columns and info["explained_variance"] == pytest.approx(1.0, abs=1e-6)
    for x in (train, unseen):
        np.testing.assert_allclose(np.asarray(autoencoder(x)), x, atol=2e-5)
    assert tuple(encoder.output.shape[1:]) == latent_shape(config, params=SMALL_PARAMS) == (1, 4, 8)
    off = np.clip(unseen + 0.05 * rng.standard_normal(unseen.shape), 0.0, 1.0).astype(np.float32)
    flat = note_patches(off, patch_frames=P) - mean
    projected = mean + (flat @ basis.T) @ basis
    expected = np.clip(projected.reshape(3, SMALL_PARAMS.frames, SMALL_PARAMS.n_mels).transpose(0, 2, 1), 0, 1)
    np.testing.assert_allclose(np.asarray(autoencoder(off)), expected, atol=2e-5)
    assert float(np.abs(expected - off).max()) > 0.05  # the projection is not the identity


def test_a_column_decodes_its_own_frames_and_nothing_else():
    config = small_config("patch")
    _, _, decoder = build_models(config, params=SMALL_PARAMS)
    rng = np.random.default_rng(0)
    for layer in decoder.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0.3, 0.2, w.shape).astype(np.float32) for w in layer.get_weights()])
    z = rng.normal(0, 1, (1, 1, 4, 8)).astype(np.float32)
    base = np.asarray(decoder(z))
    for column in range(4):
        moved = z.copy()
        moved[0, 0, column] += 1.0
        changed = np.flatnonzero(np.any(np.asarray(decoder(moved)) != base, axis=(0, 1)))
        assert changed.size and changed.min() >= column * P and changed.max() < (column + 1) * P
    _, _, window = build_models(config, params=SMALL_PARAMS, decoder_columns=2)
    window.set_weights(decoder.get_weights())
    np.testing.assert_allclose(np.asarray(window(z[:, :, 1:3])), base[:, :, P : 3 * P], atol=1e-6)


@pytest.mark.parametrize("changes, named", [
    ({"residual_blocks": 2}, "residual_blocks=2"),
    ({"filters": (4, 8)}, "filters=[4, 8]"),
    ({"dense": 64}, "dense=64"),
    ({"output_activation": "sigmoid"}, "output_activation='sigmoid'"),
])
def test_the_patch_layout_refuses_what_it_does_not_take(changes, named):
    # A field of another family is refused by name; a field of its own with a value it cannot build, by value.
    with pytest.raises(ParameterError, match=r"patch (layout does not take .*|architecture: )" + named.replace("[", r"\[")):
        small_config("patch", **changes)
    with pytest.raises(ParameterError, match="patch_frames must be a positive int"):
        small_config("patch", patch_frames=0)


def test_too_few_patches_for_the_latent_is_a_clear_error():
    config = small_config("patch", filters=(32,))
    _, encoder, decoder = build_models(config, params=SMALL_PARAMS)
    before = [w.copy() for w in decoder.get_weights()]
    with pytest.raises(DataError, match=r"8 patches of 1024 values cannot give 32 principal directions"):
        initialise_from_pca(encoder, decoder, synthetic_notes(2), config=config)
    assert all(np.array_equal(a, b) for a, b in zip(before, decoder.get_weights(), strict=True))


def test_a_new_run_starts_from_the_pca_of_its_training_notes(tmp_path):
    """fit() sets a patch run's first weights to the PCA of its training rows: with a learning rate too
    small to move them, the run's best weights are that PCA, and its validation loss is the PCA's."""
    from training.fit import FitOptions, fit
    from training.run import load_run

    train, mean, basis = _notes_of_rank(8, 20, seed=1)
    features = write_features(tmp_path / "features", train)
    config = small_config("patch", max_epochs=1, learning_rate=1e-12)
    run = load_run(fit(features=features, config=config, out=tmp_path / "run",
                       options=FitOptions(verbose=0, run_eagerly=True)))
    autoencoder, _, _ = run.models()
    np.testing.assert_allclose(np.asarray(autoencoder(train)), train, atol=2e-5)
    assert run.status["best_val_loss"] < 1e-9


def test_a_run_with_too_few_patches_stops_before_writing_anything(tmp_path):
    from training.fit import FitOptions, fit

    features = write_features(tmp_path / "features", synthetic_notes(5))  # 3 training notes: 12 patches
    with pytest.raises(DataError, match="12 patches of 1024 values cannot give 32 principal directions"):
        fit(features=features, config=small_config("patch", filters=(32,), max_epochs=1), out=tmp_path / "run",
            options=FitOptions(verbose=0, run_eagerly=True))
    assert not (tmp_path / "run").exists()


class _CountingNotes:
    """Notes read by slices like an array, remembering the most notes one read asked for."""

    def __init__(self, x: np.ndarray) -> None:
        self.x, self.shape, self.largest = x, x.shape, 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, part: slice) -> np.ndarray:
        self.largest = max(self.largest, len(range(*part.indices(len(self.x)))))
        return self.x[part]


@pytest.mark.parametrize("notes", [30, 1100])  # 120 patches: the exact Gram path; 4400: the range finder
def test_the_pca_start_streams_its_notes_and_is_as_good_as_the_in_memory_svd(notes):
    """The start reads a batch of notes at a time, never the split, and its directions hold as much of the
    patches' variance as scikit-learn's randomized SVD of all of them in memory (the start before it streamed)."""
    from sklearn.utils.extmath import randomized_svd

    from training.model.patch import patch_pca

    rng = np.random.default_rng(3)
    x = np.clip(synthetic_notes(notes, seed=3) + 0.05 * rng.standard_normal((notes, 64, 64)), 0, 1).astype(np.float32)
    reader = _CountingNotes(x)
    mean, vt, explained = patch_pca(reader, patch_frames=P, k=8, what="'t'", batch_notes=7)
    assert reader.largest <= 7
    patches = note_patches(x, patch_frames=P).astype(np.float64)
    np.testing.assert_allclose(mean, patches.mean(axis=0), atol=1e-5)
    centred = patches - patches.mean(axis=0)
    _, singular, ref = randomized_svd(centred, 8, n_iter=6, random_state=0)
    np.testing.assert_allclose(vt @ vt.T, np.eye(8), atol=1e-4)

    def held(v: np.ndarray) -> float:
        return float(np.sum((centred @ v.T) ** 2))

    assert held(vt) >= held(ref) * (1 - 1e-4)
    assert explained == pytest.approx(held(ref) / float(np.sum(centred**2)), rel=1e-3)
