"""The home-key family (``layout="home_key"``): the patch code of one key, and a low-rank map to every other.

Shapes (of the settings, :class:`HomeKeySettings`: P = ``patch_frames``, C = frames / P, K = ``filters[-1]``,
D = P * n_mels, r = ``key_rank``, S = ``len(keys)``; pitch a MIDI key 0..127 as int32)::

    encoder  mel (batch, n_mels, frames), pitch (batch, 1)  -> latent (batch, 1, C, K)
    decoder  latent (batch, 1, C', K), pitch (batch, 1)     -> mel (batch, n_mels, C' * P)   any C'
    trainer  mel, source pitch, target pitch                -> mel at the target pitch

The latent is the patch code of the note at the home key (``home_key``, 60): what the one-pitch patch
model holds, so a timbre means the same thing as there. At the home key the decoder is that code's linear
map; at any other trained key k it is a map of rank r from the home latent to that key's patches,

    patch_k = m_k + (z A_k) B_k          A_k (K, r), B_k (r, D), m_k (D,)

the least-squares prediction of an instrument's note at k from its note at the home key (ridge regression
over the training pairs of one instrument and velocity at both keys, reduced to rank r along the directions
its predictions vary most: reduced-rank regression). The encoder at k is the reverse prediction, the home
latent from the note at k: its patch projected on the key's first r principal directions Q_k (D, r), then
mapped by R_k (r, K). So a latent encoded at any key is the best linear guess of the home key's code, and
decoding it at any key the best linear guess of the note there.

Why this and not one network for every key: on the keyboard set (results/model/keyboard.md) the first
family, a shared basis with a per-key FiLM detail path, was beaten across keys by per-key linear codes; this
family is those codes made one model. Played from a key-60 note at 36/48/72/84 it is 6.2/4.6/4.3/5.3 dB of
sustain spectrum from the real notes, the first family 6.4/6.3/5.5/5.7. Rank 64 carries the maps (at key 48:
4.68 dB at rank 32, 4.59 at 64, 128 and 256). The per-key tables B and Q are stored in float16 (the bulk of
the bundle); the home map stays float32, so the home key decodes as the patch code. Every path acts on one
latent column at a time, so a window of columns decodes exactly what the whole note does there (the exported
decoder is its own tile decoder).

Its start is the whole fit (:meth:`HomeKeyFamily.start`): the home key's patch PCA, or the trained maps of a
one-pitch patch bundle (``melsynth train --start-from BUNDLE``, training/model/home_map.py: the home key then
encodes and decodes exactly as that bundle, so its presets keep their latents and their sound there), then
the key maps, one key at a time from the training notes (pairs streamed from the features, nothing held
beyond two keys' notes). The home key's row of the trainable offsets is gated off, so training never moves
the home key away from the map it started with. Training afterwards moves only the per-key offsets (m and the encoder's): Adam's steps are about the
learning rate whatever the gradient's scale, and one epoch of them (543 steps at 1e-4) on the maps, whose
entries are ~1e-3, took the cross-key error at key 48 from 4.6 to 12.3 dB and key 60's SSIM from 0.89 to
0.75 (runs/home-key, first try). The least-squares maps are the model.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import FamilyConfig
from training.model.home_map import HomeMap, home_map_from_bundle
from training.model.patch import PatchSettings, columns_to_mel, note_patches, patch_pca
from training.model.pitched import PitchedPatchFamily
from training.model.settings import int_tuple, is_int

__all__ = ["HomeKeyFamily", "HomeKeySettings", "fit_key_maps", "KeyMaps", "RIDGE"]

#: Ridge strength of the key maps, relative to the mean eigenvalue of the regressors' covariance.
RIDGE = 1e-3
_MIDI_KEYS = 128
_HOME_DECODE, _HOME_ENCODE = "home_decode", "home_encode"
_AT_KEY, _FROM_KEY = "at_key", "from_key"


@dataclasses.dataclass(frozen=True)
class HomeKeySettings(PatchSettings):
    """The patch settings, the trained ``keys`` (rising MIDI keys, at least two, ``home_key`` among them) and
    the rank ``key_rank`` of every key's map (1..the latent values per column)."""

    layout: ClassVar[str] = "home_key"

    keys: tuple[int, ...] = tuple(range(36, 85, 3))
    home_key: int = 60
    key_rank: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        keys = int_tuple(self, "keys")
        if not all(is_int(k) and 0 <= k <= 127 for k in keys) or list(keys) != sorted(set(keys)):
            raise ParameterError(f"{self.what}: keys must be a rising list of MIDI keys 0..127, got {list(keys)!r}")
        if not is_int(self.home_key) or not 0 <= self.home_key <= 127:
            raise ParameterError(f"{self.what}: home_key must be a MIDI key 0..127, got {self.home_key!r}")
        if len(keys) < 2 or self.home_key not in keys:
            raise ParameterError(f"{self.what}: keys={list(keys)!r} must hold at least two trained keys, "
                                 f"home_key={self.home_key} among them")
        if not is_int(self.key_rank) or not 1 <= self.key_rank <= self.filters[-1]:
            raise ParameterError(f"{self.what}: key_rank={self.key_rank!r} must be 1..{self.filters[-1]}, the "
                                 "latent values per column")


