"""A home-key decoder's per-key tables run in numpy, one key at a time: what a latent change costs a keyboard
bundle in the live engine.

The home-key family's exported decoder (``training/model/home_key.py``) is, at trained key ``k`` of slot ``s``,

    patch = gate_s * (z W + w) + (z A_s) B_s + m_s      per latent column z (K values), patch P x n_mels

with ``gate`` 1 at the home key and 0 elsewhere, then the patches laid frame after frame and clipped to the
unit range. onnxruntime runs that graph at 1.5-2.7 ms a key on one quiet CPU thread (``bench_keyboard_decode``):
each run gathers the keys' float16 ``B`` tables (64 x 8192) and casts them, broadcasts the home map over the
keys, and passes the (keys, frames, bands) result through half a dozen elementwise nodes; and the home map
(``z W``, 256 x 8192) runs for every key although only the home key's gate is not zero. The same arithmetic
in numpy, the tables widened to float32 once and the home map run only for the home key, is 0.2-0.3 ms a
key (the 2 MB table read; measured in ``bench/bench_keyboard_decode.py`` beside the graph).

:func:`key_tables` finds the tables in the graph by their shapes (the names are the exporter's) and keeps
them only when the numpy decode gives what the onnxruntime session gives at every trained key on random
latents (max |diff| <= :data:`PARITY_ATOL`); any other graph (the first keyboard family, a synthetic test
bundle) is left to onnxruntime. Its :meth:`KeyTables.decode_at_keys` is the same call as
:meth:`~synth.bundle.runtime.Decoder.decode_at_keys`, so the engine's :class:`~synth.engine.decoding.KeyedDecoder`
takes either.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from synth.errors import ParameterError

__all__ = ["KeyTables", "key_tables", "PARITY_ATOL", "widen_float16"]

log = logging.getLogger("melsynth.bundle")

#: Largest |numpy decode - onnxruntime decode| (unit scale) at which the tables are used.
PARITY_ATOL = 1e-4
_MIDI_KEYS = 128


class KeyTables:
    """The per-key tables of a home-key decoder, float32 but ``b``, kept float16 when the graph's is (see the
    module docstring).

    ``slot_of`` [shape=(128,)] the slot of each MIDI key; ``gate`` (S,), ``a`` (S, K, r), ``b`` (S, r, D),
    ``mean`` (S, D); ``home`` (K, D) and ``home_bias`` (D,); ``n_mels``: D = P * n_mels.
    """

    provider = "numpy"
    keyed = True
    broadcasts_keys = True

    def __init__(self, *, slot_of: np.ndarray, gate: np.ndarray, a: np.ndarray, b: np.ndarray, mean: np.ndarray,
                 home: np.ndarray, home_bias: np.ndarray, n_mels: int, latent_shape: tuple[int, ...],
                 name: str = "key tables") -> None:
        self.name = name
        self.slot_of = np.asarray(slot_of, dtype=np.int64)
        self.gate = np.asarray(gate, dtype=np.float32)
        self.a = np.ascontiguousarray(a, dtype=np.float32)
        # The bulk (17 keys x 64 x 8192 in the home-key default: 36 MB as float32) kept as the graph stores it,
        # float16, and widened one key at a time into a buffer of the decoding thread's own (the live worker and
        # the synthesis thread may decode at once; exact: every float16 value is a float32 one, so the decode
        # is the same to the bit).
        self.b = np.ascontiguousarray(b, dtype=np.float16 if np.asarray(b).dtype == np.float16 else np.float32)
        self._wide = threading.local()
        self.mean = np.ascontiguousarray(mean, dtype=np.float32)
        self.home = np.ascontiguousarray(home, dtype=np.float32)
        self.home_bias = np.asarray(home_bias, dtype=np.float32)
        self.n_mels = int(n_mels)
        self.latent_shape = tuple(int(n) for n in latent_shape)
        self.columns_k = int(self.a.shape[1])
        self.width = int(self.b.shape[2])
        for array in (self.a, self.b, self.mean, self.home):
            array.setflags(write=False)
        self._blas = _blas_controller()

    @property
    def nbytes(self) -> int:
        return int(sum(x.nbytes for x in (self.a, self.b, self.mean, self.home, self.home_bias, self.gate)))

    def decode_at_keys(self, latent: np.ndarray, keys: Any) -> np.ndarray:
        """One latent [shape=(1, *latent_shape)] decoded at each of ``keys`` (MIDI keys): [shape=(len(keys),
        n_mels, frames)], row ``i`` at ``keys[i]``, unit scale, as the exported graph gives it."""
        z = np.asarray(latent, dtype=np.float32)
        if z.shape != (1, *self.latent_shape):
            raise ParameterError(f"decoder: decode_at_keys takes one latent of shape {(1, *self.latent_shape)}, "
                                 f"got {z.shape}")
        keys = np.asarray(keys).reshape(-1)
        if keys.size == 0 or not np.issubdtype(keys.dtype, np.integer) or keys.min() < 0 or keys.max() >= _MIDI_KEYS:
            raise ParameterError(f"decoder: keys must be MIDI keys 0..127, got {keys.tolist()!r}")
        if self._blas is None:
            return self._decode(z, keys)
        # One BLAS thread, as onnxruntime's session in the live engine: OpenBLAS's own threads spin after each
        # product and, on a small machine, take the core the synthesis thread needs (17 keys took 54 ms with
        # them against 15 ms without, 2 loaded cores).
        with self._blas.limit(limits=1, user_api="blas"):
            return self._decode(z, keys)

    def _decode(self, z: np.ndarray, keys: np.ndarray) -> np.ndarray:
        cols = z.reshape(-1, self.columns_k)  # (C, K): the latent's columns, rows first
        c = cols.shape[0]
        patches = np.empty((len(keys), c, self.width), dtype=np.float32)
        low = np.empty((c, self.a.shape[2]), dtype=np.float32)
        home = None
        for i, key in enumerate(keys.tolist()):
            s = int(self.slot_of[key])
            np.matmul(cols, self.a[s], out=low)
            out = patches[i]
            b = self.b[s]
            if b.dtype != np.float32:
                wide = getattr(self._wide, "b", None)
                if wide is None:  # once per thread
                    wide = self._wide.b = np.empty(self.b.shape[1:], dtype=np.float32)
                widen_float16(b.view(np.uint16), wide)
                b = wide
            np.matmul(low, b, out=out)
            out += self.mean[s]
            gate = float(self.gate[s])
            if gate != 0.0:
                if home is None:
                    home = cols @ self.home
                    home += self.home_bias
                out += home if gate == 1.0 else np.float32(gate) * home
        np.clip(patches, 0.0, 1.0, out=patches)
        # Frame-major patches (P frames x n_mels each) laid one after the other, then bands first.
        return np.ascontiguousarray(patches.reshape(len(keys), -1, self.n_mels).transpose(0, 2, 1))

    def decode(self, latents: np.ndarray, *, pitch: Any = None) -> np.ndarray:
        """As :meth:`~synth.bundle.runtime.Decoder.decode` (one latent per row, its key in ``pitch``)."""
        z = np.asarray(latents, dtype=np.float32)
        keys = np.broadcast_to(np.asarray(pitch).reshape(-1), (len(z),))
        return np.concatenate([self.decode_at_keys(z[i : i + 1], keys[i : i + 1]) for i in range(len(z))])


def widen_float16(bits: np.ndarray, out: np.ndarray) -> None:
    """The float16 values whose bits are ``bits`` (uint16, C-contiguous) as float32 into ``out`` (float32, C-contiguous,
    the same size), exactly: numpy's own cast of float16 runs an element at a time here (0.6 ms for a key's
    64 x 8192 table, against 0.2 ms for this, beside a 0.45 ms decode of the key), numba's cannot take float16."""
    _widen_kernel()(bits, out)


