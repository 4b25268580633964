"""The model bundle: a folder that carries one trained autoencoder as ONNX, checked before use.

Layout of a bundle folder::

    bundle.json     the description below
    decoder.onnx    input "latent" [batch, *latent_shape] -> output "mel" [batch, n_mels, frames], float32
    encoder.onnx    input "mel" [batch, n_mels, frames] -> output "latent" [batch, *latent_shape], float32
    macros.npz      mean latent, principal components and their stds (:mod:`synth.bundle.macros`)
    presets/*.json  named latents (:mod:`synth.bundle.presets`)
    decoder_tile.onnx  optional: the decoder over a window of latent time columns (:mod:`synth.bundle.tiles`)

A decoder may leave its input's column axis (axis 2 of [batch, rows, columns, channels]) dynamic, named
"columns": it then decodes any window of columns, and ``tiles`` may name decoder.onnx itself (a patch-layout
model, whose columns decode their own frames only). Every graph is run once on its declared shapes at load.

``bundle.json`` keys: ``format`` ("melsynth.bundle/1"), ``spectrogram`` (the contract,
:class:`~synth.spectrogram.SpectrogramParams`), ``latent_shape``, ``decoder``, ``encoder`` and ``macros``
(file names inside the folder), ``sha256`` (file name -> hex SHA-256 of each ONNX file), ``base_pitch``
(MIDI pitch of the notes the model was trained on) and descriptive keys the loader passes through:
``training_config``, ``data``, ``metrics``, ``parity``. Optional ``tiles``: the tile decoder and where it is
exact (:mod:`synth.bundle.tiles`); a bundle without it decodes whole notes only. Optional ``keys`` (a
keyboard bundle, issue 28): the ascending MIDI keys the decoder was trained on, ``base_pitch`` among them;
every network then takes a second input "pitch", int32 [batch, 1], the key of each row (the encoder's: the
note's; the decoder's: the key to sound). A bundle without ``keys`` knows one pitch and takes none.

The bundle hash (``Bundle.bundle_hash``, written into every preset) is
``sha256(bytes.fromhex(sha256[decoder]) + bytes.fromhex(sha256[encoder]))`` in hex: it names the pair of
networks, so presets survive edits of the descriptive fields but not a re-export (:mod:`.hashing`).

:func:`load_bundle` checks all of it (format version, hashes, ONNX input/output names, types and shapes
against ``latent_shape`` and the contract, macros, presets) and raises :class:`BundleError` on the first
problem, so nothing half-valid ever reaches the audio path. Nothing is unpickled.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth.bundle.hashing import is_sha256, sha256_bytes
from synth.bundle.macros import Macros, load_macros
from synth.bundle.manifest import BUNDLE_FORMAT, BUNDLE_JSON, REQUIRED_KEYS, BundleManifest, file_name
from synth.bundle.presets import (
    PRESETS_DIR,
    Preset,
    load_preset_file,
    preset_from_dict,
    validate_preset_name,
)
from synth.bundle.runtime import PITCH_INPUT, Decoder, Encoder, release_free_memory
from synth.bundle.tiles import TILES_KEY, TileLayout, tile_layout_from_metadata
from synth.errors import BundleError, PresetError
from synth.json_files import read_json_file

__all__ = ["Bundle", "load_bundle", "BUNDLE_FORMAT", "BUNDLE_JSON", "REQUIRED_KEYS", "BundleManifest"]

_MAX_JSON_BYTES = 16 * 1024 * 1024
#: The one input axis a graph may leave dynamic: the latent's time columns (see the module docstring).
COLUMNS_DIM = "columns"


class Bundle:
    """A loaded, fully checked model bundle. Build it with :func:`load_bundle`.

    Attributes: ``path``, ``manifest`` (bundle.json, typed), ``params`` (the contract), ``latent_shape``,
    ``latent_size``, ``base_pitch``, ``keys``, ``bundle_hash``, ``presets`` (name -> :class:`Preset`),
    ``macros`` (:class:`Macros`), ``sha256`` (file name -> digest of each checked ONNX file), ``tiles``.
    """

    def __init__(
        self,
        *,
        path: Path,
        manifest: BundleManifest,
        models: Mapping[str, bytes],
        sha256: dict[str, str],
        macros: Macros,
        tiles: TileLayout | None = None,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.params = manifest.params
        self.latent_shape = manifest.latent_shape
        self.latent_size = math.prod(manifest.latent_shape)
        self.base_pitch = manifest.base_pitch
        self.sha256 = sha256
        self.bundle_hash = manifest.bundle_hash
        self.macros = macros
        self.tiles = tiles
        #: The MIDI keys a keyboard bundle's decoder was trained on (its networks then take the pitch as a
        #: second input); None for a bundle that knows one pitch, ``base_pitch``, and transposes it.
        self.keys = manifest.keys
        # Each network's bytes by role, hash-checked when read (load_bundle's: read again from the file for each
        # session, so a session is built from exactly what was verified, without keeping 28-56 MB of graphs).
        self._models = models
        self.presets: dict[str, Preset] = {}
        # Preset files that could not be loaded, by file name, with the reason: the bundle plays without them.
        self.broken_presets: dict[str, str] = {}

    @property
    def metadata(self) -> dict[str, Any]:
        """bundle.json as a plain object (a copy; :attr:`manifest` is the typed form)."""
        return self.manifest.to_dict()

    @property
    def mel_shape(self) -> tuple[int, int]:
        """``(n_mels, frames)`` of the contract."""
        return (self.params.n_mels, self.params.frames)

    @property
    def presets_dir(self) -> Path:
        return self.path / PRESETS_DIR

    def nearest_key(self, pitch: float) -> int:
        """The trained key nearest ``pitch`` (the lower one of two as near); ``base_pitch`` for a bundle that
        knows one pitch."""
        if self.keys is None:
            return self.base_pitch
        keys = np.asarray(self.keys)
        return int(keys[int(np.argmin(np.abs(keys - pitch)))])

    @property
    def _probe_pitch(self) -> int | None:
        return None if self.keys is None else self.base_pitch

    # ------------------------------------------------------------------ networks
    def graph_bytes(self, role: str) -> bytes:
        """The ONNX bytes of ``role`` ("decoder", "encoder" or "tile_decoder"), read again and hash-checked:
        what a session of this bundle runs, for a reader of its weights (a new model keeping this one's map)."""
        if role not in self._models:
            raise BundleError(f"{self.path}: no {role} graph (it holds {sorted(self._models)})")
        return self._models[role]

    def decoder(self, *, providers: Sequence[str] | None = None, threads: int | None = None,
                memory_arena: bool = True) -> Decoder:
        """A new onnxruntime decoder session (CUDA when available, else CPU; see ``.provider``;
        ``memory_arena``: see :func:`~synth.bundle.runtime.make_session`)."""
        return Decoder(
            self._models["decoder"],
            name=f"{self.path.name}/{self.metadata['decoder']}",
            input_name="latent",
            output_name="mel",
            input_shape=self.latent_shape,
            output_shape=self.mel_shape,
            providers=providers,
            threads=threads,
            probe_pitch=self._probe_pitch,
            memory_arena=memory_arena,
        )

    def keyed_decoder(self, *, providers: Sequence[str] | None = None, threads: int | None = None):
        """A keyboard bundle's decoder for the engine: its per-key tables run in numpy
        (:func:`~synth.bundle.key_tables.key_tables`, 0.2-0.3 ms a key where the graph takes 1.5-2.7) when the
        graph is a home-key one, they decode what it does and the session would run on the CPU; else the
        onnxruntime session (:meth:`decoder`). Either has ``decode_at_keys``. The session checked against runs
        without onnxruntime's memory arena, a key at a time, and is dropped when the tables are kept: its
        memory goes back (with the arena and the 17 keys at once, 120 MB of it stayed resident)."""
        if self.keys is None:
            return self.decoder(providers=providers, threads=threads)
        from synth.bundle.key_tables import key_tables

        check = self.decoder(providers=providers, threads=threads, memory_arena=False)
        if check.provider != "CPUExecutionProvider":
            return self.decoder(providers=providers, threads=threads)
        tables = key_tables(self._models["decoder"], session=check, keys=self.keys,
                            latent_shape=tuple(self.latent_shape), n_mels=self.params.n_mels)
        del check
        if tables is None:
            return self.decoder(providers=providers, threads=threads)
        release_free_memory()  # what the checked session and the parsed graph left in the heap (about 90 MB)
        return tables

    def tile_decoder(self, *, providers: Sequence[str] | None = None, threads: int | None = None) -> Decoder | None:
        """A new onnxruntime session of the tile decoder (a window of ``tiles.columns`` latent columns ->
        ``columns * frames_per_column`` frames), or None for a bundle without one."""
        if self.tiles is None:
            return None
        rows, _, channels = self.latent_shape
        return Decoder(
            self._models["tile_decoder"],
            name=f"{self.path.name}/{self.metadata[TILES_KEY]['decoder']}",
            input_name="latent",
            output_name="mel",
            input_shape=(rows, self.tiles.columns, channels),
            output_shape=(self.params.n_mels, self.tiles.columns * self.tiles.frames_per_column),
            providers=providers,
            threads=threads,
            probe_pitch=self._probe_pitch,
        )

    def encoder(self, *, providers: Sequence[str] | None = None, threads: int | None = None) -> Encoder:
        """A new onnxruntime encoder session (CUDA when available, else CPU; see ``.provider``)."""
        return Encoder(
            self._models["encoder"],
            name=f"{self.path.name}/{self.metadata['encoder']}",
            input_name="mel",
            output_name="latent",
            input_shape=self.mel_shape,
            output_shape=self.latent_shape,
            providers=providers,
            threads=threads,
            probe_pitch=self._probe_pitch,
        )

    # ------------------------------------------------------------------ presets
    def preset(self, name: str) -> Preset:
        """The preset called ``name``.

        The name is validated first (so ``../../etc/passwd`` never reaches the file system); a preset saved
        after loading is read from ``<bundle>/presets/<name>.json``. Raises :class:`PresetError`.
        """
        validate_preset_name(name)
        found = self.presets.get(name)
        if found is not None:
            return found
        path = self.presets_dir / f"{name}.json"
        if not path.is_file():
            known = ", ".join(sorted(self.presets)[:20]) or "none"
            raise PresetError(f"unknown preset {name!r} in {self.path} (known: {known})")
        found = self._load_preset_path(path)
        self.presets[name] = found
        return found

    def make_preset(self, name: str, latent: np.ndarray, *, source: dict[str, Any]) -> Preset:
        """A checked :class:`Preset` of this bundle (not saved; see :func:`synth.bundle.save_preset`)."""
        flat = np.asarray(latent, dtype=np.float32).reshape(-1)
        return preset_from_dict(
            {"name": name, "latent": flat.tolist(), "source": source, "bundle_hash": self.bundle_hash},
            latent_shape=self.latent_shape,
            bundle_hash=self.bundle_hash,
        )

    def reload_presets(self) -> dict[str, Preset]:
        """Re-read every preset file. A file that is not a valid preset of this bundle is left out and named
        in :attr:`broken_presets` with the reason, so one bad file cannot cost a performer the instrument;
        a presets path that is not a folder raises :class:`BundleError`."""
        presets: dict[str, Preset] = {}
        broken: dict[str, str] = {}
        directory = self.presets_dir
        if directory.exists():
            if not directory.is_dir() or directory.is_symlink():
                raise BundleError(f"{directory}: not a folder")
            for path in sorted(directory.glob("*.json")):
                if path.name.startswith("."):
                    continue  # temporary files of atomic writes
                try:
                    preset = self._load_preset_path(path)
                except PresetError as exc:
                    broken[path.name] = str(exc)
                    continue
                presets[preset.name] = preset
        self.presets = presets
        self.broken_presets = broken
        return presets

    def _load_preset_path(self, path: Path) -> Preset:
        # Only regular files directly inside presets/: a symlink out of the folder is not followed.
        if path.is_symlink() or not path.is_file():
            raise PresetError(f"{path}: not a regular file")
        preset = load_preset_file(path, bundle=self)
        if preset.name != path.stem:
            raise PresetError(f"{path}: file name does not match the preset name {preset.name!r}")
        return preset

    # ------------------------------------------------------------------ description
    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``melsynth info --json`` prints, less the provider)."""
        return {
            "path": str(self.path),
            "format": self.metadata["format"],
            "spectrogram": self.params.to_dict(),
            "latent_shape": list(self.latent_shape),
            "latent_size": self.latent_size,
            "base_pitch": self.base_pitch,
            "keys": None if self.keys is None else list(self.keys),
            "bundle_hash": self.bundle_hash,
            "sha256": dict(self.sha256),
            "metrics": self.metadata.get("metrics"),
            "parity": self.metadata.get("parity"),
            "macros": {"components": self.macros.count, "stds": [float(s) for s in self.macros.stds]},
            "presets": {name: p.source for name, p in sorted(self.presets.items())},
            "training_config": self.metadata.get("training_config"),
            "data": self.metadata.get("data"),
        }

    def __repr__(self) -> str:
        return (
            f"Bundle({str(self.path)!r}, latent_shape={self.latent_shape}, base_pitch={self.base_pitch}, "
            f"presets={len(self.presets)}, hash={self.bundle_hash[:12]})"
        )


# ---------------------------------------------------------------------- loading and checks
def _regular_file(file: Path, *, what: str) -> None:
    """A regular file inside the bundle, not a link (which could lead out of the folder and its hashes) nor a
    FIFO or device (a FIFO as decoder.onnx once hung the read)."""
    st = os.lstat(file)
    if stat.S_ISLNK(st.st_mode):
        raise BundleError(f"{file}: {what} must be a regular file inside the bundle, not a link")
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{file}: {what} must be a regular file, not a FIFO, device, socket or folder")


def _read_bundle_json(path: Path) -> dict[str, Any]:
    file = path / BUNDLE_JSON
    if not os.path.lexists(file):
        raise BundleError(f"{path}: not a model bundle (no {BUNDLE_JSON})")
    _regular_file(file, what="bundle.json")
    data = read_json_file(file, what="bundle description", error=BundleError, max_bytes=_MAX_JSON_BYTES)
    if not isinstance(data, dict):
        raise BundleError(f"{file}: expected a JSON object")
    return data


def _dims(value_info) -> tuple[int | None, ...] | None:
    """Declared dims of an ONNX value (None per unknown or symbolic dim); None when the rank is unknown."""
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)


def _dim_name(value_info, axis: int) -> str:
    dim = value_info.type.tensor_type.shape.dim[axis]
    return dim.dim_param if dim.HasField("dim_param") else ""


# Operators that repeat a subgraph as often as the model says: a Loop with a huge trip count once hung `info`,
# `render` and `serve` in the load-time probe. melsynth's networks are straight-line graphs.
UNBOUNDED_OPS = frozenset({"Loop", "Scan", "SequenceMap"})


def _graphs(graph):
    """``graph`` and every subgraph inside its nodes' attributes."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in (*([attr.g] if attr.HasField("g") else []), *attr.graphs):
                yield from _graphs(sub)


