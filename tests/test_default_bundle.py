"""The committed default instrument (presets/default): a keyboard bundle (the home-key family started from the
one-pitch patch model, issue 28) that loads with its hashes and shapes checked, stays within its size, knows
the keys 36..84, carries the presets the issue asks for, decodes every preset to a finite spectrogram at the
keyboard's ends and its home key, and `melsynth info` describes it. (Its evaluate figures need the SoundFont
set, which is not committed.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synth.bundle import load_bundle

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "presets" / "default"
# The one-pitch default it was started from (the variant patch at key 60), kept beside it: old bundles play as
# before, and the keyboard's home key must sound exactly as this one does.
ONE_PITCH = REPO / "presets" / "one-pitch"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(DEFAULT)


def test_it_has_the_papers_latent_size_knows_the_keyboard_and_is_within_its_size(bundle):
    meta = json.loads((DEFAULT / "bundle.json").read_text())
    assert meta["training_config"]["name"] == "home-key"
    assert bundle.latent_size == 2048  # the paper's no_dense latent: 3.1 % of the 128 x 512 input
    assert bundle.base_pitch == 60
    assert list(bundle.keys) == list(range(36, 85, 3))  # every third key: the nearest is a semitone away
    # Two graphs of 17 per-key tables (float16) each; the one-pitch bundle was 19 MB.
    size = sum(p.stat().st_size for p in DEFAULT.rglob("*") if p.is_file())
    assert size < 64 * 1024 * 1024
    assert set(meta["metrics"]) >= {"rmse", "ssim", "precision", "recall", "f1", "notes"}


def test_presets_cover_every_family_of_its_data(bundle):
    meta = json.loads((DEFAULT / "bundle.json").read_text())
    assert len(bundle.presets) >= 24
    families = {p.source.get("instrument_family_str") for p in bundle.presets.values()}
    assert families >= set(meta["data"]["families"])


@pytest.mark.parametrize("key", [36, 60, 84])
def test_every_preset_decodes_to_a_finite_spectrogram(bundle, key):
    latents = np.stack([p.latent for p in bundle.presets.values()])
    mels = bundle.decoder(threads=1).decode(latents, pitch=key)
    assert mels.shape == (len(latents), bundle.params.n_mels, bundle.params.frames)
    assert np.all(np.isfinite(mels)) and mels.min() >= 0.0 and mels.max() <= 1.0
    assert np.all(mels.max(axis=(1, 2)) > 0.3)  # none decodes to silence


def test_info_describes_it():
    done = subprocess.run([sys.executable, "-m", "synth.cli", "info", "--bundle", str(DEFAULT)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    bundle = load_bundle(DEFAULT)
    assert "latent       1x8x256 = 2048 values" in done.stdout
    assert "17 trained, 36..84" in done.stdout
    assert f"bundle hash  {bundle.bundle_hash}" in done.stdout
    assert all(name in done.stdout for name in bundle.presets)


def test_at_its_home_key_it_decodes_and_encodes_exactly_as_the_one_pitch_model_it_started_from(bundle):
    """`train --start-from` kept the one-pitch model's maps at key 60: the same presets, the same latents (within
    1e-3 of values up to 25), the same decodes (within 1e-4 on the unit scale) and the same codes of a note, so a preset sounds at key 60
    as it did before the keyboard model became the default."""
    one = load_bundle(ONE_PITCH)
    assert one.keys is None and one.base_pitch == 60
    assert set(one.presets) == set(bundle.presets)
    for name, preset in one.presets.items():  # re-encoded by the export (its keras model, not ONNX): ~1e-5 off
        np.testing.assert_allclose(bundle.presets[name].latent, preset.latent, atol=1e-3)
    latents = np.stack([p.latent for p in one.presets.values()])
    np.testing.assert_allclose(bundle.decoder(threads=1).decode(latents, pitch=60),
                               one.decoder(threads=1).decode(latents), atol=1e-4)
    mels = one.decoder(threads=1).decode(latents[:4])
    np.testing.assert_allclose(bundle.encoder(threads=1).encode(mels, pitch=60),
                               one.encoder(threads=1).encode(mels), atol=1e-4)


def test_the_one_pitch_models_tiles_decode_every_window_exactly_like_the_whole_note():
    """The one-pitch bundle's decoder is its own tile decoder: every window of columns, the note's edges
    included, equals the whole decode on its exact span (within 1e-5 on the unit scale), for every preset."""
    bundle = load_bundle(ONE_PITCH)
    latents = np.stack([p.latent for p in bundle.presets.values()])
    whole = bundle.decoder(threads=1).decode(latents)
    tile = bundle.tile_decoder(threads=1)
    layout = bundle.tiles
    assert list(layout.starts) == list(range(layout.total_columns - layout.columns + 1))
    for start in layout.starts:
        out = tile.decode(np.ascontiguousarray(latents[:, :, start : start + layout.columns]))
        first, end = layout.exact_span(start)
        offset = start * layout.frames_per_column
        np.testing.assert_allclose(out[:, :, first - offset : end - offset], whole[:, :, first:end], atol=1e-5)


def test_the_offline_commands_play_and_encode_it(tmp_path):
    """What a musician runs first, on the default itself: `melsynth render` of a preset off its trained keys and
    `melsynth encode` of that render (its pitch found, encoded at the nearest key), in fresh processes."""
    import soundfile as sf

    out = tmp_path / "note.wav"
    run = subprocess.run([sys.executable, "-m", "synth.cli", "render", "--bundle", str(DEFAULT), "--preset",
                          "violin_fluidr3_v127", "--note", "62", "--hold", "1.0", "--samplerate", "16000",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    audio, rate = sf.read(out)
    assert rate == 16000 and np.isfinite(audio).all() and np.max(np.abs(audio)) > 0.01
    copy = tmp_path / "bundle"
    shutil.copytree(DEFAULT, copy)  # encode writes a preset into the bundle: never into the committed one
    run = subprocess.run([sys.executable, "-m", "synth.cli", "encode", "--bundle", str(copy), str(out), "--name",
                          "violin_again"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "encoded at key 63" in run.stdout, run.stdout  # 62: the trained 63 is nearer than 60
