"""A decoded spectrogram laid out for playing: the hold part, a sustain loop, the release part.

A note of the model is 4 s: held for ``hold_frames`` (3 s = frame 384) then released. A voice plays the hold
part from frame 0 up to the end of its sustain loop; while the key stays down it loops the frames
``loop_span`` the way samplers loop a recording: the loop's last frames are crossfaded (in dB) towards the
frames before its start, so every wrap is seamless (the hold part's pass over the loop frames too), and a
note that decays over the loop keeps decaying, each band by its own amount each time round
(``loop_drift``), so a held piano fades as it did, its upper partials first, while a held organ or pad
keeps its own movement for as long as the key is down. The loop ends before the frames whose analysis
window already sees the note-off.

Key-up gives the release from where the voice is: each release frame is the voice's frame at key-up moved,
band by band, by how far the note's own release has fallen below its state at note-off (``release_delta``),
so a note released early decays from its own level instead of jumping to the 3 s note's release. Where the
note's own release runs into the floor (a note that had decayed by 3 s has little left to fall), each band
falls on at the rate it fell until then: a note released louder falls as far, as fast. Release frames are
faded out in dB at the end, so every note ends in silence.

The bands' delta gives the shape of the fall, not its level: a voice released past its attack
(:data:`RELEASE_FOLLOW_FROM`) moves each release frame, all bands alike, to the level that lies as far under
its own level before key-up (the mean power of its last :data:`RELEASE_LEVEL_FRAMES` frames) as the note's
own release lies under the note's level before its note-off (``edge``; ``release_level``), never above it,
until the note's release nears the floor. On the default bundle's 44 presets, the key-up step within 2 dB of
FluidSynth's own note went from 26 to 38 at a 3 s hold (the model's own decode: 40) and from 21 to 26 and 24
at 0.5 and 8 s (bench/bench_note_lengths.py, docs/BENCHMARKS.md).

That note-off state is ``sustain`` (the mean of the frames before the note-off edge) moved by the loop's
drift to where a decaying note is at its note-off. The last hold frames are still blended towards
``sustain`` for the tiles and estimates that read them.
"""

from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
from numba import njit

from synth.engine.loudness import LoudnessBasis, loudness_basis
from synth.spectrogram import SpectrogramParams

__all__ = [
    "Timbre", "KeyedTimbre", "make_timbre", "splice_timbre", "blend_timbres", "estimate_timbre", "SUSTAIN_GUARD_FRAMES", "SUSTAIN_WINDOW_FRAMES",
    "RELEASE_SILENT_U", "RELEASE_LEVEL_FRAMES", "RELEASE_FOLLOW_FROM",
]

