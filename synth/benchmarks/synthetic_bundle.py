"""A real, tiny, deterministic model bundle for tests and benchmarks: ``make_synthetic_bundle(path)``.

Its decoder and encoder are real ONNX graphs (built with ``onnx.helper``, no TensorFlow) that
``synth.bundle.load_bundle`` checks and onnxruntime runs exactly like an exported model:

- decoder: ``mel = Clip(base + ((latent_flat @ P) @ T)[:, :, None] * env[None, None, :], 0, 1)``
  where ``base`` is the unit-scale log-mel (``synth.spectrogram.log_mel``) of a harmonic note at
  ``base_pitch`` (3 s held of 4 s at the default contract, partials 1/k, attack/decay/release envelope),
  ``env`` (frames,) is that note's amplitude envelope (1 at its loudest, 0 in the silent tail),
  ``P`` (latent_size, 8) has orthonormal columns and ``T`` (8, n_mels) holds 8 spectral shapes scaled so a
  coefficient of 1 is a band gain of 0.1 unit (13 dB): so a latent is a set of per-band dB gains applied
  while the note sounds;
- encoder: the matching least-squares projection: per-band gain ``g = ((mel - base) @ env) / (env @ env)``,
  coefficients ``c = g @ pinv(T)``, ``latent = c @ P.T``; ``encode(decode(z))`` returns the projection
  ``P P^T z`` as long as nothing clips.

The 8 shapes (:data:`SHAPES`) are tilt, mid_notch, level, formant and 4 cosine ripples. The presets:
``bright`` (+tilt), ``dark`` (-tilt, quieter), ``hollow`` (mid bands cut ~26 dB), ``soft`` (-20 dB,
slightly darker), then ``nasal``, ``warm``, ``glassy``, ``full``, then ``mix_08``, ``mix_09``, ... from a
seeded generator; their decoded spectra differ by many dB in clearly different band regions.
Macros: PCA of 128 random latents in P's span plus a little noise (16 components, orthonormal).

Everything is seeded, so two calls give byte-identical ONNX files and the same bundle hash. About 0.1 s
a bundle after the first call in a process (the first also imports librosa and computes the base note).

It ships with the package (no TensorFlow, no source checkout needed): the tests and the benchmarks (which
fall back to it when ``presets/default`` does not exist) import the same one::

    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle
    bundle = load_bundle(make_synthetic_bundle(tmp_path / "b"))
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from synth.atomic import atomic_directory
from synth.outputs import BUNDLE
from synth.spectrogram import SpectrogramParams, log_mel

__all__ = [
    "make_synthetic_bundle",
    "synthetic_note_audio",
    "synthetic_base",
    "preset_coefficients",
    "SHAPES",
    "PRESET_RECIPES",
    "GAIN_PER_COEFFICIENT",
    "KEY_TILT_PER_OCTAVE",
]

SHAPES = ("tilt", "mid_notch", "level", "formant", "ripple2", "ripple3", "ripple4", "ripple5")
GAIN_PER_COEFFICIENT = 0.1  # unit scale, i.e. 13 dB with the default -100..+30 dB range
PRESET_RECIPES: dict[str, dict[str, float]] = {
    "bright": {"tilt": 1.5},
    "dark": {"tilt": -1.5, "level": -0.3},
    "hollow": {"mid_notch": 2.0},
    "soft": {"level": -1.5, "tilt": -0.5},
    "nasal": {"formant": 2.0},
    "warm": {"tilt": -0.7, "ripple2": 0.6},
    "glassy": {"ripple4": 1.5, "tilt": 0.5},
    "full": {"level": 0.5, "mid_notch": -1.0},
}
_OPSET = 17
_IR_VERSION = 8


def synthetic_note_audio(*, params: SpectrogramParams, pitch: int) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic note at MIDI ``pitch`` and its amplitude envelope, both (params.n_samples,) float64.

    Partials ``k f0`` below 0.95 * fmax with amplitude ``0.3 / k``; 10 ms attack, decay to 0.6 over 0.3 s,
    held until 3/4 of the note (3 s of 4 s), then an exponential release (time constant 60 ms).
    """
    sr = params.sample_rate
    n = params.n_samples
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12)
    if not 0 < f0 < 0.95 * params.fmax:
        raise ValueError(f"pitch {pitch} ({f0:.0f} Hz) is outside the contract's band")
    t = np.arange(n) / sr
    y = np.zeros(n)
    for k in range(1, int(0.95 * params.fmax / f0) + 1):
        y += (0.3 / k) * np.sin(2 * np.pi * k * f0 * t + 0.3 * k)
    off = 0.75 * n / sr
    env = np.minimum(t / 0.01, 1.0) * (0.6 + 0.4 * np.exp(-t / 0.1))
    env = np.where(t < off, env, env * np.exp(-(t - off) / 0.06))
    return (y * env / np.max(np.abs(y))).astype(np.float64), env


