"""The output stage of the STFT-domain inverters: inverse FFT frames overlap-added at the contract's rate,
resampled to the output rate, and handed out in blocks of the frame clock.

Shared by :class:`~synth.inversion.griffin_lim.GriffinLimInverter` (RTPGHI phase) and the noise part of
:class:`~synth.inversion.harmonic_noise.HarmonicNoiseInverter` (random phase): both make one complex
spectrum per mel frame and need the same least-squares overlap-add, the same streaming resampler and the
same latency bookkeeping. Everything is allocated at construction; :meth:`OverlapAddStream.emit` allocates
nothing with the sinc resampler.

With the sinc resampler and a power-of-two FFT a frame is one numba call, :func:`emit_frame` (inverse FFT,
overlap-add, resampling, the output FIFO): numpy's irfft and the Python glue around four numba calls were
the larger part of the harmonic method's cost per voice (issue 27). The harmonic method calls
:func:`emit_frame` from inside its own per-frame function.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.errors import ParameterError
from synth.inversion.fft import irfft, irfft_plan, is_power_of_two
from synth.inversion.frames import frame_lengths
from synth.inversion.resample import SincResampler, resample_chunk
from synth.spectrogram import SpectrogramParams, analysis_window

__all__ = ["OverlapAddStream", "RESAMPLERS", "emit_frame"]

RESAMPLERS = ("sinc", "soxr")


@njit(cache=True, fastmath=True)
def _overlap_add(frame, dual, win_lo, acc, offset, scale=1.0):
    """acc[offset:] += the window's stretch of ``frame`` times the synthesis window, times ``scale``."""
    for j in range(dual.shape[0]):
        acc[offset + j] += frame[win_lo + j] * dual[j] * scale


# The integers of an output stage (OverlapAddStream._ints): where the window's samples start in a frame,
# where the overlap-add writes in the accumulator, the hop, the FIFO's first sample and its size, 1 when the
# inverse FFT is this package's (a power-of-two size; else numpy's fills the time buffer first).
_WIN_LO, _OLA_OFFSET, _HOP, _FIFO_START, _FIFO_SIZE, _OWN_FFT = range(6)
_OVERFLOW = "overlap-add output: FIFO overflow (frames pushed without reading)"


@njit(cache=True)
def _move_down(buf, start, count):
    """buf[:count] = buf[start:start + count], sample by sample: numba copies a slice assigned from an
    overlapping one of the same array into a temporary first, an allocation per frame."""
    for i in range(count):
        buf[i] = buf[start + i]


@njit(cache=True)
def _fifo_push(buf, ints, x):
    """Append ``x`` to the FIFO held in ``buf`` from ``ints[_FIFO_START]``, ``ints[_FIFO_SIZE]`` long; False
    (nothing pushed) where it does not fit."""
    n = x.shape[0]
    start, size = ints[_FIFO_START], ints[_FIFO_SIZE]
    if size + n > buf.shape[0]:
        return False
    if start + size + n > buf.shape[0]:
        _move_down(buf, start, size)
        start = 0
    buf[start + size : start + size + n] = x
    ints[_FIFO_START], ints[_FIFO_SIZE] = start, size + n
    return True


@njit(cache=True)
def _fifo_pop(buf, ints, out):
    """Fill ``out`` from the FIFO; returns how many samples were missing (zero-filled)."""
    n = out.shape[0]
    start, size = ints[_FIFO_START], ints[_FIFO_SIZE]
    take = min(n, size)
    out[:take] = buf[start : start + take]
    out[take:] = 0.0
    ints[_FIFO_START], ints[_FIFO_SIZE] = start + take, size - take
    return n - take


@njit(cache=True)
def _advance(acc, hop):
    """Drop the accumulator's first hop (final and handed on) and open a silent one at its end."""
    n = acc.shape[0]
    _move_down(acc, hop, n - hop)
    acc[n - hop :] = 0.0


