"""bundle.json, typed: :class:`BundleManifest` is what every writer writes and what the loader reads.

The fields the engine relies on are typed and checked when read (:meth:`BundleManifest.from_dict`); the
descriptive ones (``training_config``, ``data``, ``metrics``, ``parity``) and anything else a writer records
(``described``: when and how it was exported, the training run) pass through unchanged. See
:mod:`synth.bundle.bundle` for the folder layout.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from synth.bundle.hashing import bundle_hash_of, is_sha256
from synth.errors import BundleError, ContractError
from synth.spectrogram import SpectrogramParams

__all__ = ["BundleManifest", "BUNDLE_FORMAT", "BUNDLE_JSON", "REQUIRED_KEYS", "file_name"]

BUNDLE_FORMAT = "melsynth.bundle/1"
BUNDLE_JSON = "bundle.json"
REQUIRED_KEYS = ("format", "spectrogram", "latent_shape", "decoder", "encoder", "macros", "sha256", "base_pitch")
_TYPED = (*REQUIRED_KEYS, "keys", "tiles", "training_config", "data", "metrics", "parity")
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")


def _frozen(value: Any) -> Any:
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


def _plain(value: Any) -> Any:
    """A JSON-ready copy: mappings as dicts, tuples as lists, all the way down."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class BundleManifest:
    """What bundle.json says.

    params : the spectrogram contract
    latent_shape : the latent's shape without the batch axis
    base_pitch : the MIDI pitch of the notes the model was trained on (a keyboard bundle: one of its keys)
    sha256 : file name -> hex SHA-256 of each ONNX file
    decoder, encoder, macros : file names inside the folder
    keys : a keyboard bundle's trained MIDI keys, ascending (None: one pitch)
    tiles : the tile decoder's description (:mod:`synth.bundle.tiles`), None without one
    training_config, data, metrics, parity : descriptive, passed through
    described : every other key a writer recorded, passed through
    """

    params: SpectrogramParams
    latent_shape: tuple[int, ...]
    base_pitch: int
    sha256: Mapping[str, str]
    decoder: str = "decoder.onnx"
    encoder: str = "encoder.onnx"
    macros: str = "macros.npz"
    keys: tuple[int, ...] | None = None
    tiles: Mapping[str, Any] | None = None
    training_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metrics: Mapping[str, Any] | None = None
    parity: Mapping[str, Any] | None = None
    described: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("sha256", "tiles", "training_config", "data", "metrics", "parity", "described"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def bundle_hash(self) -> str:
        """The hash of the decoder/encoder pair (:func:`synth.bundle.hashing.bundle_hash_of`)."""
        return bundle_hash_of(decoder_sha256=self.sha256[self.decoder], encoder_sha256=self.sha256[self.encoder])

    def to_dict(self) -> dict[str, Any]:
        """bundle.json's object."""
        doc = {
            "format": BUNDLE_FORMAT,
            "spectrogram": self.params.to_dict(),
            "latent_shape": list(self.latent_shape),
            "decoder": self.decoder,
            "encoder": self.encoder,
            "macros": self.macros,
            "sha256": dict(self.sha256),
            "base_pitch": int(self.base_pitch),
            "training_config": self.training_config,
            "data": self.data,
            "metrics": self.metrics,
            "parity": self.parity,
        }
        if self.keys is not None:
            doc["keys"] = list(self.keys)
        if self.tiles is not None:
            doc["tiles"] = self.tiles
        doc.update(self.described)
        return _plain(doc)

    @classmethod
    def from_dict(cls, doc: Any, *, source: str) -> BundleManifest:
        """Read and check bundle.json's object (``source`` names the file in errors): the format version, the
        required keys, the contract, the latent shape, the pitch, the hashes, the file names and the keys.
        Raises :class:`~synth.errors.BundleError` on the first problem."""
        if not isinstance(doc, dict):
            raise BundleError(f"{source}: expected a JSON object")
        fmt = doc.get("format")
        if fmt != BUNDLE_FORMAT:
            raise BundleError(f"{source}: bundle format {fmt!r} is not supported (this melsynth reads {BUNDLE_FORMAT!r})")
        missing = [k for k in REQUIRED_KEYS if k not in doc]
        if missing:
            raise BundleError(f"{source}: missing keys {missing}")
        try:
            params = SpectrogramParams.from_dict(doc["spectrogram"], source=f"{source} 'spectrogram'")
        except ContractError as exc:
            raise BundleError(str(exc)) from None
        latent_shape = doc["latent_shape"]
        if (not isinstance(latent_shape, list) or not latent_shape
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in latent_shape)):
            raise BundleError(f"{source}: latent_shape must be a non-empty list of positive integers, got {latent_shape!r}")
        base_pitch = doc["base_pitch"]
        if not isinstance(base_pitch, int) or isinstance(base_pitch, bool) or not 0 <= base_pitch <= 127:
            raise BundleError(f"{source}: base_pitch must be a MIDI pitch 0..127, got {base_pitch!r}")
        hashes = doc["sha256"]
        if not isinstance(hashes, dict):
            raise BundleError(f"{source}: 'sha256' must map file names to hex digests")
        names = {key: file_name(doc, key, source=source) for key in ("decoder", "encoder", "macros")}
        for key in ("decoder", "encoder"):
            if not is_sha256(hashes.get(names[key])):
                raise BundleError(f"{source}: no valid sha256 for {names[key]!r}")
        tiles = doc.get("tiles")
        if tiles is not None and not isinstance(tiles, dict):
            raise BundleError(f"{source}: 'tiles' must be an object")
        return cls(
            params=params,
            latent_shape=tuple(latent_shape),
            base_pitch=base_pitch,
            sha256=hashes,
            keys=_keys(doc.get("keys"), base_pitch=base_pitch, source=source),
            tiles=tiles,
            training_config=doc.get("training_config") or {},
            data=doc.get("data") or {},
            metrics=doc.get("metrics"),
            parity=doc.get("parity"),
            described={k: v for k, v in doc.items() if k not in _TYPED},
            **names,
        )


def file_name(doc: Mapping[str, Any], key: str, *, source: str) -> str:
    """``doc[key]`` when it is a plain file name inside the bundle folder (bundle.json cannot make the loader
    read other files), else BundleError."""
    name = doc[key]
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or ".." in name:
        raise BundleError(f"{source}: {key!r} must be a plain file name inside the bundle, got {name!r}")
    return name


def _keys(value: Any, *, base_pitch: int, source: str) -> tuple[int, ...] | None:
    """The trained keys of a keyboard bundle (bundle.json "keys"): None when absent (one pitch)."""
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) < 2
            or not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= 127 for k in value)
            or sorted(set(value)) != value):
        raise BundleError(f"{source}: keys must be an ascending list of at least two MIDI keys 0..127, got {value!r}")
    if base_pitch not in value:
        raise BundleError(f"{source}: base_pitch {base_pitch} is not one of the trained keys {value}")
    return tuple(value)