@functools.lru_cache(maxsize=8)
def synthetic_base(*, params: SpectrogramParams, pitch: int) -> tuple[np.ndarray, np.ndarray]:
    """``(base, env)``: the note's unit-scale log-mel (n_mels, frames) and its envelope per frame (frames,)."""
    y, env = synthetic_note_audio(params=params, pitch=pitch)
    base = log_mel(y.astype(np.float32), params=params)
    centres = np.minimum(np.arange(params.frames) * params.hop_length, params.n_samples - 1)
    env_frames = env[centres]
    env_frames = (env_frames / env_frames.max()).astype(np.float32)
    # Below 1e-3 (-60 dB) the note is gone: no gain there, so the silent tail stays silent.
    env_frames[env_frames < 1e-3] = 0.0
    base.setflags(write=False)
    env_frames.setflags(write=False)
    return base, env_frames


#: A keyboard bundle's base notes brighten with the key, as real instruments do: this many unit-scale gains of
#: the tilt shape (13 dB each) per octave above the base pitch (darker below it).
KEY_TILT_PER_OCTAVE = 1.0


def _keyed_base(*, params: SpectrogramParams, key: int, base_pitch: int) -> tuple[np.ndarray, np.ndarray]:
    """(base, env) of a keyboard bundle's key: the synthetic note at ``key`` tilted by
    :data:`KEY_TILT_PER_OCTAVE` per octave from the base pitch while it sounds."""
    base, env = synthetic_base(params=params, pitch=key)
    tilt = _shapes(params.n_mels)[SHAPES.index("tilt")] * KEY_TILT_PER_OCTAVE * (key - base_pitch) / 12.0
    return np.clip(base + tilt[:, None] * env[None, :], 0.0, 1.0).astype(np.float32), env