def _check_self_contained(model, *, source: str) -> None:
    """A network holds all its weights (no external data: an initializer stored "beside" the file was read from
    the current folder, outside the bundle and its hashes) and runs for a bounded time (no loop operators)."""
    import onnx

    for graph in _graphs(model.graph):
        for tensor in graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise BundleError(f"{source}: initializer {tensor.name!r} keeps its data in another file; a bundle's "
                                  "networks must hold all their weights")
        for node in graph.node:
            if node.op_type in UNBOUNDED_OPS:
                raise BundleError(f"{source}: uses the operator {node.op_type}, which repeats a subgraph as often as "
                                  "the model says; melsynth's networks are straight-line graphs")


def _check_onnx(
    model_bytes: bytes,
    *,
    source: str,
    input_name: str,
    input_shape: tuple[int, ...],
    output_name: str,
    output_shape: tuple[int, ...],
    keyed: bool = False,
) -> None:
    import onnx

    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as exc:  # protobuf's DecodeError and friends; all mean "not an ONNX model"
        raise BundleError(f"{source}: not a readable ONNX model ({exc})") from None
    _check_self_contained(model, source=source)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if keyed:  # a keyboard bundle's network: the pitch of each row, int32 [batch, 1], after the main input
        if [v.name for v in inputs] != [input_name, PITCH_INPUT]:
            raise BundleError(f"{source}: a keyboard bundle's network takes inputs [{input_name!r}, "
                              f"{PITCH_INPUT!r}], found {[v.name for v in inputs]}")
        pitch = inputs.pop()
        if pitch.type.tensor_type.elem_type != onnx.TensorProto.INT32 or (_dims(pitch) or (None,))[1:] != (1,):
            raise BundleError(f"{source}: input {PITCH_INPUT!r} must be int32 [batch, 1]")
    outputs = list(graph.output)
    for kind, values, name, shape in (
        ("input", inputs, input_name, input_shape),
        ("output", outputs, output_name, output_shape),
    ):
        if [v.name for v in values] != [name]:
            raise BundleError(
                f"{source}: expected one {kind} named {name!r}, found {[v.name for v in values]}"
            )
        value = values[0]
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise BundleError(f"{source}: {kind} {name!r} must be float32")
        dims = _dims(value)
        expected = (None, *shape)
        if dims is None:
            if kind == "input":
                raise BundleError(f"{source}: input {name!r} has no declared shape")
            continue  # an undeclared output shape is checked by running the model (runtime probe)
        if len(dims) != len(expected):
            raise BundleError(
                f"{source}: {kind} {name!r} has rank {len(dims)}, expected [batch, {', '.join(map(str, shape))}]"
            )
        if dims[0] is not None:
            raise BundleError(
                f"{source}: {kind} {name!r} has a fixed batch size {dims[0]}; it must be dynamic"
            )
        for axis, (got, want) in enumerate(zip(dims[1:], shape, strict=True), start=1):
            if got is None and kind == "input" and not (
                    axis == 2 and name == "latent" and _dim_name(value, axis) == COLUMNS_DIM):
                raise BundleError(f"{source}: input {name!r} leaves axis {axis} undeclared (expected {want})")
            if got is not None and got != want:
                shown = ["batch"] + ["?" if d is None else str(d) for d in dims[1:]]
                raise BundleError(
                    f"{source}: {kind} {name!r} has shape [{', '.join(shown)}], bundle.json and the contract "
                    f"say [batch, {', '.join(map(str, shape))}]"
                )


