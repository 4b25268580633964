"""Export of a tiny trained run: parity, hashes, presets, macros, refusals; the loader accepts the result.

The run is trained for one epoch by :func:`training.fit.fit` on a tiny 64 x 64 features folder (about 20 s
with TensorFlow's import on 2 shared cores); every test here shares it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
training_fixtures = pytest.importorskip("training_fixtures")

from test_export_presets import FAMILIES, rows_of  # noqa: E402

from export.bundle_writer import export_run  # noqa: E402
from synth.bundle import BUNDLE_FORMAT, load_bundle  # noqa: E402
from synth.errors import BundleError, DataError, ParameterError  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from training.fit import FitOptions, fit

    root = tmp_path_factory.mktemp("export")
    x = training_fixtures.synthetic_notes(24)
    # Louder notes so none is skipped as silent.
    x = np.clip(x * 1.2 + 0.1, 0, 1).astype(np.float32)
    feats = training_fixtures.write_features(root / "features", x)
    (feats / "index.json").write_text(json.dumps({"rows": rows_of(len(x))}))
    config = training_fixtures.small_config(max_epochs=1)
    return fit(features=feats, config=config, out=root / "run", options=FitOptions(verbose=0))


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> tuple[Path, list[str]]:
    lines: list[str] = []
    out = export_run(tiny_run, tmp_path_factory.mktemp("bundles") / "tiny", log=lines.append)
    return out, lines


def test_export_writes_a_bundle_the_loader_accepts(exported, tiny_run):
    out, lines = exported
    bundle = load_bundle(out)
    assert bundle.params == training_fixtures.SMALL_PARAMS
    assert bundle.base_pitch == 60
    meta = bundle.metadata
    assert meta["format"] == "melsynth.bundle/1"
    assert meta["training_config"]["architecture"]["filters"] == [4, 8, 16]
    assert meta["data"]["path"].endswith("features")
    assert meta["metrics"] is not None and {"rmse", "ssim", "f1"} <= set(meta["metrics"])
    # PCA on the run's own training rows beside the model: 60 % of 24 notes, k = min(latent 16, 14) = 14.
    (pca,) = meta["metrics"]["pca"]
    assert pca["components"] == 14 and pca["train_notes"] == 14 and pca["notes"] == meta["metrics"]["notes"]
    assert meta["metrics"]["paper"]["f1"] == 0.855
    assert any("parity" in line for line in lines) and lines[-1].startswith("melsynth export: wrote")
    # Every stage's upsampling is folded into its transposed convolution (stride 4), checked by that parity.
    assert meta["exported"]["decoder_graph"] == ["decoder stages 0, 1, 2: upsampling folded into the transposed convolution"]
    import onnx

    graph = onnx.load_from_string(bundle._models["decoder"]).graph  # noqa: SLF001
    strides = [list(a.ints) for n in graph.node if n.op_type == "ConvTranspose" for a in n.attribute
               if a.name == "strides"]
    assert strides.count([4, 4]) == 3 and not [n for n in graph.node if n.op_type == "Tile"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_parity_is_recorded_and_holds(exported, tiny_run):
    from training.run import load_run

    out, _ = exported
    parity = json.loads((out / "bundle.json").read_text())["parity"]
    assert parity["passed"] is True and parity["max_abs"] <= 1e-4
    for key in ("encoder_real", "encoder_random", "decoder_real", "decoder_random"):
        assert 0 <= parity[f"{key}_max_abs"] <= 1e-4
    # Independently of the recorded numbers: the bundle's sessions match the run's Keras models.
    bundle = load_bundle(out)
    _, enc, dec = load_run(tiny_run).models()
    x = np.random.default_rng(5).uniform(0, 1, (3, 64, 64)).astype(np.float32)
    z = bundle.encoder().encode(x)
    np.testing.assert_allclose(z, enc(x, training=False).numpy(), atol=1e-4)
    np.testing.assert_allclose(bundle.decoder().decode(z), dec(z, training=False).numpy(), atol=1e-4)


def test_hashes_match_the_files(exported):
    import hashlib

    out, _ = exported
    meta = json.loads((out / "bundle.json").read_text())
    for name in ("decoder.onnx", "encoder.onnx"):
        assert meta["sha256"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()


def test_presets_cover_every_family_at_two_velocities(exported):
    out, _ = exported
    bundle = load_bundle(out)
    # 3 families x 2 instruments x velocities 127 and nearest-to-50 (75 here).
    assert len(bundle.presets) == 12
    assert {p.source["instrument_family_str"] for p in bundle.presets.values()} == set(FAMILIES)
    assert {p.source["velocity"] for p in bundle.presets.values()} == {127, 75}
    assert "bass_acoustic_000_v127" in bundle.presets
    preset = bundle.preset("guitar_acoustic_001_v75")
    assert preset.source["note_str"] == "guitar_acoustic_001-060-075"
    assert preset.bundle_hash == bundle.bundle_hash
    # A preset's latent is the encoding of its note.
    import training.datasets.features as features_module

    feats = features_module.load_features(bundle.metadata["data"]["path"])
    z = bundle.encoder().encode(np.asarray(feats.x[[preset.source["row"]]]))
    np.testing.assert_allclose(z[0], preset.latent, atol=1e-5)
    mels = bundle.decoder().decode(np.stack([p.latent for p in bundle.presets.values()]))
    assert mels.shape == (12, 64, 64) and np.all(np.isfinite(mels))


def test_macros_are_principal_components_of_the_training_latents(exported):
    out, _ = exported
    bundle = load_bundle(out)
    m = bundle.macros
    assert m.components.shape[1:] == bundle.latent_shape
    assert 1 <= m.count <= 16
    assert np.all(np.diff(m.stds) <= 1e-6)  # decreasing spread


def test_export_refuses_to_overwrite_without_force(exported, tiny_run):
    out, _ = exported
    before = (out / "bundle.json").read_bytes()
    with pytest.raises(ParameterError, match="already exists.*--force"):
        export_run(tiny_run, out, log=lambda s: None)
    assert (out / "bundle.json").read_bytes() == before


def test_failed_parity_writes_nothing(tiny_run, tmp_path):
    with pytest.raises(BundleError, match="parity failed"):
        export_run(tiny_run, tmp_path / "never", parity_tolerance=-1.0, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_missing_run_or_features(tiny_run, tmp_path):
    with pytest.raises(DataError):
        export_run(tmp_path / "nope", tmp_path / "out", log=lambda s: None)
    with pytest.raises(DataError, match="--features"):
        export_run(tiny_run, tmp_path / "out", features=tmp_path / "moved", log=lambda s: None)
    # A folder of other notes: the bundle's test metrics would come from a split that is not the run's.
    from training_fixtures import synthetic_notes, write_features

    other = write_features(tmp_path / "other", synthetic_notes(7))
    with pytest.raises(DataError, match="holds other notes than run .* trained on \\(.*notes 24 -> 7"):
        export_run(tiny_run, tmp_path / "out", features=other, log=lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_export_command_with_force_replaces_and_refuses_without(tiny_run, tmp_path):
    import subprocess
    import sys

    script = Path(sys.executable).parent / "melsynth"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "synth.cli"]
    out = tmp_path / "cli"
    out.mkdir()  # an earlier bundle (--force replaces nothing else: tests/test_outputs.py)
    (out / "bundle.json").write_text(json.dumps({"format": BUNDLE_FORMAT}))
    (out / "stale.txt").write_text("old")
    args = ["export", "--run", str(tiny_run), "--out", str(out), "--presets-per-family", "1"]
    refused = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert (out / "stale.txt").exists()
    done = subprocess.run(
        [*cmd, *args, "--force", "--base-pitch", "61"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "parity" in done.stdout and "wrote" in done.stdout
    bundle = load_bundle(out)
    assert not (out / "stale.txt").exists()
    assert len(bundle.presets) == 6 and bundle.base_pitch == 61


@pytest.mark.parametrize("name", ["clip_res", "clip_fb", "clip_mh", "patch"])
def test_our_own_variant_exports_with_parity(tmp_path, name):
    """A run of an own variant (clipped output with residual blocks, a frequency bias or a mel head) exports:
    ONNX agrees with Keras, and the decoder's outputs stay on the unit scale with exact floors."""
    from training.fit import FitOptions, fit

    x = np.clip(training_fixtures.synthetic_notes(16) * 1.2 + 0.1, 0, 1).astype(np.float32)
    feats = training_fixtures.write_features(tmp_path / "features", x)
    (feats / "index.json").write_text(json.dumps({"rows": rows_of(len(x))}))
    config = training_fixtures.small_config(name, max_epochs=1)
    run = fit(features=feats, config=config, out=tmp_path / "run",
              options=FitOptions(verbose=0, run_eagerly=True))
    lines: list[str] = []
    bundle = load_bundle(export_run(run, tmp_path / "bundle", log=lines.append))
    assert any("parity" in line for line in lines)
    recorded = bundle.metadata["training_config"]
    # The patch family's output is always the clip, so its settings have no field for it.
    assert recorded["layout"] == "patch" if name == "patch" else recorded["architecture"]["output_activation"] == "clip"
    y = bundle.decoder().decode(bundle.encoder().encode(x[:4]))
    assert y.min() >= 0.0 and y.max() <= 1.0
    if name == "patch":
        # Its decoder takes any number of columns and is its own tile decoder: no second graph is written.
        assert bundle.metadata["tiles"]["decoder"] == "decoder.onnx"
        assert not (tmp_path / "bundle" / "decoder_tile.onnx").exists()
        z = bundle.encoder().encode(x[:2])
        fpc = bundle.tiles.frames_per_column
        for start in bundle.tiles.starts:
            window = np.ascontiguousarray(z[:, :, start : start + bundle.tiles.columns])
            np.testing.assert_array_equal(bundle.tile_decoder().decode(window),
                                          bundle.decoder().decode(z)[:, :, start * fpc : (start + bundle.tiles.columns) * fpc])
