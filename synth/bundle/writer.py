"""The one writer of a bundle folder's files, for export and the synthetic test bundle alike.

:func:`write_bundle` writes the ONNX files, macros.npz, the presets and bundle.json into a folder the caller
made (export and the synthetic bundle write into a temporary folder that :func:`synth.atomic.atomic_directory`
renames into place only when whole), computing the hashes in one place: each file's SHA-256, the bundle hash
every preset carries. The loader (:func:`synth.bundle.load_bundle`) reads exactly this.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth.bundle.hashing import sha256_bytes
from synth.bundle.macros import MACRO_KEYS, Macros, check_macro_arrays
from synth.bundle.manifest import BUNDLE_JSON, BundleManifest
from synth.bundle.presets import PRESETS_DIR, Preset

__all__ = ["write_bundle", "PresetSeed"]


@dataclasses.dataclass(frozen=True, eq=False)
class PresetSeed:
    """A preset to write: its ``name``, ``latent`` (the bundle's latent shape, or flat) and ``source`` (where it
    came from: the note it encodes, or a description)."""

    name: str
    latent: np.ndarray
    source: Mapping[str, Any]


def write_bundle(folder: Path, *, manifest: BundleManifest, onnx: Mapping[str, bytes], macros: Macros | Mapping[str, np.ndarray],
                 presets: Sequence[PresetSeed]) -> BundleManifest:
    """Write a whole bundle into the existing, empty ``folder``; returns the manifest as written.

    ``manifest``: everything bundle.json says but the hashes, which are computed here from ``onnx`` (file name ->
    bytes: the decoder and encoder under the manifest's names, and a tile decoder if it names one). Macros are
    checked against the latent shape before anything is written.
    """
    folder = Path(folder)
    manifest = dataclasses.replace(manifest, sha256={name: sha256_bytes(data) for name, data in onnx.items()})
    arrays = ({k: getattr(macros, k) for k in MACRO_KEYS} if isinstance(macros, Macros) else dict(macros))
    checked = check_macro_arrays(arrays, latent_shape=manifest.latent_shape, source=f"{folder}/{manifest.macros}")
    for name, data in onnx.items():
        (folder / name).write_bytes(data)
    buf = io.BytesIO()
    np.savez(buf, **{k: getattr(checked, k) for k in MACRO_KEYS})
    (folder / manifest.macros).write_bytes(buf.getvalue())
    (folder / PRESETS_DIR).mkdir()
    bundle_hash = manifest.bundle_hash
    for seed in presets:
        doc = Preset(name=seed.name, latent=np.asarray(seed.latent, dtype=np.float32).reshape(manifest.latent_shape),
                     source=dict(seed.source), bundle_hash=bundle_hash).to_dict()
        (folder / PRESETS_DIR / f"{seed.name}.json").write_text(json.dumps(doc) + "\n")
    (folder / BUNDLE_JSON).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest
