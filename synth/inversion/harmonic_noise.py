"""Streaming harmonic + noise resynthesis of mel frames: DDSP's split, from the mel alone.

Per mel frame:

1. **Partials** are found and rendered exactly as :class:`~synth.inversion.sinusoidal.SinusoidalInverter`
   does (peak picking, refinement by the window's spread over the bands, tracking, an oscillator bank).
2. **What the partials leave** is measured: the frame's mel power minus the mel power the partials would
   make (each partial's amplitude squared times the mel response of a unit sinusoid at its frequency, from
   a shared table), clipped at zero, band by band. That residual is what the sinusoidal method throws away:
   the breath and bow noise between the partials, the broadband burst of an attack, and, above the
   frequency where the mel bands grow wider than the harmonic spacing (no peaks there to pick), the upper
   partials themselves.
3. **Upper partials**: where the note's fundamental is known (``harmonic_f0``, as the engine knows its
   model's base pitch), the residual of each band above the resolved region is given to the harmonics lying
   in it (oscillators at exact harmonic frequencies, amplitudes from the band's residual and how many
   harmonics share it), in the proportion the resolved region shows between partials and noise; the rest
   stays noise.
4. **Noise**: the remaining residual, its band densities first deconvolved from the spread the analysis
   window and the bands' overlap give them (``deconvolve``; :mod:`synth.inversion.noise_spread`: else a
   valley between two louder bands fills from both sides), spread from bands to FFT bins as a smooth power
   density, becomes a spectrum overlap-added at the contract's rate and resampled like the STFT methods' output
   (:class:`~synth.inversion.overlap_add.OverlapAddStream`). Its phases continue the noise already
   rendered (``consistency``: RTISI without look-ahead, a few passes of analysing what the frames before
   it left in the overlap-add plus its own synthesis, with fast Griffin-Lim's momentum); random phases
   (one deterministic generator per inverter) start it and fill any bin the past leaves silent. With random
   phases alone, overlapping frames add as independent noises: the analysis of the result scatters around
   the density asked for and smooths over the note's own fluctuation, and the noise between the partials
   came back 3.5 dB off on 32 SoundFont notes (2.7 with consistent phases; docs/BENCHMARKS.md).

5. **Transients**: the analysis window spreads a key-up or an onset over about three frames, and rendering
   those frames' levels (partials ramped between them, the noise overlap-added) spreads it again: a note cut
   dead came out 45 dB down only 26 ms after the cut, and an onset sounded 2-3 frames early. Each frame's
   total power is kept; the frame before the newest, whose neighbours are then both known, gets a gain that
   sharpens its power by the second difference around it (``sharpen``), only where that difference is more
   than ``knee`` times the power (a step), and, through a decay, by ``decay`` times that difference at least
   (an exponential release: the contract's window averages its power over about a frame, which lifts a fall of
   3 dB a frame by about 0.6 dB in the frames, and rendering those frames and analysing them again lifted it
   once more),
   never below its quieter neighbour unless it is silence (60 dB under the frames around it), floored at
   -60 dB. The gain, interpolated between frame centres, multiplies the output block (partials and noise),
   which lies about three frames behind the newest frame: no look-ahead is added.

The oscillators are delayed to the noise path's latency, so both halves line up: the method has the same
latency (and look-ahead: none) as the Griffin-Lim method. Nothing is allocated per frame.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
from numba import njit

from synth.errors import ParameterError
from synth.inversion.fft import irfft, rfft
from synth.inversion.frames import check_frame_arguments, check_output_rate, hop_samples
from synth.inversion.noise_spread import noise_band_spread, noise_bin_hats
from synth.inversion.overlap_add import (
    _HOP,
    _OLA_OFFSET,
    _OVERFLOW,
    _OWN_FFT,
    _WIN_LO,
    OverlapAddStream,
    _advance,
    _overlap_add,
    emit_frame,
)
from synth.inversion.partial_table import unit_sinusoid_mel_power
from synth.inversion.random_bits import next_state
from synth.inversion.sinusoidal import SinusoidalInverter, _oscillators, _process
from synth.spectrogram import SpectrogramParams, mel_band_frequencies, mel_basis

__all__ = ["HarmonicNoiseInverter", "ENVELOPE_DOWN", "ENVELOPE_UP", "fundamental_tables"]

#: keep_envelope acts on notes played below this pitch ratio (4.5 semitones down) or at this one and above (15
#: semitones up): where keeping the formants measured nearer the real note than moving them (see the class).
ENVELOPE_DOWN = 2.0 ** (-4.5 / 12.0)
ENVELOPE_UP = 2.0 ** (15.0 / 12.0)
#: The transient envelope's lowest power gain (-60 dB): how far below the frames' own level it may take the
#: audio at a key-up or before an onset.
ENVELOPE_FLOOR = 1e-6
#: Passes of the noise's consistent phase (see HarmonicNoiseInverter's ``consistency``); 0: random phases.
#: On 32 SoundFont notes (error as heard, dB; scale 1.5, no momentum): 0: 2.11, 1: 2.03, 2: 1.83, 3: 1.78, 5: 1.71;
#: each pass costs about 8 us a frame (docs/BENCHMARKS.md, inversion). The passes read an overlap-add of the
#: noise at gain 1 of their own, so a gain change mid-note still scales the audio and nothing else
#: (tests/test_timbre_switch_level.py): phases found in the sounding mix of two gains would carry the change
#: into every later frame.
CONSISTENCY = 4
#: The noise's power scale with consistent phases: random-phase frames add as independent noises (power
#: n_fft / hop times a frame's), frames that continue each other add nearer to one signal; measured on the
#: same notes (1.3: bias -0.1 dB in the attack and -0.6 above 2 kHz, 1.9: +0.8 and +0.1). 1.8 since the density
#: between band centres is their geometric mean (lower than the arithmetic one where they differ): on 32 notes
#: as heard 1.6: 1.66 dB, 1.8: 1.65, 2.0: 1.66 (the region bench's harmonic row, 2026-12-07 23:10 UTC).
CONSISTENT_SCALE = 1.8
#: Momentum of the passes between the first and the last (fast Griffin-Lim's, Perraudin et al. 2013): each
#: steps past its projection by this much of the step since the last; 0: 1.71 dB as heard, 0.9: 1.68, 2.0:
#: 1.66, 3.0: 1.65 (4 passes, the same notes).
MOMENTUM = 2.0
#: After the passes each noise bin's phase moves by a random angle, uniform over this many of 4096 steps of a
#: turn (1024: +-45 degrees). Without it a steady noise (a decoder's smooth mel held) settles into steady sines
#: at the FFT's bin centres, 15.6 Hz apart: a buzz. Fine-spectrum flatness of a steady white noise's render
#: (tests/test_inversion_harmonic.py's measure; random phases 0.50): 0: 0.08, 1024: 0.34, 1536: 0.43, 2048:
#: 0.47; error as heard on 32 SoundFont notes (the harmonic row of bench/bench_inversion.py --regions
#: data/sf60v100 --limit 32, 2026-12-07 21:40 UTC): 1.66, 1.70, 1.75, 1.86.
JITTER = 1024
#: Steps of the noise's deconvolution from its spread over the bands (see HarmonicNoiseInverter's
#: ``deconvolve``). Without it the noise filled the valleys between partials: bins 45 dB or more under
#: their frame's loudest came back +1.1 dB over the note in the attack, +0.6 in the sustain (32 SoundFont
#: notes). Error as heard on 128 (the harmonic row of bench/bench_inversion.py --regions data/sf60v100
#: --limit 128, 2026-12-08): 0 steps: 1.535 dB, 1: 1.506, 2: 1.493, 3: 1.496, 4: 1.501; with 2 the attack
#: 2.50 -> 2.46 dB, the sustain below 1.5 kHz 1.44 -> 1.40, above 2 kHz 1.49 -> 1.42, the release 0.93 -> 0.90.
#: On notes the table was not tuned on: the other 128 of that folder 1.740 -> 1.689, 128 notes of 36 to 84 of
#: the keyboard data 1.553 -> 1.525. About 1-3 us a frame.
DECONVOLVE = 2
#: The transient envelope's default sharpening (see HarmonicNoiseInverter's ``sharpen``).
SHARPEN = 0.5
#: The transient envelope's least sharpening through a decay (see HarmonicNoiseInverter's ``decay``).
DECAY = 0.22

_TWO_PI = 2.0 * math.pi
# Frequency grid of the shared unit-sinusoid response table (Hz) and the bands kept per row (fewer where the
# contract has fewer bands).
_RESPONSE_HZ = 1.0
_RESPONSE_WIDTH = 24
# Harmonics are resolved by the mel bands where two neighbouring harmonics lie at least this many local
# band spacings apart (below it, a band holds parts of two harmonics and peak picking finds no peak).
_RESOLVED_SPACINGS = 1.6
_NOISE_SEED = 0x9E3779B97F4A7C15 & 0x7FFFFFFFFFFFFFFF
# 4096 unit phasors: a random phase a bin is one lookup (12 bits of the generator: the top of its 63).
_PHASORS = np.exp(2j * np.pi * np.arange(4096) / 4096)
_PHASORS.setflags(write=False)


@functools.lru_cache(maxsize=4)
def _response_table(params: SpectrogramParams) -> tuple[np.ndarray, np.ndarray]:
    """Mel power of a unit sinusoid every ``_RESPONSE_HZ`` from 0 to fmax, compactly: ``(first band,
    (rows, _RESPONSE_WIDTH) values)`` (shared by every inverter of the contract, never written; left
    writeable because numba's dispatcher takes a slower path for a read-only array, one that allocates)."""
    grid = np.arange(0.0, params.fmax + _RESPONSE_HZ, _RESPONSE_HZ)
    full = unit_sinusoid_mel_power(grid, params=params)
    width = min(_RESPONSE_WIDTH, params.n_mels)
    first = np.zeros(grid.size, dtype=np.int64)
    values = np.zeros((grid.size, width), dtype=np.float64)
    for i, row in enumerate(full):
        peak = int(np.argmax(row))
        lo = max(0, min(peak - width // 2, params.n_mels - width))
        first[i] = lo
        values[i] = row[lo : lo + width]
    return first, values


@njit(cache=True)
def _residual(power, freqs, amps, count, first, values, step, explained, predicted, residual):
    """residual = max(power - (1 + explained) * predicted, 0) band by band, where ``predicted`` is the mel
    power the partials make (each amplitude squared times the response of a unit sinusoid at its frequency).

    ``explained`` over-subtracts in proportion to the partials' own power: their predicted spread is never
    exact (a partial's flanks move with a cent of error or a little vibrato), and that mismatch must not
    become noise under a partial, while a band of noise between partials, where little is predicted, keeps
    nearly all of its power.
    """
    predicted[:] = 0.0
    rows = first.shape[0]
    width = values.shape[1]
    for i in range(count):
        a2 = amps[i] * amps[i]
        if a2 <= 0.0:
            continue
        r = int(freqs[i] / step + 0.5)
        if r < 0 or r >= rows:
            continue
        lo = first[r]
        for j in range(width):
            predicted[lo + j] += a2 * values[r, j]
    scale = 1.0 + explained
    for m in range(residual.shape[0]):
        r = power[m] - scale * predicted[m]
        residual[m] = r if r > 0.0 else 0.0


@njit(cache=True)
def _split(power, residual, resolved_top, tonal_lo, fill_band, fill_gain, fill_amp, noise):
    """Split the residual above the resolved region between harmonics and noise.

    The tonal share is what the partials hold of the power in the top of the resolved region (bands
    ``tonal_lo .. resolved_top - 1``); ``fill_amp[h]`` is the amplitude of harmonic h+1 (0 below the
    resolved region), ``noise`` the residual power left to the noise.
    """
    total = 0.0
    left = 0.0
    for m in range(tonal_lo, resolved_top):
        total += power[m]
        left += residual[m]
    tonal = 1.0 - left / total if total > 0.0 else 0.0
    if tonal < 0.0:
        tonal = 0.0
    noise[:] = residual
    for h in range(fill_band.shape[0]):
        m = fill_band[h]
        if m < 0:
            fill_amp[h] = 0.0
            continue
        fill_amp[h] = math.sqrt(tonal * residual[m] * fill_gain[h])
    for m in range(resolved_top, noise.shape[0]):
        noise[m] = (1.0 - tonal) * residual[m]
    return tonal


@njit(cache=True)
def _deconvolve(noise, band_density, spread_first, spread_values, passes, x, ratio):
    """Band-centre densities whose noise, analysed again, has the band powers ``noise``, written into ``x``
    over ``band_density`` (band powers, the form _noise_spectrum reads; ``noise`` itself is left as it is,
    for the envelope bank's tonal part): ``passes`` of Gold's ratio method, each scaling every density by its
    band's target over the power the spread table predicts from all of them. A band between louder ones
    gives up the power its neighbours already put there; silent bands stay silent. The table spreads an arithmetic interpolation and _noise_spectrum renders a geometric
    one, so the steps sharpen more than the table alone says: on 128 SoundFont notes two of Gold's steps
    (1.493 dB as heard) beat two and five of Richardson-Lucy's, which descend the table's own divergence
    (1.513, 1.513). ``ratio``: scratch."""
    n = noise.shape[0]
    width = spread_values.shape[1]
    for m in range(n):
        x[m] = noise[m] * band_density[m]
    for _ in range(passes):
        for m in range(n):
            if noise[m] <= 0.0:
                ratio[m] = 1.0
                continue
            lo = spread_first[m]
            predicted = 0.0
            for j in range(width):
                predicted += spread_values[m, j] * x[lo + j]
            ratio[m] = noise[m] / predicted if predicted > 0.0 else 1.0
        for m in range(n):
            x[m] *= ratio[m]
    for m in range(n):
        x[m] /= band_density[m]


@njit(cache=True)
def _noise_spectrum(noise, bin_band, bin_weight, band_density, ratio, scale, state, phasors, density, spec):
    """A random-phase spectrum whose expected analysed power is the band powers ``noise`` spread over the
    bins, warped along frequency by ``ratio``. Returns the generator's next state. ``density`` is scratch
    of one value per bin."""
    n = spec.shape[0]
    # Power density at every source bin, once (each is read by the two output bins on either side of it):
    # between two band centres, their densities' geometric mean weighted by distance, as a log spectrum is
    # interpolated. The arithmetic one filled the valleys between partials (which the mel bands straddle):
    # bins 45 dB or more under their frame's loudest came back +0.7 dB over the note in the sustain, +1.2 in
    # the attack; as heard 1.70 -> 1.66 dB on 32 SoundFont notes, 1.56 -> 1.54 on 128 (docs/BENCHMARKS.md).
    # Where one of the two is silent the arithmetic mean stays (a geometric one would cut the noise at the
    # edge of every silent band).
    for i in range(n):
        m = bin_band[i]
        lo_d = noise[m] * band_density[m]
        hi_d = noise[m + 1] * band_density[m + 1]
        w = bin_weight[i]
        if lo_d > 0.0 and hi_d > 0.0:
            density[i] = math.exp(w * math.log(lo_d) + (1.0 - w) * math.log(hi_d))
        else:
            density[i] = w * lo_d + (1.0 - w) * hi_d
    inv = 1.0 / ratio
    for b in range(n):
        x = b * inv
        i = int(x)
        if i >= n - 1:
            spec[b] = 0.0
            continue
        frac = x - i
        d = density[i] * (1.0 - frac) + density[i + 1] * frac  # the density at x
        if d <= 0.0:
            spec[b] = 0.0
            continue
        state = next_state(state)
        spec[b] = math.sqrt(d * scale) * phasors[state >> 51]  # a random one of 4096 unit phasors
    return state


@njit(cache=True)
def _analyse(mel_frame, db_min, db_range, freqs, amps, count, first, values, explained, resolved_top, tonal_lo,
             fill_band, fill_gain, fill_amp, use_noise, bin_band, bin_weight, band_density, ratio, scale, state,
             power, predicted, residual, noise, density, spec, spread_first, spread_values, passes, x, x_ratio):
    """One frame's analysis: the mel power (NaN -> 0, unit values clipped to [0, 1]), the residual the
    partials leave, its split between the upper harmonics and the noise, the noise's band densities
    deconvolved from their spread (``passes`` steps), and the noise's random-phase spectrum (warped by
    ``ratio``: 1 when the envelope stays). Returns (tonal share, the noise generator's next state)."""
    ln10 = math.log(10.0) / 10.0
    for m in range(power.shape[0]):
        v = mel_frame[m]
        u = 0.0 if not v > 0.0 else (1.0 if v > 1.0 else v)  # NaN fails v > 0
        power[m] = math.exp((db_min + u * db_range) * ln10)
    _residual(power, freqs, amps, count, first, values, _RESPONSE_HZ, explained, predicted, residual)
    tonal = _split(power, residual, resolved_top, tonal_lo, fill_band, fill_gain, fill_amp, noise)
    if not use_noise:
        noise[:] = 0.0
    shaped = noise
    if use_noise and passes > 0:
        _deconvolve(noise, band_density, spread_first, spread_values, passes, x, x_ratio)
        shaped = x
    state = _noise_spectrum(shaped, bin_band, bin_weight, band_density, ratio, scale, state, _PHASORS, density, spec)
    return tonal, state


@njit(cache=True, fastmath=True)
def _consistent_phase(spec, iters, acc, inv_gain, offset, win_lo, window, dual, twiddles, stages, work, tbuf, xspec,
                      mag, abuf, prev, jitter, state, phasors):
    """Give the noise spectrum ``spec`` the phases that continue what the frames before it left in the
    overlap-add accumulator (RTISI without look-ahead: Zhu, Beauregard and Wyse, 2007), keeping its
    magnitudes: ``iters`` times, analyse the window's stretch of the accumulator (the past frames' overlap,
    plus this frame's own synthesis, scaled by ``inv_gain``, after the first pass) with the contract's window
    and give each bin the phase found there, where that bin holds more than 1e-3 of its own magnitude (else
    it keeps its phase).
    Overlapping frames then add as one signal does rather than as independent noises, and the analysis of
    the result follows the frames' magnitudes instead of scattering around them.

    Then every bin's phase moves by a random angle of up to ``jitter`` / 2 steps of 4096 either way (the
    generator's ``state`` in and out, ``phasors`` its table): without it a steady noise settles into steady
    sines at the bins' centres.

    ``acc`` is the noise's overlap-add at gain 1 (every frame's spectrum over its own gain, ``inv_gain`` this
    frame's), not the one that sounds: phases found in a mix of two gains would carry a gain change into
    every later frame, where the gain must scale its frames' audio and nothing else.

    Scratch: ``tbuf`` (n_fft, float64) the inverse FFT's output, ``abuf`` (n_fft, float64, zero outside the
    window's stretch, which alone is written here) the analysed frame, ``xspec`` (bins, complex) its
    spectrum, ``mag`` (bins, float64) the magnitudes; ``work`` the FFTs' scratch."""
    w = window.shape[0]
    for b in range(spec.shape[0]):
        v = spec[b]
        mag[b] = math.sqrt(v.real * v.real + v.imag * v.imag)
    for it in range(iters):
        if it == 0:
            for k in range(w):
                abuf[win_lo + k] = window[k] * acc[offset + k]
        else:
            irfft(spec, twiddles, stages, work, tbuf)  # this frame's own synthesis joins the past's
            for k in range(w):
                abuf[win_lo + k] = window[k] * (acc[offset + k] + tbuf[win_lo + k] * dual[k] * inv_gain)
        rfft(abuf, twiddles, stages, work, xspec)
        _project(xspec, mag, spec, prev, MOMENTUM if 0 < it < iters - 1 else 0.0)
    if jitter > 0:
        for b in range(spec.shape[0]):
            state = next_state(state)
            spec[b] *= phasors[((state >> 51) * jitter >> 12) - (jitter >> 1) & 4095]
    return state


@njit(cache=True, fastmath=True)
def _project(xspec, mag, spec, prev, momentum):
    """One pass's projection: each bin of ``spec`` takes the phase of ``xspec`` at its magnitude ``mag``
    where ``xspec`` holds more than 1e-3 of that magnitude (else it keeps its own), stepping ``momentum``
    times the step since ``prev`` (the last pass's projection, updated here) past it. Branch-free, so
    that it vectorises (0.8 us for 513 bins, beside the pass's two FFTs of 3.1-3.4 us)."""
    for b in range(spec.shape[0]):
        x = xspec[b]
        xr, xi = x.real, x.imag
        sr, si = spec[b].real, spec[b].imag
        a2 = xr * xr + xi * xi
        m = mag[b]
        keep = a2 <= 1e-6 * m * m
        s = m / math.sqrt(max(a2, 1e-300))
        pr = sr if keep else xr * s
        pi = si if keep else xi * s
        qr, qi = prev[b].real, prev[b].imag
        spec[b] = complex(pr + momentum * (pr - qr), pi + momentum * (pi - qi))
        prev[b] = complex(pr, pi)


@njit(cache=True)
def _add_fill(f0, ratio_prev, ratio, nyquist, rate, amp_prev, amp, phase, osc, scratch, block):
    """The upper harmonics' block (ramped from the previous frame's amplitudes) added into ``block``."""
    n = block.shape[0]
    k = _fill_oscillators(f0, ratio_prev, ratio, nyquist, rate, amp_prev, amp, phase, osc[0], osc[1], osc[2],
                          osc[3], osc[4], osc[5], n)
    if k == 0:
        return
    out = scratch[:n]
    _oscillators(out, k, osc[0], osc[1], osc[2], osc[3], osc[4], osc[5])
    for i in range(n):
        block[i] += out[i]


@njit(cache=True)
def _source_harmonics(freqs, amps, count, f0, tonal_power, band_of_h, comb0, out):
    """The amplitude of each harmonic h+1 of the base note in this frame: a tracked partial's where one lies
    within half a harmonic spacing of it, else what the band's tonal power gives an equal comb there."""
    for h in range(out.shape[0]):
        m = band_of_h[h]
        out[h] = math.sqrt(tonal_power[m] / comb0[m]) if comb0[m] > 0.0 else 0.0
    for i in range(count):
        if amps[i] <= 0.0:
            continue
        h = int(freqs[i] / f0 + 0.5) - 1
        if 0 <= h < out.shape[0] and abs(freqs[i] - (h + 1) * f0) < 0.5 * f0:
            out[h] = amps[i]


@njit(cache=True)
def _upper(source, h):
    """The envelope at source harmonic h: a harmonic weaker than both its neighbours is raised to the weaker
    of them (a note whose even harmonics are weak, a clarinet's, has its formants where its odd ones are),
    and nothing else changes, so a formant's peak stays on its harmonic."""
    a = source[h]
    if 0 < h < source.shape[0] - 1:
        dip = min(source[h - 1], source[h + 1])
        if dip > a:
            a = dip
    return a


@njit(cache=True)
def _envelope_bank(source, f0, ratio_prev, ratio, top_hz, nyquist, rate, amp_prev, amp, phase, osc, block):
    """Harmonics of ``f0 * ratio`` with the levels the base note's harmonic envelope (``source``, log-linear
    between its harmonics) has at their frequencies, at the base note's total power, rendered into ``block``
    (ramped from the previous frame's amplitudes, phases carried)."""
    n = block.shape[0]
    f_new = f0 * ratio
    n_src = source.shape[0]
    src_power = 0.0
    for h in range(n_src):
        src_power += source[h] * source[h]
    new_power = 0.0
    for k in range(amp.shape[0]):
        g = (k + 1) * f_new
        if g >= top_hz or g >= nyquist:
            amp[k] = 0.0
            continue
        x = g / f0 - 1.0  # fractional source harmonic index
        if x <= 0.0:
            a = _upper(source, 0)
        elif x >= n_src - 1:
            a = 0.0
        else:
            i = int(x)
            frac = x - i
            lo, hi = _upper(source, i), _upper(source, i + 1)
            if lo > 0.0 and hi > 0.0:
                a = math.exp((1.0 - frac) * math.log(lo) + frac * math.log(hi))
            else:
                a = (1.0 - frac) * lo + frac * hi
        amp[k] = a
        new_power += a * a
    scale = math.sqrt(src_power / new_power) if new_power > 0.0 else 0.0
    for k in range(amp.shape[0]):
        amp[k] *= scale
    count = _fill_oscillators(f0, ratio_prev, ratio, nyquist, rate, amp_prev, amp, phase, osc[0], osc[1], osc[2],
                              osc[3], osc[4], osc[5], n)
    _oscillators(block, count, osc[0], osc[1], osc[2], osc[3], osc[4], osc[5])


@njit(cache=True)
def _delay_line(ring, write, delay, block, out):
    """out = the ``len(block)`` samples written ``delay`` samples before ``block``; returns the next write
    position (``ring`` is a circular buffer longer than delay plus any block, so no sample read here is
    one this block overwrites: writing the block first and then reading is the same as sample by sample)."""
    size = ring.shape[0]
    n = block.shape[0]
    # Two contiguous pieces each way: a modulo per sample cost more than the copy.
    k = min(n, size - write)
    ring[write : write + k] = block[:k]
    ring[: n - k] = block[k:]
    read = (write - delay) % size
    k = min(n, size - read)
    out[:k] = ring[read : read + k]
    out[k:] = ring[: n - k]
    return (write + n) % size


@njit(cache=True)
def _fill_oscillators(f0, ratio_prev, ratio, nyquist, rate, amp_prev, amp, phase, zr, zi, cr, ci, a, da, n_samples):
    """Set up the fill harmonics' oscillators for one block (ramped from the previous block's amplitude);
    advance their phases. Returns how many were set up."""
    inv_n = 1.0 / n_samples if n_samples > 0 else 0.0
    k = 0
    for h in range(amp.shape[0]):
        a0 = amp_prev[h]
        a1 = amp[h]
        f = 0.5 * (ratio_prev + ratio) * (h + 1) * f0
        w = _TWO_PI * f / rate
        if f < nyquist and (a0 > 0.0 or a1 > 0.0):
            zr[k] = math.cos(phase[h])
            zi[k] = math.sin(phase[h])
            cr[k] = math.cos(w)
            ci[k] = math.sin(w)
            a[k] = a0
            da[k] = (a1 - a0) * inv_n
            k += 1
        phase[h] = (phase[h] + w * n_samples) % _TWO_PI
        amp_prev[h] = a1
    return k


@njit(cache=True)
def _transient_gain(power, levels, frame, sharpen, knee, decay, floor):
    """Store frame ``frame``'s total power and make the envelope's amplitude gain of the frame before it,
    whose neighbours are now both known: its power sharpened by the second difference,
    ``q = p - sharpen * (p_before - 2 p + p_after)``, over ``p`` (clipped to ``floor .. 4``), where that
    second difference is more than ``knee`` times ``p`` (a step); in a frame quieter than the one before and
    louder than the one after (a decay), by at least ``decay`` times the second difference (the window's
    lift of a decay, undone: for a window whose power spreads over a variance of v frames squared, a first-
    order deconvolution is ``decay = v / 2``). The first frame keeps its level: nothing is known of what
    came before a note's first frame."""
    total = 0.0
    for m in range(power.shape[0]):
        total += power[m]
    levels[_LEVEL, frame % _RING] = total
    k = frame - 1
    if k < 0:
        return
    p = levels[_LEVEL, k % _RING]
    before = levels[_LEVEL, (k - 1) % _RING]
    g = 1.0
    if k > 0 and p > 0.0:
        d = (before - 2.0 * p + total) / p
        s = sharpen * (d - knee if d > knee else (d + knee if d < -knee else 0.0))
        if before > p > total and d > 0.0:
            s = max(s, decay * d)
        g = 1.0 - s
        # Never below the quieter neighbour (the step lies between the frames, not beyond them), except in
        # a frame more than 60 dB under the loudest of the four before it and the one after: silence, where
        # what sounds is the tails of the frames around it.
        loudest = total
        for j in range(1, 5):
            if k - j >= 0:
                loudest = max(loudest, levels[_LEVEL, (k - j) % _RING])
        low = floor if p < floor * loudest else max(min(before, total) / p, floor)
        g = low if g < low else (4.0 if g > 4.0 else g)
    levels[_ENV_GAIN, k % _RING] = math.sqrt(g)


@njit(cache=True)
def _envelope_gain(levels, k, known, floor):
    """The amplitude gain at frame ``k`` (before the first frame: the first frame's; not yet known: 1)."""
    if k < 0:
        k = 0
    if k > known:
        return 1.0
    return levels[_ENV_GAIN, k % _RING]


@njit(cache=True)
def _apply_envelope(out, levels, frames, written, latency, hop_out, floor):
    """Multiply ``out`` (the samples from ``written`` on, latency ``latency``) by the transient envelope,
    interpolated linearly between frame centres. ``frames``: frames seen so far (gains known up to the
    second last; ``out`` lies about three frames back, so every gain it needs is known)."""
    n = out.shape[0]
    known = frames - 2
    tau = (written - latency) / hop_out  # the frame time of out[0]
    step = 1.0 / hop_out
    k = int(math.floor(tau))
    g0 = _envelope_gain(levels, k, known, floor)
    g1 = _envelope_gain(levels, k + 1, known, floor)
    for i in range(n):
        t = tau + i * step
        if t >= k + 1:
            k = int(math.floor(t))
            g0 = _envelope_gain(levels, k, known, floor)
            g1 = _envelope_gain(levels, k + 1, known, floor)
        frac = t - k
        out[i] *= np.float32(g0 + (g1 - g0) * frac)


# The rows and entries of HarmonicNoiseInverter's per-frame arrays, grouped by size and type (each array
# argument costs _frame's dispatch about 0.1 us and 64 bytes held during the call). settings (float64) and
# dims (int64): what _frame reads besides its arrays. bands (float64, one value per mel band): scratch,
# then the noise tables' density of each band and the comb of the fundamental's harmonics, then the noise's
# band powers deconvolved from their spread (what is rendered) and the deconvolution's scratch; spread_first
# and spread_values: the shared spread table (synth/inversion/noise_spread.py). harmonics
# (float64, one per harmonic of the fundamental up to fmax): the fill's amplitude, previous amplitude,
# phase and gain, the envelope's source amplitude; harmonic_bands (int64): the band a fill harmonic takes
# its amplitude from (-1: resolved), the band each harmonic peaks in. bins (float64, one per FFT bin): the
# noise tables' weight of the lower band, the noise's density scratch.
_DB_MIN, _DB_RANGE, _EXPLAINED, _NOISE_SCALE, _F0, _FMAX, _NYQUIST, _RATE, _RATIO_PREV, _TONAL, _SHARPEN, \
    _HOP_OUT, _LATENCY, _KNEE, _DECAY, _INV_GAIN = range(16)
_RESOLVED_TOP, _TONAL_LO, _USE_NOISE, _N_FILL, _DELAY, _WRITE, _NOISE_STATE, _FRAMES, _WRITTEN, _PHASE_ITERS, \
    _DECONVOLVE = range(11)
# levels: the ring of the last frames' power (row _LEVEL) and the gains the transient envelope made of them
# (row _ENV_GAIN), indexed by frame number modulo _RING.
_LEVEL, _ENV_GAIN = range(2)
_RING = 8
_POWER, _PREDICTED, _RESIDUAL, _NOISE, _ENV_TONAL, _BAND_DENSITY, _COMB, _SPREAD_X, _SPREAD_RATIO = range(9)
_AMP, _PREV, _PHASE, _GAIN, _SOURCE = range(5)
_FILL_BAND, _HARMONIC_BAND = range(2)
_WEIGHT, _DENSITY = range(2)


@njit(cache=True)
def _frame(mel_frame, ratio, envelope_mode, out,
           u, thresholds, lut_d, lut_freq, lut_gain, ints, floats, tracks, state, ratios, osc,
           settings, dims, bands, bins, bin_band, spec, first, values, spread_first, spread_values, harmonics,
           harmonic_bands, fill_osc, env,
           env_osc, blocks, line, levels,
           stage_ints, twiddles, stages, work, frame, dual, acc, hist, res_state, table, res_out, fifo, window, phase_spec, phase_bufs,
           unit_acc):
    """One frame of :class:`HarmonicNoiseInverter` in one numba call: each call from Python costs its
    dispatch and its glue, which added up to more than the work (issue 27). Returns the samples the noise
    path zero-filled for want of output, or -1 where its FIFO overflowed.

    The arguments after ``out`` are :class:`HarmonicNoiseInverter`'s ``_args``: the partials'
    :class:`SinusoidalInverter` ``_kernel``; ``settings``, ``dims``, ``bands``, ``bins`` (their rows and
    entries above); the bins' lower band, the noise spectrum; the shared response and spread tables; ``harmonics``
    and ``harmonic_bands`` (above), the fill's oscillators; the envelope bank's amplitude, previous
    amplitude and phase (``env``, rows _AMP, _PREV, _PHASE) and oscillators; the two float32 blocks
    (partials, scratch), the delay line; the noise's :class:`OverlapAddStream` ``_stage``.
    """
    n = out.shape[0]
    block = blocks[0, :n]
    scratch = blocks[1]
    _process(mel_frame, ratio, u, thresholds, lut_d, lut_freq, lut_gain, ints, floats, tracks, state, ratios, osc,
             block)
    freqs, amps, count = tracks[0], tracks[1], state[0]
    power, noise, env_tonal = bands[_POWER], bands[_NOISE], bands[_ENV_TONAL]
    noise_ratio = 1.0 if envelope_mode else ratio  # the noise stays where the envelope does
    settings[_TONAL], dims[_NOISE_STATE] = _analyse(
        mel_frame, settings[_DB_MIN], settings[_DB_RANGE], freqs, amps, count, first, values, settings[_EXPLAINED],
        dims[_RESOLVED_TOP], dims[_TONAL_LO], harmonic_bands[_FILL_BAND], harmonics[_GAIN], harmonics[_AMP],
        dims[_USE_NOISE] != 0, bin_band, bins[_WEIGHT], bands[_BAND_DENSITY], noise_ratio,
        settings[_NOISE_SCALE], dims[_NOISE_STATE], power, bands[_PREDICTED], bands[_RESIDUAL], noise,
        bins[_DENSITY], spec, spread_first, spread_values, dims[_DECONVOLVE], bands[_SPREAD_X], bands[_SPREAD_RATIO])
    if dims[_PHASE_ITERS] > 0 and stage_ints[_OWN_FFT] and dims[_USE_NOISE] != 0:
        dims[_NOISE_STATE] = _consistent_phase(
            spec, dims[_PHASE_ITERS], unit_acc, settings[_INV_GAIN], stage_ints[_OLA_OFFSET], stage_ints[_WIN_LO], window, dual, twiddles,
            stages, work, frame, phase_spec[0], phase_bufs[0], phase_bufs[1], phase_spec[1], JITTER, dims[_NOISE_STATE],
            _PHASORS)
    if settings[_SHARPEN] > 0.0:
        _transient_gain(power, levels, dims[_FRAMES], settings[_SHARPEN], settings[_KNEE], settings[_DECAY],
                        ENVELOPE_FLOOR)
    dims[_FRAMES] += 1
    f0, ratio_prev, nyquist, rate = settings[_F0], settings[_RATIO_PREV], settings[_NYQUIST], settings[_RATE]
    if envelope_mode:
        for m in range(env_tonal.shape[0]):
            d = power[m] - noise[m]
            env_tonal[m] = d if d > 0.0 else 0.0
        _source_harmonics(freqs, amps, count, f0, env_tonal, harmonic_bands[_HARMONIC_BAND], bands[_COMB],
                          harmonics[_SOURCE])
        _envelope_bank(harmonics[_SOURCE], f0, ratio_prev, ratio, settings[_FMAX], nyquist, rate, env[_PREV],
                       env[_AMP], env[_PHASE], env_osc, block)
    elif dims[_N_FILL]:
        _add_fill(f0, ratio_prev, ratio, nyquist, rate, harmonics[_PREV], harmonics[_AMP], harmonics[_PHASE],
                  fill_osc, scratch, block)
    settings[_RATIO_PREV] = ratio
    # Delay the oscillators to the noise path's latency.
    dims[_WRITE] = _delay_line(line, dims[_WRITE], dims[_DELAY], block, out)
    if not stage_ints[_OWN_FFT]:
        return 0  # numpy's inverse FFT (not a power of two): the caller emits the noise and the envelope
    noise_out = scratch[:n]
    missing = emit_frame(spec, noise_out, stage_ints, twiddles, stages, work, frame, dual, acc, hist, res_state,
                         table, res_out, fifo)
    if dims[_PHASE_ITERS] > 0:
        # The consistent phase's own overlap-add, at gain 1 (``frame`` holds this frame's inverse FFT).
        _overlap_add(frame, dual, stage_ints[_WIN_LO], unit_acc, stage_ints[_OLA_OFFSET], settings[_INV_GAIN])
        if missing >= 0:
            _advance(unit_acc, stage_ints[_HOP])
    if missing >= 0:
        for i in range(n):
            out[i] += noise_out[i]
        _finish_block(out, settings, dims, levels)
    return missing


@njit(cache=True)
def _finish_block(out, settings, dims, levels):
    """The transient envelope over the block (partials and noise alike), and the block counted."""
    if settings[_SHARPEN] > 0.0:
        _apply_envelope(out, levels, dims[_FRAMES], dims[_WRITTEN], settings[_LATENCY], settings[_HOP_OUT],
                        ENVELOPE_FLOOR)
    dims[_WRITTEN] += out.shape[0]


@dataclasses.dataclass(frozen=True, eq=False)
class FundamentalTables:
    """What the harmonic inverter precomputes for one fundamental f0 (read-only arrays, shared).

    resolved_top : the first mel band whose spacing exceeds the resolved share of f0 (bands above it hold
        several harmonics each); tonal_lo : the band an octave below it (the top octave of the resolved region
        tells the tonal share); fill_band [shape=(H,)] : the band each harmonic of f0 up to fmax takes its
        amplitude from, -1 for the resolved ones; fill_gain [shape=(H,)] : band residual power -> that
        harmonic's amplitude squared, so the comb of equal harmonics reproduces the band's power;
        harmonic_band [shape=(H,)] : the band each harmonic peaks in; comb [shape=(n_mels,)] : the mel power of
        all harmonics at unit amplitude.
    """

    resolved_top: int
    tonal_lo: int
    fill_band: np.ndarray
    fill_gain: np.ndarray
    harmonic_band: np.ndarray
    comb: np.ndarray


@functools.lru_cache(maxsize=256)
def fundamental_tables(params: SpectrogramParams, f0: float) -> FundamentalTables:
    """The :class:`FundamentalTables` of fundamental ``f0`` (Hz) under ``params``; cached, since every voice of
    a keyboard bundle retunes to one of a few keys (about 5 ms each to compute)."""
    centres = mel_band_frequencies(params=params)
    spacing = np.gradient(centres)
    unresolved = np.flatnonzero(spacing * _RESOLVED_SPACINGS > f0)
    resolved_top = int(unresolved[0]) if unresolved.size else params.n_mels
    tonal_lo = int(np.searchsorted(centres, centres[max(resolved_top - 1, 0)] / 2.0))
    harmonics = np.arange(1, int(params.fmax // f0) + 1) * f0
    response = unit_sinusoid_mel_power(harmonics, params=params)  # (H, n_mels)
    comb = response.sum(axis=0)
    band = response.argmax(axis=1)
    fill_band = np.where(band >= resolved_top, band, -1)
    gain = np.where(fill_band >= 0, 1.0 / np.maximum(comb[band], 1e-30), 0.0)
    arrays = [np.ascontiguousarray(fill_band, dtype=np.int64), np.ascontiguousarray(gain),
              np.ascontiguousarray(band, dtype=np.int64), np.ascontiguousarray(comb)]
    for array in arrays:
        array.flags.writeable = False
    return FundamentalTables(resolved_top, tonal_lo, *arrays)


class HarmonicNoiseInverter:
    """Streaming harmonic + noise resynthesis (see the module docstring).

    Parameters
    ----------
    params : SpectrogramParams (Blackman window)
    output_rate : int (Hz)
    harmonic_f0 : float or None, the fundamental (Hz, before the pitch ratio) of the notes the frames hold;
        it tunes the partials as the sinusoidal method's does and places the upper partials. None: no
        upper partials are added (their energy stays noise)
    noise : bool, False leaves the noise out (partials only; for measurement)
    explained : the partials' predicted mel power is over-subtracted by this factor before the rest becomes
        noise (their spread is never exact, and the mismatch must not become noise under a partial)
    keep_envelope : for a note whose first frame comes more than 4.5 semitones below its pitch or 15 or more
        above (:data:`ENVELOPE_DOWN`, :data:`ENVELOPE_UP`), play harmonics of the new pitch at the levels the
        note's spectral envelope has at their frequencies, and the noise unmoved, instead of moving every
        partial and the noise with the pitch (formants stay where the instrument has them). Nearer its pitch
        moving is closer to the real note. Measured on 40 SoundFont instruments played from key 60, sustain
        spectrum error against the real note there (dB, moved / kept; ``bench/bench_transposition.py``,
        docs/BENCHMARKS.md): -24: 17.2 / 9.4, -12: 12.2 / 7.4, -9: 10.5 / 7.1, -6: 8.0 / 6.5, -3: 4.9 / 6.0,
        -1: 2.7 / 5.1, +1: 2.8 / 5.9, +3: 4.5 / 7.2, +6: 5.8 / 7.1, +9: 7.2 / 7.6, +12: 8.4 / 8.6, +18: 9.7 /
        9.2, +24: 10.3 / 9.5. A bend never switches a sounding note's way; needs ``harmonic_f0``
    sharpen : the transient envelope's strength (0 turns it off; see the module docstring, step 5): a key-up
        cut dead falls 45 dB within 12 ms with 0.5, 28 ms with 0 (tests/test_inversion_transients.py)
    knee : the transient envelope's ``sharpen`` acts where a frame's second difference of power exceeds this
        many times its power (1: more than a steady fall of 4.2 dB a frame would make)
    decay : through a decay (each frame quieter than the one before) the envelope sharpens by at least this
        many times the second difference (0: a decay slower than ``knee``'s is left as it was). With 0.22 a
        release of 400 dB a second (3.1 dB a frame) analysed again falls as its frames do over 30-80 ms
        after its start within 0.05 dB, where it fell 0.6 dB short with 0 (tests/test_inversion_transients.py)
    deconvolve : steps of the noise's deconvolution from its spread over the bands (0 to 8; 0: none): each
        band's noise density is scaled by its target over what the analysis of the noise would give it (the
        window's main lobe and the band filters fill a valley between two louder bands from both sides;
        :mod:`synth.inversion.noise_spread`). See :data:`DECONVOLVE`
    consistency : passes of the noise's consistent phase (0 to 8; 0: random phases, as before): each noise
        frame takes its phases from what the frames before it left in the overlap-add, then from that plus
        its own synthesis (RTISI without look-ahead, with fast Griffin-Lim's momentum), so that overlapping
        frames add as one signal and the analysis of the result follows the noise's level instead of
        scattering around it. Needs a power-of-two n_fft (else the phases stay random)
    **sinusoidal : passed to the partials' :class:`SinusoidalInverter` (``max_partials``, ``range_db``, ...)
    """

    def __init__(
        self,
        *,
        params: SpectrogramParams,
        output_rate: int,
        harmonic_f0: float | None = None,
        noise: bool = True,
        explained: float = 1.0,
        keep_envelope: bool = False,
        sharpen: float = SHARPEN,
        knee: float = 1.0,
        consistency: int = CONSISTENCY,
        decay: float = DECAY,
        deconvolve: int = DECONVOLVE,
        **sinusoidal,
    ) -> None:
        check_output_rate(output_rate, who="HarmonicNoiseInverter")
        self.params = params
        self.output_rate = int(output_rate)
        self._partials = SinusoidalInverter(params=params, output_rate=output_rate, harmonic_f0=harmonic_f0,
                                            **sinusoidal)
        self.harmonic_f0 = self._partials.harmonic_f0
        self._use_noise = bool(noise)
        self._db_min = float(params.db_min)
        self._db_range = float(params.db_max - params.db_min)
        if not (math.isfinite(explained) and 0.0 <= explained <= 10.0):
            raise ParameterError(f"HarmonicNoiseInverter: explained must be in [0, 10], got {explained!r}")
        self._explained = float(explained)
        if not (math.isfinite(sharpen) and 0.0 <= sharpen <= 2.0):
            raise ParameterError(f"HarmonicNoiseInverter: sharpen must be in [0, 2], got {sharpen!r}")
        if not (math.isfinite(knee) and knee >= 0.0):
            raise ParameterError(f"HarmonicNoiseInverter: knee must be a finite number >= 0, got {knee!r}")
        if not (math.isfinite(decay) and 0.0 <= decay <= 1.0):
            raise ParameterError(f"HarmonicNoiseInverter: decay must be in [0, 1], got {decay!r}")
        self.decay = float(decay)
        self.sharpen = float(sharpen)
        self.knee = float(knee)
        if isinstance(consistency, bool) or not isinstance(consistency, int) or not 0 <= consistency <= 8:
            raise ParameterError(f"HarmonicNoiseInverter: consistency must be an int in [0, 8], got {consistency!r}")
        self.consistency = consistency
        if isinstance(deconvolve, bool) or not isinstance(deconvolve, int) or not 0 <= deconvolve <= 8:
            raise ParameterError(f"HarmonicNoiseInverter: deconvolve must be an int in [0, 8], got {deconvolve!r}")
        self.deconvolve = deconvolve
        self._ola = OverlapAddStream(params=params, output_rate=self.output_rate)
        self._own_fft = self._ola.own_fft  # else _frame leaves the noise to OverlapAddStream.emit
        self._nyquist = self.output_rate / 2.0
        self._first, self._values = _response_table(params)
        spread = noise_band_spread(params)
        self._spread_first, self._spread_values = spread.first, spread.values
        self._init_noise_tables()
        if self.consistency and self._own_fft:  # the consistent phase needs this package's forward FFT
            self._noise_scale = CONSISTENT_SCALE
        self.keep_envelope = bool(keep_envelope)
        if self.keep_envelope and self.harmonic_f0 is None:
            raise ParameterError("HarmonicNoiseInverter: keep_envelope needs harmonic_f0 (the note's fundamental)")
        self._set_fundamental(self.harmonic_f0)
        # The oscillators are delayed by the difference of the two paths' latencies.
        self._delay = self._ola.latency_samples - self._partials.latency_samples
        if self._delay < 0:
            raise ParameterError("HarmonicNoiseInverter: the partials' latency exceeds the noise path's")
        self.latency_samples = self._ola.latency_samples
        hop_out = hop_samples(params=params, output_rate=self.output_rate)
        self.tail_frames = max(self._ola.tail_frames,
                               self._partials.tail_frames + int(math.ceil(self._delay / hop_out)) + 1)
        self._max_block = int(math.ceil(hop_out)) + 4096
        self._line = np.zeros(self._delay + self._max_block, dtype=np.float32)
        self._blocks = np.zeros((2, self._max_block), dtype=np.float32)  # the partials' block, scratch
        self._spec = np.zeros(params.n_bins, dtype=np.complex128)
        # The consistent phase's scratch: its analysis' spectrum; the magnitudes and the analysed frame (zero
        # outside the window's stretch: numba's dispatch costs about 0.1 us an argument, so one array).
        self._xspec = np.zeros((2, params.n_bins), dtype=np.complex128)
        self._phase_bufs = np.zeros((2, params.n_fft))
        self._settings = np.zeros(16, dtype=np.float64)  # indexed by _DB_MIN ... _INV_GAIN
        # The noise's overlap-add at gain 1, which the consistent phase reads (see _consistent_phase).
        self._unit_acc = np.zeros_like(self._ola._acc)
        self._dims = np.zeros(11, dtype=np.int64)  # indexed by _RESOLVED_TOP ... _DECONVOLVE
        self._levels = np.zeros((2, _RING))  # rows _LEVEL, _ENV_GAIN
        self._hop_out = hop_out
        self.reset()

    # ------------------------------------------------------------------ construction
    def _init_noise_tables(self) -> None:
        """Bands -> bins as a power density: at each bin, the density of the two bands whose centres
        surround it, interpolated (geometrically, in _noise_spectrum; the density of band m is its power over
        the sum of its filter)."""
        params = self.params
        basis = mel_basis(params=params).astype(np.float64)
        band, weight = noise_bin_hats(params=params)
        self._bin_band = band
        self._bins = np.zeros((2, params.n_bins))  # rows _WEIGHT, _DENSITY
        self._bins[_WEIGHT] = weight
        self._bands = np.zeros((9, params.n_mels))  # rows _POWER ... _SPREAD_RATIO
        self._bands[_BAND_DENSITY] = 1.0 / np.maximum(basis.sum(axis=1), 1e-12)
        # Random-phase spectra of magnitude A overlap-added by the dual window and analysed again by the
        # contract's window give an expected power per bin of A^2 * hop / n_fft: A^2 = density * n_fft / hop.
        self._noise_scale = params.n_fft / params.hop_length

    def _set_fundamental(self, f0: float | None) -> None:
        """Take the tables of fundamental ``f0`` (None: no fundamental, no fill) from
        :func:`fundamental_tables`'s cache; their few hundred values are copied into this inverter's
        per-frame arrays (``_bands``' comb row, ``_harmonic_bands``, ``_harmonics``' gain row at reset)."""
        params = self.params
        if f0 is None:
            self._resolved_top = params.n_mels
            self._tonal_lo = params.n_mels
            self._fill_gain = np.zeros(0)
            self._harmonic_bands = np.zeros((2, 0), dtype=np.int64)
            self._bands[_COMB] = 0.0
            self._n_fill = 0
            self._env_max = 0  # no envelope bank: keep_envelope needs f0
            return
        tables = fundamental_tables(params, float(f0))
        self._resolved_top, self._tonal_lo = tables.resolved_top, tables.tonal_lo
        self._fill_gain = tables.fill_gain
        # rows _FILL_BAND, _HARMONIC_BAND
        self._harmonic_bands = np.stack([tables.fill_band, tables.harmonic_band])
        self._n_fill = int(np.count_nonzero(tables.fill_band >= 0))
        # keep_envelope: the base note's harmonics (their bands, the comb density) and room for the harmonics
        # of a pitch down to four octaves below it.
        self._bands[_COMB] = tables.comb
        self._env_max = int(params.fmax // (f0 / 16.0)) + 1

    def retune(self, harmonic_f0: float) -> None:
        """Tune to the notes of another fundamental (Hz, before the pitch ratio), as if built for it: a keyboard
        bundle's voice plays its key's decode, whose harmonics sit on that key's fundamental. A no-op for an
        inverter built without one. Call :meth:`reset` before the next frame."""
        if self.harmonic_f0 is None:
            return
        self._partials.retune(harmonic_f0)
        self.harmonic_f0 = self._partials.harmonic_f0
        self._set_fundamental(self.harmonic_f0)

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Back to the state of a fresh object: no partials, silent delay line, the noise restarted."""
        self._partials.reset()
        self._ola.reset()
        self._line.fill(0.0)
        n = self._harmonic_bands.shape[1]
        self._harmonics = np.zeros((5, n))  # rows _AMP ... _SOURCE
        self._harmonics[_PHASE] = (np.arange(n) * 2.399963) % _TWO_PI  # golden-angle: not all peaking at once
        self._harmonics[_GAIN] = self._fill_gain
        self._fill_osc = np.zeros((6, max(n, 1)), dtype=np.float32)
        self._envelope_mode: bool | None = None  # chosen at the first frame after a reset
        m = self._env_max if self.keep_envelope else 0
        self._env = np.zeros((3, m))  # rows _AMP, _PREV, _PHASE of the envelope bank's harmonics
        self._env[_PHASE] = (np.arange(m) * 2.399963) % _TWO_PI
        self._env_osc = np.zeros((6, m), dtype=np.float32)
        self._settings[:] = (self._db_min, self._db_range, self._explained, self._noise_scale,
                             self.harmonic_f0 or 0.0, self.params.fmax, self._nyquist, self.output_rate, 1.0, 0.0,
                             self.sharpen, self._hop_out, self.latency_samples, self.knee, self.decay, 1.0)
        self._dims[:] = (self._resolved_top, self._tonal_lo, self._use_noise, self._n_fill, self._delay, 0,
                         _NOISE_SEED, 0, 0, self.consistency if self._own_fft else 0, self.deconvolve)
        self._levels.fill(0.0)
        self._unit_acc.fill(0.0)
        # _frame's arguments after ``out``, in one tuple (every array here lives until the next reset).
        self._args = self._partials._kernel + (
            self._settings, self._dims, self._bands, self._bins, self._bin_band, self._spec, self._first,
            self._values, self._spread_first, self._spread_values, self._harmonics, self._harmonic_bands, self._fill_osc, self._env, self._env_osc,
            self._blocks, self._line, self._levels, *self._ola._stage, self._ola.window, self._xspec,
            self._phase_bufs, self._unit_acc)

    @property
    def tonal(self) -> float:
        """The share of the top of the resolved region the partials hold, in the last frame."""
        return float(self._settings[_TONAL])

    @property
    def underflows(self) -> int:
        return self._ola.underflows

    # ------------------------------------------------------------------ per frame
    def process_frame(self, mel_frame: np.ndarray, *, pitch_ratio: float, out: np.ndarray, gain: float = 1.0) -> None:
        """Render the block of one unit-scale ``(n_mels,)`` mel frame into ``out`` (float32, any length up
        to a frame's samples plus 4096). ``gain`` (> 0) scales the frame's power, partials, upper harmonics
        and noise alike, after every threshold on its levels: the audio of this frame, wherever the paths'
        latency and crossfades put it, is ``gain`` times what it would have been."""
        check_frame_arguments(mel_frame, pitch_ratio=pitch_ratio, out=out, n_mels=self.params.n_mels, gain=gain)
        self._settings[_DB_MIN] = self._partials.set_gain(gain)  # the power and the partials alike
        self._settings[_INV_GAIN] = 1.0 / gain
        n = out.shape[0]
        if n > self._max_block:
            raise ParameterError(f"HarmonicNoiseInverter: a block of {n} samples exceeds {self._max_block}")
        ratio = float(pitch_ratio)
        if self._envelope_mode is None:
            self._envelope_mode = self.keep_envelope and not ENVELOPE_DOWN < ratio < ENVELOPE_UP
        # One numba specialisation only (float32, contiguous); a no-op for the usual float32 row.
        frame = np.ascontiguousarray(mel_frame, dtype=np.float32)
        missing = _frame(frame, ratio, self._envelope_mode, out, *self._args)
        if missing < 0:
            raise ParameterError(_OVERFLOW)
        self._ola.underflows += missing
        if not self._own_fft:
            noise = self._blocks[1, :n]
            self._ola.emit(self._spec, noise)
            out += noise
            _finish_block(out, self._settings, self._dims, self._levels)
