"""Latent -> the timbre the voices play: decoding, estimating and crossfading, in one object.

The engine hands a :class:`TimbrePipeline` every latent change (:meth:`TimbrePipeline.request`, with the
note frames the sounding voices read next) and calls :meth:`TimbrePipeline.begin_frame` before and
:meth:`TimbrePipeline.end_frame` after each frame; voices read :attr:`current`, :attr:`previous` and
:attr:`weight`. Between a change and its exact timbre, the voices hear, in this order of arrival:

1. an *estimate* at the next frame, when the new latent is a preset-weight or macro move from the last exact
   timbre, or lies on the line (plane) through the recent exact decodes (a fader, an LFO, an XY pad);
2. a *tile*: the frames the voices are about to read, decoded exactly from a window of latent columns
   (bundles with a tile decoder; a third of a whole decode), spliced into what they hear;
3. the whole note's exact decode.

Each arrival crossfades in over :data:`TIMBRE_XFADE_FRAMES` (in dB), except the whole note arriving while
its own tile fades in: it takes the tile's place without restarting the fade (the two agree wherever the
voices read). How latents are decoded is the engine's to say, by the
:class:`~synth.engine.decoding.DecodingFactory` it is handed: offline
(:class:`~synth.engine.decoding.OfflineDecoding`) every change is decoded whole at its own frame, so renders
are deterministic and exact; live (:class:`~synth.engine.decoding.LiveDecoding`) on a worker thread, with the
estimates and tiles above.
"""

from __future__ import annotations

import collections
import statistics

import numpy as np

from synth.engine.control import ControlState, Coordinates
from synth.engine.decoding import (
    CACHE_TIMBRES,
    DecodeResult,
    Decoding,
    DecodingFactory,
    TimbreCache,
    decode_tile,
    decode_timbre,
)
from synth.engine.stats import TimbreStats
from synth.engine.timbre import KeyedTimbre, Timbre, blend_timbres, estimate_timbre, splice_timbre
from synth.errors import BundleError
from synth.spectrogram import SpectrogramParams

__all__ = ["TimbrePipeline", "estimate_along_recent", "TIMBRE_XFADE_FRAMES", "TILE_LOOKAHEAD_FRAMES"]

# Frames over which a new latent's spectrogram crossfades in (in dB): ~47 ms at 128 frames/s.
TIMBRE_XFADE_FRAMES = 6
# Frames ahead of each voice's playhead a tile must hold: the whole note follows a whole decode later
# (12-30 ms on a 2-core CPU, ~2-4 frames); 24 frames (190 ms) leaves room for a loaded machine.
TILE_LOOKAHEAD_FRAMES = 24
# At most this many decoded timbres go into one estimate (bounded work per frame: the four XY corners twice
# over, or several macros moved within one frame).
MAX_ESTIMATE_TERMS = 20
# Exact decodes remembered for estimates along them (see _estimate_along_recent): three differences
# from the newest span a fader, an XY pad or a 3-D control mapped onto latent coordinates.
RECENT_EXACT = 4
# Decoded latents a keyboard bundle's cache keeps (each a timbre per key decoded so far, up to every trained key:
# 17 x 0.33 MB at 36..84 step 3). 3: the current latent, the one before (a morph's or a switch's other end)
# and one more; a stream of changes rarely returns to an earlier latent exactly, and serve's memory target is
# 500 MB.
KEYED_CACHE_TIMBRES = 3
# A latent counts as on the line (plane...) through the recent decodes when it is off it by at most this
# fraction of its distance from the newest: float32 rounding of a value on the line stays far below.
SPAN_TOLERANCE = 1e-3
# How far past the recent decodes an estimate may reach, in multiples of their distance from the newest.
MAX_EXTRAPOLATION = 8.0


def estimate_along_recent(recent: list[tuple[np.ndarray, Timbre]], latent: np.ndarray) -> Timbre | None:
    """The timbre at ``latent`` when it lies on the line (or plane) through the exact decodes ``recent``
    (``(flat latent, timbre)``, newest last): ``latent = z_0 + sum_j c_j (z_j - z_0)`` with ``z_0`` the
    newest, estimated as ``t_0 + sum_j c_j (t_j - t_0)``; None when it lies off it or too far out.

    This is what a fader, an LFO or an XY pad mapped onto latent coordinates (``/synth/latent/set``, or
    ``/synth/latent`` vectors interpolated in Max) produce: once the decoder has answered two points of the
    move, every later point of it sounds at the next frame. The decoder is close to linear over such moves
    (``melsynth bench`` measures the error of this function against the exact decode).
    """
    if len(recent) < 2:
        return None
    z0, t0 = recent[-1]
    d = np.asarray(latent, dtype=np.float64).reshape(-1) - z0
    distance = float(np.linalg.norm(d))
    if distance == 0.0:
        return t0
    others = recent[:-1]
    spans = np.stack([z - z0 for z, _ in others], axis=1)  # (latent_size, m)
    coefs, *_ = np.linalg.lstsq(spans, d, rcond=None)
    if np.linalg.norm(spans @ coefs - d) > SPAN_TOLERANCE * distance:
        return None
    if not np.all(np.isfinite(coefs)) or np.max(np.abs(coefs)) > MAX_EXTRAPOLATION:
        return None
    steps = [(float(c), t) for c, (_, t) in zip(coefs, others, strict=True) if c != 0.0]
    steps.append((-float(np.sum(coefs)), t0))
    return estimate_timbre(t0, steps)


