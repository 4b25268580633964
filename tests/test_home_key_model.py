"""The home-key family (training/model/home_key.py): the home key's patch code, a low-rank map per key."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_keyboard_model import KEYS, _write_keyboard_features
from training_fixtures import SMALL_PARAMS, small_config

from synth.errors import DataError, ParameterError

keras = pytest.importorskip("keras")
from training.fit import FitOptions, fit  # noqa: E402
from training.model.home_key import KeyMaps, fit_key_maps  # noqa: E402
from training.model.patch import note_patches  # noqa: E402
from training.run import load_run  # noqa: E402


def test_a_key_map_recovers_a_linear_relation_between_keys_of_the_rank_asked_for():
    """Notes at a key that are a rank-3 linear function of the home latent (plus a mean) are predicted
    exactly by a map of rank 3, and the encoder at that key gives the home latent back."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 8)).astype(np.float32)
    low = np.linalg.qr(rng.standard_normal((8, 3)))[0]
    out = np.linalg.qr(rng.standard_normal((32, 3)))[0].T
    patches = (0.5 + (z @ low) @ out).astype(np.float32)
    maps = KeyMaps(keys=(48, 60), home=60, latent=8, width=32, rank=3)
    fit_key_maps(maps, 0, z=z, patches=patches, rank=3)
    predicted = maps.mean[0] + (z @ maps.a[0]) @ maps.b[0]
    np.testing.assert_allclose(predicted, patches, atol=1e-2)  # the ridge shrinks a little
    assert maps.gate.tolist() == [0.0, 1.0]
    encoded = maps.offset[0] + ((patches - maps.centre[0]) @ maps.q[0]) @ maps.r[0]
    # Only the 3 directions that reach the key can come back: the encoder recovers z's part along them.
    projector = low @ np.linalg.pinv(low)
    np.testing.assert_allclose(encoded @ projector, z @ projector, atol=5e-2)


def test_a_home_key_model_fits_trains_exports_with_parity_and_loads(tmp_path):
    features, x, _ = _write_keyboard_features(tmp_path / "features")
    config = small_config("home-key", max_epochs=2, learning_rate=1e-3)
    run = fit(features=features, config=config, out=tmp_path / "run",
              options=FitOptions(verbose=0, run_eagerly=True))
    _, encoder, decoder = load_run(run).models()
    # At the home key the model is the patch code: a note there comes back as its home-key reconstruction.
    source = x[25:26]                                  # test instrument 8 at 60
    z = np.asarray(encoder([source, np.array([[60]], np.int32)]))
    decoded = {key: np.asarray(decoder([z, np.array([[key]], np.int32)]))[0] for key in KEYS}
    # Decoded at 48, 60 and 72: three different spectra, each nearer the instrument's real note at that key.
    for key, row in zip(KEYS, range(24, 27), strict=True):
        errors = {other: float(np.mean((decoded[other] - x[row]) ** 2)) for other in KEYS}
        assert min(errors, key=errors.get) == key, (key, errors)

    from export.bundle_writer import export_run
    from synth.bundle import load_bundle

    bundle = load_bundle(export_run(run, tmp_path / "bundle", presets_per_family=1, log=lambda _: None))
    assert bundle.keys == KEYS and bundle.base_pitch == 60
    assert bundle.metadata["parity"]["passed"]
    onnx_z = bundle.encoder(providers=["CPUExecutionProvider"]).encode(source, pitch=60)
    np.testing.assert_allclose(onnx_z, z, atol=1e-4)
    onnx_decoder = bundle.decoder(providers=["CPUExecutionProvider"])
    for key in KEYS:
        np.testing.assert_allclose(onnx_decoder.decode(onnx_z, pitch=key)[0], decoded[key], atol=1e-4)
    # One latent at every key in one run: the home map runs once on the latent, each key adds its own map.
    at_keys = onnx_decoder.decode_at_keys(onnx_z, np.array(KEYS))
    assert onnx_decoder.broadcasts_keys is True
    for row, key in enumerate(KEYS):
        np.testing.assert_allclose(at_keys[row], decoded[key], atol=1e-4)
    np.testing.assert_allclose(onnx_decoder.decode_at_keys(onnx_z, np.array(KEYS)), at_keys, atol=1e-6)
    # A key between trained ones decodes as the nearest trained key (the engine moves it the rest).
    np.testing.assert_allclose(onnx_decoder.decode(onnx_z, pitch=50)[0], decoded[48], atol=1e-5)


def test_the_start_is_the_home_keys_patch_pca_and_the_key_maps(tmp_path):
    """Before any training the home key decodes as the patch PCA of the home key's training notes: a note
    in their span comes back exactly there."""
    features, x, _ = _write_keyboard_features(tmp_path / "features")
    config = small_config("home-key", max_epochs=1)
    models = config.family.build(config, params=SMALL_PARAMS)
    from training.datasets.features import load_features

    feats = load_features(features)
    pitch = np.asarray([r["pitch"] for r in feats.rows])
    config.family.start(models, feats, feats.subset("train"), pitch=pitch, config=config)
    _, encoder, decoder = models
    home_train = x[1:18:3]                             # the 6 training instruments at 60
    z = np.asarray(encoder([home_train, np.full((6, 1), 60, np.int32)]))
    back = np.asarray(decoder([z, np.full((6, 1), 60, np.int32)]))
    patches = note_patches(home_train, patch_frames=config.architecture.patch_frames)
    assert np.linalg.matrix_rank(patches - patches.mean(0), tol=1e-4) <= config.architecture.filters[-1]
    np.testing.assert_allclose(back, home_train, atol=2e-3)