@njit(cache=True)
def emit_frame(spectrum, out, ints, twiddles, stages, work, frame, dual, acc, hist, res_state, table, res_out, fifo):
    """One frame of the sinc-resampled output stage in one call: ``frame`` = the inverse FFT of
    ``spectrum`` (unless ``ints[_OWN_FFT]`` is 0: the caller filled ``frame``), overlap-added, the final hop
    resampled into the FIFO, ``out`` filled from it. Returns the samples zero-filled for want of output, or
    -1 where the FIFO overflowed (``out`` left as it was). The arguments are :class:`OverlapAddStream`'s
    ``_stage``."""
    if ints[_OWN_FFT]:
        irfft(spectrum, twiddles, stages, work, frame)
    _overlap_add(frame, dual, ints[_WIN_LO], acc, ints[_OLA_OFFSET])
    hop = ints[_HOP]
    count = resample_chunk(acc[:hop], hist, res_state, table, res_out)
    if not _fifo_push(fifo, ints, res_out[:count]):
        return -1
    _advance(acc, hop)
    return _fifo_pop(fifo, ints, out)


class OverlapAddStream:
    """Complex spectra of consecutive frames in, audio at ``output_rate`` out, one frame's block per call.

    Parameters
    ----------
    params : SpectrogramParams, the contract whose window, hop and FFT size the spectra follow
    output_rate : int (Hz)
    resampler : "sinc" (steady cost per frame) or "soxr" (soxr.ResampleStream, bursty)
    delay_frames : int, frames the caller holds a spectrum back before emitting it (look-ahead): added
        to ``latency_samples``

    Attributes
    ----------
    window : the analysis window (float64), dual : the synthesis window (float32)
    latency_samples : output samples from pushing a frame to the audio of that frame's centre
    tail_frames : silent frames to push after the last real one to flush everything out
    underflows : samples zero-filled because the caller asked for more than was produced
    """

    def __init__(self, *, params: SpectrogramParams, output_rate: int, resampler: str = "sinc",
                 delay_frames: int = 0) -> None:
        if resampler not in RESAMPLERS:
            raise ParameterError(f"overlap-add output: resampler must be 'sinc' or 'soxr', got {resampler!r}")
        self.params = params
        self.output_rate = int(output_rate)
        self.resampler = resampler
        self._n_fft, self._hop = params.n_fft, params.hop_length
        self._ints = np.zeros(6, dtype=np.int64)
        self._init_synthesis_window()
        self._init_resampler(int(delay_frames))
        self._time = np.zeros(self._n_fft, dtype=np.float64)
        self._init_fft()
        self.underflows = 0
        self.reset()

    def _init_synthesis_window(self) -> None:
        """The dual window of overlap-add, its accumulator, and when a block of output is final."""
        params = self.params
        n_fft, hop, win_len = self._n_fft, self._hop, params.win_length
        # Synthesis window: the analysis window divided by the periodic sum of its squares, which makes
        # overlap-add the least-squares inverse of the STFT (exact for a consistent spectrogram).
        window = np.array(analysis_window(params=params))
        sq = np.zeros(hop)
        for i in range(win_len):
            sq[i % hop] += window[i] ** 2
        self._win_lo = (n_fft - win_len) // 2
        self.window = window
        if not np.all(sq > 0):
            raise ParameterError("overlap-add output: the window does not cover every sample at this hop")
        self.dual = (window / sq[(np.arange(win_len) + self._win_lo) % hop]).astype(np.float32)
        # Emission: after frame n is synthesised, the block of model times [(n - c) hop, (n - c + 1) hop)
        # is final, with c = ceil((n_fft / 2 - win_lo) / hop).
        self._c = -(-(n_fft // 2 - self._win_lo) // hop)
        self._ola_offset = self._c * hop - n_fft // 2 + self._win_lo
        self._acc = np.zeros(self._ola_offset + win_len + hop, dtype=np.float32)
        self._ints[_WIN_LO], self._ints[_OLA_OFFSET], self._ints[_HOP] = self._win_lo, self._ola_offset, hop

    def _init_fft(self) -> None:
        """The inverse FFT's tables, and the arguments of :func:`emit_frame` (the sinc resampler's path)."""
        own = is_power_of_two(self._n_fft)
        self._ints[_OWN_FFT] = int(own)
        if own:
            plan = irfft_plan(self._n_fft)
            self._twiddles, self._stages = plan.twiddles, plan.stages
            self._work = plan.scratch()
        else:  # numpy's irfft fills the frame; the tables stay empty
            self._twiddles, self._stages = np.zeros((8, 0)), np.zeros((0, 4), dtype=np.int64)
            self._work = np.zeros((2, 0), dtype=np.complex128)
        if self.resampler == "sinc":
            sinc = self._sinc
            self._stage = (self._ints, self._twiddles, self._stages, self._work, self._time, self.dual, self._acc,
                           sinc._hist, sinc._state, sinc._table, self._res_out, self._fifo)

    def _init_resampler(self, delay_frames: int) -> None:
        """The resampler to ``output_rate``, the output FIFO and its prefill, and the latency they add up to."""
        hop, sr = self._hop, self.params.sample_rate
        self._hop_out = hop * self.output_rate / sr
        self._res_out = np.zeros(int(hop * self.output_rate / sr) + 4096, dtype=np.float32)
        if self.resampler == "sinc":
            self._sinc = SincResampler(in_rate=sr, out_rate=self.output_rate, max_chunk=hop)
        self._prefill = self._measure_prefill()
        model_latency = (delay_frames + self._c) * hop  # model samples from a frame's centre to its output
        self.latency_samples = int(round(model_latency * self.output_rate / sr)) + self._prefill
        # Silence to push after the last frame: its window's second half, plus the latency, plus one.
        flush_out = self.latency_samples + (self.params.win_length / 2) * self.output_rate / sr
        self.tail_frames = int(math.ceil(flush_out / self._hop_out)) + 1
        fifo = self._prefill + 2 * self._res_out.shape[0] + 8 * int(self._hop_out + 2)
        self._fifo = np.zeros(fifo, dtype=np.float32)  # held from _ints[_FIFO_START], _ints[_FIFO_SIZE] long

    def _new_soxr(self):
        import soxr

        return soxr.ResampleStream(self.params.sample_rate, self.output_rate, 1, dtype="float32", quality="HQ")

    def _resample(self, block: np.ndarray) -> np.ndarray:
        if self.resampler == "sinc":
            count = self._sinc.process(block, self._res_out)
            return self._res_out[:count]
        return self._soxr.resample_chunk(block)

    def _measure_prefill(self) -> int:
        """Zeros the FIFO starts with so that the caller never waits for the resampler.

        The resampler's output count per chunk depends only on the chunk sizes, so a dry run over enough
        frames to cover its pattern gives the exact worst deficit against the frame-clock schedule.
        """
        frames = 256
        wanted = np.cumsum(frame_lengths(frames, params=self.params, output_rate=self.output_rate))
        if self.resampler == "sinc":
            self._sinc.reset()
        else:
            self._soxr = self._new_soxr()
        zeros = np.zeros(self._hop, dtype=np.float32)
        produced = 0
        deficit = 0
        for k in range(frames):
            produced += self._resample(zeros).shape[0]
            deficit = max(deficit, int(wanted[k]) - produced)
        # Two samples more, so a caller whose rounding of the frame clock differs by a sample or two from
        # frame_lengths() is served from the same stream instead of underflowing.
        return deficit + 2

    def reset(self) -> None:
        """Silence before the first frame, buffers empty, the resampler restarted."""
        self._acc.fill(0.0)
        if self.resampler == "sinc":
            self._sinc.reset()
        else:
            self._soxr = self._new_soxr()
        self._fifo.fill(0.0)
        self._ints[_FIFO_START], self._ints[_FIFO_SIZE] = 0, self._prefill
        self.underflows = 0

    @property
    def own_fft(self) -> bool:
        """Whether :func:`emit_frame` computes the inverse FFT itself (a power-of-two size); else
        :meth:`emit` has numpy's fill the frame first."""
        return bool(self._ints[_OWN_FFT])

    def emit(self, spectrum: np.ndarray, out: np.ndarray) -> None:
        """Overlap-add the inverse FFT of one frame's ``(n_fft // 2 + 1,)`` complex spectrum and write the
        next ``len(out)`` output samples."""
        own = self._ints[_OWN_FFT]
        if not own:
            np.fft.irfft(spectrum, n=self._n_fft, out=self._time)
        if self.resampler == "sinc":
            missing = emit_frame(spectrum, out, *self._stage)
            if missing < 0:
                raise ParameterError(_OVERFLOW)
            self.underflows += missing
            return
        if own:
            irfft(spectrum, self._twiddles, self._stages, self._work, self._time)
        _overlap_add(self._time, self.dual, self._win_lo, self._acc, self._ola_offset)
        if not _fifo_push(self._fifo, self._ints, self._soxr.resample_chunk(self._acc[: self._hop])):
            raise ParameterError(_OVERFLOW)
        _advance(self._acc, self._hop)
        self.underflows += _fifo_pop(self._fifo, self._ints, out)
