"""Presets: named points of a bundle's latent space, one JSON file each under ``<bundle>/presets/``.

A preset file is a JSON object::

    {"name": "bright", "latent": [2048 floats], "latent_shape": [2, 8, 128],
     "source": {"note_str": ..., ...}, "bundle_hash": "<64 hex>"}

``bundle_hash`` (see :mod:`synth.bundle.hashing`) pins the preset to the networks whose latent space it
lives in; a preset of another bundle is refused, since its numbers mean nothing to this decoder.
Preset names become file names, and OSC messages name presets, so a name is checked before any file is
touched: only ``[A-Za-z0-9_.-]``, at most 100 characters, no leading dot, no ``..``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from synth.atomic import atomic_write_text
from synth.bundle.latent_limit import beyond_latent_limit
from synth.errors import PresetError
from synth.json_files import read_json_file

__all__ = [
    "Preset",
    "PRESETS_DIR",
    "MAX_PRESET_BYTES",
    "validate_preset_name",
    "preset_from_dict",
    "load_preset_file",
    "save_preset",
]

PRESETS_DIR = "presets"
# A 2048-value latent is ~45 kB of JSON; anything far larger is not a preset and is not parsed.
MAX_PRESET_BYTES = 4 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


def validate_preset_name(name: object) -> str:
    """Return ``name`` if it is a valid preset name, else raise :class:`PresetError`.

    Valid: 1..100 characters of ``[A-Za-z0-9_.-]``, not starting with ``.``, not containing ``..``.
    So a name can never be a path (no separators) nor a hidden or parent entry.
    """
    if not isinstance(name, str):
        raise PresetError(f"preset name must be a string, got {type(name).__name__}")
    if not _NAME.fullmatch(name) or name.startswith(".") or ".." in name:
        raise PresetError(
            f"invalid preset name {name[:120]!r}: use 1-100 characters of A-Z a-z 0-9 _ . - "
            "(no leading dot, no '..', no path separators)"
        )
    return name


@dataclasses.dataclass(frozen=True, eq=False)
class Preset:
    """A named latent point.

    ``latent``: read-only float32 array of the bundle's ``latent_shape``; ``source``: where it came from
    (note_str and metadata of the encoded note, or a description); ``bundle_hash``: the bundle it belongs to.
    """

    name: str
    latent: np.ndarray
    source: dict[str, Any]
    bundle_hash: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a preset file."""
        return {
            "name": self.name,
            "latent": [float(v) for v in self.latent.reshape(-1)],
            "latent_shape": list(self.latent.shape),
            "source": self.source,
            "bundle_hash": self.bundle_hash,
        }


def preset_from_dict(
    data: Any, *, latent_shape: tuple[int, ...], bundle_hash: str, source: str = "preset"
) -> Preset:
    """Validate a preset JSON object against a bundle's latent shape and hash.

    Raises :class:`PresetError` naming ``source`` for a wrong type, a bad name, another bundle's hash, a
    latent of the wrong size or shape, or values that are not finite or lie beyond
    :data:`~synth.bundle.latent_limit.LATENT_LIMIT`.
    """
    if not isinstance(data, dict):
        raise PresetError(f"{source}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in ("name", "latent", "bundle_hash") if k not in data]
    if missing:
        raise PresetError(f"{source}: missing keys {missing}")
    name = data["name"]
    try:
        validate_preset_name(name)
    except PresetError as exc:
        raise PresetError(f"{source}: {exc}") from None
    if data["bundle_hash"] != bundle_hash:
        raise PresetError(
            f"{source}: preset {name!r} was made for another bundle (bundle_hash "
            f"{str(data['bundle_hash'])[:12]}... != this bundle's {bundle_hash[:12]}...)"
        )
    latent = data["latent"]
    size = math.prod(latent_shape)
    if not isinstance(latent, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in latent
    ):
        raise PresetError(f"{source}: 'latent' must be a flat list of numbers")
    if len(latent) != size:
        raise PresetError(
            f"{source}: latent has {len(latent)} values, this bundle's latent {list(latent_shape)} has {size}"
        )
    if "latent_shape" in data and data["latent_shape"] != list(latent_shape):
        raise PresetError(
            f"{source}: latent_shape {data['latent_shape']!r} != this bundle's {list(latent_shape)}"
        )
    array = np.asarray(latent, dtype=np.float32).reshape(latent_shape)
    if not np.all(np.isfinite(array)):
        raise PresetError(f"{source}: latent contains NaN or Inf (or values beyond float32)")
    beyond = beyond_latent_limit(array)
    if beyond:
        raise PresetError(f"{source}: latent {beyond}")
    array.setflags(write=False)
    src = data.get("source", {})
    if not isinstance(src, dict):
        raise PresetError(f"{source}: 'source' must be a JSON object")
    return Preset(name=name, latent=array, source=src, bundle_hash=bundle_hash)


class PresetOwner(Protocol):
    """What a preset needs of its bundle (a :class:`~synth.bundle.Bundle` is one): where its presets live,
    the latent shape they must have, and the hash that pins them to its networks."""

    path: Path
    latent_shape: tuple[int, ...]
    bundle_hash: str


def load_preset_file(path: str | Path, *, bundle: PresetOwner) -> Preset:
    """Load one preset file for ``bundle`` (any path; no pickle, JSON only).

    Raises :class:`PresetError` for a missing or invalid file, another bundle's hash or a wrong latent size.
    """
    path = Path(path)
    return preset_from_dict(
        read_json_file(path, what="preset", error=PresetError, max_bytes=MAX_PRESET_BYTES), latent_shape=bundle.latent_shape, bundle_hash=bundle.bundle_hash, source=str(path)
    )


def save_preset(bundle: PresetOwner, preset: Preset, *, overwrite: bool = False) -> Path:
    """Write ``preset`` atomically to ``<bundle>/presets/<name>.json`` and return the path.

    The preset must belong to ``bundle`` and have its latent shape; an existing file is an error unless
    ``overwrite``.
    """
    checked = preset_from_dict(
        preset.to_dict(), latent_shape=bundle.latent_shape, bundle_hash=bundle.bundle_hash, source="preset"
    )
    path = bundle.path / PRESETS_DIR / f"{checked.name}.json"
    if path.exists() and not overwrite:
        raise PresetError(f"{path} already exists (choose another name or overwrite)")
    atomic_write_text(path, json.dumps(checked.to_dict()) + "\n")
    return path