def test_a_key_without_training_notes_is_named(tmp_path):
    features, _, _ = _write_keyboard_features(tmp_path / "features")
    config = small_config("home-key", keys=(48, 60, 72, 84))
    with pytest.raises(DataError, match=r"none at \[84\]"):
        fit(features=features, config=config, out=tmp_path / "run", options=FitOptions(verbose=0))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("changes, named", [
    (dict(keys=(48, 72)), "home_key=60 among them"),
    (dict(keys=(60,)), "at least two trained keys"),
    (dict(key_rank=0), "key_rank=0"),
    (dict(key_rank=9), "key_rank=9"),
])
def test_the_home_key_layout_refuses_what_it_does_not_take(changes, named):
    with pytest.raises(ParameterError, match=named):
        small_config("home-key", **changes)


def test_keys_must_be_rising_midi_keys():
    with pytest.raises(ParameterError, match="rising list of MIDI keys"):
        small_config("home-key", keys=(72, 60, 48))
    with pytest.raises(ParameterError, match="rising list of MIDI keys"):
        small_config("home-key", keys=(48, 60, 200))
    with pytest.raises(ParameterError, match=r"the patch layout does not take keys=\(60, 72\)"):
        small_config("patch", keys=(60, 72))


def _patch_bundle(tmp_path, features, *, base_pitch=60):
    """A one-pitch patch bundle trained (two epochs) on the keyboard set's notes (one run, one bundle per
    base pitch)."""
    from export.bundle_writer import export_run

    run = tmp_path / "patch-run"
    if not run.exists():
        fit(features=features, config=small_config("patch", max_epochs=2, learning_rate=1e-3), out=run,
            options=FitOptions(verbose=0, run_eagerly=True))
    return export_run(run, tmp_path / f"patch-bundle-{base_pitch}", presets_per_family=1, base_pitch=base_pitch,
                      log=lambda _: None)


def test_a_home_key_model_started_from_a_one_pitch_bundle_plays_its_home_key_as_that_bundle(tmp_path):
    """--start-from: the home key decodes and encodes exactly as the one-pitch bundle (its trained maps, not the
    PCA), after training too (the home key's offset row is gated off), and the other keys still decode their
    own spectra; the run records where it started from."""
    from export.bundle_writer import export_run
    from synth.bundle import load_bundle

    features, x, _ = _write_keyboard_features(tmp_path / "features")
    one_pitch = load_bundle(_patch_bundle(tmp_path, features))
    config = small_config("home-key", max_epochs=2, learning_rate=1e-2)
    run = fit(features=features, config=config, out=tmp_path / "run",
              options=FitOptions(verbose=0, run_eagerly=True, start_from=one_pitch.path))
    assert json.loads((run / "config.json").read_text())["fit"]["start_from"] == str(one_pitch.path)
    keyed = load_bundle(export_run(run, tmp_path / "bundle", presets_per_family=1, log=lambda _: None))
    notes = x[24:27]                                   # test instrument 8 at 48, 60, 72
    expected_z = one_pitch.encoder(providers=["CPUExecutionProvider"]).encode(notes[1:2])
    z = keyed.encoder(providers=["CPUExecutionProvider"]).encode(notes[1:2], pitch=60)
    np.testing.assert_allclose(z, expected_z, atol=1e-4)
    decoder = keyed.decoder(providers=["CPUExecutionProvider"])
    expected = one_pitch.decoder(providers=["CPUExecutionProvider"]).decode(expected_z)[0]
    np.testing.assert_allclose(decoder.decode(z, pitch=60)[0], expected, atol=1e-4)
    # The PCA start would not: the trained maps moved away from it.
    pca_run = fit(features=features, config=config, out=tmp_path / "pca-run",
                  options=FitOptions(verbose=0, run_eagerly=True))
    pca = load_bundle(export_run(pca_run, tmp_path / "pca-bundle", presets_per_family=1, log=lambda _: None))
    assert np.max(np.abs(pca.decoder(providers=["CPUExecutionProvider"]).decode(z, pitch=60)[0] - expected)) > 1e-3
    for row, key in enumerate(KEYS):
        errors = {other: float(np.mean((decoder.decode(z, pitch=other)[0] - notes[row]) ** 2)) for other in KEYS}
        assert min(errors, key=errors.get) == key, (key, errors)


def test_a_start_from_a_bundle_that_does_not_fit_is_refused_before_anything_is_written(tmp_path):
    features, _, _ = _write_keyboard_features(tmp_path / "features")
    config = small_config("home-key", max_epochs=1)
    wrong_pitch = _patch_bundle(tmp_path, features, base_pitch=48)
    with pytest.raises(DataError, match=r"base pitch is 48, the model's home key 60"):
        fit(features=features, config=config, out=tmp_path / "run",
            options=FitOptions(verbose=0, run_eagerly=True, start_from=wrong_pitch))
    assert not (tmp_path / "run").exists()
    with pytest.raises(DataError, match=r"latent is \[1, 4, 8\], the model's \[1, 4, 16\]"):
        fit(features=features, config=small_config("home-key", filters=(16,), key_rank=4), out=tmp_path / "run",
            options=FitOptions(verbose=0, run_eagerly=True, start_from=_patch_bundle(tmp_path, features)))
    with pytest.raises(DataError, match="no such bundle folder"):
        fit(features=features, config=config, out=tmp_path / "run",
            options=FitOptions(verbose=0, start_from=tmp_path / "nowhere"))
    with pytest.raises(ParameterError, match="patch layout's start takes no trained model"):
        fit(features=features, config=small_config("patch"), out=tmp_path / "run",
            options=FitOptions(verbose=0, start_from=wrong_pitch))
    assert not (tmp_path / "run").exists()
