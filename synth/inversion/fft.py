"""An inverse real FFT in numba, so the overlap-add output stage runs as one compiled call per frame.

Why not numpy's: ``np.fft.irfft(spec, n=1024, out=...)`` spends about 4 us a call in Python (argument
normalisation, the ufunc machinery) before pocketfft's 5 us of transform (thread CPU time, this machine
under load), and a voice pays it every frame on the synthesis thread. This one costs 3.4 us in all.

The length-n real inverse is a length-n/2 complex inverse of the even and odd samples packed as real and
imaginary parts (the textbook split), done as a Stockham radix-4 FFT (one radix-2 pass where n/2 is not a
power of four) on separate real and imaginary arrays, reading one buffer and writing the other: unlike the
in-place radix-2 with bit reversal (6.8 us), LLVM vectorises its loops. Power-of-two lengths only; float64
throughout, so it agrees with numpy's pocketfft to float64 rounding (about 1e-16 of the largest sample).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

__all__ = ["IrfftPlan", "irfft", "irfft_plan", "is_power_of_two"]


def is_power_of_two(n: int) -> bool:
    return n >= 4 and n & (n - 1) == 0


class IrfftPlan:
    """The tables of a length-``n`` inverse real FFT (``n`` a power of two, at least 4), and the
    size of the scratch :func:`irfft` needs (``work_shape``, float64).

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
        self.work_shape = (4, m)


@functools.lru_cache(maxsize=8)
def irfft_plan(n: int) -> IrfftPlan:
    """The shared :class:`IrfftPlan` of length ``n``."""
    return IrfftPlan(n)


@njit(cache=True, nogil=True)
def _radix4_first(length, offset, twiddles, xr, xi, yr, yi):
    """The first radix-4 pass (stride 1), the butterflies innermost: its reads are contiguous, so it
    vectorises where the strided form's inner loop would be one long."""
    n1 = length // 4
    w1r, w1i = twiddles[0, offset : offset + n1], twiddles[1, offset : offset + n1]
    w2r, w2i = twiddles[2, offset : offset + n1], twiddles[3, offset : offset + n1]
    w3r, w3i = twiddles[4, offset : offset + n1], twiddles[5, offset : offset + n1]
    for p in range(n1):
        ar, ai, br, bi = xr[p], xi[p], xr[p + n1], xi[p + n1]
        cr, ci, dr, di = xr[p + 2 * n1], xi[p + 2 * n1], xr[p + 3 * n1], xi[p + 3 * n1]
        s0r, s0i, d0r, d0i = ar + cr, ai + ci, ar - cr, ai - ci
        s1r, s1i, jr, ji = br + dr, bi + di, di - bi, br - dr  # j = +i (b - d): the inverse's sign
        yr[4 * p], yi[4 * p] = s0r + s1r, s0i + s1i
        ur, ui = d0r + jr, d0i + ji
        yr[4 * p + 1], yi[4 * p + 1] = ur * w1r[p] - ui * w1i[p], ur * w1i[p] + ui * w1r[p]
        ur, ui = s0r - s1r, s0i - s1i
        yr[4 * p + 2], yi[4 * p + 2] = ur * w2r[p] - ui * w2i[p], ur * w2i[p] + ui * w2r[p]
        ur, ui = d0r - jr, d0i - ji
        yr[4 * p + 3], yi[4 * p + 3] = ur * w3r[p] - ui * w3i[p], ur * w3i[p] + ui * w3r[p]


@njit(cache=True, nogil=True)
def _radix4(length, stride, offset, twiddles, xr, xi, yr, yi):
    """A radix-4 pass of stride > 1: the ``stride`` interleaved transforms innermost (contiguous)."""
    n1 = length // 4
    s = stride
    for p in range(n1):
        w1r, w1i = twiddles[0, offset + p], twiddles[1, offset + p]
        w2r, w2i = twiddles[2, offset + p], twiddles[3, offset + p]
        w3r, w3i = twiddles[4, offset + p], twiddles[5, offset + p]
        ia, io = s * p, 4 * s * p
        ib, ic, id_ = ia + s * n1, ia + 2 * s * n1, ia + 3 * s * n1
        for q in range(s):
            ar, ai, br, bi = xr[ia + q], xi[ia + q], xr[ib + q], xi[ib + q]
            cr, ci, dr, di = xr[ic + q], xi[ic + q], xr[id_ + q], xi[id_ + q]
            s0r, s0i, d0r, d0i = ar + cr, ai + ci, ar - cr, ai - ci
            s1r, s1i, jr, ji = br + dr, bi + di, di - bi, br - dr
            yr[io + q], yi[io + q] = s0r + s1r, s0i + s1i
            ur, ui = d0r + jr, d0i + ji
            yr[io + s + q], yi[io + s + q] = ur * w1r - ui * w1i, ur * w1i + ui * w1r
            ur, ui = s0r - s1r, s0i - s1i
            yr[io + 2 * s + q], yi[io + 2 * s + q] = ur * w2r - ui * w2i, ur * w2i + ui * w2r
            ur, ui = d0r - jr, d0i - ji
            yr[io + 3 * s + q], yi[io + 3 * s + q] = ur * w3r - ui * w3i, ur * w3i + ui * w3r


@njit(cache=True, nogil=True)
def irfft(spec, twiddles, stages, work, out):
    """out = the length-n real signal whose spectrum is ``spec`` (n/2 + 1 bins), as ``np.fft.irfft(spec, n)``:
    the imaginary parts of the DC and Nyquist bins are ignored, the result is scaled by 1/n. ``twiddles``
    and ``stages`` come from :class:`IrfftPlan`, ``work`` is its ``work_shape`` of float64 scratch."""
    m = work.shape[1]
    ar, ai, br, bi = work[0], work[1], work[2], work[3]
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
        ar[k] = sr - ti
        ai[k] = si + tr
    swapped = False  # whether the data is in (br, bi)
    for st in range(stages.shape[0]):
        radix, length, stride, offset = stages[st, 0], stages[st, 1], stages[st, 2], stages[st, 3]
        if swapped:
            xr, xi, yr, yi = br, bi, ar, ai
        else:
            xr, xi, yr, yi = ar, ai, br, bi
        if radix == 2:  # the last pass, length 2: no twiddles
            for q in range(stride):
                yr[q], yi[q] = xr[q] + xr[stride + q], xi[q] + xi[stride + q]
                yr[stride + q], yi[stride + q] = xr[q] - xr[stride + q], xi[q] - xi[stride + q]
        elif stride == 1:
            _radix4_first(length, offset, twiddles, xr, xi, yr, yi)
        else:
            _radix4(length, stride, offset, twiddles, xr, xi, yr, yi)
        swapped = not swapped
    zr, zi = (br, bi) if swapped else (ar, ai)
    scale = 0.5 / m
    for k in range(m):
        out[2 * k] = zr[k] * scale
        out[2 * k + 1] = zi[k] * scale
