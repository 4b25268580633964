"""Latent -> Timbre, either inline (offline, deterministic) or on a worker thread (live).

Both kinds offer ``request(latent, tokens)`` and ``collect()``. Inline decoding returns the result from
``request`` at once, so an offline render applies each latent change at exactly the frame of its event.
The live :class:`DecodeWorker` runs the onnxruntime decoder on its own thread, off the audio path; requests
that arrive while it is busy are coalesced to the newest one (a performer sweeping a knob only needs the
latest value), and the synthesis thread picks the newest finished result up at its next frame.

A decode that fails, or a model output with NaN/Inf, yields a result with ``timbre=None`` and an ``error``:
the engine keeps the previous sound and counts it.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

import numpy as np

from synth.engine.timbre import Timbre, make_timbre
from synth.spectrogram import SpectrogramParams

__all__ = ["DecodeResult", "InlineDecoding", "DecodeWorker", "decode_timbre"]


@dataclasses.dataclass(frozen=True)
class DecodeResult:
    seq: int
    timbre: Timbre | None
    error: str
    decode_ms: float
    tokens: tuple


def decode_timbre(decoder, latent: np.ndarray, *, params: SpectrogramParams) -> tuple[Timbre | None, str, float]:
    """Decode one latent; returns ``(timbre or None, error message or "", milliseconds)``."""
    t0 = time.perf_counter()
    try:
        spec = decoder.decode(np.asarray(latent, dtype=np.float32)[None])
    except Exception as exc:  # any runtime failure of the model must keep the engine playing
        return None, f"decoder failed: {type(exc).__name__}: {exc}", (time.perf_counter() - t0) * 1e3
    ms = (time.perf_counter() - t0) * 1e3
    spec = np.asarray(spec)
    expected = (1, params.n_mels, params.frames)
    if spec.shape != expected:
        return None, f"decoder returned shape {spec.shape}, expected {expected}", ms
    if not np.all(np.isfinite(spec)):
        return None, "decoder output contains NaN or Inf", ms
    return make_timbre(spec[0], params=params), "", ms


class InlineDecoding:
    """Decode synchronously inside ``request`` (offline rendering, deterministic tests)."""

    live = False

    def __init__(self, decoder, *, params: SpectrogramParams) -> None:
        self._decoder = decoder
        self._params = params
        self._seq = 0
        self.decode_ms: collections.deque[float] = collections.deque(maxlen=256)

    def request(self, latent: np.ndarray, tokens: tuple = ()) -> DecodeResult:
        self._seq += 1
        timbre, error, ms = decode_timbre(self._decoder, latent, params=self._params)
        self.decode_ms.append(ms)
        return DecodeResult(self._seq, timbre, error, ms, tokens)

    def collect(self) -> DecodeResult | None:
        return None

    def close(self) -> None:
        pass


class DecodeWorker:
    """A thread that decodes the newest requested latent; see the module docstring."""

    live = True

    def __init__(self, decoder, *, params: SpectrogramParams) -> None:
        self._decoder = decoder
        self._params = params
        self._cond = threading.Condition()
        self._pending: tuple[int, np.ndarray, tuple] | None = None
        self._result: DecodeResult | None = None
        self._seq = 0
        self._stop = False
        self.coalesced = 0
        self.busy = False
        self.decode_ms: collections.deque[float] = collections.deque(maxlen=256)
        self._thread = threading.Thread(target=self._run, name="melsynth-decode", daemon=True)
        self._thread.start()

    def request(self, latent: np.ndarray, tokens: tuple = ()) -> None:
        with self._cond:
            self._seq += 1
            if self._pending is not None:
                self.coalesced += 1
                tokens = self._pending[2] + tokens
            self._pending = (self._seq, latent, tokens)
            self._cond.notify()
        return None

    def collect(self) -> DecodeResult | None:
        with self._cond:
            result, self._result = self._result, None
        return result

    def idle(self) -> bool:
        """True when no request is waiting or being decoded (a finished result may still wait for
        :meth:`collect`, which the engine calls at its next frame)."""
        with self._cond:
            return self._pending is None and not self.busy

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                seq, latent, tokens = self._pending
                self._pending = None
                self.busy = True
            timbre, error, ms = decode_timbre(self._decoder, latent, params=self._params)
            self.decode_ms.append(ms)
            with self._cond:
                self.busy = False
                if self._result is not None:
                    tokens = self._result.tokens + tokens  # an uncollected older result is superseded
                self._result = DecodeResult(seq, timbre, error, ms, tokens)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=5.0)