class KeyMaps:
    """The fitted per-key tables of one model, slot ``s`` for key ``keys[s]`` (the home key's slot is zero in
    every table and its gate is 1; every other key's gate is 0)::

        gate (S,)   a (S, K, r)   b (S, r, D)   mean (S, D)      decoder
        centre (S, D)   q (S, D, r)   r (S, r, K)   offset (S, K)  encoder
    """

    def __init__(self, *, keys: tuple[int, ...], home: int, latent: int, width: int, rank: int) -> None:
        s = len(keys)
        self.keys, self.home = keys, home
        self.gate = np.zeros(s, np.float32)
        self.gate[keys.index(home)] = 1.0
        self.a = np.zeros((s, latent, rank), np.float32)
        self.b = np.zeros((s, rank, width), np.float32)
        self.mean = np.zeros((s, width), np.float32)
        self.centre = np.zeros((s, width), np.float32)
        self.q = np.zeros((s, width, rank), np.float32)
        self.r = np.zeros((s, rank, latent), np.float32)
        self.offset = np.zeros((s, latent), np.float32)


def _ridge(x: np.ndarray, y: np.ndarray, *, strength: float = RIDGE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean of x, mean of y, W) of the ridge regression y ~ mean_y + (x - mean_x) W, x [shape=(M, F)]."""
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc = x - xm
    gram = (xc.T @ xc).astype(np.float64)
    gram += strength * np.trace(gram) / len(gram) * np.eye(len(gram))
    return xm, ym, np.linalg.solve(gram, xc.T.astype(np.float64) @ (y - ym)).astype(np.float32)


def fit_key_maps(maps: KeyMaps, slot: int, *, z: np.ndarray, patches: np.ndarray, rank: int) -> None:
    """Fit slot ``slot`` of ``maps`` from paired columns: ``z`` [shape=(M, K)] the home latents and ``patches``
    [shape=(M, D)] the same instrument's patches at the slot's key (M = pairs x columns), in place."""
    from sklearn.utils.extmath import randomized_svd

    # Decoder: ridge from the home latent to the key's patches, reduced to the rank its predictions span.
    zm, xm, w = _ridge(z, patches)
    # The predictions (z - zm) w have rank <= K: their right singular vectors are those of the K x D matrix
    # R w, with (z - zm) = Q R (an SVD of the M x D predictions themselves takes minutes at D = 8192).
    _, _, vt = np.linalg.svd(np.linalg.qr(z - zm, mode="r") @ w, full_matrices=False)
    basis = vt[:rank]                                        # (r, D), orthonormal rows
    maps.a[slot] = w @ basis.T
    maps.b[slot] = basis
    maps.mean[slot] = xm - zm @ maps.a[slot] @ basis
    # Encoder: the key's patch on its first r principal directions, ridge to the home latent.
    centre = patches.mean(axis=0)
    _, _, ut = randomized_svd(patches - centre, rank, n_iter=6, random_state=0)
    q = ut.T.astype(np.float32)                              # (D, r)
    coords = (patches - centre) @ q
    cm, zm2, r = _ridge(coords, z)
    maps.centre[slot], maps.q[slot], maps.r[slot] = centre, q, r
    maps.offset[slot] = zm2 - cm @ r


def _pairs(notes: list[dict[str, Any]], pitch: np.ndarray, rows: np.ndarray, home: int, key: int) -> np.ndarray:
    """[shape=(P, 2)] rows (at ``home``, at ``key``) of one instrument and velocity among ``rows``."""
    by_note: dict[tuple[str, int], dict[int, int]] = collections.defaultdict(dict)
    for row in rows.tolist():
        note = notes[row]
        by_note[(str(note.get("instrument_str")), int(note.get("velocity", -1)))][int(pitch[row])] = row
    return np.asarray([(by[home], by[key]) for by in by_note.values() if home in by and key in by],
                      dtype=np.int64).reshape(-1, 2)


def _lookup(keys: tuple[int, ...]) -> np.ndarray:
    """[shape=(128,)] the slot of every MIDI key: its own, or the nearest trained key's."""
    known = np.asarray(keys)
    return np.asarray([int(np.argmin(np.abs(known - k))) for k in range(_MIDI_KEYS)], np.int32)