# The analysis window (690 samples at hop 125) spans ~6 frames: stay clear of the note-off edge.
SUSTAIN_GUARD_FRAMES = 8
# Frames averaged into the sustain frame, and blended towards it before the sustain starts.
SUSTAIN_WINDOW_FRAMES = 40
# Release frames at the end faded out, and by how much (unit scale, 1.0 = the full dB range).
END_FADE_FRAMES = 8
END_FADE_DEPTH = 0.6
# Release frames no louder than this (unit scale) are silence to a listener: 10 dB above the floor of the
# contract's fixed 130 dB range (-90 dB), which is also where the sinusoidal inverter stops picking peaks
# (floor_db = db_min + 10). A released voice ends once the frame it plays has no louder band, so the engine
# is silent, and can take back the silence it renders ahead, as soon as nothing can be heard.
RELEASE_SILENT_U = 10.0 / 130.0
# A note silent at its own note-off (it decayed within 3 s) gives no release to follow: released earlier, it
# falls the whole dB range over this many frames (0.1 s), as a damped string or a struck bar does.
DEFAULT_RELEASE_FRAMES = 13
# The sustain loop: its length and crossfade at most (frames; 0.62 s and 0.16 s at the default 128 frames a
# second: long enough to hold a vibrato's or a chorus's movement, short enough to sit after most attacks).
LOOP_FRAMES = 80
LOOP_XFADE_FRAMES = 20
# A loop whose end is less than this much quieter than its start (dB) is taken as steady: no drift, so a held
# organ does not fade by a fraction of a dB on every pass.
LOOP_STEADY_DB = 1.0
# How far one band of a release frame may rise above the note-off state (unit scale): none. Up to 6 dB, the
# frame's level bounded against the state's spectrum, the church organ, synth brass and pad choir rose 3.7-6.5 dB
# after key-up from their key-up frames (the bound is not against the key-up frame's spectrum).
RELEASE_BAND_RISE_U = 0.0
# Bands either side whose fall a release band's is averaged with (see _release_delta).
RELEASE_SMOOTH_BANDS = 3
# The level a release falls from: the mean power of the frames just before the key goes up (0.05 s), the
# voice's and, in the note, those before its note-off (see Timbre.release_level).
RELEASE_LEVEL_FRAMES = 6
# A voice released this many frames or more into its note (0.25 s: past the attacks of all but the slowest
# instruments) follows the note's own release level; one released earlier, while it may still rise, falls by
# the bands' delta alone (the note's release, measured from its steady 3 s state, says nothing of a note let go
# while it rises: following it there took the 0.12 s key-up of 8 of the default's 44 presets out of 2 dB).
RELEASE_FOLLOW_FROM = 32
# ... and as long as the note's own release frame has a band this far over RELEASE_SILENT_U (unit scale: 30 dB);
# nearer the floor a frame's level is the floor's (128 bands at -100 dB sum to -79 dB), and the voice keeps the
# last shift its frames were given (see Timbre.release_level).
RELEASE_FOLLOW_ABOVE = 30.0 / 130.0
_LN10_10 = math.log(10.0) / 10.0


