"""Latent -> Timbre, either inline (offline, deterministic) or on a worker thread (live).

Both kinds offer ``request(latent, tokens)`` and ``collect()``. Inline decoding returns the result from
``request`` at once, so an offline render applies each latent change at exactly the frame of its event.
The live :class:`DecodeWorker` runs the onnxruntime decoder on its own thread, off the audio path; requests
that arrive while it is busy are coalesced to the newest one (a performer sweeping a knob only needs the
latest value), and the synthesis thread picks the newest finished result up at its next frame.

A decode that fails, or a model output with NaN/Inf, yields a result with ``timbre=None`` and an ``error``:
the engine keeps the previous sound and counts it.

Both keep a :class:`TimbreCache` of recent decodes keyed by the latent: a latent decoded before (a preset
played earlier, a morph back to an end point) is answered from it at once, so it reaches the voices at the
next frame instead of after a decode (35-60 ms on a 2-core CPU). The live worker also decodes the presets
into it in idle time after start (:meth:`DecodeWorker.prefetch`), so every preset switch is immediate;
prefetched timbres (the presets, the macro slopes the engine's estimates need) are pinned, so a stream of new
latents cannot push them out.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

import numpy as np

from synth.engine.timbre import Timbre, make_timbre
from synth.spectrogram import SpectrogramParams

__all__ = ["DecodeResult", "InlineDecoding", "DecodeWorker", "TimbreCache", "decode_timbre"]

# Recent decoded timbres kept besides the pinned ones (each ~260 KB for a 128 x 512 model: 32 is ~8 MB; the
# default bundle's 44 presets and 17 macro-slope timbres, pinned, are another ~16 MB). 32, not more: serve's
# memory target is 500 MB, and the presets no longer depend on this part of the cache.
CACHE_TIMBRES = 32


@dataclasses.dataclass(frozen=True)
class DecodeResult:
    """One answered request. ``timbre`` None with an ``error``: the decode failed; None with no error: it was
    superseded by a newer request answered from the cache (only its ``tokens`` still count as applied)."""

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


class TimbreCache:
    """Decoded timbres by latent (its float32 bytes), the least recently used dropped beyond ``capacity``;
    pinned ones (``put(..., pin=True)``) are kept besides and never dropped.

    Shared by the synthesis thread (look-ups) and the decode worker (inserts), hence the lock; never touched
    by the audio callback.
    """

    def __init__(self, capacity: int = CACHE_TIMBRES) -> None:
        self.capacity = int(capacity)
        self._items: collections.OrderedDict[bytes, Timbre] = collections.OrderedDict()
        self._pinned: dict[bytes, Timbre] = {}
        self._lock = threading.Lock()
        self.hits = 0

    @staticmethod
    def key(latent: np.ndarray) -> bytes:
        return np.ascontiguousarray(latent, dtype=np.float32).tobytes()

    def get(self, key: bytes) -> Timbre | None:
        timbre = self.peek(key)
        if timbre is not None:
            self.hits += 1
        return timbre

    def peek(self, key: bytes) -> Timbre | None:
        """Like :meth:`get` (keeps the entry fresh) without counting a hit: for the engine's estimates."""
        with self._lock:
            timbre = self._pinned.get(key)
            if timbre is None:
                timbre = self._items.get(key)
                if timbre is not None:
                    self._items.move_to_end(key)
            return timbre

    def __contains__(self, key: bytes) -> bool:
        with self._lock:
            return key in self._pinned or key in self._items

    def is_pinned(self, key: bytes) -> bool:
        with self._lock:
            return key in self._pinned

    def put(self, key: bytes, timbre: Timbre, *, pin: bool = False) -> None:
        with self._lock:
            if pin:
                self._items.pop(key, None)
                self._pinned[key] = timbre
                return
            if self.capacity <= 0 or key in self._pinned:
                return
            self._items[key] = timbre
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items) + len(self._pinned)


class InlineDecoding:
    """Decode synchronously inside ``request`` (offline rendering, deterministic tests)."""

    live = False

    def __init__(self, decoder, *, params: SpectrogramParams, cache: TimbreCache | None = None) -> None:
        self._decoder = decoder
        self._params = params
        self._seq = 0
        self.cache = TimbreCache() if cache is None else cache
        self.decode_ms: collections.deque[float] = collections.deque(maxlen=256)

    def request(self, latent: np.ndarray, tokens: tuple = ()) -> DecodeResult:
        self._seq += 1
        key = self.cache.key(latent)
        timbre = self.cache.get(key)
        if timbre is not None:  # the same decoder gives the same timbre: offline output is unchanged
            return DecodeResult(self._seq, timbre, "", 0.0, tokens)
        timbre, error, ms = decode_timbre(self._decoder, latent, params=self._params)
        self.decode_ms.append(ms)
        if timbre is not None:
            self.cache.put(key, timbre)
        return DecodeResult(self._seq, timbre, error, ms, tokens)

    def collect(self) -> DecodeResult | None:
        return None

    @property
    def requested(self) -> int:
        """The sequence number of the latest request."""
        return self._seq

    def prefetch(self, latents) -> None:
        """Offline rendering decodes on demand (prefetching would only cost time)."""

    def close(self) -> None:
        pass


