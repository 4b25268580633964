"""Streaming sinusoidal resynthesis of mel frames (the paper's own inversion, its reference [15]).

Per mel frame: local maxima of the mel levels become partials; each partial's frequency and amplitude are
refined by how a unit sinusoid spreads over the neighbouring bands through the Blackman window
(:mod:`synth.inversion.partial_table`); partials are tracked from frame to frame by nearest frequency (within
3 %); an oscillator bank at the output rate renders them, with the phase of every track carried over between
frames and calls, amplitudes ramped linearly over the block, births faded in and deaths faded out over one
hop.

Timing: the block written for frame k ramps every partial from its frame k-1 values to its frame k values,
so frame k's parameters are reached at the end of that block: ``latency_samples`` is one hop at the output
rate, and one frame of silence (``tail_frames``) fades out the last real frame.

The per-frame work is one numba function (peak picking, refinement, tracking, rendering) on preallocated
state arrays; its inner oscillator loop runs over partials innermost so that it vectorises.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.errors import ParameterError
from synth.inversion.frames import check_frame_arguments, check_output_rate, hop_samples
from synth.inversion.partial_table import partial_table
from synth.inversion.random_bits import next_state
from synth.inversion.tuning import harmonic_tuning
from synth.spectrogram import SpectrogramParams, mel_band_frequencies

__all__ = ["SinusoidalInverter"]

_TWO_PI = 2.0 * math.pi


@njit(cache=True)
def _pick_peaks(u, floor_u, range_u, max_partials, pk_band, pk_value):
    """Local maxima of ``u`` above both thresholds; at most ``max_partials``, the loudest kept. Returns count."""
    n = u.shape[0]
    top = u[0]
    for m in range(1, n):
        if u[m] > top:
            top = u[m]
    threshold = max(floor_u, top - range_u)
    count = 0
    for m in range(n):
        v = u[m]
        if v < threshold:
            continue
        if m > 0 and not v > u[m - 1]:
            continue
        if m < n - 1 and v < u[m + 1]:
            continue
        if count < max_partials:
            pk_band[count] = m
            pk_value[count] = v
            count += 1
        else:
            # Full: replace the weakest kept peak if this one is louder (max_partials is small).
            weakest = 0
            for j in range(1, count):
                if pk_value[j] < pk_value[weakest]:
                    weakest = j
            if v > pk_value[weakest]:
                pk_band[weakest] = m
                pk_value[weakest] = v
    return count


@njit(cache=True)
def _refine(
    u, db_min, db_range, pk_band, count, d_start, d_step, snap_tol, snap_f0, lut_freq, lut_gain_db, new_f, new_a
):
    n = u.shape[0]
    points = lut_freq.shape[1]
    for i in range(count):
        m = pk_band[i]
        lo = m - 1 if m > 0 else 0
        hi = m + 1 if m < n - 1 else n - 1
        d = (u[hi] - u[lo]) * db_range
        t = (d - d_start[m]) / d_step[m]
        if t < 0.0:
            t = 0.0
        elif t > points - 1.0:
            t = points - 1.0
        k = int(t)
        if k > points - 2:
            k = points - 2
        frac = t - k
        f = lut_freq[m, k] * (1.0 - frac) + lut_freq[m, k + 1] * frac
        g = lut_gain_db[m, k] * (1.0 - frac) + lut_gain_db[m, k + 1] * frac
        if snap_f0 > 0.0:
            h = math.floor(f / snap_f0 + 0.5)
            if h >= 1.0 and abs(f - h * snap_f0) <= snap_tol[m]:
                f = h * snap_f0
        level_db = db_min + u[m] * db_range
        new_f[i] = f
        new_a[i] = 10.0 ** ((level_db - g) / 20.0)


@njit(cache=True)
def _match(tr_f, n_tr, new_f, new_a, count, tolerance, match_of_new, taken):
    """Greedy nearest-neighbour tracking, loudest new peak first. match_of_new[i] = old track or -1."""
    for j in range(n_tr):
        taken[j] = False
    for i in range(count):
        match_of_new[i] = -1
    for _ in range(count):
        # The loudest still unassigned peak picks first.
        best_i = -1
        for i in range(count):
            if match_of_new[i] == -1 and (best_i == -1 or new_a[i] > new_a[best_i]):
                best_i = i
        best_j = -1
        best_dist = tolerance
        f = new_f[best_i]
        for j in range(n_tr):
            if taken[j]:
                continue
            dist = abs(f - tr_f[j]) / max(tr_f[j], 1e-9)
            if dist <= best_dist:
                best_dist = dist
                best_j = j
        if best_j >= 0:
            taken[best_j] = True
        match_of_new[best_i] = best_j if best_j >= 0 else -2  # -2: unmatched (a birth)
    for i in range(count):
        if match_of_new[i] == -2:
            match_of_new[i] = -1


@njit(cache=True, fastmath=True)
def _oscillators(out, n_osc, zr, zi, cr, ci, amp, damp):
    """Sum of ramped recursive oscillators into out; partials innermost so the loop vectorises."""
    for n in range(out.shape[0]):
        s = np.float32(0.0)
        for p in range(n_osc):
            s += amp[p] * zr[p]
            amp[p] += damp[p]
            t = zr[p] * cr[p] - zi[p] * ci[p]
            zi[p] = zr[p] * ci[p] + zi[p] * cr[p]
            zr[p] = t
        out[n] = s


@njit(cache=True)
def _render(
    tr_f,
    tr_a,
    tr_ph,
    n_tr,
    new_f,
    new_a,
    count,
    match_of_new,
    taken,
    ratio_prev,
    ratio,
    nyquist,
    rate,
    lowest,
    birth_state,
    nx_f,
    nx_a,
    nx_ph,
    zr,
    zi,
    cr,
    ci,
    amp,
    damp,
    out,
):
    """Render one block and build the next track list. Returns (next track count, next birth_state)."""
    n_samples = out.shape[0]
    inv_n = 1.0 / n_samples if n_samples > 0 else 0.0
    n_osc = 0
    n_next = 0
    # Continuing tracks and births, in new-peak order.
    for i in range(count):
        j = match_of_new[i]
        f1 = new_f[i] * ratio
        a1 = new_a[i] if lowest <= f1 < nyquist else 0.0
        if j >= 0:
            f0 = tr_f[j] * ratio_prev
            a0 = tr_a[j]
            phase = tr_ph[j]
        else:
            f0 = f1
            a0 = 0.0
            # Births start at a deterministic pseudo-random phase (a sum of harmonics all starting at phase
            # 0 is needlessly peaky); the sequence restarts on reset().
            birth_state = next_state(birth_state)
            phase = _TWO_PI * ((birth_state >> 11) / 4503599627370496.0)
        if f0 >= nyquist or f0 < lowest:
            a0 = 0.0
        # Constant frequency over the block at the mean of both ends: the phase it reaches at the end is
        # exactly that of a linear glide, so the next block continues without a phase jump.
        f = 0.5 * (f0 + f1)
        w = _TWO_PI * f / rate
        if f < nyquist and (a0 > 0.0 or a1 > 0.0):
            zr[n_osc] = math.cos(phase)
            zi[n_osc] = math.sin(phase)
            cr[n_osc] = math.cos(w)
            ci[n_osc] = math.sin(w)
            amp[n_osc] = a0
            damp[n_osc] = (a1 - a0) * inv_n
            n_osc += 1
        nx_f[n_next] = new_f[i]
        nx_a[n_next] = a1
        nx_ph[n_next] = (phase + w * n_samples) % _TWO_PI
        n_next += 1
    # Deaths: fade out at the old frequency.
    for j in range(n_tr):
        if taken[j]:
            continue
        f = tr_f[j] * ratio_prev
        if f < nyquist and tr_a[j] > 0.0:
            w = _TWO_PI * f / rate
            zr[n_osc] = math.cos(tr_ph[j])
            zi[n_osc] = math.sin(tr_ph[j])
            cr[n_osc] = math.cos(w)
            ci[n_osc] = math.sin(w)
            amp[n_osc] = tr_a[j]
            damp[n_osc] = -tr_a[j] * inv_n
            n_osc += 1
    _oscillators(out, n_osc, zr, zi, cr, ci, amp, damp)
    return n_next, birth_state


@njit(cache=True)
def _process(mel_frame, ratio, u, thresholds, lut_d, lut_freq, lut_gain, ints, floats, tracks, state, ratios, osc,
                  out):
    """One frame at pitch ``ratio`` in a single numba call (dispatch costs about a microsecond per array
    argument); the arguments after ``ratio`` are :class:`SinusoidalInverter`'s ``_kernel``, then ``out``.

    mel_frame is copied into u with NaN -> 0 and values clipped to [0, 1] (a bad decode must not index
    past the lookup tables or poison the tracks).
    thresholds: floor_u, range_u, db_min, db_range, tolerance, harmonic f0 (0: off); lut_d: (3, n_mels)
    d_start, d_step, harmonic snap distance (Hz);
    ints: (3, P) peak band, match, taken; floats: (3, P) peak value, frequency, amplitude;
    tracks: (6, P) current f, a, phase then next f, a, phase; state: partials alive, the birth phases'
    generator; ratios: previous ratio, ratio, nyquist, rate, lowest frequency; osc: (6, 2P) float32
    oscillator scratch.
    """
    ratios[1] = ratio
    n_tr = state[0]
    birth_state = state[1]
    for m in range(u.shape[0]):
        v = mel_frame[m]
        u[m] = 0.0 if not v > 0.0 else (1.0 if v > 1.0 else v)  # NaN fails v > 0
    p = ints.shape[1]
    count = _pick_peaks(u, thresholds[0], thresholds[1], p, ints[0], floats[0])
    _refine(
        u,
        thresholds[2],
        thresholds[3],
        ints[0],
        count,
        lut_d[0],
        lut_d[1],
        lut_d[2],
        thresholds[5],
        lut_freq,
        lut_gain,
        floats[1],
        floats[2],
    )
    taken = ints[2]
    _match(tracks[0], n_tr, floats[1], floats[2], count, thresholds[4], ints[1], taken)
    n_next, birth_state = _render(
        tracks[0],
        tracks[1],
        tracks[2],
        n_tr,
        floats[1],
        floats[2],
        count,
        ints[1],
        taken,
        ratios[0],
        ratios[1],
        ratios[2],
        ratios[3],
        ratios[4],
        birth_state,
        tracks[3],
        tracks[4],
        tracks[5],
        osc[0],
        osc[1],
        osc[2],
        osc[3],
        osc[4],
        osc[5],
        out,
    )
    tracks[0:3, :n_next] = tracks[3:6, :n_next]
    state[0], state[1] = n_next, birth_state
    ratios[0] = ratio


_BIRTH_SEED = 0x2545F4914F6CDD1D


class SinusoidalInverter:
    """Streaming sinusoidal resynthesis of unit-scale mel frames at ``output_rate``.

    Parameters
    ----------
    params : SpectrogramParams, the contract the frames follow
    output_rate : int, output sample rate (Hz); partials at or above its Nyquist are dropped
    max_partials : int, the loudest peaks kept per frame (1 .. n_mels)
    range_db : float, peaks more than this below the frame's loudest band are ignored (55: below that sit
        the Blackman window's own sidelobes, about 60 dB down, which would become false partials)
    floor_db : float or None, peaks below this absolute mel level (dB) are ignored; default ``db_min + 10``
    tolerance : float, relative frequency distance within which a peak continues a track (0.03 = 3 %)
    lowest_hz : float, partials below this (after the pitch ratio) are dropped: a peak in the lowest mel
        band (0..32 Hz) would otherwise become a DC-like offset
    harmonic_f0 : float or None, the fundamental (Hz, before the pitch ratio) of the note the frames are
        supposed to hold, e.g. the model's base pitch; None: partials keep their refined frequencies
    harmonic_snap : float, with ``harmonic_f0``: a refined partial within this many local mel-band spacings
        of a harmonic ``h * harmonic_f0`` (h >= 1) is moved onto it. Why: the mel bands near a low fundamental
        are 20-30 Hz apart, and a decoder that blurs the fundamental across two bands puts the refined
        frequency up to a band's width off (the default model: 60-90 cents sharp at C4). The note's pitch
        is known, so the partial that is within the mel resolution of a harmonic is taken to be that
        harmonic. Partials further away (inharmonic sounds, noise) keep their frequency. 0 turns it off.
    """

    tail_frames = 1

    def __init__(
        self,
        *,
        params: SpectrogramParams,
        output_rate: int,
        max_partials: int = 64,
        range_db: float = 55.0,
        floor_db: float | None = None,
        tolerance: float = 0.03,
        lowest_hz: float = 20.0,
        harmonic_f0: float | None = None,
        harmonic_snap: float = 0.75,
    ) -> None:
        check_output_rate(output_rate, who="SinusoidalInverter")
        if not 1 <= int(max_partials) <= params.n_mels:
            raise ParameterError(
                f"SinusoidalInverter: max_partials must be in 1..{params.n_mels}, got {max_partials!r}"
            )
        if not (range_db > 0 and tolerance > 0 and lowest_hz >= 0):
            raise ParameterError(
                "SinusoidalInverter: range_db and tolerance must be positive, lowest_hz non-negative"
            )
        tune_f0 = harmonic_tuning("SinusoidalInverter", harmonic_f0=harmonic_f0, harmonic_snap=harmonic_snap, params=params)
        self.params = params
        self.output_rate = int(output_rate)
        self.harmonic_f0 = tune_f0
        self.max_partials = int(max_partials)
        db_range = params.db_max - params.db_min
        self._db_range = float(db_range)
        self._db_min = float(params.db_min)
        self._range_u = float(range_db / db_range)
        floor = params.db_min + 10.0 if floor_db is None else float(floor_db)
        self._floor_u = float((floor - params.db_min) / db_range)
        self._tolerance = float(tolerance)
        self._nyquist = self.output_rate / 2.0
        hop_out = hop_samples(params=params, output_rate=self.output_rate)
        self.latency_samples = int(round(hop_out))

        table = partial_table(params)
        centres = mel_band_frequencies(params=params)
        spacing = np.gradient(centres)  # local distance between neighbouring band centres (Hz)
        self._lut_d = np.ascontiguousarray(
            np.stack([table.d_start, table.d_step, harmonic_snap * spacing]).astype(np.float64)
        )
        self._lut_freq = np.ascontiguousarray(table.freq)
        self._lut_gain = np.ascontiguousarray(table.gain_db)
        self._thresholds = np.array(
            [self._floor_u, self._range_u, params.db_min, self._db_range, self._tolerance,
             0.0 if self.harmonic_f0 is None else self.harmonic_f0]
        )

        p = self.max_partials
        self._u = np.zeros(params.n_mels, dtype=np.float64)
        self._ints = np.zeros((3, p), dtype=np.int64)  # peak band, match, taken
        self._floats = np.zeros((3, p), dtype=np.float64)  # peak value, frequency, amplitude
        self._tracks = np.zeros((6, p), dtype=np.float64)  # f, a, phase now; f, a, phase next
        self._ratios = np.array([1.0, 1.0, self._nyquist, float(self.output_rate), float(lowest_hz)])
        self._state = np.zeros(2, dtype=np.int64)  # partials alive, the birth phases' generator
        # Oscillator scratch: at most p continuing/born plus p dying partials in one block.
        self._osc = np.zeros((6, 2 * p), dtype=np.float32)
        # _process's arguments, held in one tuple: the harmonic method passes them on from its own
        # per-frame function (every array is updated in place, never replaced).
        self._kernel = (self._u, self._thresholds, self._lut_d, self._lut_freq, self._lut_gain, self._ints,
                        self._floats, self._tracks, self._state, self._ratios, self._osc)
        self.reset()

    def retune(self, harmonic_f0: float) -> None:
        """Tune partials onto the harmonics of another fundamental (Hz, before the pitch ratio), as if built
        for it; a no-op for an inverter built without tuning."""
        if self.harmonic_f0 is None:
            return
        f0 = harmonic_tuning("SinusoidalInverter", harmonic_f0=harmonic_f0, harmonic_snap=1.0, params=self.params)
        self.harmonic_f0 = f0
        self._thresholds[5] = f0

    def set_gain(self, gain: float) -> float:
        """The next frame's gain (see :meth:`process_frame`): the dB level a unit value of 0 stands for when
        the partials' amplitudes are refined is moved by the gain in dB (the thresholds stay on the unit
        values). Returns that level."""
        db = self._db_min + (0.0 if gain == 1.0 else 20.0 * math.log10(gain))
        self._thresholds[2] = db
        return db

    def reset(self) -> None:
        """Back to the state of a fresh object: no tracks, the birth-phase sequence restarted."""
        self._state[0], self._state[1] = 0, _BIRTH_SEED
        self._ratios[0] = 1.0
        self._tracks.fill(0.0)

    @property
    def n_partials(self) -> int:
        """Partials alive after the last frame."""
        return int(self._state[0])

    def partials(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The partials of the last frame: ``(frequencies, amplitudes, count)``, read-only views of the
        state valid until the next frame (frequencies in Hz before the pitch ratio; the first ``count``
        entries hold them)."""
        return self._tracks[0], self._tracks[1], int(self._state[0])

    def process_frame(self, mel_frame: np.ndarray, *, pitch_ratio: float, out: np.ndarray, gain: float = 1.0) -> None:
        """Render the block of one mel frame.

        Parameters
        ----------
        mel_frame : np.ndarray [shape=(n_mels,), float, unit scale]
        pitch_ratio : float > 0, multiplies every partial frequency
        out : np.ndarray [shape=(n,), float32, writable], filled with exactly n samples
        gain : float > 0, multiplies this frame's partial amplitudes (after peak picking), so the block ramps
            to it with the partials, as it ramps to the frame's own levels
        """
        check_frame_arguments(mel_frame, pitch_ratio=pitch_ratio, out=out, n_mels=self.params.n_mels, gain=gain)
        self.set_gain(gain)
        # One numba specialisation only (float32, contiguous; a float ratio): a new type or layout would
        # compile on first use, in the synthesis thread. A no-op for the usual float32 row.
        frame = np.ascontiguousarray(mel_frame, dtype=np.float32)
        _process(frame, float(pitch_ratio), *self._kernel, out)