_WIDEN: list = []


def _widen_kernel():
    """The compiled kernel of :func:`widen_float16` (compiled once, at the first call, and cached on disk)."""
    if not _WIDEN:
        from numba import njit

        @njit(cache=True, nogil=True)
        def widen(bits, out):  # pragma: no cover - compiled
            src = bits.reshape(-1)
            dst = out.reshape(-1).view(np.uint32)
            one = np.empty(1, np.uint32)
            as_float = one.view(np.float32)
            magic = np.float32(5.192296858534828e33)  # 2**112: float16's exponent bias moved to float32's
            for i in range(src.size):
                h = np.uint32(src[i])
                # The magnitude's bits moved up into float32's place, scaled by 2**112: exact for normal and
                # subnormal values alike; an exponent of all ones (inf, nan) set to float32's.
                one[0] = (h & np.uint32(0x7FFF)) << np.uint32(13)
                value = as_float[0] * magic
                as_float[0] = value
                bits32 = one[0]
                if value >= np.float32(65536.0):
                    bits32 |= np.uint32(0x7F800000)
                dst[i] = bits32 | ((h & np.uint32(0x8000)) << np.uint32(16))

        _WIDEN.append(widen)
    return _WIDEN[0]


_CONTROLLER: list = []


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS (made once: 8 ms), or None without threadpoolctl."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _find(arrays: dict[str, np.ndarray], test) -> np.ndarray | None:
    found = [x for x in arrays.values() if test(x)]
    return found[0] if len(found) == 1 else None


