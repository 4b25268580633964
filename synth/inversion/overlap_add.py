"""The output stage of the STFT-domain inverters: inverse FFT frames overlap-added at the contract's rate,
resampled to the output rate, and handed out in blocks of the frame clock.

Shared by :class:`~synth.inversion.griffin_lim.GriffinLimInverter` (RTPGHI phase) and the noise part of
:class:`~synth.inversion.harmonic_noise.HarmonicNoiseInverter` (random phase): both make one complex
spectrum per mel frame and need the same least-squares overlap-add, the same streaming resampler and the
same latency bookkeeping. Everything is allocated at construction; :meth:`OverlapAddStream.emit` allocates
nothing with the sinc resampler (the inverse FFT writes into a buffer of its own, numpy >= 2's ``out=``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from synth.errors import ParameterError
from synth.inversion.frames import frame_lengths
from synth.inversion.resample import SincResampler
from synth.spectrogram import SpectrogramParams, analysis_window

__all__ = ["OverlapAddStream", "RESAMPLERS"]

RESAMPLERS = ("sinc", "soxr")


@njit(cache=True, nogil=True, fastmath=True)
def _overlap_add(frame, dual, win_lo, acc, offset):
    for j in range(dual.shape[0]):
        acc[offset + j] += frame[win_lo + j] * dual[j]


class _Fifo:
    """A float32 FIFO on a preallocated array (no allocation per call)."""

    def __init__(self, capacity: int) -> None:
        self.buf = np.zeros(capacity, dtype=np.float32)
        self.start = 0
        self.size = 0

    def clear(self, prefill: int) -> None:
        self.buf.fill(0.0)
        self.start = 0
        self.size = prefill

    def push(self, x: np.ndarray) -> None:
        n = x.shape[0]
        if self.start + self.size + n > self.buf.shape[0]:
            self.buf[: self.size] = self.buf[self.start : self.start + self.size]
            self.start = 0
        if self.size + n > self.buf.shape[0]:
            raise ParameterError("overlap-add output: FIFO overflow (frames pushed without reading)")
        self.buf[self.start + self.size : self.start + self.size + n] = x
        self.size += n

    def pop_into(self, out: np.ndarray) -> int:
        """Fill out from the FIFO; returns how many samples were missing (zero-filled)."""
        n = out.shape[0]
        take = min(n, self.size)
        out[:take] = self.buf[self.start : self.start + take]
        if take < n:
            out[take:] = 0.0
        self.start += take
        self.size -= take
        return n - take


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
        self._init_synthesis_window()
        self._init_resampler(int(delay_frames))
        self._time = np.zeros(self._n_fft, dtype=np.float64)
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
        self._fifo = _Fifo(self._prefill + 2 * self._res_out.shape[0] + 8 * int(self._hop_out + 2))

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
        self._fifo.clear(self._prefill)
        self.underflows = 0

    def emit(self, spectrum: np.ndarray, out: np.ndarray) -> None:
        """Overlap-add the inverse FFT of one frame's ``(n_fft // 2 + 1,)`` complex spectrum and write the
        next ``len(out)`` output samples."""
        frame = np.fft.irfft(spectrum, n=self._n_fft, out=self._time)
        acc = self._acc
        _overlap_add(frame, self.dual, self._win_lo, acc, self._ola_offset)
        hop = self._hop
        self._fifo.push(self._resample(acc[:hop]))
        acc[:-hop] = acc[hop:]
        acc[-hop:] = 0.0
        self.underflows += self._fifo.pop_into(out)
