"""Tiny features folders for the training tests, written by a small writer that follows the layout of
training/datasets/features.py (features.npy, index.json, spectrogram.json, splits.json, checksums.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from synth.spectrogram import SpectrogramParams
from training.datasets.features import sha256_file

__all__ = ["SMALL_PARAMS", "LEGACY_FLAT_PATCH", "write_features", "synthetic_notes", "small_config"]

# 64 x 64 inputs keep every model tiny; with 3 stages the downsampling is 64 (latent 1 x 1 x F).
SMALL_PARAMS = SpectrogramParams(n_mels=64, frames=64)


def synthetic_notes(n: int, *, params: SpectrogramParams = SMALL_PARAMS, seed: int = 0) -> np.ndarray:
    """(n, n_mels, frames) float32 in [0, 1]: harmonic stripes with a decay and a little noise."""
    rng = np.random.default_rng(seed)
    mels = np.arange(params.n_mels)[:, None]
    frames = np.arange(params.frames)[None, :]
    out = np.empty((n, params.n_mels, params.frames), np.float32)
    for i in range(n):
        f0 = rng.integers(2, 8)
        stripes = np.exp(-0.5 * ((mels % (2 * f0) - f0) / 1.2) ** 2)
        decay = np.exp(-frames / rng.uniform(10, 60))
        out[i] = np.clip(0.8 * stripes * decay + 0.05 * rng.random((params.n_mels, params.frames)), 0, 1)
    return out


def write_features(
    path: Path,
    x: np.ndarray,
    *,
    params: SpectrogramParams = SMALL_PARAMS,
    splits: dict[str, list[int]] | None = None,
) -> Path:
    """Write a features folder holding ``x`` (N, n_mels, frames); default split 60/20/20 in row order."""
    path.mkdir(parents=True, exist_ok=True)
    n = len(x)
    np.save(path / "features.npy", np.asarray(x, dtype=np.float32))
    rows = [
        {"note_str": f"synth_lead_synthetic_{i:03d}-060-100", "pitch": 60, "velocity": 100,
         "instrument_str": f"synth_lead_synthetic_{i:03d}", "instrument_family_str": "synth_lead"}
        for i in range(n)
    ]
    (path / "index.json").write_text(json.dumps({"rows": rows}))
    params.save(path / "spectrogram.json")
    if splits is None:
        a, b = int(n * 0.6), int(n * 0.8)
        splits = {"train": list(range(a)), "valid": list(range(a, b)), "test": list(range(b, n))}
    (path / "splits.json").write_text(json.dumps({"rule": "random", "seed": 0, **splits}))
    (path / "checksums.json").write_text(json.dumps({"features.npy": sha256_file(path / "features.npy")}))
    return path


# The patch variant's config.json section as every run written before the schedule was split out has it: one
# flat object of 33 fields (ModelConfig.to_dict at 9ac36a2).
LEGACY_FLAT_PATCH = {
    "name": "patch", "pooling": "max", "filters": [256], "kernel_size": 4, "strides": 2, "activation": "tanh",
    "dense": None, "dropout_where": "none", "dropout_rate": 0.3, "regularizer": "none", "regularizer_norm": "l2",
    "regularizer_where": "D", "regularizer_weight": 0.0001, "output_activation": "clip",
    "output_layer": "conv_transpose", "residual_blocks": 0, "learning_rate": 0.0001, "batch_size": 16,
    "patience": 10, "max_epochs": 300, "seed": 0, "lr_patience": 3, "lr_factor": 0.5, "min_delta": 0.002,
    "clipnorm": 1.0, "frequency_bias": False, "mel_head": 0, "layout": "patch", "patch_frames": 64, "hidden": 0,
    "keys": [], "home_key": 60, "key_rank": 0,
}


def flat_form(config, *, nested_schedule: bool = True) -> dict:
    """``config`` as the "config" of a config.json written before each family owned its settings: one flat
    object of every family's fields, the others at the values they then had (ModelConfig.to_dict at 42c02d7),
    the schedule nested; with ``nested_schedule=False`` its fields flat too, as before 5fec03b."""
    patches = config.layout != "conv2d"
    doc = {
        "name": config.name, "pooling": "max", "filters": [32, 64, 128], "kernel_size": 4, "strides": 2,
        "activation": "tanh", "dense": None, "dropout_where": "none", "dropout_rate": 0.3, "regularizer": "none",
        "regularizer_norm": "l2", "regularizer_where": "D", "regularizer_weight": 0.0001,
        "output_activation": "clip" if patches else "sigmoid", "output_layer": "conv_transpose",
        "residual_blocks": 0, "frequency_bias": False, "mel_head": 0, "layout": config.layout, "patch_frames": 64,
        "hidden": 0, "keys": [], "home_key": 60, "key_rank": 0,
        **config.architecture.to_dict(),
    }
    schedule = config.schedule.to_dict()
    return {**doc, "schedule": schedule} if nested_schedule else {**doc, **schedule}


def small_config(name: str = "no_dense", **changes):
    """A named variant shrunk for tests (few filters, small batch, few epochs)."""
    from training.model.config import variant

    config = variant(name)
    # The patch layout has one stage: 8 latent values per column of 16 frames (4 columns of a 64-frame note).
    shrunk = dict(filters=(8,), patch_frames=16) if config.layout in ("patch", "keyboard", "home_key") \
        else dict(filters=(4, 8, 16))
    if config.layout == "keyboard":
        shrunk["hidden"] = 16
    if config.layout == "home_key":
        shrunk.update(keys=(48, 60, 72), key_rank=4)
    base = dict(**shrunk, batch_size=8, max_epochs=2)
    base.update(changes)
    return config.with_changes(**base)
