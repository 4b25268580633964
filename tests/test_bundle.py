"""Tests of synth.bundle: loading, validation, sessions, presets and macros, on real synthetic bundles."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synth.benchmarks.synthetic_bundle import PRESET_RECIPES, make_synthetic_bundle
from synth.bundle import (
    BUNDLE_FORMAT,
    Bundle,
    load_bundle,
    load_preset_file,
    save_preset,
    validate_preset_name,
)
from synth.bundle.macros import load_macros
from synth.errors import BundleError, ParameterError, PresetError
from synth.spectrogram import SpectrogramParams

SMALL = SpectrogramParams(n_mels=32, frames=64, n_fft=256, win_length=200, hop_length=125)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return make_synthetic_bundle(tmp_path_factory.mktemp("bundles") / "synthetic", n_presets=8)


@pytest.fixture(scope="module")
def bundle(made) -> Bundle:
    return load_bundle(made)


@pytest.fixture(scope="module")
def decoder(bundle):
    return bundle.decoder(threads=1)


@pytest.fixture
def copy(made, tmp_path) -> Path:
    """A private copy of the synthetic bundle to tamper with."""
    return Path(shutil.copytree(made, tmp_path / "copy"))


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# ---------------------------------------------------------------------- loading and decoding
def test_synthetic_bundle_loads(bundle):
    assert bundle.latent_shape == (2, 8, 128)
    assert bundle.latent_size == 2048
    assert bundle.base_pitch == 60
    assert bundle.params == SpectrogramParams()
    assert bundle.metadata["format"] == BUNDLE_FORMAT
    assert len(bundle.bundle_hash) == 64
    assert sorted(bundle.presets) == sorted(PRESET_RECIPES)
    assert bundle.macros.components.shape == (16, 2, 8, 128)


def test_decoder_decodes_batches(bundle, decoder):
    assert decoder.provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
    z = np.stack([bundle.preset("bright").latent, bundle.preset("dark").latent, np.zeros((2, 8, 128))])
    mel = decoder.decode(z)
    assert mel.shape == (3, 128, 512) and mel.dtype == np.float32
    assert 0.0 <= mel.min() and mel.max() <= 1.0
    # One at a time gives the same as the batch.
    np.testing.assert_allclose(decoder.decode(z[1:2])[0], mel[1], atol=1e-6)


def test_presets_decode_to_distinct_spectra(bundle, decoder):
    names = sorted(bundle.presets)
    mels = decoder.decode(np.stack([bundle.presets[n].latent for n in names]))
    # Mean dB difference over the sounding part (first 3 s), per pair: every pair differs audibly.
    db = mels[:, :, :380] * (bundle.params.db_max - bundle.params.db_min)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            diff = float(np.mean(np.abs(db[i] - db[j])))
            assert diff > 1.5, (names[i], names[j], diff)
    # bright is brighter than dark: more energy in the top quarter of the bands relative to the bottom.
    bright, dark = (mels[names.index(n)] for n in ("bright", "dark"))
    tilt = lambda m: m[96:, :380].mean() - m[:32, :380].mean()  # noqa: E731
    assert tilt(bright) > tilt(dark) + 0.1


def test_encoder_inverts_decoder_on_presets(bundle, decoder):
    encoder = bundle.encoder(threads=1)
    z = np.stack([bundle.preset(n).latent for n in ("bright", "hollow", "soft")])
    back = encoder.encode(decoder.decode(z))
    assert back.shape == z.shape and back.dtype == np.float32
    # Some top bands clip, so the inverse is close, not exact.
    assert np.max(np.abs(back - z)) < 0.02 * np.max(np.abs(z)) + 1e-3


def test_decode_rejects_bad_input(decoder):
    with pytest.raises(ParameterError, match="shape"):
        decoder.decode(np.zeros((1, 2048), np.float32))
    with pytest.raises(ParameterError, match="shape"):
        decoder.decode(np.zeros((2, 8, 128), np.float32))
    bad = np.zeros((1, 2, 8, 128), np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        decoder.decode(bad)


def test_factory_is_deterministic(made, tmp_path):
    again = load_bundle(make_synthetic_bundle(tmp_path / "again", n_presets=8))
    assert again.bundle_hash == load_bundle(made).bundle_hash
    other = load_bundle(make_synthetic_bundle(tmp_path / "other", seed=1))
    assert other.bundle_hash != again.bundle_hash


def test_small_contract_bundle(tmp_path):
    path = make_synthetic_bundle(tmp_path / "small", params=SMALL, latent_shape=(2, 2, 8), base_pitch=48)
    b = load_bundle(path)
    assert b.params == SMALL and b.latent_shape == (2, 2, 8) and b.base_pitch == 48
    mel = b.decoder().decode(b.preset("bright").latent[None])
    assert mel.shape == (1, 32, 64)


def test_more_presets_get_unique_names(tmp_path):
    b = load_bundle(
        make_synthetic_bundle(tmp_path / "many", n_presets=11, latent_shape=(2, 2, 8), params=SMALL)
    )
    assert len(b.presets) == 11 and {"mix_08", "mix_10"} <= set(b.presets)


def test_bundle_hash_is_over_the_two_onnx_digests(bundle):
    import hashlib

    sha = bundle.metadata["sha256"]
    expected = hashlib.sha256(
        bytes.fromhex(sha["decoder.onnx"]) + bytes.fromhex(sha["encoder.onnx"])
    ).hexdigest()
    assert bundle.bundle_hash == expected


# ---------------------------------------------------------------------- validation
def test_rejects_tampered_onnx(copy):
    data = bytearray((copy / "decoder.onnx").read_bytes())
    data[-5] ^= 0xFF
    (copy / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256 mismatch"):
        load_bundle(copy)


def test_rejects_wrong_hash_in_bundle_json(copy):
    meta = json.loads((copy / "bundle.json").read_text())
    meta["sha256"]["encoder.onnx"] = "0" * 64
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="encoder.onnx: SHA-256 mismatch"):
        load_bundle(copy)


def test_rejects_onnx_of_another_shape(copy, tmp_path):
    other = make_synthetic_bundle(tmp_path / "narrow", latent_shape=(2, 8, 64))
    shutil.copy(other / "decoder.onnx", copy / "decoder.onnx")
    meta = json.loads((copy / "bundle.json").read_text())
    meta["sha256"]["decoder.onnx"] = json.loads((other / "bundle.json").read_text())["sha256"]["decoder.onnx"]
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"input 'latent' has shape \[batch, 2, 8, 64\]"):
        load_bundle(copy)


def test_rejects_latent_shape_disagreeing_with_onnx(copy):
    _edit_json(copy / "bundle.json", latent_shape=[4, 8, 64])
    with pytest.raises(BundleError, match="shape"):
        load_bundle(copy)


def test_rejects_contract_disagreeing_with_onnx(copy):
    meta = json.loads((copy / "bundle.json").read_text())
    meta["spectrogram"]["frames"] = 256
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"output 'mel' has shape \[batch, 128, 512\].*\[batch, 128, 256\]"):
        load_bundle(copy)


def test_rejects_bad_contract(copy):
    meta = json.loads((copy / "bundle.json").read_text())
    del meta["spectrogram"]["hop_length"]
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="hop_length"):
        load_bundle(copy)


@pytest.mark.parametrize("fmt", ["melsynth.bundle/2", "melsynth.bundle/0", None, 1])
def test_rejects_unknown_format(copy, fmt):
    _edit_json(copy / "bundle.json", format=fmt)
    with pytest.raises(BundleError, match=r"bundle format .* is not supported .*melsynth\.bundle/1"):
        load_bundle(copy)


@pytest.mark.parametrize("name", ["decoder.onnx", "encoder.onnx", "macros.npz", "bundle.json"])
def test_rejects_missing_file(copy, name):
    (copy / name).unlink()
    with pytest.raises(BundleError, match="missing|no bundle.json"):
        load_bundle(copy)


def test_rejects_missing_folder(tmp_path):
    with pytest.raises(BundleError, match="no such bundle folder"):
        load_bundle(tmp_path / "nowhere")


@pytest.mark.parametrize("key", ["latent_shape", "sha256", "base_pitch", "macros"])
def test_rejects_missing_key(copy, key):
    meta = json.loads((copy / "bundle.json").read_text())
    del meta[key]
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=key):
        load_bundle(copy)


@pytest.mark.parametrize("value", ["../decoder.onnx", "/etc/passwd", "sub/decoder.onnx", ".hidden", 3])
def test_rejects_file_names_outside_the_bundle(copy, value):
    _edit_json(copy / "bundle.json", decoder=value)
    with pytest.raises(BundleError, match="plain file name"):
        load_bundle(copy)


@pytest.mark.parametrize("value", [128, -1, 60.0, True, "60"])
def test_rejects_bad_base_pitch(copy, value):
    _edit_json(copy / "bundle.json", base_pitch=value)
    with pytest.raises(BundleError, match="base_pitch"):
        load_bundle(copy)


def test_rejects_invalid_bundle_json(copy):
    (copy / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="not a readable JSON bundle description file"):
        load_bundle(copy)


def test_a_preset_beyond_the_latent_limit_is_refused_like_the_message_would_be(copy, bundle):
    """OSC refuses a latent value beyond +-1000; a preset file of +-1e30 once loaded and rendered silence."""
    doc = json.loads((copy / "presets" / "bright.json").read_text())
    doc["latent"][7] = 1e30
    doc["name"] = "huge"
    (copy / "presets" / "huge.json").write_text(json.dumps(doc))
    with pytest.raises(PresetError, match=r"huge.json: latent holds 1e\+30; latent values lie within \+-1000"):
        load_preset_file(copy / "presets" / "huge.json", bundle=bundle)
    loaded = load_bundle(copy)
    assert "huge" not in loaded.presets and "latent values lie within" in loaded.broken_presets["huge.json"]
    doc["latent"][7] = 999.0
    (copy / "presets" / "huge.json").write_text(json.dumps(doc))
    assert "huge" in load_bundle(copy).presets


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"base_pitch": ' + "9" * 5000 + "}"])
def test_hostile_json_is_a_bundle_error_not_a_traceback(copy, text):
    """Deep nesting (RecursionError in json) and a 5000-digit integer (ValueError) name the file."""
    (copy / "bundle.json").write_text(text)
    with pytest.raises(BundleError, match="bundle.json: not a readable JSON bundle description file"):
        load_bundle(copy)


def test_rejects_onnx_that_is_not_onnx(copy):
    junk = b"definitely not a protobuf \xff\xff\xff"
    (copy / "encoder.onnx").write_bytes(junk)
    import hashlib

    meta = json.loads((copy / "bundle.json").read_text())
    meta["sha256"]["encoder.onnx"] = hashlib.sha256(junk).hexdigest()
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="encoder.onnx"):
        load_bundle(copy)


# ---------------------------------------------------------------------- macros
def test_macros_refuse_pickled_arrays(copy):
    arrays = dict(np.load(copy / "macros.npz"))
    arrays["mean"] = np.array([object()] * 2048, dtype=object).reshape(2, 8, 128)
    np.savez(copy / "macros.npz", **arrays)
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(copy)


def test_macros_must_be_orthonormal_and_shaped(copy):
    arrays = dict(np.load(copy / "macros.npz"))
    arrays["components"] = arrays["components"] * 2
    np.savez(copy / "macros.npz", **arrays)
    with pytest.raises(BundleError, match="orthonormal"):
        load_bundle(copy)
    arrays["components"] = arrays["components"][:, :1]
    np.savez(copy / "macros.npz", **arrays)
    with pytest.raises(BundleError, match="components have shape"):
        load_macros(copy / "macros.npz", latent_shape=(2, 8, 128))


def test_macros_name_what_is_wrong_with_them(copy):
    """Negative stds were reported as "got shape (16,)", the shape they rightly had; and a mean or stds of
    1e30 loaded although OSC refuses a latent value beyond +-1000 (it rendered silence, exit 0)."""
    arrays = dict(np.load(copy / "macros.npz"))
    stds = arrays["stds"].copy()
    stds[3] = -0.5
    np.savez(copy / "macros.npz", **dict(arrays, stds=stds))
    with pytest.raises(BundleError, match=r"stds\[3\] is -0.5: a standard deviation is never negative"):
        load_bundle(copy)
    for key, value in (("mean", "-1e+30"), ("stds", "1e+30")):
        huge = arrays[key].copy()
        huge.reshape(-1)[1] = float(value)
        np.savez(copy / "macros.npz", **dict(arrays, **{key: huge}))
        with pytest.raises(BundleError, match=rf"macros.npz: {key} holds {re.escape(value)}; latent values lie within"):
            load_bundle(copy)


def test_macro_latent_and_coordinates_round_trip(bundle):
    m = bundle.macros
    w = np.array([1.0, -0.5, 2.0])
    z = m.latent(w)
    assert z.shape == bundle.latent_shape and z.dtype == np.float32
    np.testing.assert_allclose(m.coordinates(z)[:3], w, atol=1e-3)
    np.testing.assert_allclose(m.coordinates(z)[3:], 0.0, atol=1e-3)
    with pytest.raises(ParameterError):
        m.latent(np.zeros(17))


# ---------------------------------------------------------------------- presets
def test_preset_from_another_bundle_is_refused(bundle, tmp_path, copy):
    other = make_synthetic_bundle(tmp_path / "other", seed=1)
    with pytest.raises(PresetError, match="made for another bundle"):
        load_preset_file(other / "presets" / "bright.json", bundle=bundle)
    shutil.copy(other / "presets" / "dark.json", copy / "presets" / "dark.json")
    loaded = load_bundle(copy)  # the bundle still loads, without that file
    assert "dark" not in loaded.presets and "bright" in loaded.presets
    assert "another bundle" in loaded.broken_presets["dark.json"]


def test_preset_with_wrong_latent_size_is_refused(bundle, made, tmp_path):
    data = json.loads((made / "presets" / "bright.json").read_text())
    data["latent"] = data["latent"][:-1]
    (tmp_path / "short.json").write_text(json.dumps(data))
    with pytest.raises(PresetError, match="2047 values.*2048"):
        load_preset_file(tmp_path / "short.json", bundle=bundle)


@pytest.mark.parametrize(
    "text", ["{", "[]", '{"name": "x"}', "\xff\xfe", '{"name": "x", "latent": "abc", "bundle_hash": "h"}']
)
def test_invalid_preset_json_is_refused(bundle, tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(PresetError):
        load_preset_file(path, bundle=bundle)


def test_preset_with_nan_is_refused(bundle, made, tmp_path):
    text = (made / "presets" / "bright.json").read_text()
    data = json.loads(text)
    data["latent"][3] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(data))
    with pytest.raises(PresetError, match="NaN"):
        load_preset_file(tmp_path / "nan.json", bundle=bundle)


def test_preset_file_name_must_match(copy):
    shutil.copy(copy / "presets" / "bright.json", copy / "presets" / "brighter.json")
    loaded = load_bundle(copy)
    assert "does not match" in loaded.broken_presets["brighter.json"] and "bright" in loaded.presets


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..", ".", "a/b", "a\\b", "", ".hidden", "x" * 101, "ümlaut", "a b", "a..b", 5],
)
def test_bad_preset_names_are_refused(bundle, name):
    with pytest.raises(PresetError):
        validate_preset_name(name)
    with pytest.raises(PresetError):
        bundle.preset(name)


@pytest.mark.parametrize("name", ["bright", "guitar_acoustic_fluidr3_v100", "A-1.b_2", "x" * 100])
def test_good_preset_names_pass(name):
    assert validate_preset_name(name) == name


def test_unknown_preset_names_the_known_ones(bundle):
    with pytest.raises(PresetError, match="unknown preset 'nope'.*bright"):
        bundle.preset("nope")


def test_saved_preset_is_found_and_decodes(copy):
    b = load_bundle(copy)
    latent = b.macros.latent(np.array([1.5, -1.0]))
    preset = b.make_preset("my_knobs", latent, source={"description": "macro 0 +1.5, macro 1 -1"})
    path = save_preset(b, preset)
    assert path == copy / "presets" / "my_knobs.json"
    with pytest.raises(PresetError, match="already exists"):
        save_preset(b, preset)
    # Found by name after loading, and by a fresh load.
    np.testing.assert_array_equal(b.preset("my_knobs").latent, latent)
    again = load_bundle(copy)
    assert "my_knobs" in again.presets
    assert again.decoder().decode(again.preset("my_knobs").latent[None]).shape == (1, 128, 512)


def test_preset_symlink_is_not_followed(copy, tmp_path):
    target = tmp_path / "outside.json"
    shutil.copy(copy / "presets" / "bright.json", target)
    data = json.loads(target.read_text())
    data["name"] = "linked"
    target.write_text(json.dumps(data))
    (copy / "presets" / "linked.json").symlink_to(target)
    loaded = load_bundle(copy)
    assert "linked" not in loaded.presets and "not a regular file" in loaded.broken_presets["linked.json"]


def test_preset_of_another_bundle_cannot_be_made(bundle, tmp_path):
    other = load_bundle(make_synthetic_bundle(tmp_path / "o", params=SMALL, latent_shape=(2, 2, 8)))
    with pytest.raises(PresetError, match="values"):
        bundle.make_preset("x", other.preset("bright").latent, source={})


# ---------------------------------------------------------------------- import hygiene
def test_bundle_loader_does_not_import_tensorflow(made):
    code = (
        "import sys; from synth.bundle import load_bundle; b = load_bundle(sys.argv[1]); b.decoder(); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code, str(made)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert "CUDA" not in out.stderr  # the GPU build's failed CUDA start is not shown as an error


def test_one_broken_preset_file_costs_only_itself(copy):
    """A file dropped into presets/ by hand (the wrong shape, no bundle hash) is named, and every command
    still plays the bundle's good presets."""
    import subprocess
    import sys

    good = set(load_bundle(copy).presets)
    (copy / "presets" / "x.json").write_text('{"name": "x", "latent": [1, 2, 3]}')
    loaded = load_bundle(copy)
    assert set(loaded.presets) == good and list(loaded.broken_presets) == ["x.json"]
    assert "missing keys" in loaded.broken_presets["x.json"]
    for argv in (["info", "--bundle", str(copy)], ["presets", "list", "--bundle", str(copy)]):
        proc = subprocess.run([sys.executable, "-m", "synth.cli", *argv], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "preset file x.json left out: " in proc.stderr and "missing keys" in proc.stderr
    listed = subprocess.run([sys.executable, "-m", "synth.cli", "presets", "list", "--bundle", str(copy)],
                            capture_output=True, text=True, timeout=120).stdout
    assert "x.json" in listed and "BROKEN" in listed and all(name in listed for name in good)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"name": "evil", "latent": [' + "9" * 5000 + "]}"])
def test_a_hostile_preset_file_costs_only_itself(copy, text):
    good = sorted(load_bundle(copy).presets)
    (copy / "presets" / "evil.json").write_text(text)
    assert sorted(load_bundle(copy).presets) == good


def test_the_manifest_reads_back_what_it_writes_and_passes_the_rest_through(bundle):
    from synth.bundle import BundleManifest

    doc = bundle.metadata
    doc["exported"] = {"time": "2026-12-07T06:00:00+00:00"}
    manifest = BundleManifest.from_dict(doc, source="bundle.json")
    assert manifest.to_dict() == doc and manifest.described["exported"]["time"].startswith("2026")
    assert manifest.bundle_hash == bundle.bundle_hash and manifest.latent_shape == bundle.latent_shape


def test_the_writer_checks_the_macros_before_writing_anything(tmp_path):
    from synth.bundle import BundleManifest, PresetSeed, write_bundle

    manifest = BundleManifest(params=SpectrogramParams(), latent_shape=(2, 8, 128), base_pitch=60, sha256={})
    bad = {"mean": np.zeros((2, 8, 128), np.float32), "components": np.ones((1, 2, 8, 128), np.float32),
           "stds": np.ones(1, np.float32)}
    with pytest.raises(BundleError, match="not orthonormal"):
        write_bundle(tmp_path, manifest=manifest, onnx={"decoder.onnx": b"d", "encoder.onnx": b"e"}, macros=bad,
                     presets=[PresetSeed("a", np.zeros(2048, np.float32), {})])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- hostile bundles (issue 30, item 8)
def _replace_decoder(copy: Path, model) -> None:
    from synth.bundle import sha256_bytes

    data = model.SerializeToString()
    (copy / "decoder.onnx").write_bytes(data)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["sha256"]["decoder.onnx"] = sha256_bytes(data)
    (copy / "bundle.json").write_text(json.dumps(meta))


def test_a_network_with_a_loop_is_refused_before_anything_runs(copy):
    """A Loop whose trip count the model sets once hung info, render and serve in the load-time probe."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(copy / "decoder.onnx")
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])])
    model.graph.initializer.extend([helper.make_tensor("trips", TensorProto.INT64, [], [10**15]),
                                    helper.make_tensor("go", TensorProto.BOOL, [], [True])])
    model.graph.node.append(helper.make_node("Loop", ["trips", "go"], [], body=body))
    _replace_decoder(copy, model)
    with pytest.raises(BundleError, match="uses the operator Loop"):
        load_bundle(copy)


def test_a_network_keeping_weights_in_another_file_is_refused(copy):
    """External data is read from the current folder, outside the bundle and its hashes."""
    import onnx

    model = onnx.load(copy / "decoder.onnx")
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../weights.bin")
    _replace_decoder(copy, model)
    with pytest.raises(BundleError, match="keeps its data in another file"):
        load_bundle(copy)


def test_a_fifo_or_a_link_in_place_of_a_bundle_file_is_refused(made, copy, tmp_path):
    import os

    (copy / "decoder.onnx").unlink()
    os.mkfifo(copy / "decoder.onnx")  # reading it once hung the load
    with pytest.raises(BundleError, match="decoder.onnx: the decoder must be a regular file, not a FIFO"):
        load_bundle(copy)
    (copy / "decoder.onnx").unlink()
    shutil.copy(made / "decoder.onnx", copy / "decoder.onnx")
    outside = tmp_path / "macros-elsewhere.npz"
    shutil.move(copy / "macros.npz", outside)
    (copy / "macros.npz").symlink_to(outside)  # out of the folder: bundle.json and the macros may not either
    with pytest.raises(BundleError, match="macros.npz: the macros must be a regular file inside the bundle, not a link"):
        load_bundle(copy)


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _rewrite_macros(copy: Path, members: dict[str, bytes]) -> None:
    import io
    import zipfile

    with np.load(copy / "macros.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    with zipfile.ZipFile(copy / "macros.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            if f"{key}.npy" not in members:
                buf = io.BytesIO()
                np.save(buf, value)
                archive.writestr(f"{key}.npy", buf.getvalue())
        for name, data in members.items():
            archive.writestr(name, data)


def test_a_macros_member_declaring_a_terabyte_is_refused_unread(copy):
    _rewrite_macros(copy, {"mean.npy": _npy_header_only((10**12,))})
    with pytest.raises(BundleError, match=r"mean declares \(1000000000000,\) float32"):
        load_bundle(copy)


def test_an_extra_macros_member_is_never_read(copy):
    """Only mean, components and stds are read: an extra member declaring a terabyte (or a deflated gigabyte)
    costs nothing, where every member used to be read."""
    _rewrite_macros(copy, {"junk.npy": _npy_header_only((10**12,))})
    assert load_bundle(copy).macros.count > 0


def test_a_network_failing_while_it_runs_is_a_bundle_error(bundle):
    decoder = bundle.decoder(threads=1)
    decoder._input_name = "no_such_input"  # what a graph that fails at run time looks like to the caller
    with pytest.raises(BundleError, match="the model failed to run"):
        decoder.decode(np.zeros((1, *bundle.latent_shape), np.float32))


def test_a_network_changed_after_loading_is_refused_when_its_session_is_made(tmp_path):
    """The loader keeps no graph bytes (a keyboard bundle's are 56 MB): each session reads its file again and
    checks it against the SHA-256 verified at load."""
    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle

    path = make_synthetic_bundle(tmp_path / "bundle")
    bundle = load_bundle(path)
    bundle.decoder(providers=["CPUExecutionProvider"])
    file = path / bundle.metadata["decoder"]
    file.write_bytes(file.read_bytes() + b"\0")
    with pytest.raises(BundleError, match="changed after the bundle was loaded"):
        bundle.decoder(providers=["CPUExecutionProvider"])
