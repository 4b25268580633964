"""The committed default instrument (presets/default): it loads with its hashes and shapes checked, stays
small, carries the presets the issue asks for, decodes every preset to a finite spectrogram, and `melsynth
info` describes it. (Its evaluate figures need the SoundFont set, which is not committed.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synth.bundle import load_bundle

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "presets" / "default"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(DEFAULT)


def test_it_has_the_papers_latent_size_and_is_small(bundle):
    meta = json.loads((DEFAULT / "bundle.json").read_text())
    assert meta["training_config"]["dense"] is None  # no dense layer
    assert bundle.latent_size == 2048  # the paper's no_dense latent: 3.1 % of the 128 x 512 input
    assert bundle.tiles is not None  # a latent change can be decoded where the voices play first
    size = sum(p.stat().st_size for p in DEFAULT.rglob("*") if p.is_file())
    assert size < 20 * 1024 * 1024
    assert set(meta["metrics"]) >= {"rmse", "ssim", "precision", "recall", "f1", "notes"}


def test_presets_cover_every_family_of_its_data(bundle):
    meta = json.loads((DEFAULT / "bundle.json").read_text())
    assert len(bundle.presets) >= 24
    families = {p.source.get("instrument_family_str") for p in bundle.presets.values()}
    assert families >= set(meta["data"]["families"])


def test_every_preset_decodes_to_a_finite_spectrogram(bundle):
    latents = np.stack([p.latent for p in bundle.presets.values()])
    mels = bundle.decoder(threads=1).decode(latents)
    assert mels.shape == (len(latents), bundle.params.n_mels, bundle.params.frames)
    assert np.all(np.isfinite(mels)) and mels.min() >= 0.0 and mels.max() <= 1.0
    assert np.all(mels.max(axis=(1, 2)) > 0.3)  # none decodes to silence


def test_info_describes_it():
    done = subprocess.run([sys.executable, "-m", "synth.cli", "info", "--bundle", str(DEFAULT)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    bundle = load_bundle(DEFAULT)
    assert "latent       1x8x256 = 2048 values" in done.stdout
    assert f"bundle hash  {bundle.bundle_hash}" in done.stdout
    assert all(name in done.stdout for name in bundle.presets)


def test_its_tiles_decode_every_window_exactly_like_the_whole_note(bundle):
    """The default's decoder is its own tile decoder: every window of columns, the note's edges included,
    equals the whole decode on its exact span (within 1e-5 on the unit scale), for every preset."""
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
