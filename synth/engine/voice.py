"""One voice: a note playing a :class:`~synth.engine.timbre.Timbre` frame by frame through an inverter.

A voice is a reusable slot. Its stage (its place in the note's envelope; ``phase`` is kept for the inverters'
oscillators) moves through::

    IDLE -> HOLD (frames 0.. up to the end of the sustain loop, its last ones crossfading into the loop)
            -> SUSTAIN (the loop, round and round, one drift further down each time, while the key is down) -> RELEASE (from the voice's frame at key-up, moved by the note's own
            release, wherever the voice was; up to its last audible frame) -> TAIL -> IDLE

TAIL feeds silent frames until the inverter has flushed what it still holds (``tail_frames``). A stolen or
panicked voice fades its audio to zero over a few frames and goes IDLE. A method switch runs the old and the
new inverter side by side on the same frames and crossfades their audio once the new one has filled its
latency. All state is explicit; nothing here depends on block sizes, only on frames.

A note may start inside an engine frame (``start(..., offset=k)``): the voice then runs its frames ``k``
samples behind the engine's, so each engine frame gets the last ``k`` samples of the voice's previous frame
(its *carry*) and the first ``n - k`` of its current one. A voice that goes idle with a carry left hands it
to the pool's :class:`Spill`, which the engine mixes into the next frame, so nothing it played is cut.

Levels: a level that changes with the frames goes into the inverter with its frame (the timbre's loudness
gain, crossfaded in dB as the frames are; the release, in the frames themselves), because the inverter's
audio is the frames of its latency ago: scaling that audio by the newest frame's gain played the old sound
at the new gain (+16 dB for 20 ms on a preset switch). Only what holds from a note's first sample to its
last (the velocity) and the steal fade, which fades whatever is sounding, scale the audio coming out.
"""

from __future__ import annotations

import math

import numpy as np

from synth.engine.timbre import (
    RELEASE_FOLLOW_FROM,
    RELEASE_LEVEL_FRAMES,
    RELEASE_SILENT_U,
    Timbre,
    frame_level,
)

__all__ = ["Voice", "Spill", "IDLE", "HOLD", "SUSTAIN", "RELEASE", "TAIL", "RELEASE_FRAMES_MIN"]

IDLE, HOLD, SUSTAIN, RELEASE, TAIL = range(5)

# Release frames a voice plays at least, however early the note's own release falls silent.
RELEASE_FRAMES_MIN = 4
# Frames of the audio crossfade between two inversion methods.
METHOD_XFADE_FRAMES = 4


class Spill:
    """Samples owed to the next engine frame by voices that went idle with a carry (see the module
    docstring); preallocated, one per engine."""

    def __init__(self, max_frame_samples: int) -> None:
        self.samples = np.zeros(max_frame_samples, dtype=np.float32)
        self.length = 0

    def add(self, carry: np.ndarray) -> None:
        k = len(carry)
        self.samples[:k] += carry
        self.length = max(self.length, k)

    def mix_into(self, mix: np.ndarray) -> None:
        """Add what is owed to the start of ``mix`` (this frame) and clear it."""
        if self.length:
            k = self.length
            mix[:k] += self.samples[:k]
            self.samples[:k] = 0.0
            self.length = 0


