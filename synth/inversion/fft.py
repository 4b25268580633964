"""An inverse real FFT in numba, so the overlap-add output stage runs as one compiled call per frame.

Why not numpy's: ``np.fft.irfft(spec, n=1024, out=...)`` spends about 4 us a call in Python (argument
normalisation, the ufunc machinery) before pocketfft's 5 us of transform (thread CPU time, this machine
under load), and a voice pays it every frame on the synthesis thread. This one costs about 3.4 us in all.

The length-n real inverse is a length-n/2 complex inverse of the even and odd samples packed as real and
imaginary parts (the textbook split), done as a Stockham radix-4 FFT (one radix-2 pass where n/2 is not a
power of four), reading one buffer and writing the other; an in-place radix-2 with bit reversal took 6.8
us, separate real and imaginary buffers 10-15 % more than complex ones. Power-of-two lengths only;
float64 throughout, so it agrees with numpy's pocketfft to float64 rounding (about 1e-16 of the largest
sample)."""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

__all__ = ["IrfftPlan", "irfft", "irfft_plan", "is_power_of_two", "rfft"]


def is_power_of_two(n: int) -> bool:
    return n >= 4 and n & (n - 1) == 0


class IrfftPlan:
    """The tables of a length-``n`` inverse real FFT (``n`` a power of two, at least 4).

    stages [shape=(S, 4), int64] : each pass's radix (4 or 2), length L, stride s and twiddle offset
    twiddles [shape=(8, n/2), float64] : rows 0-5 the radix-4 passes' e^{+2 pi i k p / L} for k = 1, 2, 3
        (real, imaginary; pass by pass from its offset), rows 6 and 7 the split's e^{+2 pi i k / n}
    """

    def __init__(self, n: int) -> None:
        if not is_power_of_two(n):
            raise ValueError(f"IrfftPlan: length must be a power of two >= 4, got {n}")
        self.n = int(n)
        m = n // 2
        twiddles = np.zeros((8, m))
        stages = []
        length, stride, offset = m, 1, 0
        while length >= 4:
            n1 = length // 4
            p = np.arange(n1)
            for k in (1, 2, 3):
                w = np.exp(2j * np.pi * k * p / length)
                twiddles[2 * k - 2, offset : offset + n1] = w.real
                twiddles[2 * k - 1, offset : offset + n1] = w.imag
            stages.append((4, length, stride, offset))
            offset += n1
            length //= 4
            stride *= 4
        if length == 2:
            stages.append((2, length, stride, offset))
        split = np.exp(2j * np.pi * np.arange(m) / n)
        twiddles[6], twiddles[7] = split.real, split.imag
        # Shared by every output stage of this size and never written, but left writeable: numba's
        # dispatcher takes a slower path for a read-only array argument, one that allocates.
        self.stages = np.array(stages, dtype=np.int64).reshape(-1, 4)
        self.twiddles = twiddles

    def scratch(self) -> np.ndarray:
        """A new scratch array for :func:`irfft` (two complex buffers of n/2, read one, write the other)."""
        return np.zeros((2, self.n // 2), dtype=np.complex128)


@functools.lru_cache(maxsize=8)
def irfft_plan(n: int) -> IrfftPlan:
    """The shared :class:`IrfftPlan` of length ``n``."""
    return IrfftPlan(n)


@njit(cache=True)
def _radix4_first(length, offset, twiddles, x, y):
    """The first radix-4 pass (stride 1), the butterflies innermost: its reads are contiguous, so it
    vectorises where the strided form's inner loop would be one long."""
    n1 = length // 4
    for p in range(n1):
        a, b, c, d = x[p], x[p + n1], x[p + 2 * n1], x[p + 3 * n1]
        s0, d0, s1, bd = a + c, a - c, b + d, b - d
        j = complex(-bd.imag, bd.real)  # +i (b - d): the inverse's sign
        y[4 * p] = s0 + s1
        y[4 * p + 1] = (d0 + j) * complex(twiddles[0, offset + p], twiddles[1, offset + p])
        y[4 * p + 2] = (s0 - s1) * complex(twiddles[2, offset + p], twiddles[3, offset + p])
        y[4 * p + 3] = (d0 - j) * complex(twiddles[4, offset + p], twiddles[5, offset + p])


@njit(cache=True)
def _radix4(length, stride, offset, twiddles, x, y):
    """A radix-4 pass of stride > 1: the ``stride`` interleaved transforms innermost (contiguous)."""
    n1 = length // 4
    s = stride
    for p in range(n1):
        w1 = complex(twiddles[0, offset + p], twiddles[1, offset + p])
        w2 = complex(twiddles[2, offset + p], twiddles[3, offset + p])
        w3 = complex(twiddles[4, offset + p], twiddles[5, offset + p])
        ia, io = s * p, 4 * s * p
        ib, ic, id_ = ia + s * n1, ia + 2 * s * n1, ia + 3 * s * n1
        for q in range(s):
            a, b, c, d = x[ia + q], x[ib + q], x[ic + q], x[id_ + q]
            s0, d0, s1, bd = a + c, a - c, b + d, b - d
            j = complex(-bd.imag, bd.real)
            y[io + q] = s0 + s1
            y[io + s + q] = (d0 + j) * w1
            y[io + 2 * s + q] = (s0 - s1) * w2
            y[io + 3 * s + q] = (d0 - j) * w3


@njit(cache=True)
def _inverse_passes(stages, twiddles, a, b):
    """The unscaled complex inverse DFT of ``a`` (length n/2) by the plan's passes; returns the buffer
    that holds the result (``a`` or ``b``)."""
    swapped = False
    for st in range(stages.shape[0]):
        radix, length, stride, offset = stages[st, 0], stages[st, 1], stages[st, 2], stages[st, 3]
        x, y = (b, a) if swapped else (a, b)
        if radix == 2:  # the last pass, length 2: no twiddles
            for q in range(stride):
                y[q] = x[q] + x[stride + q]
                y[stride + q] = x[q] - x[stride + q]
        elif stride == 1:
            _radix4_first(length, offset, twiddles, x, y)
        else:
            _radix4(length, stride, offset, twiddles, x, y)
        swapped = not swapped
    return b if swapped else a


@njit(cache=True)
def irfft(spec, twiddles, stages, work, out):
    """out = the length-n real signal whose spectrum is ``spec`` (n/2 + 1 bins), as ``np.fft.irfft(spec, n)``:
    the imaginary parts of the DC and Nyquist bins are ignored, the result is scaled by 1/n. ``twiddles``
    and ``stages`` come from :class:`IrfftPlan`, ``work`` is its :meth:`~IrfftPlan.scratch`."""
    m = work.shape[1]
    a, b = work[0], work[1]
    # Pack: Z[k] = E[k] + i O[k], E and O the spectra of the even and odd samples, from X[k] and
    # conj(X[m - k]).
    for k in range(m):
        if k == 0:
            xr, xi = spec[0].real, 0.0
            yr, yi = spec[m].real, 0.0  # conj(X[m]), its imaginary part ignored
        else:
            xr, xi = spec[k].real, spec[k].imag
            yr, yi = spec[m - k].real, -spec[m - k].imag
        sr, si = xr + yr, xi + yi
        dr, di = xr - yr, xi - yi
        cr, ci = twiddles[6, k], twiddles[7, k]
        tr, ti = dr * cr - di * ci, dr * ci + di * cr  # e^{2 pi i k / n} (X[k] - conj(X[m - k]))
        a[k] = complex(sr - ti, si + tr)
    z = _inverse_passes(stages, twiddles, a, b)
    scale = 0.5 / m
    for k in range(m):
        out[2 * k] = z[k].real * scale
        out[2 * k + 1] = z[k].imag * scale


@njit(cache=True)
def rfft(x, twiddles, stages, work, spec):
    """spec = the n/2 + 1 bins of the real length-n signal ``x``, as ``np.fft.rfft(x)`` (unscaled), with the
    tables of :func:`irfft_plan` (n) and its scratch: the forward DFT of the packed even and odd samples is
    the conjugate of the inverse DFT of their conjugate, then the textbook split."""
    m = work.shape[1]
    a, b = work[0], work[1]
    for k in range(m):
        a[k] = complex(x[2 * k], -x[2 * k + 1])  # conj(z)
    z = _inverse_passes(stages, twiddles, a, b)
    # Z = conj(z) now holds the forward DFT of the packed signal; E[k] = (Z[k] + conj(Z[m-k])) / 2,
    # O[k] = (Z[k] - conj(Z[m-k])) / 2i, X[k] = E[k] + e^{-2 pi i k / n} O[k].
    # DC and Nyquist: Z[0] = E[0] + i O[0] with both real.
    z0r, z0i = z[0].real, -z[0].imag
    spec[0] = complex(z0r + z0i, 0.0)
    spec[m] = complex(z0r - z0i, 0.0)
    for k in range(1, m):  # no modulo and no branch, so the loop vectorises
        zr, zi = z[k].real, -z[k].imag  # Z[k] = conj(z[k])
        cr_, ci_ = z[m - k].real, z[m - k].imag  # conj(Z[m - k]) = z[m - k]
        er, ei = 0.5 * (zr + cr_), 0.5 * (zi + ci_)
        dr, di = 0.5 * (zr - cr_), 0.5 * (zi - ci_)
        orr, oi = di, -dr  # (d) / i
        cr, ci = twiddles[6, k], -twiddles[7, k]
        spec[k] = complex(er + orr * cr - oi * ci, ei + orr * ci + oi * cr)
