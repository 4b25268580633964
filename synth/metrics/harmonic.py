"""The paper's harmonic precision, recall and F1 (Natsiou & O'Leary, section V), made exact.

The paper finds the spectral peaks of every frame of the original and of the reconstruction, counts a
reconstructed peak as right when it lies within 3 % of an original one, ignores peaks more than 30 dB below
the frame's highest, and scores precision = matched / reconstructed, recall = matched / original, F1 their
harmonic mean. It does not publish its code; these are the choices made here, applied identically to every
model, run and bundle:

Peaks
    A peak is a strict local maximum of one frame (one column, along the mel axis) of the spectrogram in dB
    (:func:`synth.spectrogram.unit_to_db`): higher than the band below it and higher than the next band
    above it that differs from it. On a plateau of equal values the lowest band of the plateau is the peak,
    and a plateau that merely steps up is not one. The first and last band are never peaks (the spectrum may
    rise past the edge of the band range; this is scipy.signal.find_peaks's convention too). A peak must lie
    above the contract's floor ``db_min`` (bins at the floor carry no signal) and at most ``threshold_db``
    (30) dB below the highest peak of its frame ("harmonics 30 dB below the peak amplitude are not taken
    into consideration").
Frequency
    A peak's frequency is its mel band's centre (:func:`synth.spectrogram.mel_band_frequencies`). With
    ``refine=True`` it is refined by parabolic interpolation of the dB values of the peak band and its two
    neighbours on the band index, mapped back to Hz along the mel scale: the Blackman window's main lobe is
    close to a Gaussian, i.e. a parabola in dB, and the mel bands sample it on a regular mel grid, so the
    vertex estimates a partial that falls between two band centres. The default is off (the issue's
    definition); every table in this project states which was used.
Matching
    A reconstructed peak matches an original peak when ``|f_rec - f_orig| <= tolerance * f_orig``
    (tolerance 0.03), one to one. The matching is a maximum one: original peaks are taken in ascending
    frequency and each takes the lowest-frequency unmatched reconstructed peak inside its window. Because each
    window's two ends both grow with the original's frequency, this greedy is optimal (the classic
    points-to-intervals exchange argument), so it equals the Hungarian maximum (scipy's
    linear_sum_assignment) in count, at a fraction of the cost, vectorised over all frames at once.
Silence
    Frames where the original is silent, i.e. no bin of the original frame lies above the floor ``db_min``
    (its unit-scale maximum is 0), are skipped for both spectrograms: they have no harmonics to recall and
    the reconstruction's peaks there are not counted against precision.
Per note and over notes
    Peaks and matches are summed over the note's non-silent frames; precision = matched / reconstructed
    peaks (0 when the reconstruction has no peak at all, as in the paper's activity-regularised rows), recall
    = matched / original peaks, F1 = 2PR / (P + R) (0 when both are 0). A note whose original has no peak in
    any frame has nothing to recall and is left out of the harmonic means (``notes`` says how many counted).
    The reported precision, recall and F1 are the means of the per-note values over those notes (so the mean
    F1 is not the harmonic mean of the mean P and R).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from synth.errors import ParameterError
from synth.metrics._check import as_note_batches
from synth.spectrogram import SpectrogramParams, mel_band_frequencies, unit_to_db

__all__ = [
    "DEFAULT_THRESHOLD_DB",
    "DEFAULT_TOLERANCE",
    "frame_peaks",
    "peak_frequencies",
    "harmonic_counts",
    "harmonic_scores",
    "match_frame",
    "HarmonicCounts",
    "FrameMatch",
]

DEFAULT_THRESHOLD_DB = 30.0
DEFAULT_TOLERANCE = 0.03
# Notes per block: bounds the temporaries at about 60 MB for 128 x 512 notes.
_CHUNK_NOTES = 32


# ---------------------------------------------------------------------------------------------------- helpers
def _check_options(threshold_db: float, tolerance: float) -> None:
    if not (np.isfinite(threshold_db) and threshold_db > 0):
        raise ParameterError(f"threshold_db must be a positive number of dB, got {threshold_db!r}")
    if not (np.isfinite(tolerance) and 0 <= tolerance < 1):
        raise ParameterError(f"tolerance must be a fraction in [0, 1), got {tolerance!r}")


def _peaks_bands_first(db: np.ndarray, *, floor_db: float, threshold_db: float) -> np.ndarray:
    """Peak mask of ``db`` [shape=(n_mels, F)]: bands along axis 0, one frame per column."""
    n = db.shape[0]
    if n < 3:
        return np.zeros(db.shape, dtype=bool)
    step = np.sign(np.diff(db, axis=0))  # (n-1, F): sign of db[k+1] - db[k]
    peaks = np.zeros(db.shape, dtype=bool)
    # Band k (1..n-2) rises from k-1 and falls to k+1.
    peaks[1:-1] = (step[:-1] > 0) & (step[1:] < 0)
    # Plateaus: a flat top that later falls counts once (at its lowest band), a flat shoulder that later
    # rises does not. Only the few columns with a rise onto a flat run above the floor need the slow path.
    flat_top = (step[:-1] > 0) & (step[1:] == 0) & (db[1:-1] > floor_db)
    cols = np.flatnonzero(flat_top.any(axis=0))
    if cols.size:
        sub = step[:, cols]
        rows = np.arange(n - 1)[:, None]
        # Give each zero step the sign of the next non-zero step above it.
        nonzero_at = np.where(sub != 0, rows, n - 1)
        next_nonzero = np.minimum.accumulate(nonzero_at[::-1], axis=0)[::-1]
        padded = np.concatenate([sub, np.zeros((1, cols.size), dtype=sub.dtype)], axis=0)
        filled = np.take_along_axis(padded, next_nonzero, axis=0)
        peaks[1:-1, cols] = (sub[:-1] > 0) & (filled[1:] < 0)
    peaks &= db > floor_db
    top = np.max(np.where(peaks, db, -np.inf), axis=0)
    peaks &= db >= top - threshold_db
    return peaks


@functools.lru_cache(maxsize=16)
def _band_edges_hz(params: SpectrogramParams, refine: bool) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest frequency a peak in each band can be given (centre, or +-half a band refined)."""
    centres = np.asarray(mel_band_frequencies(params=params), dtype=np.float64)
    if not refine:
        return centres, centres
    n = params.n_mels
    index = np.arange(n, dtype=np.float64)
    return _position_to_hz(index - 0.5, params), _position_to_hz(index + 0.5, params)