class Voice:
    """A voice slot with one streaming inverter per method.

    Parameters
    ----------
    inverters : dict method name -> StreamingInverter (built for the engine's output rate)
    n_mels : int
    max_frame_samples : int  the longest frame at the output rate (``ceil(H)``)
    hop_samples : float  H, output samples per frame
    spill : Spill | None  where a carry goes when the voice goes idle (None: a private one, for tests)
    twins : dict method name -> a second StreamingInverter of that method, or None: what :meth:`rekey` moves
        to (a keyboard bundle's voice)
    """

    def __init__(
        self, inverters: dict, *, n_mels: int, max_frame_samples: int, hop_samples: float, spill: Spill | None = None,
        twins: dict | None = None,
    ) -> None:
        self.inverters = inverters
        self.twins = {} if twins is None else twins
        #: The trained key this voice moves to once it is decoded (see :meth:`rekey`), or None.
        self.wants_key: int | None = None
        self._old_key: int | None = None  # the key the old inverter still plays during a rekey
        self._old_ratio = 1.0
        self.hop_samples = hop_samples
        self.stage = IDLE
        self.note = -1
        self.order = -1  # start order, for stealing the oldest
        self.held = False
        self.amp = 0.0
        self.pitch_ratio = 1.0
        self.key: int | None = None
        self.harmonic_f0: float | None = None
        self.method = ""
        self._inv = None
        self._old_inv = None
        self._xf_wait = 0
        self._xf_pos = 0
        self._pos = 0  # frame index in the hold part, or in the release part
        # Frames the release is ahead of _pos: how long before this frame the key went up (a key-up inside a
        # frame is applied at the next frame start, and the note's own release had begun at the key-up).
        self._lead = 0.0
        self._wraps = 0  # passes over the sustain loop's frames before this one (the hold part's is the first)
        self._tail_left = 0
        self._fade_left = 0  # frames left of a steal fade (0: not fading)
        self._fade_total = 0
        self._mel = np.zeros(n_mels, dtype=np.float32)
        self._mel_b = np.zeros(n_mels, dtype=np.float32)
        self._mel_old = np.zeros(n_mels, dtype=np.float32)  # the old key's frame during a rekey
        self._buf = np.zeros(max_frame_samples, dtype=np.float32)
        self._buf_old = np.zeros(max_frame_samples, dtype=np.float32)
        self._ramp = np.arange(max_frame_samples + 1, dtype=np.float32)
        # Scratch for crossfades, so that a frame allocates nothing (this runs on the synthesis thread).
        self._gains = np.zeros(max_frame_samples, dtype=np.float32)
        self._mel_scratch = np.zeros(n_mels, dtype=np.float32)
        self._key_up = np.zeros(n_mels, dtype=np.float32)  # the frame the voice sounded at key-up
        # The levels (unit scale) of the last frames sounded while the key was down, a ring; at key-up, whether
        # the release follows the note's own release level and the level the voice falls from (see release);
        # the last shift a release frame was given (unit scale).
        self._levels = np.zeros(RELEASE_LEVEL_FRAMES, dtype=np.float64)
        self._n_levels = 0
        self._follow = False
        self._shift = 0.0
        self._moved = 0.0
        self._carry = np.zeros(max_frame_samples, dtype=np.float32)
        self._started = False
        self.offset = 0  # samples this voice's frames run behind the engine's (a note started inside a frame)
        self.spill = Spill(max_frame_samples) if spill is None else spill
        # Each timbre brought to one loudness (Timbre.gain); False plays the decoded levels as they are.
        self.match_loudness = True

    # ------------------------------------------------------------------ control
    @property
    def active(self) -> bool:
        return self.stage != IDLE

    @property
    def stealing(self) -> bool:
        return self._fade_left > 0

    def start(
        self, *, note: int, velocity: float, pitch_ratio: float, method: str, order: int, offset: int = 0,
        key: int | None = None, harmonic_f0: float | None = None,
    ) -> None:
        """Start a note at frame 0 of the hold part (the slot must be idle), ``offset`` samples into the
        engine's frame (its first :meth:`render_frame` then mixes from there).

        ``key``: the trained key whose decode this voice plays (a keyboard bundle's :class:`KeyedTimbre`;
        None: the one timbre). ``harmonic_f0``: that key's fundamental, which the inverters tune to (None:
        they keep the one they were built with)."""
        self.key = key
        self.harmonic_f0 = harmonic_f0
        self.wants_key = None
        self._old_key = None
        self.offset = int(offset)
        self._started = False
        self.stage = HOLD
        self.note = note
        self.order = order
        self.held = True
        self.amp = float(velocity) / 127.0
        self.pitch_ratio = pitch_ratio
        self.method = method
        self._inv = self.inverters[method]
        if harmonic_f0 is not None:
            self._inv.retune(harmonic_f0)
        self._inv.reset()
        self._old_inv = None
        self._pos = 0
        self._lead = 0.0
        self._wraps = 0
        self._fade_left = 0
        self._key_up.fill(0.0)
        self._n_levels = 0
        self._follow = False
        self._shift = 0.0
        self._moved = 0.0

    def release(self, *, late: int = 0) -> None:
        """Key up: the release starts from the frame the voice sounded last, wherever it was.

        ``late``: output samples from the key-up to the start of the engine frame that applies it (events
        apply at frame starts; 0 .. a frame). The release frames are read that far (plus this voice's
        ``offset``) into the note's own release, interpolated between its frames, so a key-up sounds when it
        came, not up to a frame later: 5 ms late at 0.12 s, where the release of an organ falls 5 dB a frame.
        """
        if self.stage in (HOLD, SUSTAIN):
            self._key_up[:] = self._mel
            # Past its attack, the voice falls from its level over the last frames (a tremolo's or a beating
            # reed's key-up frame may lie a few dB either side of it) as far as the note's own release falls
            # under the note's level before its note-off (Timbre.release_level).
            n = min(self._n_levels, RELEASE_LEVEL_FRAMES)
            self._follow = n > 0 and (self.stage == SUSTAIN or self._pos >= RELEASE_FOLLOW_FROM)
            if self._follow:
                top = max(self._levels[:n])
                mean = sum(10.0 ** ((x - top) * 13.0) for x in self._levels[:n]) / n
                self._shift = top + math.log10(mean) / 13.0  # the level the release falls from
            self.stage = RELEASE
            self._pos = 0
            self._lead = max(0.0, (late + self.offset) / self.hop_samples)
        self.held = False

    def fade_out(self, frames: int) -> None:
        """Fade the audio to silence over ``frames`` frames, then go idle (stealing, panic)."""
        if self.stage == IDLE or self._fade_left:
            return
        self.held = False
        self._fade_left = self._fade_total = max(1, frames)

    def rekey(self, key: int, *, pitch_ratio: float, harmonic_f0: float | None, wants: int | None = None) -> bool:
        """Play trained ``key``'s decode from now on, at ``pitch_ratio`` (a keyboard bundle's note started at
        the nearest key decoded, its own key's decode now there): this method's twin inverter, tuned to the
        key's fundamental, starts on the new key's frames beside the one playing, which goes on with the old
        key's, and their audio is crossfaded once the twin has filled its latency, as a method switch does.
        The note's pitch does not move (the ratio takes the key's place). ``wants``: the key this voice moves
        on to later (its own, when ``key`` is only the nearest decoded one), None when ``key`` is its own. False,
        and nothing done, while a switch or another rekey is in progress (ask again later) or without a
        twin."""
        twin = self.twins.get(self.method)
        if twin is None or self._old_inv is not None or self.stage == IDLE:
            return False
        self.wants_key = wants
        if self.stage == TAIL:  # nothing left to hear of the old key
            self.key, self.pitch_ratio, self.harmonic_f0 = key, pitch_ratio, harmonic_f0
            return True
        self._old_key, self._old_ratio = self.key, self.pitch_ratio
        self.key, self.pitch_ratio, self.harmonic_f0 = key, pitch_ratio, harmonic_f0
        if harmonic_f0 is not None:
            twin.retune(harmonic_f0)
        twin.reset()
        # The twin takes the method's place; the inverter it replaces is the twin once the crossfade is over.
        self._old_inv, self._inv = self._inv, twin
        self.inverters[self.method], self.twins[self.method] = twin, self._old_inv
        self._xf_wait = int(math.ceil(twin.latency_samples / self.hop_samples))
        self._xf_pos = 0
        return True

    def switch_method(self, method: str) -> None:
        """Crossfade to ``method``'s inverter once it has produced its first samples."""
        if method == self.method or self.stage == IDLE:
            return
        self._old_key = None  # (a rekey in progress: its old inverter is left, the new key goes on)
        new = self.inverters[method]
        if self.harmonic_f0 is not None:
            new.retune(self.harmonic_f0)
        new.reset()
        self._old_inv = self._inv
        self._inv = new
        self.method = method
        self._xf_wait = int(math.ceil(new.latency_samples / self.hop_samples))
        self._xf_pos = 0

    def kill(self) -> None:
        if self.offset and self.stage != IDLE:
            self.spill.add(self._carry[: self.offset])
        self.offset = 0
        self.stage = IDLE
        self.held = False
        self._old_inv = None
        self._old_key = None
        self._fade_left = 0

    def frames_ahead(self, timbre: Timbre, *, frames: int, lookahead: int) -> tuple[int, int] | None:
        """Note frames ``[first, end)`` (of a ``frames``-frame note) that this voice reads from ``timbre`` in
        its next ``lookahead`` frames, as one span holding all of them; None when it reads none (idle, in its
        tail). A voice that reaches or runs round the sustain loop reads :attr:`Timbre.loop_read_span`; a released
        one reads the release part and the note-off state (:attr:`Timbre.sustain_span`)."""
        if self.stage in (IDLE, TAIL):
            return None
        timbre = timbre.for_key(self.key)
        spans = []
        loop_end = timbre.loop_span[1]
        if self.stage == HOLD:
            spans.append((self._pos, min(self._pos + lookahead, loop_end)))
            if self._pos + lookahead >= loop_end - timbre.loop_xfade:
                spans.append(timbre.loop_read_span)
        if self.stage == SUSTAIN:
            spans.append(timbre.loop_read_span)
        if self.stage == RELEASE:
            hold = timbre.hold_frame(frames)
            first = self._pos + int(self._lead)  # (a frame between two release frames reads both)
            spans.append((hold + first, hold + min(first + 1 + lookahead, timbre.release_frames)))
            spans.append(timbre.sustain_span)
        return min(a for a, _ in spans), max(b for _, b in spans)

    # ------------------------------------------------------------------ frames
    def _mel_for(self, timbre: Timbre, out: np.ndarray) -> None:
        if self.stage == TAIL:
            out[:] = 0.0
        elif self.stage == HOLD:
            start, end = timbre.loop_span
            if self._pos >= end - timbre.loop_xfade:  # the first pass's end crossfades into the loop too
                timbre.loop_frame(self._pos - start, 0, out, self._mel_scratch)
            else:
                out[:] = timbre.held[self._pos]
        elif self.stage == SUSTAIN:
            timbre.loop_frame(self._pos, self._wraps, out, self._mel_scratch)
        else:  # RELEASE: the key-up frame, moved as far as the note's own release has fallen
            delta = timbre.release_delta
            last = timbre.release_frames - 1
            at = self._pos + self._lead
            i = min(int(at), last)
            frac = at - i if i < last else 0.0
            if frac > 0.0:  # between two release frames (in the unit dB scale, as every blend here)
                scratch = self._mel_scratch
                np.subtract(delta[i + 1], delta[i], out=scratch)
                scratch *= np.float32(frac)
                scratch += delta[i]
                np.add(self._key_up, scratch, out=out)
            else:
                np.add(self._key_up, delta[i], out=out)
            np.maximum(out, 0.0, out=out)
            if self._follow:  # the whole frame moved to the level the note's own release has here
                level = timbre.release_level
                at_level = level[i] + (level[i + 1] - level[i]) * frac if frac > 0.0 else level[i]
                if at_level == at_level:  # (NaN once the note's own release nears the floor: keep the shift)
                    self._moved = self._shift + at_level - frame_level(out)
                out += np.float32(self._moved)
                np.maximum(out, 0.0, out=out)

    def _frame_at(self, key: int | None, out: np.ndarray, *, current, previous, weight: float) -> float:
        """This voice's next frame of ``key``'s timbre into ``out``: ``current``'s, or crossfaded from
        ``previous``'s with ``weight`` (in the unit dB scale); returns the loudness gain that goes with it."""
        now = current.for_key(key)
        self._mel_for(now, out)
        if previous is None or weight >= 1.0:
            return now.gain if self.match_loudness else 1.0
        before = previous.for_key(key)
        self._mel_for(before, self._mel_b)
        w = np.float32(weight)
        out *= w
        out += np.multiply(self._mel_b, 1 - w, out=self._mel_scratch)
        # Each timbre's own gain, crossfaded in dB as the frame is.
        return now.gain ** weight * before.gain ** (1.0 - weight) if self.match_loudness else 1.0

    def _gain_ramp(self, n: int, a: float, b: float) -> np.ndarray:
        """Gains from ``a`` towards ``b`` over ``n`` samples (a view of scratch, valid until the next call)."""
        ramp = np.multiply(self._ramp[:n], np.float32((b - a) / n), out=self._gains[:n])
        ramp += np.float32(a)
        return ramp

    def render_frame(
        self, mix: np.ndarray, *, current: Timbre, previous: Timbre | None, weight: float, bend: float = 1.0
    ) -> None:
        """Add this voice's next frame to ``mix`` (len(mix) = this frame's samples) and advance one frame.

        ``previous``/``weight``: a latent crossfade in progress, the frame is ``(1-weight)*previous +
        weight*current`` in the unit (dB) scale. ``bend``: the pitch-bend ratio on top of the note's own.
        """
        current_all = current
        ratio = self.pitch_ratio * bend
        n = len(mix)
        mel = self._mel
        gain = self._frame_at(self.key, mel, current=current, previous=previous, weight=weight)
        if self.stage in (HOLD, SUSTAIN):
            self._levels[self._n_levels % RELEASE_LEVEL_FRAMES] = frame_level(mel)
            self._n_levels += 1
        current = current.for_key(self.key)
        buf = self._buf[:n]
        self._inv.process_frame(mel, pitch_ratio=ratio, out=buf, gain=gain)
        if self._old_inv is not None:
            old = self._buf_old[:n]
            if self._old_key is None:  # a method switch: both play the same frames
                self._old_inv.process_frame(mel, pitch_ratio=ratio, out=old, gain=gain)
            else:  # a rekey: the old inverter goes on with the old key's frames
                old_gain = self._frame_at(self._old_key, self._mel_old, current=current_all, previous=previous,
                                          weight=weight)
                self._old_inv.process_frame(self._mel_old, pitch_ratio=self._old_ratio * bend, out=old, gain=old_gain)
            if self._xf_wait > 0:
                self._xf_wait -= 1
                buf[:] = old
            else:
                a = self._xf_pos / METHOD_XFADE_FRAMES
                b = (self._xf_pos + 1) / METHOD_XFADE_FRAMES
                ramp = self._gain_ramp(n, a, b)
                buf -= old
                buf *= ramp
                buf += old
                self._xf_pos += 1
                if self._xf_pos >= METHOD_XFADE_FRAMES:
                    self._old_inv = None
                    self._old_key = None
        if self._fade_left:
            a = self._fade_left / self._fade_total
            b = (self._fade_left - 1) / self._fade_total
            buf *= self._gain_ramp(n, a, b)
            self._fade_left -= 1
            if self._fade_left == 0:
                self._mix(mix, buf)
                self.kill()
                return
        self._mix(mix, buf)
        self._advance(current)

    def _mix(self, mix: np.ndarray, buf: np.ndarray) -> None:
        """Add this voice frame ``buf`` times the velocity to the engine frame ``mix`` (same length),
        ``offset`` samples late: the carry of the previous voice frame first, the rest of ``buf`` kept as
        the next carry. (The velocity is the note's from its first sample to its last, so it may scale the
        audio as it comes out; a level that changes with the frames goes into the inverter with them.)"""
        buf *= np.float32(self.amp)  # (buf is this voice's scratch: scaled in place, nothing allocated)
        k, n = self.offset, len(mix)
        if not k:
            mix += buf
            return
        if self._started:
            mix[:k] += self._carry[:k]
        else:  # the first voice frame: it starts k samples into this engine frame
            self._started = True
        mix[k:] += buf[: n - k]
        self._carry[:k] = buf[n - k :]

    def _advance(self, timbre: Timbre) -> None:
        if self.stage == HOLD:
            self._pos += 1
            loop_start, loop_end = timbre.loop_span
            if self._pos >= loop_end:
                # The hold part has played the loop's frames once already: the first time round the loop is
                # its second pass, one drift further down (a decaying note carries on from where it was).
                self.stage = SUSTAIN
                self._pos, self._wraps = 0, 1
        elif self.stage == SUSTAIN:
            self._pos += 1
            loop_start, loop_end = timbre.loop_span
            if self._pos >= loop_end - loop_start:
                self._pos = 0
                self._wraps += 1
        elif self.stage == RELEASE:
            self._pos += 1
            # Once the frame the voice plays is silence (no band above RELEASE_SILENT_U), the rest of the
            # release is too: end now, so the engine falls silent when the note does (after RELEASE_FRAMES_MIN
            # at least, so a key-up is never a cut).
            silent = float(self._mel.max()) <= RELEASE_SILENT_U
            if self._pos >= timbre.release_frames or (self._pos >= RELEASE_FRAMES_MIN and silent):
                self.stage = TAIL
                tails = [self._inv.tail_frames]
                if self._old_inv is not None:
                    tails.append(self._old_inv.tail_frames)
                self._tail_left = max(tails)
                if self._tail_left <= 0:
                    self.kill()
        elif self.stage == TAIL:
            self._tail_left -= 1
            if self._tail_left <= 0:
                self.kill()