def key_tables(model: bytes, *, session, keys: tuple[int, ...], latent_shape: tuple[int, ...], n_mels: int,
               seed: int = 0) -> KeyTables | None:
    """The tables of a home-key decoder graph ``model``, checked against its onnxruntime ``session``
    (a :class:`~synth.bundle.runtime.Decoder`) at every trained key; None when the graph is not one or the
    numpy decode differs (then the session decodes)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_model_from_string(model).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    s, k = len(keys), int(latent_shape[-1])
    a = _find(arrays, lambda x: x.ndim == 3 and x.shape[0] == s and x.shape[1] == k)
    if a is None:
        return None
    r = a.shape[2]
    b = _find(arrays, lambda x: x.ndim == 3 and x.shape[:2] == (s, r) and x.shape[2] % n_mels == 0)
    if b is None:
        return None
    d = b.shape[2]
    tables = dict(
        a=a, b=b,
        mean=_find(arrays, lambda x: x.shape == (s, d)),
        gate=_find(arrays, lambda x: x.shape == (s,) and np.issubdtype(x.dtype, np.floating)),
        home=_find(arrays, lambda x: x.shape == (k, d)),
        home_bias=_find(arrays, lambda x: x.shape == (d,)),
        slot_of=_find(arrays, lambda x: x.shape == (_MIDI_KEYS,) and np.issubdtype(x.dtype, np.integer)),
    )
    if any(v is None for v in tables.values()):
        return None
    found = KeyTables(**tables, n_mels=n_mels, latent_shape=latent_shape, name=f"{session.name} (numpy tables)")
    rng = np.random.default_rng(seed)
    pitch = np.asarray(keys, dtype=np.int32)
    worst = 0.0
    for _ in range(2):
        z = rng.standard_normal((1, *latent_shape)).astype(np.float32)
        try:
            mine = found.decode_at_keys(z, pitch)
        except (ParameterError, ValueError, IndexError):
            return None
        theirs = np.concatenate([session.decode(z, pitch=[key]) for key in keys])  # (small runs: little memory)
        if mine.shape != theirs.shape:
            return None
        worst = max(worst, float(np.max(np.abs(mine - theirs))))
    if not worst <= PARITY_ATOL:
        log.info("%s: the numpy tables differ from the graph by %.2g; onnxruntime decodes", session.name, worst)
        return None
    log.info("%s: decoded by its per-key tables in numpy (parity %.1g)", session.name, worst)
    return found
