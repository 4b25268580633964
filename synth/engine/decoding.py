"""Latent -> Timbre, either inline (offline, deterministic) or on a worker thread (live).

Both strategies implement one interface, :class:`Decoding` (``request(latent, tags, frames)``, ``collect()``,
``prefetch``, their figures); the engine is handed a factory of one (:class:`OfflineDecoding` or
:class:`LiveDecoding`, see :class:`DecodingFactory`) and never chooses. Inline decoding returns the result from
``request`` at once, so an offline render applies each latent change at exactly the frame of its event.
The live :class:`DecodeWorker` runs the onnxruntime decoder on its own thread, off the audio path; requests
that arrive while it is busy are coalesced to the newest one (a performer sweeping a knob only needs the
latest value), and the synthesis thread picks the newest finished result up at its next frame.

With a tile decoder (:mod:`synth.bundle.tiles`), a request can name the note frames the sounding voices are
about to read: the worker then decodes first the window of latent columns that holds them exactly (about a
third of a whole decode), hands that over as a :class:`Tile`, and only then decodes the whole note, unless
a newer request is already waiting (newest wins: the whole note of a superseded latent is never decoded).

A decoder whose decodes are measured fast (median of the worker's decodes at most ``inline_ms``, 2 ms by
default: the default patch-layout bundle decodes a whole note in 0.6 ms on one CPU thread, the paper's
no_dense in 10-14 ms) is run by :meth:`DecodeWorker.request` itself, in the synthesis thread: the change then
sounds, exactly, at the very frame it was requested, as offline. That thread renders ahead of the audio
callback (the callback only copies from the ring), so a decode shorter than half a 256-frame block at 48 kHz
(5.3 ms) delays no output; the engine requests at most one decode per frame.

A keyboard bundle's decoder (:class:`KeyedDecoder`) costs a decode per key, and a latent change needs only
the keys the voices are sounding: :class:`KeyedDecodeWorker` decodes those (in the synthesis thread when
they are measured cheap enough together, :data:`INLINE_KEYS_MS`, so the change sounds exactly at the next
frame), and the other trained keys only once the changes have stopped for :data:`REST_KEYS_AFTER_MS`, one key
at a time, never under a stream of changes. A chord's keys too many for that budget: the change is decoded
in the synthesis thread at the key (or the few, :data:`ESTIMATE_KEYS_MS`) that stands nearest to them all
(:func:`cover_keys`) and sounds at the next frame, the voices at the other keys playing that decode moved by
semitones (the engine moves them, :meth:`~synth.engine.voice.Voice.rekey`), and the worker decodes their own
keys, after which each voice crossfades back to its own: at once for a lone change, once the changes pause
(:data:`SETTLE_KEYS_AFTER_MS`) under a stream, whose every change then sounds at once where the voices are. A note started at a key not
decoded yet asks for it (:meth:`KeyedDecodeWorker.request_keys`, first in the queue) and plays the nearest
decoded key moved by semitones until it is there (see :class:`~synth.engine.timbre.KeyedTimbre`). Each
answer names its keys (``DecodeResult.keys``); more keys of the same latent follow under the same sequence
number. Offline (:class:`InlineDecoding`) every change is decoded at every key, exact and deterministic.

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
import statistics
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from synth.engine.pacing import LATENT_SHARE
from synth.engine.timbre import KeyedTimbre, Timbre, make_timbre
from synth.spectrogram import SpectrogramParams

__all__ = [
    "Decoding", "DecodingFactory", "OfflineDecoding", "LiveDecoding", "InlineDecoding", "DecodeWorker",
    "KeyedDecoder", "KeyedDecodeWorker", "bundle_decoder", "DecodeResult", "Tile", "TimbreCache", "decode_timbre", "decode_tile",
    "cover_keys", "ESTIMATE_KEYS_MS", "SETTLE_KEYS_AFTER_MS",
]

# Recent decoded timbres kept besides the pinned ones (each ~260 KB for a 128 x 512 model: 32 is ~8 MB; the
# default bundle's 44 presets and 17 macro-slope timbres, pinned, are another ~16 MB). 32, not more: serve's
# memory target is 500 MB, and the presets no longer depend on this part of the cache.
CACHE_TIMBRES = 32
# A decoder whose measured median decode is at most this (ms) is run in the requesting (synthesis) thread.
INLINE_DECODE_MS = 2.0
# Decodes measured before the worker judges the decoder's speed (the presets prefetched at start give them).
INLINE_AFTER_DECODES = 8
# A keyboard bundle's sounding keys are decoded in the synthesis thread when their measured cost (the median
# per key, decode and timbre, times the keys) is at most this (ms): two or three keys of the home-key family
# (its per-key tables in numpy, 0.4-1 ms a key, and the timbre 0.6 ms, on one CPU thread), so a melody's
# latent change sounds exactly at the next frame; a chord over more keys goes to the worker, first thing. Under half a 256-frame block at 48 kHz (5.3 ms):
# the synthesis thread renders ahead of the callback, so such a decode delays no output.
INLINE_KEYS_MS = 3.5
# A keyboard bundle's change whose sounding keys do not all fit INLINE_KEYS_MS is decoded in the synthesis thread
# at as many of them as fit this (ms; at least one key), the rest on the worker: one key of the home-key family
# (1.2 ms with its timbre). Every ms here is paced (synth.engine.pacing: a change costing 4 ms holds the next
# for 80 ms at the 5 % share), so under a stream of changes a smaller estimate sounds sooner; the worker's
# exact keys follow.
ESTIMATE_KEYS_MS = 1.5
# A change sounded first at ESTIMATE_KEYS_MS's keys has the rest of its sounding keys decoded on the worker at
# once, unless it came within this long (ms) of the change before: then only once the changes pause this long.
# Under a stream (a morph, a fader: a change every 25-40 ms once paced) the voices moved to the keys decoded first
# stay there and each change sounds at once, where going back to their own keys between changes moved every
# voice twice a change (110 moves a second for a 16-note chord under the soak's stream, each running a second
# inverter for 7 frames); when the stream stops, they go back within this and a decode.
SETTLE_KEYS_AFTER_MS = 80.0
# ... but not for longer than this (ms) after the first change it held back: the changes of a stream that never
# pauses become exact (their tags resolved, no longer carried from change to change) once a second.
SETTLE_KEYS_AT_MOST_MS = 1000.0
# A live decode longer than this (ms) is followed by a rest as long as itself (see _LiveWorker._rest).
REST_AFTER_MS = 5.0
# A keyboard bundle's keys that no voice sounds are decoded once no latent change has come for this long (ms):
# a knob being turned sends a change every 10-50 ms, so a stream never triggers it; a performer who stops
# gets every key within a few tens of ms more (KeyedDecodeWorker).
REST_KEYS_AFTER_MS = 150.0


@dataclasses.dataclass(frozen=True, eq=False)
class Tile:
    """Note frames ``first .. first + part.shape[1] - 1`` of a latent's decode, exact.

    part : [shape=(n_mels, k), unit scale, finite, read-only]
    """

    first: int
    part: np.ndarray

    @property
    def end(self) -> int:
        return self.first + int(self.part.shape[1])


@dataclasses.dataclass(frozen=True)
class DecodeResult:
    """One answered request. ``timbre`` None with an ``error``: the decode failed; None with no error and no
    ``tile`` or ``keys``: it was superseded by a newer request answered from the cache (only its ``tags``
    still count as applied). ``tile`` set: the frames the voices were about to read, exact; the whole follows
    in a later result of the same ``seq`` (unless a newer request supersedes it). ``keys`` set (a keyboard
    bundle, live): the timbres of these keys of request ``seq``'s latent, exact; more keys of it may follow
    under the same ``seq``. ``estimate`` (with ``keys``): some sounding keys are not among them yet; the voices
    there play the nearest of these moved by semitones, the change's ``tags`` sound now as an estimate, and
    the rest of the sounding keys follow under the same ``seq`` with the same tags (then exact)."""

    seq: int
    timbre: Timbre | None
    error: str
    decode_ms: float
    tags: tuple
    tile: Tile | None = None
    keys: Mapping[int, Timbre] | None = None
    estimate: bool = False


def bundle_decoder(bundle, *, threads: int | None = None):
    """The decoder session an engine builds for ``bundle`` when given none (and an offline render reuses over
    many notes): a keyboard bundle's per-key tables where it has them, else the bundle's onnxruntime session;
    ``threads``: its intra-op threads (None: onnxruntime's default)."""
    if getattr(bundle, "keys", None) is not None and hasattr(bundle, "keyed_decoder"):
        return bundle.keyed_decoder(threads=threads)
    return bundle.decoder(threads=threads)


class KeyedDecoder:
    """A keyboard bundle's decoder: ``decode`` of one latent decodes every trained key, [shape=(len(keys),
    n_mels, frames)], row ``i`` at ``keys[i]`` (:func:`decode_timbre` makes that a :class:`KeyedTimbre`: the
    start and offline renders); ``decode_keys`` decodes some of them (the live worker's, see
    :class:`KeyedDecodeWorker`), since each key costs its own decode. ``decoder``: anything with
    ``decode_at_keys`` (the bundle's onnxruntime session, or its per-key tables in numpy,
    :mod:`synth.bundle.key_tables`)."""

    def __init__(self, decoder, *, keys: tuple[int, ...], base: int, latent_shape: tuple[int, ...]) -> None:
        self._decoder = decoder
        self.keys = tuple(int(k) for k in keys)
        self.base = int(base)
        self.latent_shape = tuple(int(n) for n in latent_shape)
        self._pitch = np.asarray(self.keys, dtype=np.int32)
        self.provider = getattr(decoder, "provider", "unknown")

    def decode(self, latents: np.ndarray) -> np.ndarray:
        return self._decoder.decode_at_keys(np.asarray(latents, dtype=np.float32), self._pitch)

    def decode_keys(self, latents: np.ndarray, keys: Sequence[int]) -> np.ndarray:
        """[shape=(len(keys), n_mels, frames)] one latent at each of ``keys`` (trained keys)."""
        return self._decoder.decode_at_keys(np.asarray(latents, dtype=np.float32), np.asarray(keys, np.int32))


def decode_keys_first(decoder: KeyedDecoder, latent: np.ndarray, keys: Sequence[int], *,
                      params: SpectrogramParams) -> tuple[dict[int, Timbre] | None, str, float]:
    """The timbres of ``latent`` at ``keys`` only (the sounding ones); ``(timbres or None, error or "",
    ms)`` as :func:`decode_timbre`, the milliseconds those of the timbres too (what the keys cost the thread
    that asks)."""
    t0 = time.perf_counter()
    try:
        mel = np.asarray(decoder.decode_keys(np.asarray(latent, dtype=np.float32)[None], keys))
    except Exception as exc:  # as in decode_timbre: the engine keeps playing
        return None, f"decoder failed: {type(exc).__name__}: {exc}", (time.perf_counter() - t0) * 1e3
    if mel.shape != (len(keys), params.n_mels, params.frames):
        ms = (time.perf_counter() - t0) * 1e3
        return None, f"decoder returned shape {mel.shape}, expected {(len(keys), params.n_mels, params.frames)}", ms
    if not np.all(np.isfinite(mel)):
        return None, "decoder output contains NaN or Inf", (time.perf_counter() - t0) * 1e3
    timbres = {int(k): make_timbre(m, params=params) for k, m in zip(keys, mel, strict=True)}
    return timbres, "", (time.perf_counter() - t0) * 1e3


def cover_keys(keys: Iterable[int], n: int) -> tuple[int, ...]:
    """``n`` of ``keys`` that stand nearest to all of them: the keys sorted, cut into ``n`` runs of
    consecutive ones as even as can be, the middle key of each (the lower of two). A chord's voices then
    play a decoded key at most half a run away; the same keys give the same choice, so a stream of latent
    changes over one chord decodes the same keys first each time and its voices stay where they are."""
    ordered = sorted(set(int(k) for k in keys))
    n = max(0, min(int(n), len(ordered)))
    chosen = []
    for i in range(n):
        run = ordered[len(ordered) * i // n : len(ordered) * (i + 1) // n]
        chosen.append(run[(len(run) - 1) // 2])
    return tuple(chosen)


def decode_timbre(decoder, latent: np.ndarray, *, params: SpectrogramParams
                  ) -> tuple[Timbre | KeyedTimbre | None, str, float]:
    """Decode one latent; returns ``(timbre or None, error message or "", milliseconds)``; a
    :class:`KeyedDecoder` gives a :class:`KeyedTimbre`."""
    t0 = time.perf_counter()
    try:
        mel = decoder.decode(np.asarray(latent, dtype=np.float32)[None])
    except Exception as exc:  # any runtime failure of the model must keep the engine playing
        return None, f"decoder failed: {type(exc).__name__}: {exc}", (time.perf_counter() - t0) * 1e3
    ms = (time.perf_counter() - t0) * 1e3
    mel = np.asarray(mel)
    keys = getattr(decoder, "keys", None)
    expected = (1 if keys is None else len(keys), params.n_mels, params.frames)
    if mel.shape != expected:
        return None, f"decoder returned shape {mel.shape}, expected {expected}", ms
    if not np.all(np.isfinite(mel)):
        return None, "decoder output contains NaN or Inf", ms
    if keys is None:
        timbre = make_timbre(mel[0], params=params)
    else:
        timbre = KeyedTimbre({k: make_timbre(m, params=params) for k, m in zip(keys, mel, strict=True)},
                             base=decoder.base)
    return timbre, "", ms


def decode_tile(tile_decoder, latent: np.ndarray, *, start: int, layout) -> tuple[Tile | None, str, float]:
    """Decode the window of ``layout.columns`` latent time columns from column ``start`` of ``latent``
    (batch-less, (rows, columns, channels)); returns ``(its exact span as a Tile or None, error or "", ms)``."""
    t0 = time.perf_counter()
    window = np.ascontiguousarray(np.asarray(latent, dtype=np.float32)[None, :, start : start + layout.columns, :])
    try:
        out = np.asarray(tile_decoder.decode(window))
    except Exception as exc:  # as in decode_timbre: the engine keeps playing
        return None, f"tile decoder failed: {type(exc).__name__}: {exc}", (time.perf_counter() - t0) * 1e3
    ms = (time.perf_counter() - t0) * 1e3
    if out.ndim != 3 or out.shape[2] != layout.columns * layout.frames_per_column:
        return None, f"tile decoder returned shape {out.shape}", ms
    first, end = layout.exact_span(start)
    offset = start * layout.frames_per_column
    part = np.ascontiguousarray(out[0, :, first - offset : end - offset])
    if not np.all(np.isfinite(part)):
        return None, "tile decoder output contains NaN or Inf", ms
    part.setflags(write=False)
    return Tile(first, part), "", ms


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

    def merge(self, key: bytes, timbres: Mapping[int, Timbre]) -> dict[int, Timbre]:
        """A keyboard bundle's cache: add the timbres of some keys (key -> Timbre) to those of latent ``key``
        (entries are dicts of the keys decoded so far) and return them all (a new dict: entries are never
        changed in place, so a reader holds a consistent one)."""
        with self._lock:
            entry = self._pinned.get(key) if key in self._pinned else self._items.get(key)
            merged = {**(entry or {}), **timbres}
            if key in self._pinned:
                self._pinned[key] = merged
            elif self.capacity > 0:
                self._items[key] = merged
                self._items.move_to_end(key)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return merged

    def __len__(self) -> int:
        return len(self._items) + len(self._pinned)


@runtime_checkable
class Decoding(Protocol):
    """A decoding strategy: how the timbre pipeline's latents become timbres, all the pipeline asks of one.

    :class:`InlineDecoding` (offline: every request answered at once) and :class:`DecodeWorker` (live: on a
    thread, answers collected at a later frame) implement it; a :class:`DecodingFactory` starts one.

    Attributes
    ----------
    live : bool  answers may come later, from :meth:`collect` (True), or always from :meth:`request` (False)
    cache : TimbreCache  decoded timbres by latent (the pipeline's estimates read it too)
    decode_ms : Sequence[float]  recent whole-note decode times (ms), newest last
    tile_ms : Sequence[float]  recent tile decode times (ms), newest last
    tiles_decoded : int  tiles decoded and handed over
    coalesced : int  requests superseded by a newer one before they were decoded (newest wins)
    inline_decodes : int  requests a live strategy decoded in the requesting thread (its fast path)
    """

    live: bool
    cache: TimbreCache
    decode_ms: Sequence[float]
    tile_ms: Sequence[float]
    tiles_decoded: int
    coalesced: int
    inline_decodes: int

    def request(
        self, latent: np.ndarray, tags: tuple = (), frames: tuple[int, int] | None = None,
        keys: tuple[int, ...] = (),
    ) -> DecodeResult | None:
        """Ask for ``latent`` (``tags``: the commands that changed it; ``frames``: the note frames
        ``[first, end)`` the voices read next, or None; ``keys``: a keyboard bundle's trained keys the voices
        are sounding): its result now, or None when :meth:`collect` will hand it over later."""

    def collect(self) -> DecodeResult | None:
        """The result finished since the last call (the newest: older ones' tags ride on it), or None."""

    def request_keys(self, keys: tuple[int, ...]) -> None:
        """A keyboard bundle's: decode the newest latent at these trained keys next (a note started at a key
        not decoded yet); answered by :meth:`collect`. A strategy that decodes every key already ignores it."""

    @property
    def requested(self) -> int:
        """Sequence number of the newest request (its result carries it as ``seq``)."""

    @property
    def thread_id(self) -> int:
        """Native id of the thread that decodes requests (0: the requesting thread itself)."""

    def prefetch(self, latents: Iterable[np.ndarray]) -> None:
        """Decode these latents into the cache, pinned, while nothing else waits (offline: not at all)."""

    def idle(self) -> bool:
        """True when no request is waiting or being decoded."""

    def decodes_inline(self) -> bool:
        """True when a live strategy decodes requests in the requesting thread (its decoder measured fast)."""

    def close(self) -> None:
        """Stop decoding (a worker's thread ends)."""


class InlineDecoding:
    """Decode synchronously inside ``request`` (offline rendering, deterministic tests).

    Every request is answered from :meth:`request`: nothing is queued, coalesced or tiled, and there is no
    worker to bypass (``decodes_inline()`` is False and ``inline_decodes`` 0: those are a live strategy's
    fast path)."""

    live = False
    thread_id = 0
    tiles_decoded = 0
    coalesced = 0
    inline_decodes = 0
    tile_ms: Sequence[float] = ()

    def __init__(self, decoder, *, params: SpectrogramParams, cache: TimbreCache | None = None) -> None:
        self._decoder = decoder
        self._params = params
        self._seq = 0
        self.cache = TimbreCache() if cache is None else cache
        self.decode_ms: collections.deque[float] = collections.deque(maxlen=256)

    def request(self, latent: np.ndarray, tags: tuple = (), frames: tuple[int, int] | None = None,
                keys: tuple[int, ...] = ()) -> DecodeResult:
        """Decode ``latent`` now, whole (``frames`` and ``keys`` are ignored: offline, every change lands at
        its frame)."""
        self._seq += 1
        key = self.cache.key(latent)
        timbre = self.cache.get(key)
        if isinstance(timbre, Mapping):  # a keyboard bundle's cache entry: the keys decoded so far
            every = getattr(self._decoder, "keys", ())
            timbre = KeyedTimbre(timbre, base=self._decoder.base) if set(every) <= timbre.keys() else None
        if timbre is not None:  # the same decoder gives the same timbre: offline output is unchanged
            return DecodeResult(self._seq, timbre, "", 0.0, tags)
        timbre, error, ms = decode_timbre(self._decoder, latent, params=self._params)
        self.decode_ms.append(ms)
        if isinstance(timbre, KeyedTimbre):  # kept as the keyed cache keeps its entries (see TimbreCache.merge)
            self.cache.merge(key, timbre.by_key)
        elif timbre is not None:
            self.cache.put(key, timbre)
        return DecodeResult(self._seq, timbre, error, ms, tags)

    def collect(self) -> DecodeResult | None:
        return None

    def request_keys(self, keys: tuple[int, ...]) -> None:
        """Nothing to do: every change is decoded at every key."""

    @property
    def requested(self) -> int:
        """The sequence number of the latest request."""
        return self._seq

    def prefetch(self, latents: Iterable[np.ndarray]) -> None:
        """Offline rendering decodes on demand (prefetching would only cost time)."""

    def idle(self) -> bool:
        """Always True: a request is decoded before :meth:`request` returns."""
        return True

    def decodes_inline(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _LiveWorker:
    """What both live workers (:class:`DecodeWorker`, :class:`KeyedDecodeWorker`) answer alike, from their
    ``_cond``, ``_result``, ``_seq`` and ``_thread``."""

    _cond: threading.Condition
    _result: DecodeResult | None
    _seq: int
    _thread: threading.Thread
    _stop: bool

    def collect(self) -> DecodeResult | None:
        """The newest finished result, once (None when there is none)."""
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

    def _rest(self, ms: float) -> None:
        """After a long live decode (over :data:`REST_AFTER_MS`), rest as long as it took before the next one.

        This thread runs at real-time priority: a stream of changes to a slow decoder (the paper's dense
        decoders, 10-14 ms; a keyboard bundle's many keys) would otherwise hold its core without a break, which the audio
        server and the performer's other programs need. A single change is not delayed (the rest follows its
        decode); a stream is coalesced to the newest value at half duty instead."""
        if ms > REST_AFTER_MS:
            with self._cond:
                self._cond.wait_for(lambda: self._stop, timeout=ms / 1e3)

    def close(self) -> None:
        """Stop the thread (after the decode it is in; waits at most 5 s)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=5.0)


class DecodeWorker(_LiveWorker):
    """A thread that decodes the newest requested latent; see the module docstring."""

    live = True

    def __init__(
        self, decoder, *, params: SpectrogramParams, cache: TimbreCache | None = None, tile_decoder=None,
        tiles=None, inline_ms: float = INLINE_DECODE_MS,
    ) -> None:
        self._decoder = decoder
        self.inline_ms = float(inline_ms)
        self.inline_decodes = 0
        self._inline = False
        self._params = params
        self.cache = TimbreCache() if cache is None else cache
        # Both or neither: a tile decoder session and the bundle's TileLayout.
        self._tile_decoder = tile_decoder if tiles is not None else None
        self.tiles = tiles if tile_decoder is not None else None
        self.tiles_decoded = 0
        self.tile_ms: collections.deque[float] = collections.deque(maxlen=256)
        self._cond = threading.Condition()
        self._pending: tuple[int, np.ndarray, tuple, tuple[int, int] | None] | None = None
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

    def request(
        self, latent: np.ndarray, tags: tuple = (), frames: tuple[int, int] | None = None,
        keys: tuple[int, ...] = (),
    ) -> DecodeResult | None:
        """Ask for ``latent``: answered at once from the cache (returns the result), else queued (None).

        ``frames``: the note frames ``[first, end)`` the voices read next; with a tile decoder whose window
        holds them, they are decoded (and answered) first (``keys``: ignored, see :class:`KeyedDecodeWorker`).
        A fast decoder (see the module docstring) decodes here and now: the result is returned, exact, whatever is
        queued."""
        key = self.cache.key(latent)
        timbre = self.cache.get(key)
        error, ms = "", 0.0
        if timbre is None and self.decodes_inline():
            timbre, error, ms = decode_timbre(self._decoder, latent, params=self._params)
            self._measured(ms)
            self.inline_decodes += 1
            if timbre is not None:
                self.cache.put(key, timbre)
        with self._cond:
            self._seq += 1
            if timbre is not None or error:
                # Newer than anything queued, decoding or uncollected: those are superseded, and their
                # tags ride on this answer.
                if self._pending is not None:
                    tags = self._pending[2] + tags
                    self._pending = None
                if self._result is not None:
                    tags = self._result.tags + tags
                    self._result = None
                self._answered = self._seq
                return DecodeResult(self._seq, timbre, error, ms, tags)
            if self._pending is not None:
                self.coalesced += 1
                tags = self._pending[2] + tags
            self._pending = (self._seq, latent, tags, frames)
            self._cond.notify()
        return None

    def request_keys(self, keys: tuple[int, ...]) -> None:
        """A one-pitch decoder has no keys to ask for."""

    def decodes_inline(self) -> bool:
        """True when requests are decoded in the requesting thread: the decoder's median decode, over at least
        :data:`INLINE_AFTER_DECODES` measured ones, is at most ``inline_ms``."""
        return self._inline

    def _measured(self, ms: float) -> None:
        """Record one real decode's time and judge the decoder's speed again (either thread)."""
        with self._cond:
            self.decode_ms.append(ms)
            times = list(self.decode_ms)
        self._inline = len(times) >= INLINE_AFTER_DECODES and statistics.median(times) <= self.inline_ms

    def prefetch(self, latents: Iterable[np.ndarray]) -> None:
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
                if self._pending is not None:
                    seq, latent, tags, frames = self._pending
                    self._pending = None
                    self.busy = True
                else:  # idle: warm the cache, one latent at a time
                    latent = self._prefetch.popleft()
                    seq = -1
            key = self.cache.key(latent)
            if seq < 0:
                if not self.cache.is_pinned(key):
                    timbre, ms = self.cache.peek(key), 0.0
                    if timbre is None:
                        timbre, _, ms = decode_timbre(self._decoder, latent, params=self._params)
                        self._measured(ms)  # a real decode: it tells the decoder's speed as well
                    if timbre is not None:
                        self.cache.put(key, timbre, pin=True)
                    # Idle-time work at half duty: this thread runs at real-time priority, and on a small
                    # machine a back-to-back run of start-up decodes would hold a core others need (the
                    # performer's DAW, say). A request cuts the pause short.
                    with self._cond:
                        self._cond.wait_for(lambda: self._pending is not None or self._stop, timeout=ms / 1e3)
                continue
            start = None if frames is None or self.tiles is None else self.tiles.window_for(*frames)
            if start is not None:
                tile, error, ms = decode_tile(self._tile_decoder, latent, start=start, layout=self.tiles)
                self.tile_ms.append(ms)
                tags, delivered, skip = self._answer_ahead(seq, tags, None if tile is None else {"tile": tile},
                                                           error=error, ms=ms)
                self.tiles_decoded += delivered
                if skip:
                    continue
            timbre, error, ms = decode_timbre(self._decoder, latent, params=self._params)
            self._measured(ms)
            if timbre is not None:
                self.cache.put(key, timbre)
            with self._cond:
                self.busy = False
                if seq <= self._answered:  # a newer latent was answered from the cache meanwhile
                    timbre, error = None, ""
                if self._result is not None:
                    tags = self._result.tags + tags  # an uncollected older result is superseded
                self._result = DecodeResult(seq, timbre, error, ms, tags)
            self._rest(ms)


    def _answer_ahead(self, seq: int, tags: tuple, part: dict | None, *, error: str, ms: float
                      ) -> tuple[tuple, bool, bool]:
        """Hand over what was decoded ahead of request ``seq``'s whole timbre (``part``: the DecodeResult field
        holding it, a tile; None: it failed with ``error``). Returns (the tags
        the whole's result still carries, whether the part was handed over, whether to skip the whole)."""
        delivered = False
        with self._cond:
            stale = seq <= self._answered  # a newer latent was answered from the cache meanwhile
            if self._result is not None:  # an uncollected older result is superseded
                tags = self._result.tags + tags
                self._result = None
            if part is not None and not stale:
                self._result = DecodeResult(seq, None, "", ms, tags, **part)
                tags, delivered = (), True
            elif tags:  # a failed or stale part: its tags still count as handled
                self._result = DecodeResult(seq, None, "" if stale else error, ms, tags)
                tags = ()
            skip = stale or self._pending is not None or self._stop  # newest wins: skip the rest
            if skip:
                self.busy = False
        return tags, delivered, skip


class KeyedDecodeWorker(_LiveWorker):
    """A keyboard bundle's live decoding (see the module docstring): a latent change decodes the keys the
    voices sound, a note at a key not decoded yet asks for that key first, and the other keys wait until the
    changes stop.

    Requests are answered with the keys decoded so far (``DecodeResult.keys``, all exact for the latent of
    its ``seq``): at once from the cache, or from the synthesis thread when the sounding keys missing are
    measured cheap enough (:data:`INLINE_KEYS_MS` for them together), else by the worker, first thing. The
    worker's queue, in order: the newest latent's wanted keys (a change's sounding ones, coalesced to the
    newest change; the keys new notes ask for, put first); a few decodes of one key at start, which measure
    what a key costs; then, once no change has come for ``rest_keys_after_ms``, the newest latent's other
    trained keys one at a time, at half duty, each answered as it is done (a new change stops them). After a
    decode over :data:`REST_AFTER_MS` the worker rests as long as it took, as :class:`DecodeWorker` does.

    The cache holds, for a few latents, the timbres of the keys decoded so far (:meth:`TimbreCache.merge`).
    """

    live = True
    tiles_decoded = 0
    tile_ms: Sequence[float] = ()

    def __init__(self, decoder: KeyedDecoder, *, params: SpectrogramParams, cache: TimbreCache | None = None,
                 inline_keys_ms: float = INLINE_KEYS_MS, rest_keys_after_ms: float = REST_KEYS_AFTER_MS,
                 estimate_keys: bool = True, estimate_keys_ms: float = ESTIMATE_KEYS_MS,
                 settle_keys_after_ms: float = SETTLE_KEYS_AFTER_MS) -> None:
        self._decoder = decoder
        self.estimate_keys = bool(estimate_keys)
        self.estimate_keys_ms = float(estimate_keys_ms)
        self.settle_keys_after_s = float(settle_keys_after_ms) / 1e3
        self.settle_keys_at_most_s = SETTLE_KEYS_AT_MOST_MS / 1e3
        self._settle_at = 0.0  # (monotonic s) the wanted keys of a stream's change wait until then; 0: at once
        self._held_since = 0.0  # (monotonic s) when the first change whose keys wait came; 0: none waits
        self.keys_estimated = 0  # changes answered at some sounding keys first, the rest on the worker
        self._params = params
        self._trained = frozenset(decoder.keys)
        self.cache = TimbreCache() if cache is None else cache
        self.inline_keys_ms = float(inline_keys_ms)
        self.rest_keys_after_s = float(rest_keys_after_ms) / 1e3
        self._cond = threading.Condition()
        self._seq = 0
        self._latest: tuple[int, np.ndarray, bytes] | None = None  # (seq, latent, cache key) asked for last
        self._changed_at = time.monotonic()  # when the newest latent change came
        self._pending: tuple[int, tuple] | None = None  # (seq, tags) of the newest change still to answer
        self._wanted: list[int] = []  # keys of the newest latent to decode next, in order
        self._result: DecodeResult | None = None
        self._calibrate = INLINE_AFTER_DECODES
        self._stop = False
        self.busy = False
        self.coalesced = 0
        self.inline_decodes = 0
        self.keys_rested = 0  # keys decoded in idle time (no voice sounded them)
        self.decode_ms: collections.deque[float] = collections.deque(maxlen=256)
        # CPU ms per key of the decodes (timbres included): what the inline judgement reads.
        self.key_ms: collections.deque[float] = collections.deque(maxlen=256)
        self._thread = threading.Thread(target=self._run, name="melsynth-decode", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the requesting (synthesis) thread
    def request(self, latent: np.ndarray, tags: tuple = (), frames: tuple[int, int] | None = None,
                keys: tuple[int, ...] = ()) -> DecodeResult | None:
        """Ask for ``latent`` at the sounding ``keys`` (trained keys; none sounding: the base key), answered
        now when they are cached or cheap enough to decode here, else by :meth:`collect` later (``frames``:
        unused, a keyboard bundle has no tiles)."""
        latent = np.array(latent, dtype=np.float32)
        key = self.cache.key(latent)
        sounding = tuple(sorted({int(k) for k in keys if k in self._trained})) or (self._decoder.base,)
        have = self.cache.peek(key) or {}
        missing = tuple(k for k in sounding if k not in have)
        ms = 0.0
        if not missing:
            self.cache.hits += 1
        else:
            fit = self.keys_inline_fit()
            # Too many to decode here: the keys that stand nearest to all the sounding ones first (as many as
            # fit estimate_keys_ms, at least one), the rest on the worker (the voices play the nearest of these
            # moved by semitones until then).
            first = missing if fit >= len(missing) else ()
            if not first and fit and self.estimate_keys:
                first = cover_keys(missing, max(1, self.keys_inline_fit(self.estimate_keys_ms)))
            if first:
                c0 = time.thread_time()
                part, _, ms = decode_keys_first(self._decoder, latent, first, params=self._params)
                if part is not None:  # (a failure: the worker decodes again and reports it)
                    self._measured(ms, len(first), cpu_ms=(time.thread_time() - c0) * 1e3)
                    self.inline_decodes += 1
                    have = self.cache.merge(key, part)
                    missing = tuple(k for k in missing if k not in part)
                    self.keys_estimated += bool(missing)
        with self._cond:
            self._seq += 1
            self._latest = (self._seq, latent, key)
            now = time.monotonic()
            stream = now - self._changed_at < self.settle_keys_after_s
            self._changed_at = now
            self._settle_at = 0.0
            if self._pending is not None:  # superseded: its tags ride on this request
                self.coalesced += 1
                tags = self._pending[1] + tags
                self._pending = None
            if not missing or have:
                if self._result is not None:  # an uncollected older answer is superseded too
                    tags = self._result.tags + tags
                    self._result = None
                self._wanted = list(missing)
                if missing:  # the rest follows under this seq, with the same tags (then exact)
                    self._pending = (self._seq, tags)
                    if stream:  # ... once the changes pause (SETTLE_KEYS_AFTER_MS), or at most so long after
                        self._held_since = self._held_since or now
                        self._settle_at = min(now + self.settle_keys_after_s,
                                              self._held_since + self.settle_keys_at_most_s)
                self._cond.notify()  # (the worker's idle-time clock starts again)
                return DecodeResult(self._seq, None, "", ms, tags, keys=have, estimate=bool(missing))
            self._pending = (self._seq, tags)
            self._wanted = list(missing)
            self._cond.notify()
        return None

    def request_keys(self, keys: tuple[int, ...]) -> None:
        """Decode the newest latent at these trained ``keys`` first (notes started where it is not decoded)."""
        with self._cond:
            if self._latest is None:
                return
            seq, _, key = self._latest
            have = self.cache.peek(key) or {}
            asked = [int(k) for k in keys if k in self._trained]
            cached = {k: have[k] for k in asked if k in have}
            if cached:  # decoded since the engine last collected: handed over again
                self._post_locked(seq, cached, (), "", 0.0)
            new = [k for k in asked if k not in have and k not in self._wanted]
            if new:
                self._wanted[:0] = new
                self._settle_at = 0.0  # a note waits for its key: no waiting for the changes to pause
                self._cond.notify()

    def decodes_keys_inline(self, keys: int) -> bool:
        """True when ``keys`` keys are decoded in the requesting thread: the median cost of a key (decode and
        timbre), over at least :data:`INLINE_AFTER_DECODES` measured ones, times ``keys`` is at most
        ``inline_keys_ms``."""
        return self.keys_inline_fit() >= keys

    def keys_inline_fit(self, budget_ms: float | None = None) -> int:
        """How many keys fit the requesting thread's budget (``inline_keys_ms`` unless ``budget_ms``) over the
        median cost of a key (decode and timbre, over at least :data:`INLINE_AFTER_DECODES` measured ones); 0
        before that."""
        with self._cond:
            times = list(self.key_ms)
        if len(times) < INLINE_AFTER_DECODES:
            return 0
        per_key = statistics.median(times)
        budget = self.inline_keys_ms if budget_ms is None else budget_ms
        return len(self._trained) if per_key <= 0.0 else int(budget // per_key)

    def _measured(self, ms: float, keys: int, *, cpu_ms: float) -> None:
        """Record a decode of ``keys`` keys: ``ms`` of wall time (the figures) and ``cpu_ms`` of its thread's CPU
        time, what a key costs the thread that decodes it (the inline judgement): the worker's wall time also
        counts the waits for the interpreter lock, which the synthesis thread holds while it renders, and on
        a loaded machine had a key judged at 5-6 ms and never decoded inline again."""
        with self._cond:
            self.decode_ms.append(ms)
            self.key_ms.append(cpu_ms / max(keys, 1))

    def prefetch(self, latents: Iterable[np.ndarray]) -> None:
        """Nothing ahead of time: each latent would hold a timbre per key (the presets are decoded when asked
        for)."""

    def idle(self) -> bool:
        """True when no change or wanted key waits or is being decoded (the keys no voice sounds may still be
        decoded later, in idle time)."""
        with self._cond:
            return self._pending is None and not self._wanted and not self.busy

    def decodes_inline(self) -> bool:
        """False: a keyboard bundle's whole decode never runs in the requesting thread (its sounding keys may,
        see :meth:`decodes_keys_inline`)."""
        return False

    # ------------------------------------------------------------------ the worker thread
    def _post_locked(self, seq: int, keys: Mapping[int, Timbre] | None, tags: tuple, error: str, ms: float) -> None:
        """Hand over ``keys`` of request ``seq`` (None: failed with ``error``), merged with an uncollected answer:
        the same seq's keys join, an older one's are superseded, a newer one's stay (its tags ride along)."""
        old = self._result
        if old is not None:
            tags = old.tags + tags
            if old.seq > seq:
                seq, keys, error = old.seq, old.keys, old.error
            elif old.seq == seq and old.keys is not None:
                keys = old.keys if keys is None else {**old.keys, **keys}
                error = ""
        self._result = DecodeResult(seq, None, "" if keys is not None else error, ms, tags, keys=keys)

    def _next_rest_key(self) -> int | None:
        """The newest latent's first trained key not decoded yet, nearest the base key first (under the lock)."""
        _, _, key = self._latest
        have = self.cache.peek(key) or {}
        base = self._decoder.base
        missing = [k for k in self._decoder.keys if k not in have]
        return min(missing, key=lambda k: (abs(k - base), k)) if missing else None

    def _run(self) -> None:
        rest_done = -1  # the seq whose every key is decoded (nothing left to do in idle time)
        while True:
            with self._cond:
                while True:
                    if self._stop:
                        return
                    if self._wanted and self._settle_at:
                        wait = self._settle_at - time.monotonic()
                        if wait > 0.0:  # a stream's sounding keys: once the changes pause
                            self._cond.wait(timeout=wait)
                            continue
                        self._settle_at = 0.0
                    if self._wanted:
                        self._held_since = 0.0
                        seq, latent, key = self._latest
                        wanted, self._wanted = tuple(self._wanted), []
                        tags = ()
                        if self._pending is not None and self._pending[0] == seq:
                            tags, self._pending = self._pending[1], None
                        mode = "wanted"
                        break
                    if self._calibrate:
                        self._calibrate -= 1
                        mode = "calibrate"
                        break
                    if self._latest is not None and self._latest[0] != rest_done:
                        waited = time.monotonic() - self._changed_at
                        if waited < self.rest_keys_after_s:
                            self._cond.wait(timeout=self.rest_keys_after_s - waited)
                            continue
                        rest_key = self._next_rest_key()
                        if rest_key is None:
                            rest_done = self._latest[0]
                            continue
                        seq, latent, key = self._latest
                        wanted, tags, mode = (rest_key,), (), "rest"
                        break
                    self._cond.wait()
                self.busy = True
            if mode == "calibrate":  # what one key costs: a key other than the base (no home map), a zero latent
                probe = next((k for k in self._decoder.keys if k != self._decoder.base), self._decoder.base)
                c0 = time.thread_time()
                _, _, ms = decode_keys_first(self._decoder, np.zeros(self._decoder.latent_shape, np.float32),
                                             (probe,), params=self._params)
                self._measured(ms, 1, cpu_ms=(time.thread_time() - c0) * 1e3)
                with self._cond:
                    self.busy = False
                    self._cond.wait_for(lambda: bool(self._wanted) or self._stop, timeout=ms / 1e3)
                continue
            c0 = time.thread_time()
            part, error, ms = decode_keys_first(self._decoder, latent, wanted, params=self._params)
            self._measured(ms, len(wanted), cpu_ms=(time.thread_time() - c0) * 1e3)
            if part is not None:
                self.cache.merge(key, part)
                self.keys_rested += len(part) if mode == "rest" else 0
            with self._cond:
                self.busy = False
                self._post_locked(seq, part, tags, error, ms)
                if mode == "rest":  # idle time at half duty; a change or a wanted key cuts it short
                    self._cond.wait_for(lambda done=seq: bool(self._wanted) or self._stop or self._latest[0] != done,
                                        timeout=ms / 1e3)
            if mode == "wanted":
                self._rest(ms)


class DecodingFactory(Protocol):
    """How an :class:`~synth.engine.Engine` decodes, handed to it by whoever builds it (the offline renderer
    passes :class:`OfflineDecoding`, the live host :class:`LiveDecoding`): the threads of the decoder sessions
    the engine builds, whether it wants a tile decoder, and the :class:`Decoding` it starts once the initial
    latent is decoded.

    Attributes
    ----------
    threads : int | None  onnxruntime intra-op threads for the decoder sessions the engine builds (None:
        onnxruntime's default)
    tiles : bool  decode the frames the voices read next first, with a bundle that has a tile decoder
    latent_share : float | None  the share of the audio time the engine's synthesis thread may spend turning
        latent changes into timbres (:class:`~synth.engine.pacing.LatentPacer`); None: every change at its
        frame (offline: exact and deterministic)
    """

    threads: int | None
    tiles: bool
    latent_share: float | None

    def start(self, decoder, *, params: SpectrogramParams, cache: TimbreCache, tile_decoder=None,
              tiles=None) -> Decoding:
        """The strategy, decoding with ``decoder`` (and ``tile_decoder`` with the bundle's TileLayout
        ``tiles``: both or neither) into ``cache``."""


@dataclasses.dataclass(frozen=True)
class OfflineDecoding:
    """Decode every change whole, inline, at its own frame (:class:`InlineDecoding`): deterministic and exact,
    what the offline renderer and the tests use.

    Parameters
    ----------
    threads : onnxruntime intra-op threads for the decoder session the engine builds (None: onnxruntime's
        default)
    """

    threads: int | None = None
    tiles: ClassVar[bool] = False  # whole notes only: each change is exact at its frame
    latent_share: ClassVar[float | None] = None  # every change at its own frame

    def start(self, decoder, *, params: SpectrogramParams, cache: TimbreCache, tile_decoder=None,
              tiles=None) -> InlineDecoding:
        return InlineDecoding(decoder, params=params, cache=cache)


@dataclasses.dataclass(frozen=True)
class LiveDecoding:
    """Decode on a worker thread, off the synthesis path (:class:`DecodeWorker`): what the live host plays with.

    Parameters
    ----------
    threads : onnxruntime intra-op threads for the decoder sessions the engine builds. 1 by default:
        onnxruntime's thread pool spin-waits after each run, which on a small machine takes the core the
        synthesis thread and the audio callback need.
    tiles : with a bundle that has a tile decoder, decode the frames the voices read next first (see
        :mod:`synth.engine.timbre_pipeline`)
    inline_ms : a decoder measured this fast (median ms) decodes each change in the synthesis thread, exact at
        the frame it was asked for (see the module docstring); 0: always on the worker
    latent_share : the share of the audio time the synthesis thread may spend turning latent changes into
        timbres (decoding inline, building, crossfading): a stream of changes is paced to it, the newest asked
        for when its turn comes (:class:`~synth.engine.pacing.LatentPacer`); None: one each frame
    inline_keys_ms : a keyboard bundle's sounding keys measured this fast together (the median ms a key times
        the keys) are decoded in the synthesis thread (see the module docstring); 0: always on the worker
    rest_keys_after_ms : a keyboard bundle's keys no voice sounds are decoded once no latent change has come
        for this long (see :class:`KeyedDecodeWorker`)
    estimate_keys : a keyboard bundle's change whose sounding keys do not all fit ``inline_keys_ms`` is decoded
        at as many of them as fit, chosen to stand nearest to all (:func:`cover_keys`), and sounds at once, the
        voices at the other keys playing the nearest of those moved by semitones until the worker has their
        own; False: such a change waits for the worker
    settle_keys_after_ms : such a change within this long of the one before (a stream) has the rest of its
        sounding keys decoded only once the changes pause this long (see :data:`SETTLE_KEYS_AFTER_MS`)
    """

    threads: int | None = 1
    tiles: bool = True
    inline_ms: float = INLINE_DECODE_MS
    latent_share: float | None = LATENT_SHARE
    inline_keys_ms: float = INLINE_KEYS_MS
    rest_keys_after_ms: float = REST_KEYS_AFTER_MS
    estimate_keys: bool = True
    settle_keys_after_ms: float = SETTLE_KEYS_AFTER_MS

    def start(self, decoder, *, params: SpectrogramParams, cache: TimbreCache, tile_decoder=None,
              tiles=None) -> DecodeWorker | KeyedDecodeWorker:
        if isinstance(decoder, KeyedDecoder):
            return KeyedDecodeWorker(decoder, params=params, cache=cache, inline_keys_ms=self.inline_keys_ms,
                                     rest_keys_after_ms=self.rest_keys_after_ms, estimate_keys=self.estimate_keys,
                                     settle_keys_after_ms=self.settle_keys_after_ms)
        return DecodeWorker(decoder, params=params, cache=cache, tile_decoder=tile_decoder, tiles=tiles,
                            inline_ms=self.inline_ms)
