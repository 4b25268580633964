"""The engine: voices, latent state, inversion and limiter, driven by sample time.

:class:`Engine` is deterministic and single-threaded. Time is the count of output samples rendered; the
output is cut into frames on the model's frame clock (frame ``g`` covers samples
``[round(g*H), round((g+1)*H))``, ``H = hop_length * output_rate / sample_rate``), and every event scheduled
at sample ``s`` is applied before the first frame that starts at or after ``s``. So how the caller chunks
:meth:`Engine.render` never changes the audio, and the same schedule always gives the same samples.

The live engine (:mod:`synth.engine.live`) and the offline renderer drive the very same object; they differ
only in how latents are decoded (``live=False``: inline at the event's frame; ``live=True``: on a
:class:`~synth.engine.decoding.DecodeWorker`, applied at the first frame after the decode finishes).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import statistics

import numpy as np

from synth.engine.allocation import VoicePool
from synth.engine.commands import (
    LATENT_COMMANDS,
    METHODS,
    Command,
    ControlSpec,
    NoteOff,
    NoteOn,
    Panic,
    SetBend,
    SetGain,
    SetMethod,
)
from synth.engine.control import ControlSnapshot, ControlState, Coordinates
from synth.engine.decoding import DecodeResult, DecodeWorker, InlineDecoding, TimbreCache, decode_timbre
from synth.engine.limiter import Limiter
from synth.engine.timbre import Timbre, blend_timbres, estimate_timbre
from synth.engine.voice import Voice
from synth.errors import BundleError, ParameterError
from synth.spectrogram import SpectrogramParams

__all__ = ["Engine", "TIMBRE_XFADE_FRAMES", "DEFAULT_GAIN"]

# Frames over which a new latent's spectrogram crossfades in (in dB): ~47 ms at 128 frames/s.
TIMBRE_XFADE_FRAMES = 6
# At most this many decoded timbres go into one estimate (bounded work per frame: the four XY corners twice
# over, or several macros moved within one frame).
MAX_ESTIMATE_TERMS = 20
# Exact decodes remembered for estimates along them (see Engine._estimate_along_recent): three differences
# from the newest span a fader, an XY pad or a 3-D control mapped onto latent coordinates.
RECENT_EXACT = 4
# A latent counts as on the line (plane...) through the recent decodes when it is off it by at most this
# fraction of its distance from the newest: float32 rounding of a value on the line stays far below.
SPAN_TOLERANCE = 1e-3
# How far past the recent decodes an estimate may reach, in multiples of their distance from the newest.
MAX_EXTRAPOLATION = 8.0
# Output gain by default: one loud note peaks near -6 dBFS, chords lean on the limiter less.
DEFAULT_GAIN = 0.5


def _default_inverter_factory(*, harmonic_f0: float | None):
    from synth.inversion import make_inverter

    def factory(method: str, *, params: SpectrogramParams, output_rate: int):
        # The model knows one pitch: both methods tune partials near its harmonics onto them
        # (``harmonic_f0`` of each inverter), which corrects a decoder that blurs a low fundamental.
        extra = {"harmonic_f0": harmonic_f0} if harmonic_f0 is not None else {}
        return make_inverter(method, params=params, output_rate=output_rate, **extra)

    return factory


class Engine:
    """The synthesizer core.

    Parameters
    ----------
    bundle : synth.bundle.Bundle  (``params``, ``latent_shape``, ``base_pitch``, ``presets``, ``macros``,
        ``decoder()``)
    output_rate : int  output sample rate (Hz), e.g. the device's 48000
    method : "sinusoidal" | "griffinlim"
    max_voices : int  polyphony (the oldest voice is stolen beyond it)
    gain : float  output gain before the limiter
    live : bool  False: decode inline (deterministic); True: decode on a worker thread
    decoder : object with ``decode(latents) -> mels`` and ``provider``; None: ``bundle.decoder()``
    inverter_factory : ``f(method, *, params, output_rate) -> StreamingInverter``; None:
        :func:`synth.inversion.make_inverter`
    tune_partials : bool, with the default inverters: partials within the mel resolution of a harmonic of the
        base pitch are moved onto it (in tune; see ``harmonic_f0`` of both inverters). False keeps every
        partial where the mel peak puts it (inharmonic presets keep their upper partials).
    initial_preset : str | None  the preset sounding at start (None: the bundle's first preset)
    methods : the methods to build inverters for (the start method must be among them)
    decoder_threads : onnxruntime intra-op threads for ``bundle.decoder()`` (None: 1 when live, else
        onnxruntime's default)
    """

    def __init__(
        self,
        bundle,
        *,
        output_rate: int = 48000,
        method: str = "sinusoidal",
        max_voices: int = 16,
        gain: float = DEFAULT_GAIN,
        live: bool = False,
        decoder=None,
        inverter_factory=None,
        tune_partials: bool = True,
        initial_preset: str | None = None,
        methods: tuple[str, ...] = METHODS,
        decoder_threads: int | None = None,
        estimate_timbres: bool = True,
    ) -> None:
        if isinstance(output_rate, bool) or not isinstance(output_rate, int) or not 8000 <= output_rate <= 384000:
            raise ParameterError(f"output rate must be an integer 8000..384000 Hz, got {output_rate!r}")
        if method not in methods or any(m not in METHODS for m in methods):
            raise ParameterError(f"method must be one of {', '.join(methods)}, got {method!r}")
        if isinstance(max_voices, bool) or not isinstance(max_voices, int) or not 1 <= max_voices <= 256:
            raise ParameterError(f"max voices must be an integer 1..256, got {max_voices!r}")
        self.params = params = bundle.params
        self.output_rate = output_rate
        self.base_pitch = int(bundle.base_pitch)
        macros = getattr(bundle, "macros", None)
        self.spec = ControlSpec(
            base_pitch=self.base_pitch,
            latent_shape=tuple(bundle.latent_shape),
            presets=tuple(bundle.presets),
            macro_count=int(len(macros.stds)) if macros is not None else 0,
            methods=tuple(methods),
        )
        self.spec.check(SetGain(float(gain)))
        if initial_preset is not None and initial_preset not in bundle.presets:
            raise ParameterError(f"unknown preset {initial_preset!r}")
        self._control = ControlState(
            presets={name: p.latent for name, p in bundle.presets.items()},
            latent_shape=self.spec.latent_shape,
            components=None if macros is None else macros.components,
            stds=None if macros is None else macros.stds,
            initial=initial_preset,
        )
        if not bundle.presets and macros is not None:
            self._control.base = np.asarray(macros.mean, dtype=np.float64).reshape(-1).copy()
            self._control.preset_label = "mean"

        if decoder is None:
            # Live: one intra-op thread. onnxruntime's thread pool spin-waits after each run, which on a
            # small machine takes the core the synthesis thread and the audio callback need.
            decoder = bundle.decoder(threads=decoder_threads if decoder_threads is not None else (1 if live else None))
        self._decoder = decoder
        self.provider = str(getattr(self._decoder, "provider", "unknown"))
        initial = self._control.latent()
        timbre, error, _ = decode_timbre(self._decoder, initial, params=params)
        if timbre is None:
            raise BundleError(f"cannot decode the initial latent ({self._control.preset_label}): {error}")
        self._timbre: Timbre = timbre
        self._prev_timbre: Timbre | None = None
        self._xf = 0
        cache = TimbreCache()
        cache.put(cache.key(initial), timbre)
        self._decoding = (
            DecodeWorker(self._decoder, params=params, cache=cache)
            if live
            else InlineDecoding(self._decoder, params=params, cache=cache)
        )
        # Live: every preset decoded in idle time after start, so a preset switch needs no decode.
        self._preset_keys = tuple(cache.key(p.latent) for p in bundle.presets.values())
        self._decoding.prefetch(p.latent for p in bundle.presets.values())
        # Live: a morph, XY or macro move sounds at the next frame as an estimate (the last exact timbre
        # plus the change of each preset weight times the preset's timbre and of each macro times its slope
        # at the mean latent), replaced when the decoder answers. The slopes need the mean latent and one
        # step along each macro decoded: prefetched after the presets.
        self.estimate_timbres = bool(estimate_timbres) and self._decoding.live
        self._macro_keys: tuple[bytes, ...] = ()
        if macros is not None and len(self._control.macro_directions):
            mean = np.asarray(macros.mean, dtype=np.float64).reshape(-1)
            anchors = [mean] + [mean + d for d in self._control.macro_directions]
            anchors = [a.reshape(self.spec.latent_shape).astype(np.float32) for a in anchors]
            self._macro_keys = tuple(cache.key(a) for a in anchors)
            if self.estimate_timbres:
                self._decoding.prefetch(anchors)
        self._exact: tuple[Timbre, Coordinates | None] = (timbre, self._control.coordinates())
        # (latent, timbre) of the newest exact decodes, newest last.
        self._recent: collections.deque[tuple[np.ndarray, Timbre]] = collections.deque(maxlen=RECENT_EXACT)
        self._remember(self._exact[1], timbre)
        self._coords_by_seq: dict[int, Coordinates | None] = {}
        self._estimated_tokens: set = set()
        self.timbre_estimates = 0

        if inverter_factory is None:
            base_hz = 440.0 * 2.0 ** ((self.base_pitch - 69) / 12.0)
            inverter_factory = _default_inverter_factory(harmonic_f0=base_hz if tune_partials else None)
        self.hop_samples = params.hop_length * output_rate / params.sample_rate
        self._num = params.hop_length * output_rate  # frame g starts at floor(g*num/den + 1/2)
        self._den = params.sample_rate
        self.max_frame_samples = self._frame_start(1) + 2
        self.method = method
        self.methods = tuple(methods)

        def make_voice() -> Voice:
            inverters = {
                m: inverter_factory(m, params=params, output_rate=output_rate) for m in self.methods
            }
            return Voice(
                inverters, n_mels=params.n_mels, max_frame_samples=self.max_frame_samples,
                hop_samples=self.hop_samples,
            )

        self.pool = VoicePool(max_voices=max_voices, make_voice=make_voice)
        self.latency_samples = {m: int(self.pool.slots[0].inverters[m].latency_samples) for m in self.methods}
        self.limiter = Limiter(rate=output_rate, max_samples=self.max_frame_samples)
        self.limiter.set_gain(gain)
        self.limiter.reset()
        self.gain = float(gain)
        self.bend = 0.0  # semitones (SetBend)
        self._bend_ratio = 1.0
        self._warm_up()

        self.frame = 0  # next frame to generate
        self.position = 0  # samples handed out by render()
        self._mix = np.zeros(self.max_frame_samples, dtype=np.float32)
        self._frame_len = 0
        self._frame_read = 0
        self._events: list = []
        self._seq = itertools.count()
        self._latent_dirty = False
        self._latent_tokens: list = []
        # Observability (for status replies and benches).
        self.applied: collections.deque = collections.deque(maxlen=4096)  # (token, sample) of applied events
        # (token, sample) where a latent command's exact decode first sounds (later than in ``applied`` when
        # an estimate sounded first).
        self.applied_exact: collections.deque = collections.deque(maxlen=4096)
        self.events_applied = 0
        self.late_events = 0
        self.decode_errors = 0
        self.last_decode_error = ""
        self.latent_changes = 0
        self._snapshot = self._control.snapshot(method=method, gain=self.gain)

    def _warm_up(self) -> None:
        """Run every inverter kind over a few frames once, so that first-use costs (JIT compilation, lazy
        tables) are paid here and not by the first note of a live performance."""
        out = np.zeros(self.max_frame_samples, dtype=np.float32)
        frame = np.zeros(self.params.n_mels, dtype=np.float32)  # writable, like a voice's (JIT types differ)
        n = self._frame_start(1)
        for inverter in self.pool.slots[0].inverters.values():
            for k in range(8):
                frame[:] = self._timbre.held[min(k, self._timbre.sustain_start - 1)]
                inverter.process_frame(frame, pitch_ratio=1.5, out=out[:n])
            inverter.reset()

    # ------------------------------------------------------------------ clock
    def _frame_start(self, g: int) -> int:
        return (2 * g * self._num + self._den) // (2 * self._den)

    def frame_start(self, g: int) -> int:
        """First output sample of frame ``g``."""
        return self._frame_start(g)

    @property
    def next_frame_sample(self) -> int:
        """First sample of the next frame to be generated (where an event scheduled now would land)."""
        return self._frame_start(self.frame)

    # ------------------------------------------------------------------ control
    def schedule(self, command: Command, at_sample: int | None = None, *, token=None) -> None:
        """Apply ``command`` at the first frame that starts at or after ``at_sample``.

        ``at_sample=None`` means the next frame not yet generated. Commands are checked here
        (:class:`~synth.errors.ParameterError` for anything the engine cannot apply). ``token``, if given, is
        recorded with the sample where the change first sounds in :attr:`applied` (for latency figures).
        Events at the same sample apply in the order they were scheduled.
        """
        self.spec.check(command)
        if at_sample is None:
            at_sample = self.next_frame_sample
        elif isinstance(at_sample, bool) or not isinstance(at_sample, (int, np.integer)):
            raise ParameterError(f"at_sample must be an integer sample time, got {at_sample!r}")
        at = int(at_sample)
        if at < self.next_frame_sample:
            self.late_events += 1
            at = self.next_frame_sample
        heapq.heappush(self._events, (at, next(self._seq), command, token))

    @property
    def pending_events(self) -> int:
        return len(self._events)

    def _apply(self, command: Command, token, sample: int) -> None:
        self.events_applied += 1
        if isinstance(command, NoteOn):
            if command.velocity <= 0:
                self.pool.note_off(command.note)
            else:
                ratio = 2.0 ** ((command.note - self.base_pitch) / 12.0)
                self.pool.note_on(note=command.note, velocity=command.velocity, pitch_ratio=ratio, method=self.method)
        elif isinstance(command, NoteOff):
            self.pool.note_off(command.note)
        elif isinstance(command, Panic):
            self.pool.panic()
        elif isinstance(command, SetMethod):
            if command.method not in self.methods:
                raise ParameterError(f"method {command.method} was not built into this engine")
            if command.method != self.method:
                self.method = command.method
                self.pool.switch_method(command.method)
        elif isinstance(command, SetGain):
            self.gain = float(command.gain)
            self.limiter.set_gain(self.gain)
        elif isinstance(command, SetBend):
            self.bend = float(command.semitones)
            self._bend_ratio = 2.0 ** (self.bend / 12.0)
        elif isinstance(command, LATENT_COMMANDS):
            if self._control.apply(command):
                # Decoded once per frame, after every event of the frame (see _request_latent): a burst of
                # control messages costs one decode, not one each.
                self._latent_dirty = True
                if token is not None:
                    self._latent_tokens.append(token)
                token = None
        if token is not None:
            self.applied.append((token, sample))

    def _request_latent(self, sample: int) -> None:
        tokens, self._latent_tokens = tuple(self._latent_tokens), []
        self._latent_dirty = False
        latent = self._control.latent()
        coords = self._control.coordinates(latent)
        result = self._decoding.request(latent, tokens)
        self._coords_by_seq[self._decoding.requested] = coords
        if result is not None:
            self._take(result, sample)
            return
        estimate = self._estimate(coords) if self.estimate_timbres else None
        if estimate is not None:
            self.timbre_estimates += 1
            self._sound(estimate)
            for token in tokens:
                self.applied.append((token, sample))
                self._estimated_tokens.add(token)

    def _estimate(self, coords: Coordinates | None) -> Timbre | None:
        """The timbre at ``coords`` estimated from timbres already decoded, or None when that cannot be done.

        First from the presets and macro slopes (:meth:`_estimate_from_presets`), else along the recent exact
        decodes (:meth:`_estimate_along_recent`)."""
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
        """The timbre at ``latent`` when it lies on the line (or plane) through the recent exact decodes:
        ``latent = z_0 + sum_j c_j (z_j - z_0)`` with ``z_0`` the newest, estimated as
        ``t_0 + sum_j c_j (t_j - t_0)``; None when it lies off it.

        This is what a fader, an LFO or an XY pad mapped onto latent coordinates (``/synth/latent/set``, or
        ``/synth/latent`` vectors interpolated in Max) produce: once the decoder has answered two points of
        the move, every later point of it sounds at the next frame. The decoder is close to linear over
        such moves (one preset standard deviation along one coordinate: 0.00003 dB mean error from a
        quarter-step finite difference, against 0.007 dB for keeping the old sound).
        """
        if len(self._recent) < 2:
            return None
        z0, t0 = self._recent[-1]
        d = latent.astype(np.float64) - z0
        distance = float(np.linalg.norm(d))
        if distance == 0.0:
            return t0
        others = list(self._recent)[:-1]
        spans = np.stack([z - z0 for z, _ in others], axis=1)  # (latent_size, m)
        coefs, *_ = np.linalg.lstsq(spans, d, rcond=None)
        if np.linalg.norm(spans @ coefs - d) > SPAN_TOLERANCE * distance:
            return None
        if not np.all(np.isfinite(coefs)) or np.max(np.abs(coefs)) > MAX_EXTRAPOLATION:
            return None
        steps = [(float(c), t) for c, (_, t) in zip(coefs, others, strict=True) if c != 0.0]
        steps.append((-float(np.sum(coefs)), t0))
        return estimate_timbre(t0, steps)

    def _remember(self, coords: Coordinates | None, timbre: Timbre) -> None:
        """Keep an exact decode for :meth:`_estimate_along_recent` (a repeat of the newest is dropped)."""
        if coords is None:
            return
        z = coords.latent.astype(np.float64)
        if self._recent and np.array_equal(self._recent[-1][0], z):
            return
        # The same point further back would make the differences degenerate: keep only its newest copy.
        kept = [(zj, tj) for zj, tj in self._recent if not np.array_equal(zj, z)]
        self._recent.clear()
        self._recent.extend(kept)
        self._recent.append((z, timbre))

    def estimates_ready(self) -> bool:
        """True once every timbre the estimates need (presets, macro slopes) is decoded (live engines)."""
        cache = self._decoding.cache
        return all(cache.is_pinned(key) for key in (*self._preset_keys, *self._macro_keys))

    def _sound(self, timbre: Timbre) -> None:
        """Crossfade the voices to ``timbre`` over the next frames."""
        self.latent_changes += 1
        if self._prev_timbre is not None:
            # A newer latent interrupts a crossfade: freeze what is sounding now as the start point.
            self._prev_timbre = blend_timbres(self._prev_timbre, self._timbre, self._xf / TIMBRE_XFADE_FRAMES)
        else:
            self._prev_timbre = self._timbre
        self._timbre = timbre
        self._xf = 0

    def _take(self, result: DecodeResult, sample: int) -> None:
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
            if result.seq < newest and self.estimate_timbres:
                # A newer latent waits for the decoder: sound its estimate from this fresher exact timbre.
                estimate = self._estimate(self._coords_by_seq.get(newest))
                if estimate is not None:
                    self.timbre_estimates += 1
                    timbre = estimate
            self._sound(timbre)
        for token in result.tokens:
            if token in self._estimated_tokens:
                self._estimated_tokens.discard(token)
            else:
                self.applied.append((token, sample))
            self.applied_exact.append((token, sample))

    # ------------------------------------------------------------------ audio
    def _render_frame(self) -> None:
        g = self.frame
        start = self._frame_start(g)
        n = self._frame_start(g + 1) - start
        if self._decoding.live:
            result = self._decoding.collect()
            if result is not None:
                self._take(result, start)
        events = self._events
        if events and events[0][0] <= start:
            while events and events[0][0] <= start:
                _, _, command, token = heapq.heappop(events)
                self._apply(command, token, start)
            if self._latent_dirty:
                self._request_latent(start)
            self._snapshot = self._control.snapshot(method=self.method, gain=self.gain)
        mix = self._mix[:n]
        mix[:] = 0.0
        if self._prev_timbre is not None:
            weight = (self._xf + 1) / TIMBRE_XFADE_FRAMES
        else:
            weight = 1.0
        for voice in self.pool.slots:
            if voice.active:
                voice.render_frame(mix, current=self._timbre, previous=self._prev_timbre, weight=weight,
                                   bend=self._bend_ratio)
        if self._prev_timbre is not None:
            self._xf += 1
            if self._xf >= TIMBRE_XFADE_FRAMES:
                self._prev_timbre = None
                self._xf = 0
        self.limiter.process(mix)
        self._frame_len = n
        self._frame_read = 0
        self.frame = g + 1

    def render_into(self, out: np.ndarray) -> None:
        """Fill ``out`` (1-D float32) with the next ``len(out)`` samples."""
        n = len(out)
        i = 0
        while i < n:
            if self._frame_read >= self._frame_len:
                self._render_frame()
            take = min(n - i, self._frame_len - self._frame_read)
            out[i : i + take] = self._mix[self._frame_read : self._frame_read + take]
            self._frame_read += take
            i += take
        self.position += n

    def render(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` samples of output.

        Returns
        -------
        np.ndarray [shape=(n_samples,), dtype=float32, |x| <= limiter ceiling]
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 0:
            raise ParameterError(f"n_samples must be a non-negative integer, got {n_samples!r}")
        out = np.empty(int(n_samples), dtype=np.float32)
        self.render_into(out)
        return out

    # ------------------------------------------------------------------ state
    @property
    def sounding_voices(self) -> int:
        """Voices producing sound (including ones fading out or ringing in their release)."""
        return sum(1 for v in self.pool.slots if v.active)

    @property
    def idle(self) -> bool:
        """No voice sounding and no event pending."""
        return not self._events and self.sounding_voices == 0

    @property
    def controls(self) -> ControlSnapshot:
        """The current control settings (an immutable snapshot, safe to read from any thread)."""
        return self._snapshot

    @property
    def timbre(self) -> Timbre:
        """The spectrogram layout voices currently play (the target of any crossfade in progress)."""
        return self._timbre

    def decode_ms(self) -> float:
        """Median of the recent decode times (ms), 0.0 before any decode."""
        times = list(self._decoding.decode_ms)
        return float(statistics.median(times)) if times else 0.0

    def decode_thread_id(self) -> int:
        """Native id of the live decode worker's thread (0 offline)."""
        return int(getattr(self._decoding, "thread_id", 0))

    def presets_decoded(self) -> bool:
        """True once every preset's timbre is in the cache (a live engine decodes them in idle time after
        start; until then a preset switch waits for its decode)."""
        cache = self._decoding.cache
        return all(cache.is_pinned(key) for key in self._preset_keys)

    def decoding_idle(self) -> bool:
        """True when no decode is waiting or running (always true offline); a finished one is applied at the
        next frame rendered."""
        return not self._decoding.live or self._decoding.idle()

    def stats(self) -> dict:
        """Counters of this engine (plain numbers; safe to read from another thread)."""
        return {
            "frames": self.frame,
            "samples": self.position,
            "voices": self.sounding_voices,
            "notes": self.pool.notes_started,
            "voices_stolen": self.pool.voices_stolen,
            "events": self.events_applied,
            "late_events": self.late_events,
            "latent_changes": self.latent_changes,
            "decode_errors": self.decode_errors,
            "decode_ms": self.decode_ms(),
            "coalesced": getattr(self._decoding, "coalesced", 0),
            "cache_hits": self._decoding.cache.hits,
            "timbre_estimates": self.timbre_estimates,
            "limited_frames": self.limiter.limited_frames,
            "nonfinite_frames": self.limiter.nonfinite_frames,
        }

    def close(self) -> None:
        """Stop the decode worker (live engines)."""
        self._decoding.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