class TimbrePipeline:
    """See the module docstring.

    Parameters
    ----------
    bundle : the model bundle (``params``, ``presets``, ``macros``)
    control : the engine's :class:`ControlState` (its latent at construction is decoded first)
    decoder : a whole-note decoder (``decode(latents) -> mels``)
    decoding : starts the decoding strategy (:class:`~synth.engine.decoding.OfflineDecoding`: inline at each
        change; :class:`~synth.engine.decoding.LiveDecoding`: on a worker thread)
    tile_decoder, tiles : the bundle's tile decoder session and its ``TileLayout`` (both or neither), or None
        to decode whole notes only
    estimate_timbres : sound estimates while a live decode runs
    applied, applied_exact : the engine's deques of ``(tag, sample)``: where each latent command first
        sounds, and where it first sounds exactly
    """

    def __init__(
        self, bundle, *, control: ControlState, decoder, decoding: DecodingFactory, tile_decoder=None, tiles=None,
        estimate_timbres: bool = True, applied: collections.deque, applied_exact: collections.deque,
    ) -> None:
        self.params: SpectrogramParams = bundle.params
        self._control = control
        self._applied = applied
        self._applied_exact = applied_exact
        initial = control.latent()
        timbre, error, _ = decode_timbre(decoder, initial, params=self.params)
        if timbre is None:
            raise BundleError(f"cannot decode the initial latent ({control.preset_label}): {error}")
        self._timbre: Timbre = timbre
        self._prev_timbre: Timbre | None = None
        self._xf = 0
        self._tile_seq = -1  # seq of the tile being faded in, if any
        self._exact_seq = 0  # seq of the latent whose decode the current timbre is (a keyboard bundle's: at its exact keys)
        # A keyboard bundle's timbre holds every trained key's (17 x ~0.3 MB at 36..84 step 3): fewer are kept,
        # and the presets are not decoded ahead (44 of them would pin ~230 MB).
        self._keyed = keyed = isinstance(timbre, KeyedTimbre)
        cache = TimbreCache(KEYED_CACHE_TIMBRES if keyed else CACHE_TIMBRES)
        if keyed:  # (a keyboard bundle's cache holds the keys decoded so far of each latent)
            cache.merge(cache.key(initial), timbre.by_key)
        else:
            cache.put(cache.key(initial), timbre)
        if tile_decoder is None or tiles is None:
            tile_decoder = tiles = None
        else:  # onnxruntime's first run of a session is slow: not on a performer's first move
            decode_tile(tile_decoder, initial, start=0, layout=tiles)
        self._decoding: Decoding = decoding.start(decoder, params=self.params, cache=cache,
                                                  tile_decoder=tile_decoder, tiles=tiles)
        # Live: every preset decoded in idle time after start, so a preset switch needs no decode.
        self._preset_keys = tuple(cache.key(p.latent) for p in bundle.presets.values())
        if not keyed:
            self._decoding.prefetch(p.latent for p in bundle.presets.values())
        # Live: a morph, XY or macro move sounds at the next frame as an estimate (the last exact timbre
        # plus the change of each preset weight times the preset's timbre and of each macro times its slope
        # at the mean latent), replaced when the decoder answers. The slopes need the mean latent and one
        # step along each macro decoded: prefetched after the presets.
        self.live = bool(self._decoding.live)
        self._estimate_timbres = bool(estimate_timbres) and self.live
        self._macro_keys: tuple[bytes, ...] = ()
        macros = getattr(bundle, "macros", None)
        if macros is not None and len(control.macro_directions):
            mean = np.asarray(macros.mean, dtype=np.float64).reshape(-1)
            anchors = [mean] + [mean + d for d in control.macro_directions]
            anchors = [a.reshape(control.latent_shape).astype(np.float32) for a in anchors]
            self._macro_keys = tuple(cache.key(a) for a in anchors)
            if self.estimate_timbres:
                self._decoding.prefetch(anchors)
        self._exact: tuple[Timbre, Coordinates | None] = (timbre, control.coordinates())
        # (latent, timbre) of the newest exact decodes, newest last.
        self._recent: collections.deque[tuple[np.ndarray, Timbre]] = collections.deque(maxlen=RECENT_EXACT)
        self._remember(self._exact[1], timbre)
        self._coords_by_seq: dict[int, Coordinates | None] = {}
        self._estimated_tags: set = set()
        self.timbre_estimates = 0
        self.tiles_sounded = 0
        self.keys_first_sounded = 0  # keyboard bundles: latent changes sounded at the playing keys first
        self.keys_added = 0  # keyboard bundles: answers that decoded more keys of the sounding latent
        self.keys_estimated = 0  # keyboard bundles: changes sounded at some keys, the others moved from them
        # Keyboard bundles: the exact keys of the voices' timbre changed since the engine last placed its voices
        # (a voice whose key is not exact moves to the nearest that is; one whose own key is, back to it).
        self.keys_changed = False
        self.latent_changes = 0
        self.decode_errors = 0
        self.last_decode_error = ""

    @property
    def estimate_timbres(self) -> bool:
        """Whether a live engine sounds estimates while it decodes (never offline: its decodes are inline)."""
        return self._estimate_timbres

    @estimate_timbres.setter
    def estimate_timbres(self, value: bool) -> None:
        self._estimate_timbres = bool(value) and self.live

    # ------------------------------------------------------------------ what voices read
    @property
    def current(self) -> Timbre:
        """The timbre voices play (the target of any crossfade in progress)."""
        return self._timbre

    @property
    def previous(self) -> Timbre | None:
        """The timbre a crossfade in progress starts from, None when there is none."""
        return self._prev_timbre

    @property
    def weight(self) -> float:
        """Weight of :attr:`current` in this frame (``(1 - weight) * previous + weight * current``, in dB)."""
        return (self._xf + 1) / TIMBRE_XFADE_FRAMES if self._prev_timbre is not None else 1.0

    # ------------------------------------------------------------------ per frame
    def begin_frame(self, sample: int) -> bool:
        """Take a finished live decode (whole or tile) so that it sounds from this frame (at ``sample``);
        True when there was one."""
        result = self._decoding.collect()
        if result is None:
            return False
        self._take(result, sample)
        return True

    def end_frame(self) -> None:
        """Advance the crossfade by the frame just rendered."""
        if self._prev_timbre is not None:
            self._xf += 1
            if self._xf >= TIMBRE_XFADE_FRAMES:
                self._prev_timbre = None
                self._xf = 0
                self._tile_seq = -1

    def request(self, latent: np.ndarray, coords: Coordinates | None, tags: tuple, sample: int,
                frames: tuple[int, int] | None, keys: tuple[int, ...] = ()) -> None:
        """The latent changed at ``sample`` (``tags``: the commands that changed it; ``frames``: the note
        frames ``[first, end)`` the sounding voices read next, None when none sounds; ``keys``: a keyboard
        bundle's trained keys they sound, decoded first)."""
        result = self._decoding.request(latent, tags, frames, keys)
        self._coords_by_seq[self._decoding.requested] = coords
        if result is not None:
            self._take(result, sample)
            return
        estimate = self._estimate(coords) if self.estimate_timbres else None
        if estimate is not None:
            self.timbre_estimates += 1
            self._sound(estimate)
            for tag in tags:
                self._applied.append((tag, sample))
                self._estimated_tags.add(tag)

    # ------------------------------------------------------------------ estimates
    def _estimate(self, coords: Coordinates | None) -> Timbre | None:
        """The timbre at ``coords`` estimated from timbres already decoded, or None when that cannot be done.

        First from the presets and macro slopes (:meth:`_estimate_from_presets`), else along the recent exact
        decodes (:func:`estimate_along_recent`)."""
        if coords is None:
            return None
        estimate = self._estimate_from_presets(coords)
        return self._estimate_along_recent(coords.latent) if estimate is None else estimate

    def _estimate_from_presets(self, coords: Coordinates) -> Timbre | None:
        """The timbre at ``coords`` from the last exact one plus preset-weight and macro steps; None when an
        arbitrary base changed (``/synth/latent...``), or a timbre the estimate needs is not decoded yet."""
        known, known_coords = self._exact
        if known_coords is None:
            return None
        terms: list[tuple[float, bytes]] = []
        if coords.weights is not None and known_coords.weights is not None:
            delta = coords.weights - known_coords.weights
            terms += [(float(delta[i]), self._preset_keys[i]) for i in np.flatnonzero(np.abs(delta) > 1e-9)]
        elif coords.weights is not None or known_coords.weights is not None:
            return None
        elif coords.base_version != known_coords.base_version:
            return None
        if coords.macros != known_coords.macros:
            if not self._macro_keys:
                return None
            moves = np.subtract(coords.macros, known_coords.macros)
            moved = np.flatnonzero(np.abs(moves) > 1e-9)
            # Slope of macro k at the mean latent: timbre(mean + direction_k) - timbre(mean).
            terms += [(float(moves[k]), self._macro_keys[k + 1]) for k in moved]
            terms.append((-float(moves[moved].sum()), self._macro_keys[0]))
        if not terms or len(terms) > MAX_ESTIMATE_TERMS:
            return None
        steps = []
        for weight, key in terms:
            timbre = self._decoding.cache.peek(key)  # (pinned once prefetched)
            if timbre is None:
                return None
            steps.append((weight, timbre))
        return estimate_timbre(known, steps)

    def _estimate_along_recent(self, latent: np.ndarray) -> Timbre | None:
        return estimate_along_recent(list(self._recent), latent)

    def _remember(self, coords: Coordinates | None, timbre: Timbre) -> None:
        """Keep an exact decode for :meth:`_estimate_along_recent` (a repeat of the newest is dropped)."""
        if coords is not None:
            self._remember_latent(coords.latent.astype(np.float64), timbre)

    def _remember_latent(self, z: np.ndarray, timbre: Timbre) -> None:
        if self._recent and np.array_equal(self._recent[-1][0], z):
            return
        # The same point further back would make the differences degenerate: keep only its newest copy.
        kept = [(zj, tj) for zj, tj in self._recent if not np.array_equal(zj, z)]
        self._recent.clear()
        self._recent.extend(kept)
        self._recent.append((z, timbre))

    # ------------------------------------------------------------------ arrivals
    def _sound(self, timbre: Timbre) -> None:
        """Crossfade the voices to ``timbre`` over the next frames."""
        self.latent_changes += 1
        self._tile_seq = -1
        if self._prev_timbre is not None:
            # A newer latent interrupts a crossfade: freeze what is sounding now as the start point.
            self._prev_timbre = blend_timbres(self._prev_timbre, self._timbre, self._xf / TIMBRE_XFADE_FRAMES)
        else:
            self._prev_timbre = self._timbre
        self._timbre = timbre
        self._xf = 0

    def _resolve_tags(self, tags: tuple, sample: int) -> None:
        for tag in tags:
            if tag in self._estimated_tags:
                self._estimated_tags.discard(tag)
            else:
                self._applied.append((tag, sample))
            self._applied_exact.append((tag, sample))

    def _take(self, result: DecodeResult, sample: int) -> None:
        if result.keys is not None and isinstance(self._timbre, KeyedTimbre):
            self._take_keys(result, sample)
            return
        if result.tile is not None:
            tile = result.tile
            self._sound(splice_timbre(self._timbre, tile.part, first=tile.first, params=self.params))
            self._tile_seq = result.seq
            self.tiles_sounded += 1
            self._resolve_tags(result.tags, sample)
            return
        coords = self._coords_by_seq.pop(result.seq, None)
        for seq in [k for k in self._coords_by_seq if k < result.seq]:
            del self._coords_by_seq[seq]
        if result.timbre is None:
            if result.error:  # (no error: superseded by a newer latent answered from the cache)
                self.decode_errors += 1
                self.last_decode_error = result.error
        else:
            self._exact = (result.timbre, coords)
            self._remember(coords, result.timbre)
            newest = self._decoding.requested
            timbre = result.timbre
            estimated = False
            if result.seq < newest and self.estimate_timbres:
                # A newer latent waits for the decoder: sound its estimate from this fresher exact timbre.
                estimate = self._estimate(self._coords_by_seq.get(newest))
                if estimate is not None:
                    self.timbre_estimates += 1
                    timbre, estimated = estimate, True
            if not estimated:
                self._exact_seq = result.seq
            if not estimated and result.seq == self._tile_seq and self._prev_timbre is not None:
                # The whole note of the tile fading in: the same frames where the voices read, so it takes
                # the tile's place mid-fade.
                self._timbre = timbre
                self._tile_seq = -1
            else:
                self._sound(timbre)
        self._resolve_tags(result.tags, sample)

    def _take_keys(self, result: DecodeResult, sample: int) -> None:
        """A keyboard bundle's answer: exact timbres of some keys of request ``result.seq``'s latent. A newer
        latent's sound at once at its keys (crossfaded in; the other keys keep what they held); more keys of
        the sounding latent join it as they are (no voice plays them yet: a note at such a key plays the
        nearest exact key until its own is there, see :meth:`has_key`); an older latent's are dropped."""
        for seq in [k for k in self._coords_by_seq if k <= result.seq]:
            del self._coords_by_seq[seq]
        timbre = self._timbre
        if result.seq > self._exact_seq:
            self._sound(timbre.with_keys(result.keys, new_latent=True))
            self._exact_seq = result.seq
            self.keys_first_sounded += 1
            self.keys_changed = True
        elif result.seq == self._exact_seq:
            self._timbre = timbre.with_keys(result.keys, new_latent=False)
            self.keys_added += 1
            self.keys_changed = True
        if result.estimate:
            # Sounding now at every key, the voices at keys not decoded yet moved from the nearest that is (the
            # engine moves them, see keys_changed): exact once the rest of the keys follow with these tags.
            self.keys_estimated += 1
            for tag in result.tags:
                if tag not in self._estimated_tags:
                    self._applied.append((tag, sample))
                    self._estimated_tags.add(tag)
            return
        self._resolve_tags(result.tags, sample)

    # ------------------------------------------------------------------ keys (a keyboard bundle's)
    def has_key(self, key: int) -> bool:
        """Whether the voices' timbre holds trained ``key`` decoded from its own latent (always, for a
        one-pitch bundle)."""
        timbre = self._timbre
        return not isinstance(timbre, KeyedTimbre) or key in timbre.exact

    def nearest_key(self, note: float) -> int:
        """The exact key of the voices' timbre nearest ``note`` (see :meth:`KeyedTimbre.nearest_exact`)."""
        return self._timbre.nearest_exact(note)

    def want_keys(self, keys: tuple[int, ...]) -> None:
        """Ask for the current latent at ``keys`` first (notes started where it is not decoded yet)."""
        self._decoding.request_keys(keys)

    # ------------------------------------------------------------------ state
    def estimates_ready(self) -> bool:
        """True once every timbre the estimates need (presets, macro slopes) is decoded (live engines); True at
        once when there are no estimates (a keyboard bundle's, or switched off): nothing is waited for."""
        if not self.estimate_timbres:
            return True
        cache = self._decoding.cache
        return all(cache.is_pinned(key) for key in (*self._preset_keys, *self._macro_keys))

    def presets_decoded(self) -> bool:
        """True once every preset's timbre is in the cache (a live engine decodes them in idle time after
        start; until then a preset switch waits for its decode). A keyboard bundle decodes presets when asked
        for (see ``__init__``): there is nothing to wait for."""
        if self._keyed:
            return True
        cache = self._decoding.cache
        return all(cache.is_pinned(key) for key in self._preset_keys)

    @property
    def requested(self) -> int:
        """Sequence number of the newest latent requested."""
        return self._decoding.requested

    @property
    def cache(self) -> TimbreCache:
        return self._decoding.cache

    def decoding_idle(self) -> bool:
        """True when no decode is waiting or running (always true offline)."""
        return self._decoding.idle()

    def decode_ms(self) -> float:
        """Median of the recent whole-note decode times (ms), 0.0 before any decode."""
        times = list(self._decoding.decode_ms)
        return float(statistics.median(times)) if times else 0.0

    def tile_ms(self) -> float:
        """Median of the recent tile decode times (ms), 0.0 before any."""
        times = list(self._decoding.tile_ms)
        return float(statistics.median(times)) if times else 0.0

    def decode_thread_id(self) -> int:
        """Native id of the live decode worker's thread (0 offline)."""
        return int(self._decoding.thread_id)

    def stats(self) -> TimbreStats:
        """This pipeline's figures, built now from its counters and its decoding strategy's."""
        decoding = self._decoding
        return TimbreStats(
            latent_changes=int(self.latent_changes),
            decode_errors=int(self.decode_errors),
            decode_ms=self.decode_ms(),
            tile_ms=self.tile_ms(),
            tiles=int(self.tiles_sounded),
            keys_first=int(self.keys_first_sounded),
            tiles_decoded=int(decoding.tiles_decoded),
            coalesced=int(decoding.coalesced),
            inline_decodes=int(decoding.inline_decodes),
            decodes_inline=bool(decoding.decodes_inline()),
            cache_hits=int(decoding.cache.hits),
            timbre_estimates=int(self.timbre_estimates),
            keys_estimated=int(self.keys_estimated),
        )

    def close(self) -> None:
        self._decoding.close()
