"""A stand-in for the home-key keyboard bundle at its real sizes: ``make_home_key_bundle(path)``.

The engine's figures of a keyboard bundle (what a latent change costs, serve's memory, the soak) depend on the
decoder's structure and sizes, not on what it learnt. This writes a bundle whose decoder is the home-key
exporter's graph (``training/model/home_key.py``; the same nodes as ``tests/test_key_tables.py`` builds, so
:func:`synth.bundle.key_tables.key_tables` finds its tables) at the sizes of the trained one: 17 keys 36..84
step 3, home key 60, latent (1, 8, 256), rank 64, the per-key tables ``b`` in float16 (64 x 8192 a key), the
home map 256 x 8192, and an encoder of the same family (``q`` float16 8192 x 64 a key), 44 presets. The
decoded notes are the synthetic harmonic notes of :mod:`synth.benchmarks.synthetic_bundle` at each key
(brighter with the key), shaped by each preset's spectral gains, so the inverters play notes, not noise.

At key ``k`` of slot ``s`` (as the exporter): ``patch = gate_s * (z W + w) + (z A_s) B_s + m_s`` per latent
column ``z`` (256 values), the patches (64 frames x 128 bands each) frame after frame, clipped to 0..1. Latent
value ``c`` of column ``c`` (c < 8) selects that column of the key's note; values 8..15 are the 8 spectral
shapes' gains; 16..63 small random shapes; the rest reach only the home map (zero rows, as dense in cost).

Seeded and deterministic; about 10 s a bundle on one core (the encoder's pseudo-inverses).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.atomic import atomic_directory
from synth.benchmarks.synthetic_bundle import SHAPES, _keyed_base, _macros, _shapes, preset_coefficients
from synth.outputs import BUNDLE
from synth.spectrogram import SpectrogramParams

__all__ = ["make_home_key_bundle", "home_key_decoder_graph", "HOME_KEY_KEYS"]

HOME_KEY_KEYS = tuple(range(36, 85, 3))
_COLUMNS, _K, _RANK = 8, 256, 64
_OPSET, _IR_VERSION = 17, 8


def _patches(mel: np.ndarray) -> np.ndarray:
    """(n_mels, frames) -> (columns, frames_per_column * n_mels): frame-major patches, as the decoder lays them."""
    return np.ascontiguousarray(mel.T).reshape(_COLUMNS, -1)


def _tables(params: SpectrogramParams, keys: tuple[int, ...], home: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 28])
    n_mels, frames = params.n_mels, params.frames
    per_column = frames // _COLUMNS
    d = per_column * n_mels
    shapes = np.tile(_shapes(n_mels), (1, per_column))  # (8, D): each shape on every frame of a column
    extra = np.tile(rng.standard_normal((_RANK - 16, n_mels)).astype(np.float32) * 0.01, (1, per_column))
    s = len(keys)
    a = np.zeros((s, _K, _RANK), np.float32)
    b = np.zeros((s, _RANK, d), np.float32)
    for i, key in enumerate(keys):
        if key == home:
            continue  # the home key is the home map alone (its gate is 1)
        base, _ = _keyed_base(params=params, key=key, base_pitch=home)
        a[i, :_RANK, :_RANK] = np.eye(_RANK, dtype=np.float32)
        b[i, :_COLUMNS] = _patches(base)
        b[i, _COLUMNS:16] = shapes
        b[i, 16:] = extra
    home_base, _ = _keyed_base(params=params, key=home, base_pitch=home)
    w = np.zeros((_K, d), np.float32)
    w[:_COLUMNS] = _patches(home_base)
    w[_COLUMNS:16] = shapes
    w[16:_RANK] = extra
    gate = np.zeros(s, np.float32)
    gate[keys.index(home)] = 1.0
    return {
        "slot_of": np.array([int(np.argmin(np.abs(np.asarray(keys) - n))) for n in range(128)], np.int64),
        "gate": gate, "a": a, "b": b.astype(np.float16), "mean": np.zeros((s, d), np.float32),
        "home": w, "home_bias": np.zeros(d, np.float32),
    }


def home_key_decoder_graph(t: dict[str, np.ndarray], *, n_mels: int, frames: int, columns: int = _COLUMNS,
                           clip: bool = True, name: str = "home_key_standin_decoder") -> bytes:
    """The home-key decoder's arithmetic as an ONNX graph over the tables ``t`` (the exporter's structure:
    gather the key's rows, cast the float16 table, home map gated, patches frame after frame, bands first,
    clipped unless ``clip`` is False); the latent is ``columns`` columns of ``t["home"].shape[0]`` values.
    tests/test_key_tables.py builds its small graphs with it too."""
    from onnx import TensorProto, helper, numpy_helper

    k = t["home"].shape[0]
    inits = [numpy_helper.from_array(v, table) for table, v in t.items()] + [
        numpy_helper.from_array(np.array([-1], np.int64), "flat"),
        numpy_helper.from_array(np.array([-1, columns, k], np.int64), "cols_shape"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "gate_shape"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([-1, frames, n_mels], np.int64), "frames_shape"),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, np.float32), "hi"),
    ]
    n = helper.make_node
    nodes = [
        n("Reshape", ["pitch", "flat"], ["p"]),
        n("Gather", ["slot_of", "p"], ["s"], axis=0),
        n("Gather", ["a", "s"], ["a_s"], axis=0),
        n("Gather", ["b", "s"], ["b16"], axis=0),
        n("Cast", ["b16"], ["b_s"], to=TensorProto.FLOAT),
        n("Gather", ["mean", "s"], ["m0"], axis=0),
        n("Unsqueeze", ["m0", "axis1"], ["m_s"]),
        n("Gather", ["gate", "s"], ["g0"], axis=0),
        n("Reshape", ["g0", "gate_shape"], ["g_s"]),
        n("Reshape", ["latent", "cols_shape"], ["cols"]),
        n("MatMul", ["cols", "home"], ["h0"]),
        n("Add", ["h0", "home_bias"], ["h"]),
        n("Mul", ["g_s", "h"], ["gh"]),
        n("MatMul", ["cols", "a_s"], ["low"]),
        n("MatMul", ["low", "b_s"], ["o0"]),
        n("Add", ["o0", "m_s"], ["o1"]),
        n("Add", ["gh", "o1"], ["patches"]),
        n("Reshape", ["patches", "frames_shape"], ["frames"]),
        n("Transpose", ["frames"], ["mel0" if clip else "mel"], perm=[0, 2, 1]),
    ]
    if clip:
        nodes.append(n("Clip", ["mel0", "lo", "hi"], ["mel"]))
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", 1, columns, k]),
         helper.make_tensor_value_info("pitch", TensorProto.INT32, ["batch", 1])],
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", n_mels, frames])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = _IR_VERSION
    return model.SerializeToString()


def _encoder_bytes(t: dict[str, np.ndarray], *, n_mels: int, frames: int) -> bytes:
    """Per key: the latent columns from the patches, ``((patch - m_s) q_s) r_s + offset_s`` (the family's
    encoder's shape and size; the home key's through the pseudo-inverse of the home map's first rows)."""
    from onnx import TensorProto, helper, numpy_helper

    s, _, d = t["b"].shape
    q = np.zeros((s, d, _RANK), np.float32)
    r = np.zeros((s, _RANK, _K), np.float32)
    for i in range(s):
        rows = t["home"][:_RANK] if t["gate"][i] else t["b"][i].astype(np.float32)
        q[i] = np.linalg.pinv(rows.astype(np.float64)).astype(np.float32)
        r[i, :, :_RANK] = np.eye(_RANK, dtype=np.float32)
    inits = [
        numpy_helper.from_array(t["slot_of"], "slot_of"),
        numpy_helper.from_array(t["mean"], "mean"),
        numpy_helper.from_array(q.astype(np.float16), "q"),
        numpy_helper.from_array(r, "r"),
        numpy_helper.from_array(np.zeros((s, _K), np.float32), "offset"),
        numpy_helper.from_array(np.array([-1], np.int64), "flat"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([-1, _COLUMNS, d], np.int64), "patch_shape"),
        numpy_helper.from_array(np.array([-1, 1, _COLUMNS, _K], np.int64), "latent_shape"),
    ]
    n = helper.make_node
    nodes = [
        n("Reshape", ["pitch", "flat"], ["p"]),
        n("Gather", ["slot_of", "p"], ["s"], axis=0),
        n("Gather", ["mean", "s"], ["m0"], axis=0),
        n("Unsqueeze", ["m0", "axis1"], ["m_s"]),
        n("Gather", ["q", "s"], ["q16"], axis=0),
        n("Cast", ["q16"], ["q_s"], to=TensorProto.FLOAT),
        n("Gather", ["r", "s"], ["r_s"], axis=0),
        n("Gather", ["offset", "s"], ["o0"], axis=0),
        n("Unsqueeze", ["o0", "axis1"], ["o_s"]),
        n("Transpose", ["mel"], ["frames"], perm=[0, 2, 1]),
        n("Reshape", ["frames", "patch_shape"], ["patches"]),
        n("Sub", ["patches", "m_s"], ["centred"]),
        n("MatMul", ["centred", "q_s"], ["low"]),
        n("MatMul", ["low", "r_s"], ["c0"]),
        n("Add", ["c0", "o_s"], ["cols"]),
        n("Reshape", ["cols", "latent_shape"], ["latent"]),
    ]
    graph = helper.make_graph(
        nodes, "home_key_standin_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", n_mels, frames]),
         helper.make_tensor_value_info("pitch", TensorProto.INT32, ["batch", 1])],
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", 1, _COLUMNS, _K])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = _IR_VERSION
    return model.SerializeToString()


