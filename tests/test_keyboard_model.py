"""The keyboard family (training/model/keyboard.py): pitch as an input, trained across keys, and its checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from training_fixtures import SMALL_PARAMS, small_config, write_features

from synth.errors import DataError, ParameterError

keras = pytest.importorskip("keras")
from training.fit import FitOptions, fit  # noqa: E402
from training.model.pitched import partner_rows  # noqa: E402
from training.run import load_run  # noqa: E402

KEYS = (48, 60, 72)


def _instrument_note(i: int, key: int) -> np.ndarray:
    """Instrument ``i`` at ``key``: partials every ``f0`` mel rows (wider apart higher up) under the
    instrument's own spectral slope and decay."""
    f0 = 2 + (key - 48) // 6
    mels = np.arange(SMALL_PARAMS.n_mels)[:, None]
    frames = np.arange(SMALL_PARAMS.frames)[None, :]
    stripes = np.exp(-0.5 * ((mels % (2 * f0) - f0) / 1.2) ** 2) * np.exp(-mels / (8 + 3 * i))
    return np.clip(0.8 * stripes * np.exp(-frames / (10 + 4 * i)), 0, 1).astype(np.float32)


def _write_keyboard_features(path, *, instruments: int = 10, keys=KEYS):
    """Every instrument at every key; the first 6 instruments train, 2 validate, 2 test."""
    x, rows = [], []
    for i in range(instruments):
        for key in keys:
            x.append(_instrument_note(i, key))
            rows.append({"note_str": f"inst{i}-{key:03d}-100", "pitch": key, "velocity": 100,
                         "instrument_str": f"inst{i}", "instrument_family_str": "keyboard"})
    per = len(keys)
    split = {"train": list(range(6 * per)), "valid": list(range(6 * per, 8 * per)),
             "test": list(range(8 * per, instruments * per))}
    path = write_features(path, np.asarray(x), splits=split)
    doc = json.loads((path / "index.json").read_text())
    doc["rows"] = rows
    (path / "index.json").write_text(json.dumps(doc))
    return path, np.asarray(x), rows


def test_partners_are_the_same_instrument_and_velocity_and_a_pure_function_of_the_epoch():
    notes = [{"instrument_str": f"i{r // 6}", "velocity": 100 if r % 2 else 50, "pitch": 48 + r % 3}
             for r in range(60)]
    rows = np.arange(60)
    first = partner_rows(rows, notes=notes, seed=3, epoch=4)
    np.testing.assert_array_equal(first, partner_rows(rows, notes=notes, seed=3, epoch=4))
    assert not np.array_equal(first, partner_rows(rows, notes=notes, seed=3, epoch=5))
    for row, partner in zip(rows, first, strict=True):
        assert notes[partner]["instrument_str"] == notes[row]["instrument_str"]
        assert notes[partner]["velocity"] == notes[row]["velocity"]
    moved = np.mean(partner_rows(np.arange(60), notes=notes, seed=0, epoch=0, cross_share=1.0) != rows)
    assert moved > 0.5  # each group has 3 members: a random pick is another note 2/3 of the time
    np.testing.assert_array_equal(partner_rows(rows, notes=notes, seed=0, epoch=0, cross_share=0.0), rows)


def test_the_start_is_the_pca_of_each_keys_centred_patches():
    """Before training, a note decoded at its own key is its patch PCA with the key's mean put back: notes
    whose patches are their key's mean plus a rank-8 part shared by every key come back exactly, at every
    key, and an instrument's latent is the same at every key."""
    config = small_config("keyboard")
    rng = np.random.default_rng(0)
    p, columns = config.architecture.patch_frames, SMALL_PARAMS.frames // config.architecture.patch_frames
    dims = p * SMALL_PARAMS.n_mels
    basis = np.linalg.qr(rng.standard_normal((dims, 8)))[0].T
    means = {key: rng.uniform(0.4, 0.6, dims) for key in KEYS}
    timbres = rng.uniform(-1.0, 1.0, (6, columns, 8))
    x = np.stack([(means[key] + timbres[i] @ basis).reshape(SMALL_PARAMS.frames, SMALL_PARAMS.n_mels).T
                  for i in range(6) for key in KEYS]).astype(np.float32)
    keys = np.array([[key] for _ in range(6) for key in KEYS], np.int32)
    models = config.family.build(config, params=SMALL_PARAMS)
    config.family.initialise(models, x, pitch=keys[:, 0], config=config)
    trainer, encoder, decoder = models
    np.testing.assert_allclose(np.asarray(trainer([x, keys, keys])), x, atol=1e-4)
    z = np.asarray(encoder([x, keys]))
    assert z.shape[1:] == config.family.latent_shape(config, params=SMALL_PARAMS) == (1, 4, 8)
    np.testing.assert_allclose(z[0], z[1], atol=1e-4)  # instrument 0 at 48 and at 60
    # So the start already moves a timbre between keys: instrument 0 encoded at 48, decoded at 72.
    np.testing.assert_allclose(np.asarray(decoder([z[:1], keys[2:3]])), x[2:3], atol=1e-4)