@dataclasses.dataclass(frozen=True, eq=False)
class Timbre:
    """Read-only arrays a voice reads frames from (all float32, unit scale).

    held : [shape=(sustain_start, n_mels)] frames 0..sustain_start-1, the last ``window`` ones blended to
        ``sustain``
    sustain : [shape=(n_mels,)] the frozen frame a held note rests on: the mean of frames
        ``sustain_start - window .. sustain_start - 1`` of the note
    release : [shape=(frames - hold_frames, n_mels)] frames hold_frames..frames-1, end faded out
    window : frames averaged into ``sustain`` (and blended towards it at the end of ``held``)
    edge : [shape=(n_mels,)] the note's level just before its note-off: the mean power of its
        :data:`RELEASE_LEVEL_FRAMES` frames before ``hold_frames``, in the unit scale (None: ``sustain``)
    loudness : the contract's :class:`~synth.engine.loudness.LoudnessBasis`, or None (gain 1)

    ``audible_release_frames`` (derived): release frames up to and including the last one with a value above
    :data:`RELEASE_SILENT_U`; a released voice ends there.
    """

    held: np.ndarray
    sustain: np.ndarray
    release: np.ndarray
    window: int = SUSTAIN_WINDOW_FRAMES
    loudness: LoudnessBasis | None = None
    edge: np.ndarray | None = None
    audible_release_frames: int = dataclasses.field(init=False, repr=False)
    gain: float = dataclasses.field(init=False, repr=False)
    loop_drift: np.ndarray = dataclasses.field(init=False, repr=False)
    loop_decays: bool = dataclasses.field(init=False, repr=False)
    release_delta: np.ndarray = dataclasses.field(init=False, repr=False)
    release_level: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        loud = np.flatnonzero(self.release.max(axis=1, initial=0.0) > RELEASE_SILENT_U)
        object.__setattr__(self, "audible_release_frames", int(loud[-1]) + 1 if loud.size else 0)
        drift = _readonly(_loop_drift(self.held, self.loop_span, self.loop_xfade))
        object.__setattr__(self, "loop_drift", drift)
        object.__setattr__(self, "loop_decays", bool(drift.any()))
        # How far below the note-off state each release frame is, band by band (never above: a release
        # does not swell). That state is the sustain frame where the note had decayed to by its note-off:
        # ``sustain`` is the mean of frames centred window/2 + guard frames earlier (28 at the default), and
        # a decaying note is quieter at its note-off (4 dB for one falling 20 dB a second), as is the frame
        # a voice held that long plays at key-up.
        start, end = self.loop_span
        ahead = self.window / 2 + min(SUSTAIN_GUARD_FRAMES, self.release_frames)
        note_off = self.sustain + drift * np.float32(ahead / (end - start))
        object.__setattr__(self, "release_delta", _readonly(_release_delta(self.release, self.sustain, note_off=note_off)))
        # How far each release frame's level lies under the note's level before its note-off (never above
        # it; NaN once the note's release nears the floor): the level a voice's release follows, where the
        # delta gives each band's fall but not the level (averaged over bands and clipped at the state, it
        # fell 3-5 dB further than the note in its first frames: the accordion, the synth brass; and the
        # state, a mean over 0.3 s ending 0.06 s before the note-off, lay 1-2 dB under the note's level there).
        level = np.zeros(self.release_frames, dtype=np.float32)
        edge = self.sustain if self.edge is None else self.edge
        _release_level_kernel(np.ascontiguousarray(self.release, dtype=np.float32),
                              np.ascontiguousarray(edge, dtype=np.float32), RELEASE_SILENT_U, RELEASE_FOLLOW_ABOVE, level)
        object.__setattr__(self, "release_level", _readonly(level))
        # The gain that brings the held note to the engine's one loudness (1 without a loudness basis), from
        # every other frame: a timbre can be made on the synthesis thread (estimates, crossfades, tiles); on
        # the default's 44 presets that halves the cost (0.1 ms) and moves the loudness by 0.08 dB at most.
        gain = 1.0 if self.loudness is None else self.loudness.gain(self.held[: self.loop_span[1] : 2])
        object.__setattr__(self, "gain", gain)

    @property
    def loop_span(self) -> tuple[int, int]:
        """Note frames ``[start, end)`` a held voice loops over, after playing frames ``0 .. end - 1``."""
        end = self.sustain_start - self.window
        length = min(LOOP_FRAMES, end // 2)
        return end - length, end

    @property
    def loop_xfade(self) -> int:
        """Frames at the loop's end crossfaded towards the frames before its start."""
        start, end = self.loop_span
        return max(1, min(LOOP_XFADE_FRAMES, (end - start) // 4, start))

    @property
    def loop_read_span(self) -> tuple[int, int]:
        """Note frames ``[first, end)`` a looping voice reads (the loop and what its crossfade blends in)."""
        start, end = self.loop_span
        return start - self.loop_xfade, end

    def for_key(self, key: int | None) -> Timbre:
        """This timbre, at every key (a one-pitch bundle's; see :class:`KeyedTimbre`)."""
        return self

    def loop_frame(self, pos: int, wraps: int, out: np.ndarray, scratch: np.ndarray) -> None:
        """Frame ``pos`` (0 .. loop length - 1; taken modulo the length) of the loop ``wraps`` drifts down
        from the note's own frames (0: the hold part's pass over them, whose end already crossfades into the
        loop; 1: the first time round), into ``out`` (both ``(n_mels,)`` float32 buffers of the caller;
        nothing allocated)."""
        start, end = self.loop_span
        pos %= end - start
        x = self.loop_xfade
        out[:] = self.held[start + pos]
        k = pos - (end - start - x)
        if k >= 0:  # the crossfade into the next time round: towards the frames before the loop's start
            r = np.float32((k + 1) / (x + 1))
            out *= 1 - r
            np.add(self.held[start - x + k], self.loop_drift, out=scratch)
            scratch *= r
            out += scratch
        if wraps and self.loop_decays:
            np.multiply(self.loop_drift, np.float32(wraps), out=scratch)
            out += scratch
        np.maximum(out, 0.0, out=out)

    @property
    def sustain_start(self) -> int:
        return int(self.held.shape[0])

    @property
    def release_frames(self) -> int:
        return int(self.release.shape[0])

    @property
    def sustain_span(self) -> tuple[int, int]:
        """Note frames ``[first, end)`` that the sustain frame (and the blend into it) is made of."""
        return self.sustain_start - self.window, self.sustain_start

    def hold_frame(self, frames: int) -> int:
        """The note frame where the release part starts, for a note of ``frames`` frames."""
        return frames - self.release_frames


def _loop_drift(held: np.ndarray, span: tuple[int, int], edge: int) -> np.ndarray:
    """Unit-scale change of each band over one time round the loop (``(n_mels,)``, <= 0; all 0 for a
    steady loop).

    The slopes of straight lines fitted to each band over the loop and as much again before it, times the
    loop's length: a tremolo or a vibrato averages out over several of its cycles, where comparing the
    loop's two ends would read the phase it happens to end on as a decay. Band by band, because the bands
    of a decaying note do not fall alike (a piano's upper partials die first, the loud low ones set the
    level): one mean slope over the audible bands, most of them quiet, moves the loud bands at the quiet
    ones' rate. No band falls slower than the level, so a held pluck fades to silence as a whole. The loop is steady (no drift) when the audible bands' mean falls less than :data:`LOOP_STEADY_DB`; no
    band rises from one time round to the next.
    """
    start, end = span
    first = max(0, start - (end - start) - edge)
    part = held[first:end]
    drift = np.zeros(held.shape[1], dtype=np.float32)
    bands = part.mean(axis=0) > RELEASE_SILENT_U
    if not bands.any() or part.shape[0] < 2:
        return drift
    t = np.arange(part.shape[0], dtype=np.float64)
    t -= t.mean()
    slope = t @ (part - part.mean(axis=0)) / (t @ t)  # least squares per band, without polyfit's overhead
    if float(slope[bands].mean()) * (end - start) >= -LOOP_STEADY_DB / 130.0:
        return drift
    # No band falls slower than the note's level (its summed power, set by its loudest bands): what the
    # decoder leaves near its floor does not fall at all, and would be all that is left of a held pluck.
    db = part.astype(np.float64) * 130.0
    peak = db.max(axis=1, keepdims=True)
    level = (peak[:, 0] + 10.0 * np.log10(np.sum(10.0 ** ((db - peak) / 10.0), axis=1))) / 130.0
    level_slope = float(t @ (level - level.mean()) / (t @ t))
    drift[:] = np.minimum(np.minimum(slope, level_slope) * (end - start), 0.0)
    return drift


def _release_delta(release: np.ndarray, sustain: np.ndarray, *, note_off: np.ndarray | None = None) -> np.ndarray:
    """How far each release frame lies from the note-off state ``note_off`` (default ``sustain``), band by band,
    as the voice applies it to its own key-up frame: each audible band's difference averaged with its audible
    neighbours' (:data:`RELEASE_SMOOTH_BANDS` either side), the frame never louder than that state as a whole
    (a release does not swell) and no band more than :data:`RELEASE_BAND_RISE_U` above it.

    The state is a mean over frames; a release frame flickers about it band by band (the beating of an
    accordion's reeds, a piano's partials), and that flicker is the model's note's, at its own note-off, not
    the voice's, whose key-up frame flickers already. Added to the key-up frame it spreads the bands further,
    and a frame's level rises with its bands' spread; clipping each band at the state (as this did) pulls the
    level the other way, by as much as the bands happen to be up (the accordion's first release frame on the
    note-off state: 5.1 dB under the note's own). On a note of 80 bands flickering by up to 8 dB, the voice's
    key-up step came 2.7 dB (unclipped) and 2.0 dB (clipped) short of the note's, 1.0 dB averaged over 7
    bands (tests/test_note_lengths.py).

    A band that is near silence at note-off says nothing about how that band would fall from a louder
    state (a plucked note has decayed by 3 s; released at 0.2 s it is still loud): such bands fall as the
    audible bands do on average, and a note with no audible band at note-off falls to silence over
    :data:`DEFAULT_RELEASE_FRAMES`.

    It is made with every timbre (a keyboard bundle's decode makes one a key, on the worker thread beside
    the synthesis thread): one compiled call that lets go of the GIL, where two dozen numpy calls each waited
    for it (the soak's control latency p50 went from 48-58 to 115-160 ms with them, decode 5 to 41-68 ms).
    """
    state = sustain if note_off is None else note_off
    out = np.empty(release.shape, dtype=np.float32)
    _release_delta_kernel(np.ascontiguousarray(release, dtype=np.float32), np.ascontiguousarray(sustain, dtype=np.float32),
                          np.ascontiguousarray(state, dtype=np.float32), RELEASE_SILENT_U, RELEASE_BAND_RISE_U,
                          RELEASE_SMOOTH_BANDS, DEFAULT_RELEASE_FRAMES, out)
    return out


@njit(cache=True, nogil=True)
def _level_of(values, count):
    """The level of ``count`` unit-scale bands (dB of their summed power over the contract's 130 dB range, plus
    a constant)."""
    peak = -np.inf
    for i in range(count):
        peak = max(peak, values[i] * 130.0)
    total = 0.0
    for i in range(count):
        total += math.exp((values[i] * 130.0 - peak) * _LN10_10)
    return (peak + 10.0 * math.log10(total)) / 130.0


@njit(cache=True)
def frame_level(frame):
    """The level of one unit-scale frame (``(n_mels,)`` float32), as :func:`_level_of` gives it, for the
    synthesis thread: compiled without ``nogil``, so that a voice's call keeps the GIL (tests/test_engine_gil.py:
    letting go of it once a voice a frame made the soak's underflows)."""
    return _level_of(frame, frame.shape[0])


@njit(cache=True, nogil=True)
def _release_level_kernel(release, edge, silent_u, above_u, out):
    """``out[t]`` = how far the level of ``release[t]`` lies under the level of ``edge`` (unit scale, never
    above: 0 at most), or NaN from the first frame whose loudest band is less than ``above_u`` over
    ``silent_u`` on (all NaN where ``edge`` is no louder): near the floor a frame's level is the floor's, not
    the note's, and a note released louder falls on past it (the bands' delta does)."""
    n_mels = edge.shape[0]
    loud = 0.0
    for m in range(n_mels):
        loud = max(loud, edge[m])
    if loud < silent_u + above_u:
        out[:] = np.nan
        return
    ref = _level_of(edge, n_mels)
    near_floor = False
    for t in range(release.shape[0]):
        top = 0.0
        for m in range(n_mels):
            top = max(top, release[t, m])
        near_floor = near_floor or top < silent_u + above_u
        out[t] = np.nan if near_floor else min(_level_of(release[t], n_mels) - ref, 0.0)


@njit(cache=True, nogil=True)
def _release_delta_kernel(release, sustain, state, silent_u, rise_u, r, default_frames, out):
    """:func:`_release_delta` into ``out`` (release frames x bands, float32), in one call: each audible band's
    fall averaged with its neighbours' weighted by their power in ``state``, each frame brought down to the
    state's level where it is above it, no band more than ``rise_u`` above the state, then
    :func:`_fall_past_the_floor`'s carrying on past silence, and the inaudible bands given the typical fall."""
    frames, bands = release.shape
    audible = np.zeros(bands, dtype=np.bool_)
    n_audible = 0
    top = -np.inf
    for b in range(bands):
        if sustain[b] > 2.0 * silent_u:
            audible[b] = True
            n_audible += 1
            top = max(top, np.float64(state[b]))
    delta = np.empty((frames, bands))
    for f in range(frames):
        for b in range(bands):
            delta[f, b] = np.float64(release[f, b]) - np.float64(state[b])
    if n_audible > 0:
        power = np.zeros(bands)
        for b in range(bands):
            if audible[b]:
                power[b] = 10.0 ** (13.0 * (np.float64(state[b]) - top))
        weight = np.zeros(bands)
        for b in range(bands):
            for j in range(max(0, b - r), min(bands, b + r + 1)):
                weight[b] += power[j]
        row = np.empty(bands)
        levels = np.empty(n_audible)
        i = 0
        for b in range(bands):
            if audible[b]:
                levels[i] = state[b]
                i += 1
        at_state = _level_of(levels, n_audible)
        for f in range(frames):
            for b in range(bands):
                row[b] = delta[f, b] * power[b]
            for b in range(bands):
                if audible[b]:
                    summed = 0.0
                    for j in range(max(0, b - r), min(bands, b + r + 1)):
                        summed += row[j]
                    delta[f, b] = summed / max(weight[b], 1e-300)
            # A frame with no band above the state is not louder than it (most of a release): no exp needed.
            i = 0
            above = False
            for b in range(bands):
                if audible[b]:
                    levels[i] = np.float64(state[b]) + delta[f, b]
                    above = above or delta[f, b] > 0.0
                    i += 1
            if above:
                swell = max(_level_of(levels, n_audible) - at_state, 0.0)
                for b in range(bands):
                    delta[f, b] -= swell
    for f in range(frames):
        for b in range(bands):
            out[f, b] = np.float32(min(delta[f, b], rise_u))
    _fall_past_the_floor(out, release, silent_u)
    for f in range(frames):
        if n_audible >= 3:
            typical = 0.0
            for b in range(bands):
                if audible[b]:
                    typical += out[f, b]
            typical /= n_audible
        else:
            typical = -f / default_frames
        typical = min(typical, 0.0)
        for b in range(bands):
            if not audible[b]:
                out[f, b] = np.float32(typical)


@njit(cache=True, nogil=True)
def _fall_past_the_floor(delta, release, silent_u):
    """``delta`` (release frames x bands) with each band's fall carried on past the frame where the
    note's own release reached silence, at the rate the band fell until then.

    The decoded release stops at the floor: a band 30 dB above it at note-off falls 30 dB and no further.
    Applied to a louder key-up frame (a note released early, before it had decayed), that fall would leave
    the band hanging 30 dB below where it was for the rest of the release, where the instrument goes on
    falling at its release rate (a SoundFont release is a straight line in dB, whatever the level it starts
    from) and a damped one is silent within a few frames. From the first release frame at or below
    :data:`RELEASE_SILENT_U`, the band falls on at its mean rate since note-off (the release part's faded
    end still ends it). In place.
    """
    frames, bands = delta.shape
    if frames < 2:
        return
    for b in range(bands):
        first = frames  # the first silent frame of the band
        for f in range(frames):
            if release[f, b] <= silent_u:
                first = f
                break
        if first >= frames:
            continue
        at = np.float64(delta[first, b])
        last = np.float64(delta[max(first - 1, 0), b])
        # Release frame j is j + 1 frames after the note-off state. The rate: over the frames down to the first
        # silent one or to the frame before it, whichever is steeper (a damped note falls off a cliff at the end).
        rate = min(min(at / (first + 1), last / max(first, 1)), 0.0)  # unit scale a frame
        for f in range(first, frames):
            beyond = at + rate * (f - first)
            if beyond < delta[f, b]:
                delta[f, b] = np.float32(beyond)


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    x.setflags(write=False)
    return x


def _geometry(params: SpectrogramParams) -> tuple[int, int, int]:
    """(hold frame, sustain start, sustain window) of a note under ``params``."""
    hold = params.frame_of(3.0) if params.frames > params.frame_of(3.0) else (3 * params.frames) // 4
    guard = min(SUSTAIN_GUARD_FRAMES, hold // 4)
    window = max(1, min(SUSTAIN_WINDOW_FRAMES, (hold - guard) // 2))
    return hold, hold - guard, window


def _lay_out(part: np.ndarray, first: int, *, base: Timbre | None, params: SpectrogramParams) -> Timbre:
    """Note frames ``first .. first + len(part) - 1`` (``part``: (frames, n_mels), unit scale) laid out
    over ``base`` (every other frame from it; None: ``part`` is the whole note)."""
    hold, start, window = _geometry(params)
    part = np.clip(np.asarray(part, dtype=np.float32), 0.0, 1.0)
    lo, hi = first, first + part.shape[0]
    if base is None:
        if (lo, hi) != (0, params.frames):
            raise ValueError(f"a timbre without a base needs all {params.frames} frames, got {lo}..{hi - 1}")
        held = np.empty((start, part.shape[1]), dtype=np.float32)
        release = np.empty((params.frames - hold, part.shape[1]), dtype=np.float32)
        sustain = None
    else:
        held, release, sustain = base.held.copy(), base.release.copy(), base.sustain
    if lo <= start - window and start <= hi:
        sustain = part[start - window - lo : start - lo].mean(axis=0)
    edge = None if base is None else base.edge
    if lo <= hold - RELEASE_LEVEL_FRAMES and hold <= hi:
        edge = _mean_power(part[hold - RELEASE_LEVEL_FRAMES - lo : hold - lo])
    # Held frames: as decoded, then the last ``window`` ones blended towards the sustain frame.
    a, b = max(lo, 0), min(hi, start)
    if a < b:
        held[a:b] = part[a - lo : b - lo]
        c = max(a, start - window)
        if c < b:
            ramp = (np.arange(c - (start - window) + 1, b - (start - window) + 1, dtype=np.float32) / window)[:, None]
            held[c:b] = (1 - ramp) * held[c:b] + ramp * sustain
    # Release frames: as decoded, the last END_FADE_FRAMES faded out.
    a, b = max(lo, hold), min(hi, params.frames)
    if a < b:
        release[a - hold : b - hold] = part[a - lo : b - lo]
        n_fade = min(END_FADE_FRAMES, release.shape[0])
        fade_from = release.shape[0] - n_fade
        c = max(a - hold, fade_from)
        if c < b - hold:
            depth = (np.arange(c - fade_from + 1, b - hold - fade_from + 1, dtype=np.float32) / n_fade
                     * END_FADE_DEPTH)[:, None]
            release[c : b - hold] = np.maximum(release[c : b - hold] - depth, 0.0)
    return Timbre(held=_readonly(held), sustain=_readonly(sustain), release=_readonly(release), window=window,
                  loudness=loudness_basis(params), edge=None if edge is None else _readonly(edge))


def _mean_power(frames: np.ndarray) -> np.ndarray:
    """The mean power of ``frames`` ((k, n_mels), unit scale) band by band, in the unit scale."""
    db = frames.astype(np.float64) * 130.0
    peak = db.max(axis=0)
    return ((peak + 10.0 * np.log10(np.mean(10.0 ** ((db - peak) / 10.0), axis=0))) / 130.0).astype(np.float32)


class KeyedTimbre:
    """One latent decoded at trained keys of a keyboard bundle: each voice reads the timbre of its key
    (:meth:`for_key`), so a chord's notes each sound their own key's spectrum.

    ``by_key`` : trained MIDI key -> :class:`Timbre`, every trained key a voice may read; ``exact`` : the keys
    whose timbre is this latent's decode (all of ``by_key`` by default). The live engine decodes a new latent
    at the keys its voices sound and the rest only once the changes stop, so the other keys hold an earlier
    latent's decode until then; a note started at such a key plays the nearest exact key moved by semitones
    (:meth:`nearest_exact`) until its own key is decoded. ``base`` : the key whose timbre stands for the whole
    where one is asked for without a key (warm-up, a status reply, a voice of a one-pitch bundle). Attributes
    of :class:`Timbre` read on a KeyedTimbre are the base key's.
    """

    __slots__ = ("by_key", "base", "exact")

    def __init__(self, by_key: dict[int, Timbre], *, base: int, exact=None) -> None:
        self.by_key = types.MappingProxyType(dict(by_key))
        self.base = base
        self.exact = frozenset(self.by_key) if exact is None else frozenset(int(k) for k in exact)
        if base not in self.by_key:
            raise ValueError(f"KeyedTimbre: base key {base} is not one of {sorted(self.by_key)}")
        if not self.exact <= self.by_key.keys():
            raise ValueError(f"KeyedTimbre: exact keys {sorted(self.exact)} are not all among {sorted(self.by_key)}")

    def for_key(self, key: int | None) -> Timbre:
        """The timbre of ``key`` (None: the base key's)."""
        return self.by_key[self.base if key is None else key]

    def nearest_exact(self, note: float) -> int:
        """The key nearest ``note`` among :attr:`exact` (the lower of two as near; the base key when none is)."""
        if not self.exact:
            return self.base
        return min(self.exact, key=lambda k: (abs(k - note), k))

    def with_keys(self, timbres, *, new_latent: bool) -> KeyedTimbre:
        """These exact ``timbres`` (key -> Timbre) laid over this one: of a new latent (``new_latent``: they are
        its only exact keys, the others keep what they held) or of this one (its exact keys grow)."""
        exact = set(timbres) if new_latent else self.exact | set(timbres)
        return KeyedTimbre({**self.by_key, **timbres}, base=self.base, exact=exact)

    def __getattr__(self, name: str):
        # Only reached for names not in __slots__: the Timbre attributes, read off the base key's timbre.
        return getattr(self.by_key[self.base], name)


def make_timbre(mel: np.ndarray, *, params: SpectrogramParams) -> Timbre:
    """Lay out one decoded spectrogram.

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, frames), unit scale, finite]

    Returns
    -------
    Timbre
    """
    return _lay_out(np.asarray(mel, dtype=np.float32).T, 0, base=None, params=params)


def splice_timbre(base: Timbre, part: np.ndarray, *, first: int, params: SpectrogramParams) -> Timbre:
    """``base`` with note frames ``first .. first + part.shape[1] - 1`` replaced by ``part`` (a tile of a
    decode, see :mod:`synth.bundle.tiles`).

    Every frame of the result in that span is what :func:`make_timbre` of the whole decode gives, and the
    sustain frame too when the span holds :attr:`Timbre.sustain_span`; frames outside it are ``base``'s.

    Parameters
    ----------
    part : np.ndarray [shape=(n_mels, k), unit scale, finite]
    """
    part = np.asarray(part, dtype=np.float32)
    if not 0 <= first and first + part.shape[1] <= params.frames:
        raise ValueError(f"frames {first}..{first + part.shape[1] - 1} are outside the note's 0..{params.frames - 1}")
    return _lay_out(part.T, first, base=base, params=params)


def blend_timbres(a: Timbre | KeyedTimbre, b: Timbre | KeyedTimbre, w: float) -> Timbre | KeyedTimbre:
    """(1 - w) * a + w * b, part by part (used to freeze a crossfade that a newer latent interrupts); key by
    key for two :class:`KeyedTimbre`."""
    if isinstance(b, KeyedTimbre):
        # Key by key; a key both hold the same timbre of (one not decoded again since) is not blended.
        return KeyedTimbre({key: t if a.for_key(key) is t else blend_timbres(a.for_key(key), t, w)
                            for key, t in b.by_key.items()}, base=b.base, exact=b.exact)
    w32 = np.float32(w)
    return Timbre(
        held=_readonly((1 - w32) * a.held + w32 * b.held),
        sustain=_readonly((1 - w32) * a.sustain + w32 * b.sustain),
        release=_readonly((1 - w32) * a.release + w32 * b.release),
        window=b.window,
        loudness=b.loudness,
        edge=None if a.edge is None or b.edge is None else _readonly((1 - w32) * a.edge + w32 * b.edge),
    )


def estimate_timbre(known: Timbre, steps: list[tuple[float, Timbre]]) -> Timbre:
    """``known + sum_i w_i * timbre_i``, clipped to the unit range, part by part.

    A first-order estimate of the timbre of a latent near one already decoded (``known``): for a move from
    preset weights ``u`` to ``v`` the steps are ``(v_i - u_i, timbre of preset i)``. Used by the live engine
    to sound a morph or XY move at the next frame while the decoder works on the exact timbre.
    """
    names = ["held", "sustain", "release"]
    if known.edge is not None and all(timbre.edge is not None for _, timbre in steps):
        names.append("edge")
    parts = {}
    for name in names:
        acc = np.array(getattr(known, name), dtype=np.float32)
        for w, timbre in steps:
            acc += np.float32(w) * getattr(timbre, name)
        parts[name] = _readonly(np.clip(acc, 0.0, 1.0, out=acc))
    return Timbre(**parts, window=known.window, loudness=known.loudness)