class DecodeWorker:
    """A thread that decodes the newest requested latent; see the module docstring."""

    live = True

    def __init__(self, decoder, *, params: SpectrogramParams, cache: TimbreCache | None = None) -> None:
        self._decoder = decoder
        self._params = params
        self.cache = TimbreCache() if cache is None else cache
        self._cond = threading.Condition()
        self._pending: tuple[int, np.ndarray, tuple] | None = None
        self._result: DecodeResult | None = None
        self._prefetch: collections.deque[np.ndarray] = collections.deque()
        self._seq = 0
        self._answered = 0  # requests up to this seq were answered from the cache: older decodes are stale
        self._stop = False
        self.coalesced = 0
        self.busy = False
        self.decode_ms: collections.deque[float] = collections.deque(maxlen=256)
        self._thread = threading.Thread(target=self._run, name="melsynth-decode", daemon=True)
        self._thread.start()

    def request(self, latent: np.ndarray, tokens: tuple = ()) -> DecodeResult | None:
        """Ask for ``latent``: answered at once from the cache (returns the result), else queued (None)."""
        timbre = self.cache.get(self.cache.key(latent))
        with self._cond:
            self._seq += 1
            if timbre is not None:
                # Newer than anything queued, decoding or uncollected: those are superseded, and their
                # tokens ride on this answer.
                if self._pending is not None:
                    tokens = self._pending[2] + tokens
                    self._pending = None
                if self._result is not None:
                    tokens = self._result.tokens + tokens
                    self._result = None
                self._answered = self._seq
                return DecodeResult(self._seq, timbre, "", 0.0, tokens)
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

    @property
    def requested(self) -> int:
        """The sequence number of the latest request (its result, if decoded, carries it as ``seq``)."""
        with self._cond:
            return self._seq

    @property
    def thread_id(self) -> int:
        """The worker thread's native id (for its scheduling priority)."""
        return int(self._thread.native_id or 0)

    def prefetch(self, latents) -> None:
        """Decode these latents into the cache, pinned, when no request is waiting (presets, at start)."""
        with self._cond:
            self._prefetch.extend(np.array(z, dtype=np.float32) for z in latents)
            self._cond.notify()

    def idle(self) -> bool:
        """True when no request is waiting or being decoded (a finished result may still wait for
        :meth:`collect`, which the engine calls at its next frame)."""
        with self._cond:
            return self._pending is None and not self.busy

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._prefetch and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                if self._pending is None:  # idle: warm the cache, one latent at a time
                    latent = self._prefetch.popleft()
                    seq = -1
                else:
                    seq, latent, tokens = self._pending
                    self._pending = None
                    self.busy = True
            key = self.cache.key(latent)
            if seq < 0:
                if not self.cache.is_pinned(key):
                    timbre, ms = self.cache.peek(key), 0.0
                    if timbre is None:
                        timbre, _, ms = decode_timbre(self._decoder, latent, params=self._params)
                        self.decode_ms.append(ms)  # a real decode: it tells the decoder's speed as well
                    if timbre is not None:
                        self.cache.put(key, timbre, pin=True)
                    # Idle-time work at half duty: this thread runs at real-time priority, and on a small
                    # machine a back-to-back run of start-up decodes would hold a core others need (the
                    # performer's DAW, say). A request cuts the pause short.
                    with self._cond:
                        self._cond.wait_for(lambda: self._pending is not None or self._stop, timeout=ms / 1e3)
                continue
            timbre, error, ms = decode_timbre(self._decoder, latent, params=self._params)
            self.decode_ms.append(ms)
            if timbre is not None:
                self.cache.put(key, timbre)
            with self._cond:
                self.busy = False
                if seq <= self._answered:  # a newer latent was answered from the cache meanwhile
                    timbre, error = None, ""
                if self._result is not None:
                    tokens = self._result.tokens + tokens  # an uncollected older result is superseded
                self._result = DecodeResult(seq, timbre, error, ms, tokens)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=5.0)
