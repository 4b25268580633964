"""The engine: voices, latent state, inversion and limiter, driven by sample time.

:class:`Engine` is deterministic and single-threaded. Time is the count of output samples rendered; the
output is cut into frames on the model's frame clock (frame ``g`` covers samples
``[round(g*H), round((g+1)*H))``, ``H = hop_length * output_rate / sample_rate``). A note-on scheduled at
sample ``s`` starts at ``s`` itself (its voice then runs its frames ``s - frame start`` samples behind the
engine's); every other event scheduled at ``s`` is applied before the first frame that starts at or after
``s``. Samples are limited as they are handed out, so a note can still start inside a frame already made.
How the caller chunks :meth:`Engine.render` never changes the audio, and the same schedule always gives
the same samples.

The live engine (:mod:`synth.host.live_engine`) and the offline renderer drive the very same object; they differ
only in how latents are decoded, which each says by the strategy it hands the engine
(:class:`~synth.engine.decoding.DecodingFactory`): :class:`~synth.engine.decoding.OfflineDecoding` decodes inline
at the event's frame, :class:`~synth.engine.decoding.LiveDecoding` on a
:class:`~synth.engine.decoding.DecodeWorker`, applied at the first frame after the decode finishes.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import time

import numpy as np

from synth.control import vocabulary
from synth.control.messages import Command, NoteOff, NoteOn, Panic, SetBend, SetGain, SetMethod
from synth.control.spec import ControlSpec
from synth.engine.control import ControlSnapshot, ControlState
from synth.engine.decoding import DecodingFactory, KeyedDecoder, OfflineDecoding, bundle_decoder
from synth.engine.limiter import Limiter
from synth.engine.options import DEFAULT_GAIN, OUTPUT_RATES, EngineOptions
from synth.engine.pacing import LatentPacer
from synth.engine.stats import EngineStats
from synth.engine.timbre_pipeline import TILE_LOOKAHEAD_FRAMES, TIMBRE_XFADE_FRAMES, TimbrePipeline
from synth.engine.voice import Spill, Voice
from synth.engine.voice_pool import VoicePool
from synth.errors import ParameterError
from synth.inversion.base import DEFAULT_METHOD, METHODS
from synth.inversion.frames import frame_start, hop_samples
from synth.spectrogram import SpectrogramParams

log = logging.getLogger("melsynth.engine")
# Voices a keyboard bundle's engine moves to another key's decode in one frame (each move runs a second inverter
# for about 7 frames, Voice.rekey): a 16-note chord's change sounded first from one key moved 13 voices in one
# frame, a burst of 13 more inverters, and window D's soak (19:18) had 34 underflows against main's 14; the rest
# move in the next frames.
REKEYS_PER_FRAME = 3

__all__ = ["Engine", "EngineOptions", "TIMBRE_XFADE_FRAMES", "DEFAULT_GAIN", "OUTPUT_RATES", "check_sample_time"]


def check_sample_time(at_sample) -> int:
    """``at_sample`` as an int, or :class:`~synth.errors.ParameterError` if it is not a whole sample time."""
    if isinstance(at_sample, bool) or not isinstance(at_sample, (int, np.integer)):
        raise ParameterError(f"at_sample must be an integer sample time, got {at_sample!r}")
    return int(at_sample)


def default_inverter_factory(*, harmonic_f0: float | None):
    """The engine's own ``inverter_factory`` for a model whose notes have fundamental ``harmonic_f0`` (Hz; None:
    the inverters are not tuned), for a caller that wraps it (a benchmark recording the frames a voice plays)."""
    from synth.inversion import make_inverter

    def factory(method: str, *, params: SpectrogramParams, output_rate: int):
        # The model knows one pitch: both methods tune partials near its harmonics onto them
        # (``harmonic_f0`` of each inverter), which corrects a decoder that blurs a low fundamental.
        extra = {"harmonic_f0": harmonic_f0} if harmonic_f0 is not None else {}
        if method == "harmonic" and harmonic_f0 is not None:
            # Keys far from the decoded pitch keep the note's formants where the instrument has them (the
            # inverter decides by how far: see HarmonicNoiseInverter's keep_envelope).
            extra["keep_envelope"] = True
        return make_inverter(method, params=params, output_rate=output_rate, **extra)

    return factory


class Engine:
    """The synthesizer core.

    Parameters
    ----------
    bundle : synth.bundle.Bundle  (``params``, ``latent_shape``, ``base_pitch``, ``presets``, ``macros``,
        ``decoder()``; ``keys``, ``tiles`` and ``tile_decoder()`` where it has them)
    options : EngineOptions  the engine's settings (None: every default: 48 kHz, 16 voices, ...)
    decoding : how latents are decoded (:class:`~synth.engine.decoding.DecodingFactory`): None or
        :class:`~synth.engine.decoding.OfflineDecoding`: inline at each change, deterministic (the offline
        renderer); :class:`~synth.engine.decoding.LiveDecoding`: on a worker thread (the live host)
    decoder : object with ``decode(latents) -> mels`` and ``provider``; None: ``bundle.decoder()`` with the
        decoding's threads
    tile_decoder : object with ``decode(windows) -> mels`` for the bundle's tile layout; None:
        ``bundle.tile_decoder()`` (built only when the decoding wants tiles and the bundle has them)
    inverter_factory : ``f(method, *, params, output_rate) -> StreamingInverter``; None:
        :func:`synth.inversion.make_inverter` (tuned as ``options.tune_partials`` says)
    """

    def __init__(
        self,
        bundle,
        options: EngineOptions | None = None,
        *,
        decoding: DecodingFactory | None = None,
        decoder=None,
        tile_decoder=None,
        inverter_factory=None,
    ) -> None:
        self.options = options = EngineOptions() if options is None else options
        decoding = OfflineDecoding() if decoding is None else decoding
        output_rate, method, methods = options.output_rate, options.method, options.methods
        max_voices, gain = options.max_voices, options.gain
        if isinstance(output_rate, bool) or not isinstance(output_rate, int) or not (
            OUTPUT_RATES[0] <= output_rate <= OUTPUT_RATES[1]
        ):
            raise ParameterError(f"output rate must be an integer {OUTPUT_RATES[0]}..{OUTPUT_RATES[1]} Hz, got {output_rate!r}")
        if method is None:  # the default method where the engine has it, else the first it has
            method = DEFAULT_METHOD if DEFAULT_METHOD in methods else (methods[0] if methods else DEFAULT_METHOD)
        if method not in methods or any(m not in METHODS for m in methods):
            raise ParameterError(f"method must be one of {', '.join(methods)}, got {method!r}")
        if isinstance(max_voices, bool) or not isinstance(max_voices, int) or not 1 <= max_voices <= 256:
            raise ParameterError(f"max voices must be an integer 1..256, got {max_voices!r}")
        self.params = params = bundle.params
        self.output_rate = output_rate
        self.base_pitch = int(bundle.base_pitch)
        self.control_spec = ControlSpec.for_bundle(bundle, methods=methods)
        vocabulary.check_message(SetGain(float(gain)), spec=self.control_spec)
        self._control = ControlState.for_bundle(bundle, initial=options.initial_preset)

        #: A keyboard bundle's trained keys (each voice sounds the decode of the one nearest its note), or None.
        self.keys: tuple[int, ...] | None = getattr(bundle, "keys", None)
        if decoder is None:
            decoder = bundle_decoder(bundle, threads=decoding.threads)
        estimate_timbres = options.estimate_timbres
        tiles = getattr(bundle, "tiles", None) if decoding.tiles else None
        if self.keys is not None:
            decoder = KeyedDecoder(decoder, keys=self.keys, base=self.base_pitch,
                                   latent_shape=tuple(bundle.latent_shape))
            # Not yet for keyboard bundles: a tile decode per key, and estimates built of keyed timbres.
            tiles, estimate_timbres = None, False
        if tiles is None:
            tile_decoder = None
        elif tile_decoder is None:
            tile_decoder = bundle.tile_decoder(threads=decoding.threads)
        self.provider = str(getattr(decoder, "provider", "unknown"))
        # Observability (for status replies and benches): (tag, sample) of applied events, and where a
        # latent command's exact decode first sounds (later than in ``applied`` when an estimate sounded first).
        self.applied: collections.deque = collections.deque(maxlen=4096)
        self.applied_exact: collections.deque = collections.deque(maxlen=4096)
        #: What the voices play and how latents become it (the current timbre, the decode figures, whether
        #: presets and estimates are ready): callers ask it directly (``engine.timbres.current``).
        self.timbres = TimbrePipeline(
            bundle, control=self._control, decoder=decoder, decoding=decoding, tile_decoder=tile_decoder,
            tiles=tiles, estimate_timbres=estimate_timbres, applied=self.applied, applied_exact=self.applied_exact,
        )

        self.tune_partials = tune_partials = bool(options.tune_partials)
        # Each MIDI note's trained key, looked up at note-on without a search (a keyboard bundle).
        self._nearest_key = tuple(bundle.nearest_key(n) for n in range(128)) if self.keys is not None else ()
        self._said_outside_keys = False
        self._rekeys = False  # a voice waits for its own key's decode (see _note_on)
        if inverter_factory is None:
            base_hz = 440.0 * 2.0 ** ((self.base_pitch - 69) / 12.0)
            inverter_factory = default_inverter_factory(harmonic_f0=base_hz if tune_partials else None)
        self.hop_samples = hop_samples(params=params, output_rate=output_rate)
        self.max_frame_samples = self._frame_start(1) + 2
        # Live: a stream of latent changes is turned into timbres at the pace of what they cost the synthesis
        # thread (synth.engine.pacing); offline: each at its own frame.
        share = decoding.latent_share
        self._pacer = None if share is None else LatentPacer(share=share, frame_seconds=self.hop_samples / output_rate)
        self._frames_made = 0  # frames rendered, never going back (a take-back moves ``frame`` back)
        self.method = method
        self.methods = tuple(methods)
        match_loudness = bool(options.match_loudness)
        self._spill = Spill(self.max_frame_samples)

        def make_voice() -> Voice:
            inverters = {
                m: inverter_factory(m, params=params, output_rate=output_rate) for m in self.methods
            }
            # A keyboard bundle's voice has a second inverter of each method, to move to its own key mid-note.
            twins = None if self.keys is None else {
                m: inverter_factory(m, params=params, output_rate=output_rate) for m in self.methods}
            voice = Voice(
                inverters, n_mels=params.n_mels, max_frame_samples=self.max_frame_samples,
                hop_samples=self.hop_samples, spill=self._spill, twins=twins,
            )
            voice.match_loudness = match_loudness
            return voice

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
        # Samples from the event being applied to the frame start applying it (a key-up inside a frame sounds
        # from where it came: Voice.release).
        self._late = 0
        self._seq = itertools.count()
        self._latent_dirty = False
        self._latent_tags: list = []
        self.events_applied = 0
        self.late_events = 0
        self._snapshot = self._control.snapshot(method=method, gain=self.gain)
        #: The latent handed to the decoder last (float32, latent_shape; never changed in place, so any thread
        #: may read it): the sound the controls have made, which the page keeps as a preset.
        self.requested_latent = self._control.latent()
        self._dispatch = self._dispatch_table()

    def _warm_up(self) -> None:
        """Run every inverter kind over a few frames once, so that first-use costs (JIT compilation, lazy
        tables) are paid here and not by the first note of a live performance."""
        out = np.zeros(self.max_frame_samples, dtype=np.float32)
        frame = np.zeros(self.params.n_mels, dtype=np.float32)  # writable, like a voice's (JIT types differ)
        n = self._frame_start(1)
        for inverter in self.pool.slots[0].inverters.values():
            for k in range(8):
                frame[:] = self.timbres.current.held[min(k, self.timbres.current.sustain_start - 1)]
                inverter.process_frame(frame, pitch_ratio=1.5, out=out[:n])
            inverter.reset()
            # A keyboard bundle's voice tunes its inverters to its key's fundamental at each note and move; the
            # harmonic method's tables for a fundamental take 17-64 ms to build the first time (cached after),
            # which in the synthesis thread was every keyboard soak's underflows in its first 20 s.
            if self.keys is not None and self.tune_partials:
                for key in self.keys:
                    inverter.retune(self._key_f0(key))
                inverter.retune(self._key_f0(self.base_pitch))
                inverter.reset()

    # ------------------------------------------------------------------ clock
    def _frame_start(self, g: int) -> int:
        return frame_start(g, params=self.params, output_rate=self.output_rate)

    def frame_start(self, g: int) -> int:
        """First output sample of frame ``g``."""
        return self._frame_start(g)

    @property
    def next_frame_sample(self) -> int:
        """First sample of the next frame to be generated (where an event scheduled now would land)."""
        return self._frame_start(self.frame)

    # ------------------------------------------------------------------ control
    def schedule(self, command: Command, at_sample: int | None = None, *, tag=None, checked: bool = False) -> None:
        """Apply ``command`` at ``at_sample``: a note-on starts at that very sample, anything else at the
        first frame that starts at or after it.

        ``at_sample=None`` means now: for a note-on the first sample not yet handed out by :meth:`render`
        (inside the current frame when it is part-way out), else the next frame not yet generated. A note-on
        that would start before an event already due at the next frame waits for that frame instead, so
        events keep their order (a key released and struck again). Commands are checked here
        (:class:`~synth.errors.ParameterError` for anything the engine cannot apply). ``tag`` (any hashable, e.g. the time the command was received), if given, is
        recorded with the sample where the change first sounds in :attr:`applied` (for latency figures).
        Events at the same sample apply in the order they were scheduled. ``checked``: the caller has checked
        ``command`` against :attr:`control_spec` already (the live engine's inbox), so it is not checked twice.
        """
        if not checked:
            vocabulary.check_message(command, spec=self.control_spec)
        note_on = isinstance(command, NoteOn) and command.velocity > 0
        if note_on and self.keys is not None and not self._said_outside_keys and not (
                self.keys[0] <= command.note <= self.keys[-1]):
            self._said_outside_keys = True  # once: a performer's every low note is not news
            log.warning("note %d is outside the keys the model was trained on (%d..%d): played by the nearest "
                        "trained key, %d, moved %+d semitones", command.note, self.keys[0], self.keys[-1],
                        self._nearest_key[command.note], command.note - self._nearest_key[command.note])
        next_frame = self.next_frame_sample
        at = self.position if note_on else next_frame
        if at_sample is not None:
            at = check_sample_time(at_sample)
        if note_on and self.position <= at < next_frame:
            if not self._events or self._events[0][0] > next_frame:
                self._start_inside_frame(command, tag, at)
                return
            at = next_frame
        elif at < (self.position if note_on else next_frame):
            self.late_events += 1
            at = next_frame
        heapq.heappush(self._events, (at, next(self._seq), command, tag))

    def _start_inside_frame(self, command: NoteOn, tag, at: int) -> None:
        """Start a note at sample ``at`` of the frame generated last (not yet handed out from there on)."""
        self.events_applied += 1
        voice = self._note_on(command, offset=at - self._frame_start(self.frame - 1))
        timbres = self.timbres
        voice.render_frame(self._mix[: self._frame_len], current=timbres.current, previous=timbres.previous,
                           weight=timbres.weight, bend=self._bend_ratio)
        if tag is not None:
            self.applied.append((tag, at))

    def _note_on(self, command: NoteOn, *, offset: int = 0) -> Voice:
        """A voice for ``command`` at its pitch, ``offset`` samples into the current frame: the base pitch's
        decode moved to the note, or (a keyboard bundle) the nearest trained key's decode moved the rest of
        the way, its inverters tuned to that key's fundamental. Live, when the current latent is not decoded
        at that key yet (its keys no voice sounded wait until the changes stop), the note starts at once
        from the nearest key that is, moved the rest of the way, asks for its own key first, and moves to
        it when it is there (:meth:`_rekey_voices`)."""
        key, want = self.base_pitch, None
        if self.keys is not None:
            key = self._nearest_key[command.note]
            if not self.timbres.has_key(key):
                want, key = key, self.timbres.nearest_key(command.note)
                self.timbres.want_keys((want,))
                self._rekeys = True
        voice = self.pool.note_on(note=command.note, velocity=command.velocity,
                                  pitch_ratio=2.0 ** ((command.note - key) / 12.0), method=self.method,
                                  offset=offset, key=None if self.keys is None else key,
                                  harmonic_f0=self._key_f0(key))
        voice.wants_key = want
        return voice

    def _key_f0(self, key: int) -> float | None:
        """The fundamental a keyboard bundle's voice at trained ``key`` tunes its inverters to (None: as built)."""
        return 440.0 * 2.0 ** ((key - 69) / 12.0) if self.keys is not None and self.tune_partials else None

    def _rekey_voices(self) -> None:
        """Each held voice of a keyboard bundle plays its own key's decode of the current latent where that is
        decoded, else the nearest key's that is, moved the rest of the way (a crossfade between two
        inverters, :meth:`Voice.rekey`): a voice started at the nearest decoded key moves to its own once it is
        there, and a latent change decoded first at only some of the sounding keys (see
        :class:`~synth.engine.decoding.KeyedDecodeWorker`) moves the voices at the others to the nearest of
        those at once, and back to their own as the worker decodes them. A released voice stays where it is
        (its release follows the frame it sounded at key-up). One that cannot move yet (a crossfade in
        progress) keeps this pending for the next frame."""
        waiting = False
        timbres = self.timbres
        budget = REKEYS_PER_FRAME
        for voice in self.pool.slots:
            if not voice.active or voice.key is None:
                continue
            own = voice.key if voice.wants_key is None else voice.wants_key
            if timbres.has_key(own):
                target = own
            elif voice.held and not timbres.has_key(voice.key):
                target = timbres.nearest_key(voice.note)
            else:
                continue  # at a decoded key already, or released: it waits there for its own
            if target == voice.key:
                voice.wants_key = None if target == own else own
                continue
            if budget <= 0 or not voice.rekey(target, pitch_ratio=2.0 ** ((voice.note - target) / 12.0),
                                              harmonic_f0=self._key_f0(target), wants=None if target == own else own):
                waiting = True
            else:
                budget -= 1
        self._rekeys = waiting

    @property
    def pending_events(self) -> int:
        return len(self._events)

    def _dispatch_table(self) -> dict:
        """Command type -> what applies it: the vocabulary's latent controls go to the control state (and a
        decode); the rest to the engine's own effects below. A control the engine cannot apply is an error
        at start, not a silent no-op at the first message."""
        effects = {NoteOn: self._apply_note_on, NoteOff: self._apply_note_off, Panic: self._apply_panic,
                   SetMethod: self._apply_method, SetGain: self._apply_gain, SetBend: self._apply_bend}
        table = {}
        for control in vocabulary.CONTROLS:
            if not issubclass(control.message, Command):
                continue  # addressed to the server (queries, MIDI learn)
            effect = self._apply_latent if control.latent else effects.get(control.message)
            if control.latent and control.message not in ControlState.EFFECTS:
                effect = None
            if effect is None:
                raise ParameterError(f"the engine has no effect for {control.address} ({control.message.__name__})")
            table[control.message] = effect
        return table

    def _apply(self, command: Command, tag, sample: int) -> None:
        self.events_applied += 1
        if self._dispatch[type(command)](command) and tag is not None:
            # Decoded once per frame, after every event of the frame (see _request_latent): the change sounds
            # then, so its tag waits for that decode.
            self._latent_tags.append(tag)
            tag = None
        if tag is not None:
            self.applied.append((tag, sample))

    # Each effect returns True when the latent changed and a decode is due.
    def _apply_note_on(self, command: NoteOn) -> bool:
        if command.velocity <= 0:
            self.pool.note_off(command.note, late=self._late)
        else:
            self._note_on(command)
        return False

    def _apply_note_off(self, command: NoteOff) -> bool:
        self.pool.note_off(command.note, late=self._late)
        return False

    def _apply_panic(self, command: Panic) -> bool:
        self.pool.panic()
        return False

    def _apply_method(self, command: SetMethod) -> bool:
        if command.method not in self.methods:
            raise ParameterError(f"method {command.method} was not built into this engine")
        if command.method != self.method:
            self.method = command.method
            self.pool.switch_method(command.method)
        return False

    def _apply_gain(self, command: SetGain) -> bool:
        self.gain = float(command.gain)
        self.limiter.set_gain(self.gain)
        return False

    def _apply_bend(self, command: SetBend) -> bool:
        self.bend = float(command.semitones)
        self._bend_ratio = 2.0 ** (self.bend / 12.0)
        return False

    def _apply_latent(self, command: Command) -> bool:
        # Decoded once per frame at most, after every event of the frame: a burst of control messages costs
        # one decode, not one each; live, a stream of them is paced further (see _render_frame).
        if self._control.apply(command):
            self._latent_dirty = True
            return True
        return False

    def _request_latent(self, sample: int) -> None:
        """Ask for the timbre of the latent as the changes so far left it (the newest), for all their tags; a
        live engine tells its pacer what that cost."""
        c0 = time.thread_time() if self._pacer is not None else 0.0
        tags, self._latent_tags = tuple(self._latent_tags), []
        self._latent_dirty = False
        latent = self.requested_latent = self._control.latent()
        self.timbres.request(latent, self._control.coordinates(latent), tags, sample, self._frames_ahead(),
                             self._sounding_keys())
        if self._pacer is not None:
            self._pacer.spent(frame=self._frames_made, seconds=time.thread_time() - c0)

    def _sounding_keys(self) -> tuple[int, ...]:
        """A keyboard bundle's trained keys the active voices play, or will once decoded (a note started at the
        nearest decoded key): what a latent change is decoded at."""
        if self.keys is None:
            return ()
        return tuple({voice.key if voice.wants_key is None else voice.wants_key
                      for voice in self.pool.slots if voice.active and voice.key is not None})

    def _frames_ahead(self) -> tuple[int, int] | None:
        """Note frames the sounding voices read next (one span holding all of them), None when none sounds."""
        lo = hi = None
        timbre, frames = self.timbres.current, self.params.frames
        for voice in self.pool.slots:
            if voice.active:
                span = voice.frames_ahead(timbre, frames=frames, lookahead=TILE_LOOKAHEAD_FRAMES)
                if span is not None:
                    lo = span[0] if lo is None else min(lo, span[0])
                    hi = span[1] if hi is None else max(hi, span[1])
        return None if lo is None else (lo, hi)

    # ------------------------------------------------------------------ audio
    def _render_frame(self) -> None:
        g = self.frame
        start = self._frame_start(g)
        n = self._frame_start(g + 1) - start
        timbres = self.timbres
        pacer = self._pacer
        self._frames_made += 1
        if pacer is None:
            timbres.begin_frame(start)
        else:
            c0 = time.thread_time()
            if timbres.begin_frame(start):  # a decode finished on the worker: what taking it cost counts too
                pacer.spent(frame=self._frames_made, seconds=time.thread_time() - c0)
        events = self._events
        if events and events[0][0] <= start:
            while events and events[0][0] <= start:
                at, _, command, tag = heapq.heappop(events)
                self._late = start - at
                self._apply(command, tag, start)
            self._late = 0
            self._snapshot = self._control.snapshot(method=self.method, gain=self.gain)
        if self._latent_dirty and (pacer is None or pacer.ready(frame=self._frames_made)):
            self._request_latent(start)
        if self._rekeys or timbres.keys_changed:  # (after this frame's decodes and notes: it plays them)
            timbres.keys_changed = False
            self._rekey_voices()
        mix = self._mix[:n]
        mix[:] = 0.0
        self._spill.mix_into(mix)
        current, previous, weight = timbres.current, timbres.previous, timbres.weight
        for voice in self.pool.slots:
            if voice.active:
                voice.render_frame(mix, current=current, previous=previous, weight=weight, bend=self._bend_ratio)
        timbres.end_frame()
        self._frame_len = n
        self._frame_read = 0
        self.frame = g + 1
        # Notes due inside this frame start at their sample, as they would have live (in order: up to the
        # first other event).
        end = start + n
        while events and events[0][0] < end and isinstance(events[0][2], NoteOn) and events[0][2].velocity > 0:
            at, _, command, tag = heapq.heappop(events)
            self._start_inside_frame(command, tag, at)

    def render_into(self, out: np.ndarray) -> None:
        """Fill ``out`` (1-D float32) with the next ``len(out)`` samples."""
        n = len(out)
        i = 0
        while i < n:
            if self._frame_read >= self._frame_len:
                self._render_frame()
            take = min(n - i, self._frame_len - self._frame_read)
            # Limited as it leaves, not when the frame is made: a note may still start inside the frame.
            part = self._mix[self._frame_read : self._frame_read + take]
            self.limiter.process(part)
            out[i : i + take] = part
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

    def held_notes(self) -> tuple[int, ...]:
        """The notes whose keys are down (sounding and not released), sorted."""
        return tuple(sorted({v.note for v in self.pool.slots if v.active and v.held}))

    @property
    def idle(self) -> bool:
        """No voice sounding and no event pending."""
        return not self._events and self.sounding_voices == 0

    @property
    def silent(self) -> bool:
        """Nothing sounds from :attr:`position` on until an event starts a note: no voice, nothing owed to the
        next frame, and the rest of the frame made last is silence."""
        if self._spill.length or any(v.active for v in self.pool.slots):
            return False
        rest = self._mix[self._frame_read : self._frame_len]
        return not rest.any()

    def take_back(self, n_samples: int) -> None:
        """Forget the last ``n_samples`` samples handed out, which were silence made while :attr:`silent`, so
        that the next ones are made again from ``position - n_samples``.

        The live engine renders silence further ahead while nothing sounds (a stall of its thread then costs
        nothing) and takes it back when a note comes, so that the note starts as soon as it would have with
        the normal margin. Only the clock goes back: events applied in the samples taken back stay applied
        (they changed no sound, and they still happened before the events that follow).

        Raises :class:`ParameterError` if ``n_samples`` is negative or more than has been handed out, or if
        the engine is not :attr:`silent` (those samples may not have been silence).
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or not 0 <= n_samples <= self.position:
            raise ParameterError(f"take_back: n_samples must be an integer 0..{self.position}, got {n_samples!r}")
        if not self.silent:
            raise ParameterError("take_back: something is sounding; only silence can be taken back")
        if n_samples == 0:
            return
        p = self.position - int(n_samples)
        # The frame holding sample p: frame starts are the rounded multiples of the hop (synth.inversion.frames).
        g = int(p / hop_samples(params=self.params, output_rate=self.output_rate))
        while self._frame_start(g) > p:
            g -= 1
        while self._frame_start(g + 1) <= p:
            g += 1
        start = self._frame_start(g)
        self._frame_len = self._frame_start(g + 1) - start
        self._mix[: self._frame_len] = 0.0
        self._frame_read = p - start
        self.frame = g + 1
        self.position = p

    @property
    def controls(self) -> ControlSnapshot:
        """The current control settings (an immutable snapshot, safe to read from any thread)."""
        return self._snapshot

    def stats(self) -> EngineStats:
        """This engine's figures, built now from its counters (safe to ask from another thread)."""
        return EngineStats(
            frames=int(self.frame),
            samples=int(self.position),
            voices=int(self.sounding_voices),
            notes=int(self.pool.notes_started),
            voices_stolen=int(self.pool.voices_stolen),
            events=int(self.events_applied),
            late_events=int(self.late_events),
            limited_frames=int(self.limiter.limited_frames),
            nonfinite_frames=int(self.limiter.nonfinite_frames),
            timbres=self.timbres.stats(),
        )

    def close(self) -> None:
        """Stop the decode worker (live engines)."""
        self.timbres.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