def test_a_keyboard_model_trains_across_keys_exports_with_parity_and_loads(tmp_path, monkeypatch):
    features, x, _ = _write_keyboard_features(tmp_path / "features")
    config = small_config("keyboard", max_epochs=3, learning_rate=1e-3)
    run = fit(features=features, config=config, out=tmp_path / "run",
              options=FitOptions(verbose=0, run_eagerly=True))
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["notes"] == 6 and metrics["f1"] > 0.5
    _, encoder, decoder = load_run(run).models()
    # The test instrument's note at 48, encoded there and decoded at 48, 60 and 72: three different spectra,
    # each nearer the instrument's real note at that key than at the other two.
    source = x[24:25]
    z = np.asarray(encoder([source, np.array([[48]], np.int32)]))
    decoded = {key: np.asarray(decoder([z, np.array([[key]], np.int32)]))[0] for key in KEYS}
    for key, row in zip(KEYS, range(24, 27), strict=True):
        errors = {other: float(np.mean((decoded[other] - x[row]) ** 2)) for other in KEYS}
        assert min(errors, key=errors.get) == key, (key, errors)

    from export.bundle_writer import export_run
    from synth.bundle import load_bundle

    bundle = load_bundle(export_run(run, tmp_path / "bundle", presets_per_family=1, log=lambda _: None))
    assert bundle.keys == KEYS and bundle.base_pitch == 60
    assert bundle.metadata["parity"]["passed"] and bundle.metadata["parity"]["keys"] == list(KEYS)
    assert bundle.nearest_key(50) == 48 and bundle.nearest_key(54) == 48 and bundle.nearest_key(100) == 72
    onnx_z = bundle.encoder(providers=["CPUExecutionProvider"]).encode(source, pitch=48)
    np.testing.assert_allclose(onnx_z, z, atol=1e-4)
    onnx_decoder = bundle.decoder(providers=["CPUExecutionProvider"])
    for key in KEYS:
        np.testing.assert_allclose(onnx_decoder.decode(onnx_z, pitch=key)[0], decoded[key], atol=1e-4)
    at_keys = onnx_decoder.decode_at_keys(onnx_z, np.array(KEYS))  # copies or broadcast: the same decodes
    for row, key in enumerate(KEYS):
        np.testing.assert_allclose(at_keys[row], decoded[key], atol=1e-4)
    with pytest.raises(ParameterError, match="pitch-conditioned"):
        onnx_decoder.decode(onnx_z)
    with pytest.raises(ParameterError, match="0..127"):
        onnx_decoder.decode(onnx_z, pitch=200)

    # The per-key and cross-key tables of melsynth evaluate --per-key, on the same notes.
    from training.keyboard_evaluation import evaluate_keyboard, format_keyboard_tables

    result = evaluate_keyboard(features=features, bundle=tmp_path / "bundle", keys=KEYS, progress=False)
    assert set(result["per_key"]) == {"48", "60", "72"} and set(result["cross_key"]) == {"48", "72"}
    for key in ("48", "60", "72"):
        row = result["per_key"][key]
        assert row["keyboard"]["notes"] == 2 and row["train_notes"] == 6
        assert {"pca_per_key", "patch_pca_per_key"} <= set(row)
    assert result["cross_key"]["72"]["notes"] == 2  # the 2 test instruments' key-60 notes, decoded at 72
    assert result["cross_key_aligned_patch_pca"]["72"]["notes"] == 2
    table = format_keyboard_tables(result)
    assert "| keyboard |" in table and "| 72 |" in table

    # The tables stream the notes: read two at a time (every batch size set to 2), no read asks for more, and
    # the figures are those of the reads of up to 16 above.
    import dataclasses

    import synth.metrics.pca
    import training.datasets.features
    import training.keyboard_evaluation
    import training.model.patch

    reads = []

    class Counted:
        def __init__(self, x):
            self.x, self.shape, self.dtype, self.ndim, self.nbytes = x, x.shape, x.dtype, x.ndim, x.nbytes

        def __len__(self):
            return len(self.x)

        def __getitem__(self, key):
            reads.append(len(np.arange(len(self.x))[key].reshape(-1)))
            return self.x[key]

    load = training.datasets.features.load_features
    monkeypatch.setattr(training.datasets.features, "load_features",
                        lambda path, **kw: dataclasses.replace(load(path, **kw), x=Counted(load(path, **kw).x)))
    for module, name in ((synth.metrics.pca, "BATCH_NOTES"), (training.keyboard_evaluation, "_BATCH"),
                         (training.model.patch, "START_BATCH_NOTES")):
        monkeypatch.setattr(module, name, 2)
    again = evaluate_keyboard(features=features, bundle=tmp_path / "bundle", keys=KEYS, progress=False)
    assert reads and max(reads) <= 2
    for key in ("48", "60", "72"):
        for name in ("keyboard", "pca_per_key", "patch_pca_per_key"):
            for metric in ("rmse", "ssim", "f1"):
                assert again["per_key"][key][name][metric] == pytest.approx(result["per_key"][key][name][metric],
                                                                            abs=1e-4)
    for metric in ("rmse", "ssim", "f1"):
        assert again["cross_key_aligned_patch_pca"]["72"][metric] == pytest.approx(
            result["cross_key_aligned_patch_pca"]["72"][metric], abs=1e-4)
    with pytest.raises(ParameterError, match="not among the bundle's trained keys"):
        evaluate_keyboard(features=features, bundle=tmp_path / "bundle", keys=(36,), progress=False)