def _shapes(n_mels: int) -> np.ndarray:
    """(8, n_mels) spectral shapes over normalised band position u in [0, 1], scaled to unit-scale gains."""
    u = np.linspace(0.0, 1.0, n_mels)
    rows = [
        2.0 * u - 1.0,
        -np.exp(-(((u - 0.35) / 0.12) ** 2)),
        np.ones_like(u),
        np.exp(-(((u - 0.55) / 0.06) ** 2)),
        *(np.cos(2 * np.pi * k * u) for k in (2, 3, 4, 5)),
    ]
    return (GAIN_PER_COEFFICIENT * np.stack(rows)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _projection(latent_size: int, *, seed: int) -> np.ndarray:
    """(latent_size, 8) with orthonormal columns (cached: LAPACK is slow on a loaded machine)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((latent_size, len(SHAPES))))
    p = (q * np.sign(np.diag(r))).astype(np.float32)
    p.setflags(write=False)
    return p


def preset_coefficients(name: str, *, index: int, seed: int) -> np.ndarray:
    """(8,) shape coefficients of a preset: its recipe, or seeded random ones for ``mix_NN`` names."""
    if name in PRESET_RECIPES:
        c = np.zeros(len(SHAPES))
        for shape, value in PRESET_RECIPES[name].items():
            c[SHAPES.index(shape)] = value
        return c
    return np.random.default_rng([seed, index]).uniform(-1.2, 1.2, len(SHAPES))


def _tensor(name: str, array: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(array), name=name)


def _model_bytes(nodes, inputs, outputs, initializers, *, name: str) -> bytes:
    from onnx import checker, helper

    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="melsynth.benchmarks.synthetic_bundle"
    )
    model.ir_version = _IR_VERSION
    checker.check_model(model)
    return model.SerializeToString()


def _key_inputs(keys, bases, envs):
    """(nodes, initializers) that look up each row's trained key (nearest the "pitch" input) and gather its
    base note ``base`` (batch, n_mels, frames) and envelope ``env_row`` (batch, 1, frames)."""
    from onnx import helper

    keys_arr = np.asarray(keys)
    index = np.array([int(np.argmin(np.abs(keys_arr - n))) for n in range(128)], dtype=np.int64)
    n_mels, frames = bases.shape[1:]
    nodes = [
        helper.make_node("Reshape", ["pitch", "pitch_flat_shape"], ["pitch_flat"]),
        helper.make_node("Gather", ["key_index", "pitch_flat"], ["key_row"], axis=0),
        helper.make_node("Gather", ["base_table", "key_row"], ["base"], axis=0),
        helper.make_node("Gather", ["env_table", "key_row"], ["env_row"], axis=0),
    ]
    inits = [
        _tensor("pitch_flat_shape", np.array([-1], dtype=np.int64)),
        _tensor("key_index", index),
        _tensor("base_table", np.stack(bases).astype(np.float32)),
        _tensor("env_table", np.stack(envs).reshape(len(keys), 1, frames).astype(np.float32)),
    ]
    return nodes, inits


def _pitch_input():
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info("pitch", TensorProto.INT32, ["batch", 1])


def _keyed_decoder_bytes(keys, bases, envs, p, t, latent_shape) -> bytes:
    """The decoder of a keyboard bundle: each row's base note is that of its trained key."""
    from onnx import TensorProto, helper

    n_mels, frames = bases.shape[1:]
    key_nodes, key_inits = _key_inputs(keys, bases, envs)
    gain_nodes, gain_inits = _gain_graph(p, t, latent_shape=latent_shape, n_mels=n_mels)
    return _model_bytes(
        [*key_nodes, *gain_nodes],
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", *latent_shape]), _pitch_input()],
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", n_mels, frames])],
        [*key_inits, *gain_inits],
        name="synthetic_keyed_decoder",
    )


def _keyed_encoder_bytes(keys, bases, envs, p, t, latent_shape) -> bytes:
    """The encoder of a keyboard bundle: the gains of each note against its key's base note."""
    from onnx import TensorProto, helper

    n_mels, frames = bases.shape[1:]
    key_nodes, key_inits = _key_inputs(keys, bases, [e / float(e @ e) for e in envs])
    nodes = [
        *key_nodes,
        helper.make_node("Sub", ["mel", "base"], ["delta"]),
        helper.make_node("Mul", ["delta", "env_row"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "frames_axis"], ["gain"], keepdims=0),
        helper.make_node("MatMul", ["gain", "T_pinv"], ["coef"]),
        helper.make_node("MatMul", ["coef", "P_T"], ["flat"]),
        helper.make_node("Reshape", ["flat", "latent_shape"], ["latent"]),
    ]
    inits = [
        *key_inits,
        _tensor("frames_axis", np.array([2], dtype=np.int64)),
        _tensor("T_pinv", np.linalg.pinv(t.astype(np.float64)).astype(np.float32)),
        _tensor("P_T", np.ascontiguousarray(p.T)),
        _tensor("latent_shape", np.array([-1, *latent_shape], dtype=np.int64)),
    ]
    return _model_bytes(
        nodes,
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", n_mels, frames]), _pitch_input()],
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", *latent_shape])],
        inits,
        name="synthetic_keyed_encoder",
    )


def _gain_graph(p, t, *, latent_shape, n_mels: int):
    """(nodes, initializers) of ``mel = Clip(base + ((latent_flat @ P) @ T)[:, :, None] * env_row, 0, 1)``,
    ``base`` and ``env_row`` given by the caller (constants, or gathered per key)."""
    from onnx import helper

    nodes = [
        helper.make_node("Reshape", ["latent", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "P"], ["coef"]),
        helper.make_node("MatMul", ["coef", "T"], ["gain"]),
        helper.make_node("Reshape", ["gain", "gain_shape"], ["gain_col"]),
        helper.make_node("Mul", ["gain_col", "env_row"], ["gain_map"]),
        helper.make_node("Add", ["gain_map", "base"], ["raw"]),
        helper.make_node("Clip", ["raw", "zero", "one"], ["mel"]),
    ]
    inits = [
        _tensor("flat_shape", np.array([-1, math.prod(latent_shape)], dtype=np.int64)),
        _tensor("P", p),
        _tensor("T", t),
        _tensor("gain_shape", np.array([-1, n_mels, 1], dtype=np.int64)),
        _tensor("zero", np.array(0.0, dtype=np.float32)),
        _tensor("one", np.array(1.0, dtype=np.float32)),
    ]
    return nodes, inits


def _decoder_bytes(base, env, p, t, latent_shape) -> bytes:
    from onnx import TensorProto, helper

    n_mels, frames = base.shape
    nodes, inits = _gain_graph(p, t, latent_shape=latent_shape, n_mels=n_mels)
    inits += [_tensor("env_row", env.reshape(1, frames)), _tensor("base", base)]
    return _model_bytes(
        nodes,
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", *latent_shape])],
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", n_mels, frames])],
        inits,
        name="synthetic_decoder",
    )


def _encoder_bytes(base, env, p, t, latent_shape) -> bytes:
    from onnx import TensorProto, helper

    n_mels, frames = base.shape
    weight = (env / float(env @ env)).reshape(frames, 1).astype(np.float32)
    nodes = [
        helper.make_node("Sub", ["mel", "base"], ["delta"]),
        helper.make_node("MatMul", ["delta", "env_col"], ["gain_col"]),
        helper.make_node("Reshape", ["gain_col", "gain_shape"], ["gain"]),
        helper.make_node("MatMul", ["gain", "T_pinv"], ["coef"]),
        helper.make_node("MatMul", ["coef", "P_T"], ["flat"]),
        helper.make_node("Reshape", ["flat", "latent_shape"], ["latent"]),
    ]
    inits = [
        _tensor("base", base),
        _tensor("env_col", weight),
        _tensor("gain_shape", np.array([-1, n_mels], dtype=np.int64)),
        _tensor("T_pinv", np.linalg.pinv(t.astype(np.float64)).astype(np.float32)),
        _tensor("P_T", np.ascontiguousarray(p.T)),
        _tensor("latent_shape", np.array([-1, *latent_shape], dtype=np.int64)),
    ]
    return _model_bytes(
        nodes,
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", n_mels, frames])],
        [helper.make_tensor_value_info("latent", TensorProto.FLOAT, ["batch", *latent_shape])],
        inits,
        name="synthetic_encoder",
    )


@functools.lru_cache(maxsize=8)
def _macros(latent_shape: tuple[int, ...], *, seed: int, count: int = 16) -> dict[str, np.ndarray]:
    p = _projection(math.prod(latent_shape), seed=seed)
    rng = np.random.default_rng([seed, 1])
    latent_size = p.shape[0]
    n = 128
    z = rng.standard_normal((n, len(SHAPES))) * 0.8 @ p.T.astype(np.float64)
    z += 0.02 * rng.standard_normal((n, latent_size))
    mean = z.mean(axis=0)
    zc = z - mean
    # PCA through the small (n, n) Gram matrix: an SVD of (n, latent_size) is needlessly slow here.
    eigval, eigvec = np.linalg.eigh(zc @ zc.T)
    order = np.argsort(eigval)[::-1][: min(count, n - 1)]
    s = np.sqrt(np.maximum(eigval[order], 0.0))
    vt = (zc.T @ eigvec[:, order] / s).T
    k = len(order)
    return {
        "mean": mean.reshape(latent_shape).astype(np.float32),
        "components": vt.reshape(k, *latent_shape).astype(np.float32),
        "stds": (s / math.sqrt(n - 1)).astype(np.float32),
    }


def make_synthetic_bundle(
    path: str | Path,
    *,
    base_pitch: int = 60,
    n_presets: int = 4,
    params: SpectrogramParams | None = None,
    latent_shape: tuple[int, ...] = (2, 8, 128),
    seed: int = 0,
    keys: tuple[int, ...] | None = None,
) -> Path:
    """Write a complete, valid model bundle folder at ``path`` (created; must not exist or be empty).

    Parameters
    ----------
    base_pitch : MIDI pitch of the base note (and ``bundle.json``'s ``base_pitch``)
    n_presets : number of presets, named ``bright, dark, hollow, soft, nasal, warm, glassy, full,
        mix_08, mix_09, ...`` in that order
    params : the spectrogram contract (default: melsynth's); a small one (e.g. n_mels 32, frames 64) makes
        an even faster bundle
    latent_shape : latent shape (default the real model's (2, 8, 128)); its size must be at least 8
    seed : changes P (and so the bundle hash) and the random parts
    keys : a keyboard bundle trained on these MIDI keys (``base_pitch`` among them): its networks take the
        pitch, and each key's base note is the synthetic note at that key

    Returns the bundle path. Deterministic: same arguments, same bytes.
    """
    params = SpectrogramParams() if params is None else params
    latent_shape = tuple(int(v) for v in latent_shape)
    latent_size = math.prod(latent_shape)
    if latent_size < len(SHAPES):
        raise ValueError(f"latent size {latent_size} is smaller than {len(SHAPES)}")
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} is not empty")
    # Written whole into a folder beside it and moved into place, so a crash leaves no half bundle.
    with atomic_directory(path, kind=BUNDLE, force=True) as out:
        _write_bundle(out, params=params, latent_shape=latent_shape, base_pitch=base_pitch, seed=seed,
                      n_presets=n_presets, keys=None if keys is None else tuple(int(k) for k in keys))
    return path