def _preset_latent(name: str, index: int, *, envelope: np.ndarray, seed: int) -> np.ndarray:
    """(1, 8, 256): each column selects its own part of the note, with the preset's shape gains (scaled by how
    loud the column is, so the silent tail stays silent) and a little of the small random shapes."""
    z = np.zeros((1, _COLUMNS, _K), np.float32)
    coef = preset_coefficients(name, index=index, seed=seed)
    extra = np.random.default_rng([seed, 28, index]).standard_normal(_RANK - 16) * 0.5
    for c in range(_COLUMNS):
        z[0, c, c] = 1.0
        z[0, c, _COLUMNS:16] = coef * envelope[c]
        z[0, c, 16:_RANK] = extra * envelope[c]
    return z


def make_home_key_bundle(path: str | Path, *, keys: tuple[int, ...] = HOME_KEY_KEYS, home: int = 60,
                         n_presets: int = 44, seed: int = 0, params: SpectrogramParams | None = None) -> Path:
    """Write the stand-in home-key bundle at ``path`` (created; must not exist or be empty); returns the path."""
    from synth.benchmarks.synthetic_bundle import PRESET_RECIPES, synthetic_base
    from synth.bundle import BundleManifest, PresetSeed, write_bundle

    params = SpectrogramParams() if params is None else params
    keys = tuple(int(k) for k in keys)
    if home not in keys:
        raise ValueError(f"home key {home} is not one of {keys}")
    if params.frames % _COLUMNS:
        raise ValueError(f"frames {params.frames} do not split into {_COLUMNS} columns")
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} is not empty")
    tables = _tables(params, keys, home, seed)
    _, env = synthetic_base(params=params, pitch=home)
    envelope = env.reshape(_COLUMNS, -1).mean(axis=1)
    names = list(PRESET_RECIPES)[:n_presets] + [f"mix_{i:02d}" for i in range(len(PRESET_RECIPES), n_presets)]
    presets = [PresetSeed(name=name, latent=_preset_latent(name, i, envelope=envelope, seed=seed),
                          source={"note_str": f"standin_{name}", "description": "home-key stand-in"})
               for i, name in enumerate(names)]
    latent_shape = (1, _COLUMNS, _K)
    manifest = BundleManifest(
        params=params, latent_shape=latent_shape, base_pitch=home, sha256={}, keys=keys,
        training_config={"synthetic": True, "seed": seed, "stand_in": "home-key", "shapes": list(SHAPES)},
        data={"description": "stand-in home-key bundle: synthetic harmonic notes at every trained key"},
    )
    with atomic_directory(path, kind=BUNDLE, force=True) as out:
        write_bundle(out, manifest=manifest,
                     onnx={"decoder.onnx": home_key_decoder_graph(tables, n_mels=params.n_mels, frames=params.frames),
                           "encoder.onnx": _encoder_bytes(tables, n_mels=params.n_mels, frames=params.frames)},
                     macros=_macros(latent_shape, seed=seed), presets=presets)
    return path