def test_notes_at_one_key_cannot_train_a_pitch_conditioned_model(tmp_path):
    features, _, _ = _write_keyboard_features(tmp_path / "features", keys=(60,))
    with pytest.raises(DataError, match="all at key 60"):
        fit(features=features, config=small_config("keyboard"), out=tmp_path / "run",
            options=FitOptions(verbose=0))
    assert not (tmp_path / "run").exists()


def test_a_note_without_a_pitch_is_named(tmp_path):
    features, _, rows = _write_keyboard_features(tmp_path / "features")
    del rows[5]["pitch"]
    (features / "index.json").write_text(json.dumps({"rows": rows}))
    with pytest.raises(DataError, match="MIDI key"):
        fit(features=features, config=small_config("keyboard"), out=tmp_path / "run",
            options=FitOptions(verbose=0))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("changes, named", [({"hidden": 0}, "hidden=0"), ({"dense": 64}, "dense=64"),
                                            ({"filters": (8, 16)}, "one entry")])
def test_the_keyboard_layout_refuses_what_it_does_not_take(changes, named):
    with pytest.raises(ParameterError, match=named):
        small_config("keyboard", **changes)


def test_a_keyboard_model_trains_from_float16_shards_through_the_streaming_path(tmp_path, monkeypatch):
    """Notes at three keys computed into float16 shards (the layout for sets larger than memory) and read by
    the memory-map path of NoteSource, as the 21,655-note keyboard set is: training runs and its test metrics
    are those of the in-memory path on the same notes to float16's precision."""
    from training.datasets.compute_features import compute_features
    from training.datasets.features import load_features
    from training.datasets.synthetic import make_synthetic_dataset
    from training.fit import notes as fit_notes

    params = SMALL_PARAMS
    nsynth = make_synthetic_dataset(out=tmp_path / "nsynth", instruments=6, pitch=KEYS, velocities=(60, 110))
    features = compute_features(nsynth, out=tmp_path / "features", params=params, workers=1, progress=False,
                                shard_notes=5)
    feats = load_features(features)
    assert type(feats.x).__name__ == "ShardedArray" and len(feats.x) == 36
    config = small_config("keyboard", max_epochs=1)
    monkeypatch.setattr(fit_notes, "IN_MEMORY_BYTES", 0)  # what a set larger than the limit takes
    streamed = fit(features=features, config=config, out=tmp_path / "streamed",
                   options=FitOptions(verbose=0, run_eagerly=True))
    monkeypatch.undo()
    held = fit(features=features, config=config, out=tmp_path / "held",
               options=FitOptions(verbose=0, run_eagerly=True))
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (streamed, held))
    assert a["notes"] == b["notes"] > 0
    assert a["rmse"] == pytest.approx(b["rmse"], abs=1e-4)


def test_the_default_bundles_training_instruments_are_found_by_its_recorded_split(tmp_path):
    """The per-key table compares a keyboard model with the one-pitch default at its pitch on the notes of
    instruments neither trained on: the default's are its recorded split redone over these notes at its
    pitch, and nothing is claimed when the sizes differ (other notes)."""
    import types

    from synth.data.splits import make_splits
    from training.datasets.features import load_features
    from training.keyboard_evaluation import _default_training_instruments

    features, _, rows = _write_keyboard_features(tmp_path / "features", instruments=10)
    feats = load_features(features)
    pitch = np.asarray([r["pitch"] for r in rows])
    at60 = [r for r in rows if r["pitch"] == 60]
    split = make_splits(at60, rule="instrument", seed=3)
    sizes = {name: len(split[name]) for name in split}
    default = types.SimpleNamespace(base_pitch=60, metadata={"data": {
        "split_rule": "instrument", "split_seed": 3, "split_sizes": sizes}})
    assert _default_training_instruments(default, feats, pitch) == {at60[i]["instrument_str"] for i in split["train"]}
    default.metadata["data"]["split_sizes"] = dict(sizes, train=sizes["train"] + 1)
    assert _default_training_instruments(default, feats, pitch) is None
    default.metadata["data"] = {"split_rule": "random", "split_seed": 3, "split_sizes": sizes}
    assert _default_training_instruments(default, feats, pitch) is None