def _write_bundle(out: Path, *, params, latent_shape: tuple[int, ...], base_pitch: int, seed: int,
                  n_presets: int, keys: tuple[int, ...] | None) -> None:
    from synth.bundle import BundleManifest, PresetSeed, write_bundle

    latent_size = math.prod(latent_shape)
    p = _projection(latent_size, seed=seed)
    t = _shapes(params.n_mels)
    if keys is None:
        base, env = synthetic_base(params=params, pitch=base_pitch)
        decoder = _decoder_bytes(base, env, p, t, latent_shape)
        encoder = _encoder_bytes(base, env, p, t, latent_shape)
    else:
        bases, envs = zip(*(_keyed_base(params=params, key=k, base_pitch=base_pitch) for k in keys), strict=True)
        decoder = _keyed_decoder_bytes(keys, np.stack(bases), list(envs), p, t, latent_shape)
        encoder = _keyed_encoder_bytes(keys, np.stack(bases), list(envs), p, t, latent_shape)

    names = list(PRESET_RECIPES)[:n_presets] + [f"mix_{i:02d}" for i in range(len(PRESET_RECIPES), n_presets)]
    presets = []
    for index, name in enumerate(names):
        coef = preset_coefficients(name, index=index, seed=seed)
        presets.append(PresetSeed(
            name=name,
            latent=(p.astype(np.float64) @ coef).astype(np.float32),
            source={
                "note_str": f"synthetic_{name}",
                "description": "synthetic spectral shape coefficients",
                "coefficients": {s: float(c) for s, c in zip(SHAPES, coef, strict=True) if c != 0.0},
            },
        ))
    manifest = BundleManifest(
        params=params,
        latent_shape=latent_shape,
        base_pitch=base_pitch,
        sha256={},
        keys=keys,
        training_config={"synthetic": True, "seed": seed, "shapes": list(SHAPES)},
        data={"description": f"synthetic harmonic note at pitch {base_pitch}"},
    )
    write_bundle(out, manifest=manifest, onnx={"decoder.onnx": decoder, "encoder.onnx": encoder},
                 macros=_macros(latent_shape, seed=seed), presets=presets)