def load_bundle(path: str | Path) -> Bundle:
    """Load and check a model bundle folder.

    Checks, in order: bundle.json is a JSON object with :data:`REQUIRED_KEYS`; ``format`` is
    :data:`BUNDLE_FORMAT`; the spectrogram contract; ``latent_shape``; ``base_pitch``; each ONNX file exists
    and matches its SHA-256; each ONNX graph's input/output names, float32 types and shapes agree with
    ``latent_shape`` and the contract's ``n_mels``/``frames``; macros.npz; every preset file.
    Raises :class:`BundleError` on any problem. Sessions are created later by ``.decoder()``/``.encoder()``.
    """
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle folder")
    source = path / BUNDLE_JSON
    manifest = BundleManifest.from_dict(_read_bundle_json(path), source=str(source))
    params, latent_shape, keys = manifest.params, manifest.latent_shape, manifest.keys

    models: dict[str, tuple[Path, str]] = {}
    digests: dict[str, str] = {}
    mel_shape = (params.n_mels, params.frames)
    graphs = [
        ("decoder", manifest.decoder, "latent", latent_shape, "mel", mel_shape),
        ("encoder", manifest.encoder, "mel", mel_shape, "latent", latent_shape),
    ]
    tiles = None
    if manifest.tiles is not None:
        tiles = tile_layout_from_metadata(dict(manifest.tiles), latent_shape=latent_shape, frames=params.frames,
                                          source=str(source))
        window = (latent_shape[0], tiles.columns, latent_shape[2])
        graphs.append(("tile_decoder", file_name(manifest.tiles, "decoder", source=str(source)), "latent", window,
                       "mel", (params.n_mels, tiles.columns * tiles.frames_per_column)))
    for role, name, in_name, in_shape, out_name, out_shape in graphs:
        file = path / name
        expected = manifest.sha256.get(name)
        if not is_sha256(expected):
            raise BundleError(f"{source}: no valid sha256 for {name!r}")
        try:
            _regular_file(file, what=f"the {role}")
            data = file.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{path}: the {role} file {name!r} is missing") from None
        except OSError as exc:
            raise BundleError(f"{file}: cannot read the {role} ({exc})") from None
        actual = sha256_bytes(data)
        if actual != expected:
            raise BundleError(
                f"{file}: SHA-256 mismatch (file {actual[:12]}..., bundle.json {expected[:12]}...): "
                "the file was changed or corrupted after export"
            )
        _check_onnx(
            data,
            source=str(file),
            input_name=in_name,
            input_shape=in_shape,
            output_name=out_name,
            output_shape=out_shape,
            keyed=keys is not None,
        )
        models[role] = (file, actual)
        digests[name] = actual
        del data

    if os.path.lexists(path / manifest.macros):
        _regular_file(path / manifest.macros, what="the macros")
    macros = load_macros(path / manifest.macros, latent_shape=latent_shape)
    bundle = Bundle(path=path, manifest=manifest, models=_CheckedFiles(models), sha256=digests, macros=macros,
                    tiles=tiles)
    bundle.reload_presets()
    release_free_memory()  # (what parsing the graphs left in the heap)
    return bundle


class _CheckedFiles(Mapping):
    """A bundle's network files by role, read when asked for and checked against the SHA-256 the loader
    verified (a file changed since is a :class:`BundleError`): the bytes are not kept between sessions."""

    def __init__(self, files: dict[str, tuple[Path, str]]) -> None:
        self._files = dict(files)

    def __getitem__(self, role: str) -> bytes:
        file, digest = self._files[role]
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise BundleError(f"{file}: cannot read the {role} again ({exc})") from None
        if sha256_bytes(data) != digest:
            raise BundleError(f"{file}: the {role} changed after the bundle was loaded (SHA-256 no longer "
                              f"{digest[:12]}...): load the bundle again")
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)