def _position_to_hz(position: np.ndarray, params: SpectrogramParams) -> np.ndarray:
    """Frequency in Hz of a fractional band index: band centres sit on a regular mel grid."""
    import librosa

    lo = librosa.hz_to_mel(params.fmin, htk=params.htk)
    hi = librosa.hz_to_mel(params.fmax, htk=params.htk)
    mel = lo + (np.asarray(position, dtype=np.float64) + 1.0) * (hi - lo) / (params.n_mels + 1)
    return np.asarray(librosa.mel_to_hz(mel, htk=params.htk), dtype=np.float64)


def _frequencies_bands_first(db: np.ndarray, *, params: SpectrogramParams, refine: bool) -> np.ndarray:
    """Frequency (Hz) each bin of ``db`` [shape=(n_mels, F)] would have as a peak."""
    centres = np.asarray(mel_band_frequencies(params=params), dtype=np.float64)
    if not refine or db.shape[0] < 3:
        return np.broadcast_to(centres[:, None], db.shape)
    a, b, c = db[:-2], db[1:-1], db[2:]
    curvature = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(curvature < 0, 0.5 * (a - c) / curvature, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    position = np.broadcast_to(np.arange(db.shape[0], dtype=np.float64)[:, None], db.shape).copy()
    position[1:-1] += delta
    return _position_to_hz(position, params)


@functools.lru_cache(maxsize=16)
def _reach(params: SpectrogramParams, refine: bool, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """For each original band, the lowest and highest reconstructed band that could ever match it."""
    low, high = _band_edges_hz(params, refine)
    window_lo = low * (1.0 - tolerance)
    window_hi = high * (1.0 + tolerance)
    # Band j can match band b when j's possible frequencies overlap b's window; bands are sorted in Hz.
    first = np.searchsorted(high, window_lo, side="left")
    last = np.searchsorted(low, window_hi, side="right") - 1
    return first, last


def _match_bands_first(
    orig_peaks: np.ndarray,
    orig_freqs: np.ndarray,
    rec_peaks: np.ndarray,
    rec_freqs: np.ndarray,
    *,
    tolerance: float,
    reach: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Maximum one-to-one matching, all frames at once; arrays [shape=(n_mels, F)].

    Returns an int array [shape=(n_mels, F)]: for each original peak the band of its reconstructed match, -1
    where none (or no peak).
    """
    n = orig_peaks.shape[0]
    match = np.full(orig_peaks.shape, -1, dtype=np.int32)
    used = np.zeros(rec_peaks.shape, dtype=bool)
    first, last = reach
    for b in range(n):  # ascending frequency: the greedy order that makes the matching maximum
        idx = np.flatnonzero(orig_peaks[b])
        if idx.size == 0:
            continue
        centre = orig_freqs[b, idx]
        lo, hi = centre - tolerance * centre, centre + tolerance * centre
        for j in range(max(first[b], 0), min(last[b], n - 1) + 1):  # lowest reconstructed peak first
            f = rec_freqs[j, idx]
            ok = rec_peaks[j, idx] & ~used[j, idx] & (f >= lo) & (f <= hi)
            if ok.any():
                hit = idx[ok]
                match[b, hit] = j
                used[j, hit] = True
                keep = ~ok
                idx, lo, hi = idx[keep], lo[keep], hi[keep]
                if idx.size == 0:
                    break
    return match


def _bands_first(x: np.ndarray) -> np.ndarray:
    """(B, n_mels, frames) -> (n_mels, B * frames), one frame per column, note-major."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(x, dtype=np.float64), 1, 0).reshape(x.shape[1], -1))


# ---------------------------------------------------------------------------------------------------- public
def frame_peaks(
    x: np.ndarray, *, params: SpectrogramParams, threshold_db: float = DEFAULT_THRESHOLD_DB
) -> np.ndarray:
    """Spectral peaks of every frame, by the rules in the module docstring.

    Parameters
    ----------
    x : np.ndarray [shape=(n_mels, frames) or (B, n_mels, frames)], unit scale [0, 1]
    params : the spectrogram contract (its dB range and floor)
    threshold_db : peaks more than this far below the frame's highest peak are dropped

    Returns
    -------
    np.ndarray [shape=x.shape, dtype=bool]: True at each peak bin.
    """
    _check_options(threshold_db, DEFAULT_TOLERANCE)
    a, _ = as_note_batches(x, x)
    flat = _bands_first(unit_to_db(a, params=params))
    peaks = _peaks_bands_first(flat, floor_db=params.db_min, threshold_db=threshold_db)
    out = np.moveaxis(peaks.reshape(a.shape[1], a.shape[0], a.shape[2]), 0, 1)
    return out[0] if np.asarray(x).ndim == 2 else out


def peak_frequencies(x: np.ndarray, *, params: SpectrogramParams, refine: bool = False) -> np.ndarray:
    """The frequency in Hz each bin of ``x`` would be given if it were a peak.

    Parameters
    ----------
    x : np.ndarray [shape=(n_mels, frames) or (B, n_mels, frames)], unit scale [0, 1]
    refine : False: the band centres; True: parabolic interpolation in dB (see the module docstring)

    Returns
    -------
    np.ndarray [shape=x.shape, dtype=float64]
    """
    a, _ = as_note_batches(x, x)
    flat = _bands_first(unit_to_db(a, params=params))
    freqs = _frequencies_bands_first(flat, params=params, refine=refine)
    out = np.moveaxis(np.asarray(freqs).reshape(a.shape[1], a.shape[0], a.shape[2]), 0, 1)
    return out[0] if np.asarray(x).ndim == 2 else out


@dataclasses.dataclass(frozen=True)
class HarmonicCounts:
    """Per-note peak counts over non-silent frames; every array has shape (B,)."""

    original_peaks: np.ndarray
    reconstructed_peaks: np.ndarray
    matched: np.ndarray
    frames: np.ndarray  # non-silent frames of each note

    @property
    def counted(self) -> np.ndarray:
        """Notes that enter the means: the original has at least one peak."""
        return self.original_peaks > 0

    @property
    def precision(self) -> np.ndarray:
        """matched / reconstructed peaks per note; 0 with no reconstructed peak; NaN where not counted."""
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(self.reconstructed_peaks > 0, self.matched / self.reconstructed_peaks, 0.0)
        return np.where(self.counted, p, np.nan)

    @property
    def recall(self) -> np.ndarray:
        """matched / original peaks per note; NaN where not counted."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.counted, self.matched / self.original_peaks, np.nan)

    @property
    def f1(self) -> np.ndarray:
        """2PR / (P + R) per note; 0 when P = R = 0; NaN where not counted."""
        p, r = self.precision, self.recall
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(p + r > 0, 2.0 * p * r / (p + r), 0.0)
        return np.where(self.counted, f, np.nan)


def harmonic_counts(
    original: np.ndarray,
    reconstruction: np.ndarray,
    *,
    params: SpectrogramParams,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    tolerance: float = DEFAULT_TOLERANCE,
    refine: bool = False,
) -> HarmonicCounts:
    """Count original, reconstructed and matched peaks per note (see the module docstring).

    Parameters
    ----------
    original, reconstruction : np.ndarray [shape=(n_mels, frames) or (B, n_mels, frames)], unit scale,
        n_mels == params.n_mels. Memory-mapped arrays are read a block of notes at a time.
    params : the spectrogram contract (dB range, floor, band centres)
    threshold_db : relative peak threshold (30 dB)
    tolerance : relative frequency tolerance of a match (0.03 of the original's frequency)
    refine : parabolic refinement of peak frequencies

    Returns
    -------
    HarmonicCounts with arrays of shape (B,).
    """
    _check_options(threshold_db, tolerance)
    a, b = as_note_batches(original, reconstruction)
    if a.shape[1] != params.n_mels:
        raise ParameterError(f"spectrograms have {a.shape[1]} mel bands, the contract says {params.n_mels}")
    reach = _reach(params, bool(refine), float(tolerance))
    n_notes, n_mels, n_frames = a.shape
    counts = np.zeros((4, n_notes), dtype=np.int64)
    for start in range(0, n_notes, _CHUNK_NOTES):
        stop = min(start + _CHUNK_NOTES, n_notes)
        orig = _bands_first(unit_to_db(a[start:stop], params=params))
        rec = _bands_first(unit_to_db(b[start:stop], params=params))
        sounding = orig.max(axis=0) > params.db_min  # (F,): frames where the original is not silent
        po = _peaks_bands_first(orig, floor_db=params.db_min, threshold_db=threshold_db) & sounding
        pr = _peaks_bands_first(rec, floor_db=params.db_min, threshold_db=threshold_db) & sounding
        fo = _frequencies_bands_first(orig, params=params, refine=refine)
        fr = _frequencies_bands_first(rec, params=params, refine=refine)
        match = _match_bands_first(po, fo, pr, fr, tolerance=tolerance, reach=reach)
        per_note = stop - start
        counts[0, start:stop] = po.sum(axis=0).reshape(per_note, n_frames).sum(axis=1)
        counts[1, start:stop] = pr.sum(axis=0).reshape(per_note, n_frames).sum(axis=1)
        counts[2, start:stop] = (match >= 0).sum(axis=0).reshape(per_note, n_frames).sum(axis=1)
        counts[3, start:stop] = sounding.reshape(per_note, n_frames).sum(axis=1)
    return HarmonicCounts(*counts)


def harmonic_scores(
    original: np.ndarray,
    reconstruction: np.ndarray,
    *,
    params: SpectrogramParams,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    tolerance: float = DEFAULT_TOLERANCE,
    refine: bool = False,
) -> dict[str, float | int]:
    """The paper's harmonic precision, recall and F1, averaged over notes.

    Arguments as in :func:`harmonic_counts`.

    Returns
    -------
    dict with "precision", "recall", "f1" (means of the per-note values over the counted notes; NaN when no
    note counts) and "notes" (how many notes counted: those whose original has at least one peak).
    """
    counts = harmonic_counts(
        original, reconstruction, params=params, threshold_db=threshold_db, tolerance=tolerance, refine=refine
    )
    n = int(counts.counted.sum())
    if n == 0:
        return {"precision": float("nan"), "recall": float("nan"), "f1": float("nan"), "notes": 0}
    return {
        "precision": float(np.nanmean(counts.precision)),
        "recall": float(np.nanmean(counts.recall)),
        "f1": float(np.nanmean(counts.f1)),
        "notes": n,
    }


@dataclasses.dataclass(frozen=True)
class FrameMatch:
    """Peaks of one frame and their matches (for pictures and tests).

    ``original_bands``/``reconstructed_bands``: band indices of the peaks, ascending; ``*_hz`` their
    frequencies; ``pairs``: (original band, reconstructed band) of each match; ``silent``: the original frame
    is silent (then there are no peaks, by the skipping rule).
    """

    original_bands: np.ndarray
    reconstructed_bands: np.ndarray
    original_hz: np.ndarray
    reconstructed_hz: np.ndarray
    pairs: list[tuple[int, int]]
    silent: bool

    @property
    def precision(self) -> float:
        return len(self.pairs) / len(self.reconstructed_bands) if len(self.reconstructed_bands) else 0.0

    @property
    def recall(self) -> float:
        return len(self.pairs) / len(self.original_bands) if len(self.original_bands) else float("nan")


def match_frame(
    original: np.ndarray,
    reconstruction: np.ndarray,
    *,
    params: SpectrogramParams,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    tolerance: float = DEFAULT_TOLERANCE,
    refine: bool = False,
) -> FrameMatch:
    """Peaks and matches of one frame, by exactly the rules of :func:`harmonic_counts`.

    Parameters
    ----------
    original, reconstruction : np.ndarray [shape=(n_mels,)], unit scale
    """
    _check_options(threshold_db, tolerance)
    o = np.asarray(original)
    r = np.asarray(reconstruction)
    if o.ndim != 1 or o.shape != r.shape or o.shape[0] != params.n_mels:
        raise ParameterError(
            f"match_frame needs two frames of shape ({params.n_mels},), got {o.shape}, {r.shape}"
        )
    a, b = as_note_batches(o[:, None], r[:, None])
    orig = _bands_first(unit_to_db(a, params=params))
    rec = _bands_first(unit_to_db(b, params=params))
    silent = not bool(orig.max() > params.db_min)
    po = _peaks_bands_first(orig, floor_db=params.db_min, threshold_db=threshold_db) & (not silent)
    pr = _peaks_bands_first(rec, floor_db=params.db_min, threshold_db=threshold_db) & (not silent)
    fo = np.asarray(_frequencies_bands_first(orig, params=params, refine=refine))
    fr = np.asarray(_frequencies_bands_first(rec, params=params, refine=refine))
    match = _match_bands_first(
        po, fo, pr, fr, tolerance=tolerance, reach=_reach(params, bool(refine), float(tolerance))
    )
    ob, rb = np.flatnonzero(po[:, 0]), np.flatnonzero(pr[:, 0])
    pairs = [(int(k), int(match[k, 0])) for k in ob if match[k, 0] >= 0]
    return FrameMatch(ob, rb, fo[ob, 0], fr[rb, 0], pairs, silent)