def _gated(ops: Any, gate: Any, home: Any, out: Any) -> Any:
    """The home map where the gate is 1 (the home key: its trainable offset row does not reach it, so the home
    key stays exactly the patch code it was started with) and the key's own map where it is 0."""
    gate = ops.reshape(gate, (-1, 1, 1))
    return gate * home + (1.0 - gate) * out


def _layers(keras: Any) -> tuple[Any, Any]:
    """(AtKey, FromKey): Keras layers holding the decoder's and the encoder's per-key tables (see
    :class:`KeyMaps`), indexed by slot through a MIDI key -> slot lookup."""
    from keras import ops

    class _Tables(keras.layers.Layer):
        #: (name, shape given (S, K, D, r), dtype, trainable) of each table.
        TABLES: tuple = ()

        def __init__(self, *, keys: tuple[int, ...], latent: int, width: int, rank: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.keys, self.latent, self.width, self.rank = tuple(int(k) for k in keys), latent, width, rank
            self._slot_of = _lookup(self.keys)
            dims = {"S": len(self.keys), "K": latent, "D": width, "r": rank}
            for name, shape, dtype, trainable in self.TABLES:
                setattr(self, name, self.add_weight(name=name, shape=tuple(dims[a] for a in shape),
                                                    initializer="zeros", dtype=dtype, trainable=trainable))

        def rows(self, name: str, slots: Any) -> Any:
            # Gather, then cast: the other way round tf2onnx folds the cast into the file, which then holds the
            # float16 tables as float32 (twice the size).
            return ops.cast(ops.take(getattr(self, name), slots, axis=0), "float32")

        def slots(self, pitch: Any) -> Any:
            key = ops.clip(ops.reshape(ops.cast(pitch, "int32"), (-1,)), 0, _MIDI_KEYS - 1)
            return ops.take(ops.convert_to_tensor(self._slot_of), key, axis=0)

        def get_config(self) -> dict[str, Any]:
            return dict(super().get_config(), keys=self.keys, latent=self.latent, width=self.width, rank=self.rank)

    class AtKey(_Tables):
        """(home map of the columns (batch, C, D), latent columns (batch, C, K), pitch (batch, 1)) -> the
        patches at that key (batch, C, D)."""

        TABLES = (("gate", "S", "float32", False), ("a", "SKr", "float32", False),
                  ("b", "SrD", "float16", False), ("mean", "SD", "float32", True))

        def call(self, home: Any, z: Any, pitch: Any) -> Any:
            s = self.slots(pitch)
            low = ops.matmul(z, self.rows("a", s))                                   # (batch, C, r)
            out = ops.matmul(low, self.rows("b", s)) + ops.expand_dims(self.rows("mean", s), 1)
            return _gated(ops, self.rows("gate", s), home, out)

    class FromKey(_Tables):
        """(home code of the patches (batch, C, K), patches (batch, C, D), pitch (batch, 1)) -> the latent
        columns (batch, C, K)."""

        TABLES = (("gate", "S", "float32", False), ("centre", "SD", "float32", False),
                  ("q", "SDr", "float16", False), ("r", "SrK", "float32", False), ("offset", "SK", "float32", True))

        def call(self, home: Any, patches: Any, pitch: Any) -> Any:
            s = self.slots(pitch)
            coords = ops.matmul(patches - ops.expand_dims(self.rows("centre", s), 1), self.rows("q", s))
            out = ops.matmul(coords, self.rows("r", s)) + ops.expand_dims(self.rows("offset", s), 1)
            return _gated(ops, self.rows("gate", s), home, out)

    return AtKey, FromKey


def _decoder_graph(keras: Any, config: FamilyConfig, *, params: SpectrogramParams, columns: int | None) -> Any:
    from keras import layers

    arch = config.architecture
    n_mels, k = params.n_mels, arch.filters[-1]
    at_key, _ = _layers(keras)
    z_in = keras.Input(shape=(1, columns, k), name="latent")
    pitch = keras.Input(shape=(1,), dtype="int32", name="pitch")
    cols = layers.Reshape((-1, k), name="columns")(z_in)
    home = layers.Dense(arch.patch_frames * n_mels, trainable=False, name=_HOME_DECODE)(cols)
    out = at_key(keys=arch.keys, latent=k, width=arch.patch_frames * n_mels, rank=arch.key_rank,
                 name=_AT_KEY)(home, cols, pitch)
    return keras.Model([z_in, pitch], columns_to_mel(keras, out, n_mels=n_mels), name="decoder")


def _encoder_graph(keras: Any, config: FamilyConfig, *, params: SpectrogramParams) -> Any:
    from keras import layers

    arch = config.architecture
    n_mels, frames, p, k = params.n_mels, params.frames, arch.patch_frames, arch.filters[-1]
    _, from_key = _layers(keras)
    x_in = keras.Input(shape=(n_mels, frames), name="log_mel")
    pitch = keras.Input(shape=(1,), dtype="int32", name="pitch")
    h = layers.Permute((2, 1), name="frames_first")(x_in)
    patches = layers.Reshape((frames // p, p * n_mels), name="patches")(h)
    home = layers.Dense(k, trainable=False, name=_HOME_ENCODE)(patches)
    z = from_key(keys=arch.keys, latent=k, width=p * n_mels, rank=arch.key_rank, name=_FROM_KEY)(
        home, patches, pitch)
    z = layers.Reshape((1, frames // p, k), name="latent_columns")(z)
    return keras.Model([x_in, pitch], z, name="encoder")


class HomeKeyFamily(PitchedPatchFamily):
    """The home key's patch code plus a low-rank map per trained key (see the module docstring)."""

    settings = HomeKeySettings
    decodes_any_columns = True
    fitted_start = True
    starts_from_features = True

    def encoder_graph(self, keras: Any, config: FamilyConfig, *, params: SpectrogramParams) -> Any:
        return _encoder_graph(keras, config, params=params)

    def decoder_graph(self, keras: Any, config: FamilyConfig, *, params: SpectrogramParams,
                      columns: int | None) -> Any:
        return _decoder_graph(keras, config, params=params, columns=columns)

    def load_start(self, source: str | Path, config: FamilyConfig, *, params: SpectrogramParams) -> HomeMap:
        """The home map of the one-pitch patch bundle ``source`` (:func:`home_map_from_bundle`), checked to
        fit ``config``: what :meth:`start` keeps instead of the PCA of the home key's notes."""
        arch = config.architecture
        return home_map_from_bundle(source, params=params, patch_frames=arch.patch_frames, latent=arch.filters[-1],
                                    home_key=arch.home_key)

    def start(self, models: tuple[Any, Any, Any], feats: Any, train_rows: np.ndarray, *, pitch: np.ndarray,
              config: FamilyConfig, log: Any = None, start_map: HomeMap | None = None) -> None:
        """The whole fit (module docstring), from every training note at the home key and, key by key, the
        training pairs of one instrument and velocity at the home key and that key. With ``start_map`` (from
        :meth:`load_start`) the home key keeps that trained map and only the key maps are fitted, to its
        codes."""
        arch = config.architecture
        _, encoder, decoder = models
        rows = np.sort(np.asarray(train_rows, dtype=np.int64))
        home, p, k = arch.home_key, arch.patch_frames, arch.filters[-1]
        present = set(np.unique(pitch[rows]).tolist())
        missing = [key for key in arch.keys if key not in present]
        if missing:
            raise DataError(f"{feats.path}: model {config.name!r} is asked for keys {list(arch.keys)}, and its "
                            f"training notes have none at {missing}")
        if start_map is None:
            at_home = rows[pitch[rows] == home]
            if log:
                log(f"  home key {home}: the patch PCA of its {len(at_home)} training notes")
            mean, vt, _ = patch_pca(feats.notes(at_home), patch_frames=p, k=k, what=repr(config.name),
                                    seed=config.schedule.seed, log=log)
            start_map = HomeMap(encoder_w=vt.T.copy(), encoder_b=(-mean @ vt.T).astype(np.float32),
                                decoder_w=vt.copy(), decoder_b=mean, source="PCA")
        elif log:
            log(f"  home key {home}: the trained maps of {start_map.source}")
        encoder.get_layer(_HOME_ENCODE).set_weights([start_map.encoder_w, start_map.encoder_b])
        decoder.get_layer(_HOME_DECODE).set_weights([start_map.decoder_w, start_map.decoder_b])
        width = start_map.decoder_w.shape[1]
        maps = KeyMaps(keys=tuple(arch.keys), home=home, latent=k, width=width, rank=arch.key_rank)
        for slot, key in enumerate(arch.keys):
            if key == home:
                continue
            pairs = _pairs(feats.rows, pitch, rows, home, key)
            if len(pairs) < 2:
                raise DataError(f"{feats.path}: {len(pairs)} training instrument(s) have notes at both {home} "
                                f"and {key}: too few to fit key {key}'s map")
            if log:
                log(f"  key {key}: a map of rank {arch.key_rank} fitted on {len(pairs)} pairs with key {home}")
            z = start_map.encode_patches(note_patches(np.asarray(feats.x[pairs[:, 0]], np.float32), patch_frames=p))
            at_key = note_patches(np.asarray(feats.x[pairs[:, 1]], np.float32), patch_frames=p)
            fit_key_maps(maps, slot, z=z, patches=at_key, rank=arch.key_rank)
        _set_tables(decoder.get_layer(_AT_KEY), maps)
        _set_tables(encoder.get_layer(_FROM_KEY), maps)


def _set_tables(layer: Any, maps: KeyMaps) -> None:
    """Assign ``maps``' tables to the AtKey or FromKey ``layer`` (each in its own stored dtype)."""
    for name, *_ in layer.TABLES:
        variable = getattr(layer, name)
        variable.assign(getattr(maps, name).astype(variable.dtype))
