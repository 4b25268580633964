"""The spectrogram contract: every analysis parameter of melsynth in one frozen dataclass.

Training, export, evaluation and the engine all take their analysis parameters from a
:class:`SpectrogramParams`, and every saved artefact (features folder, run folder, bundle) carries it as JSON
with exactly the keys of :data:`CONTRACT_KEYS`. Anyone with librosa and that JSON reproduces the features::

    M = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
            win_length=win_length, window=window, center=center, power=2.0, n_mels=n_mels,
            fmin=fmin, fmax=fmax, htk=htk, norm=mel_norm)
    x = clip((10*log10(max(M, amin)) - db_min) / (db_max - db_min), 0, 1), cropped or zero-padded to frames

The dB range is fixed (not per-note max normalisation) so that loudness and velocity survive the round trip.
Why -100..+30 dB: on the SoundFont training set the loudest mel bin of any note is +25 dB and the median
note peaks near +5 dB, so +30 leaves 5 dB of headroom; -100 dB is the ``amin`` floor (1e-10), where the
silent tail of every note sits, so no note is clipped at either end (``docs/DATA.md`` has the measurement).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_write_text
from synth.errors import ContractError, ParameterError
from synth.json_files import exact_keys, read_json_file

__all__ = [
    "CONTRACT_KEYS",
    "SpectrogramParams",
    "analysis_window",
    "mel_basis",
    "mel_band_frequencies",
    "mel_power",
    "log_mel",
    "power_to_unit",
    "unit_to_db",
    "unit_to_power",
    "fit_frames",
]

CONTRACT_KEYS = (
    "sample_rate",
    "n_fft",
    "win_length",
    "hop_length",
    "window",
    "center",
    "n_mels",
    "fmin",
    "fmax",
    "htk",
    "mel_norm",
    "frames",
    "amin",
    "db_min",
    "db_max",
)

_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "sample_rate": (int,),
    "n_fft": (int,),
    "win_length": (int,),
    "hop_length": (int,),
    "window": (str,),
    "center": (bool,),
    "n_mels": (int,),
    "fmin": (int, float),
    "fmax": (int, float),
    "htk": (bool,),
    "mel_norm": (str, type(None)),
    "frames": (int,),
    "amin": (int, float),
    "db_min": (int, float),
    "db_max": (int, float),
}


@dataclasses.dataclass(frozen=True)
class SpectrogramParams:
    """Analysis parameters of the normalised log-mel-spectrogram (the paper's, at NSynth's 16 kHz).

    Defaults: 16 kHz, Blackman window of 690 samples, n_fft 1024, hop 125, 128 Slaney mel bands over
    0..8000 Hz, centred frames, 512 frames (4.0 s, note-off at frame 384), fixed range -100..+30 dB.
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 690
    hop_length: int = 125
    window: str = "blackman"
    center: bool = True
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    htk: bool = False
    mel_norm: str | None = "slaney"
    frames: int = 512
    amin: float = 1e-10
    db_min: float = -100.0
    db_max: float = 30.0

    def __post_init__(self) -> None:
        for key in CONTRACT_KEYS:
            value = getattr(self, key)
            types = _KEY_TYPES[key]
            # bool is an int subclass: refuse True where a number is meant, and 1 where a bool is meant.
            if (bool in types) != isinstance(value, bool) or not isinstance(value, types):
                raise ContractError(f"spectrogram contract: {key}={value!r} has the wrong type")
        positive = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "frames")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ContractError(f"spectrogram contract: {key} must be positive, got {getattr(self, key)}")
        if self.win_length > self.n_fft:
            raise ContractError(
                f"spectrogram contract: win_length {self.win_length} exceeds n_fft {self.n_fft}"
            )
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ContractError(
                f"spectrogram contract: need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, "
                f"fmax={self.fmax}, sample_rate={self.sample_rate}"
            )
        if not (math.isfinite(self.db_min) and math.isfinite(self.db_max) and self.db_min < self.db_max):
            raise ContractError(
                f"spectrogram contract: need finite db_min < db_max, got {self.db_min}..{self.db_max}"
            )
        if not self.amin > 0:
            raise ContractError(f"spectrogram contract: amin must be positive, got {self.amin}")

    # ------------------------------------------------------------------ derived quantities
    @property
    def n_samples(self) -> int:
        """Samples of one note (``frames * hop_length``: 64000 = 4.0 s by default)."""
        return self.frames * self.hop_length

    @property
    def duration(self) -> float:
        """Length of one note in seconds."""
        return self.n_samples / self.sample_rate

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    def frame_of(self, seconds: float) -> int:
        """Index of the frame that starts nearest to ``seconds`` (note-off at 3.0 s is frame 384)."""
        return int(round(seconds * self.frame_rate))

    @property
    def n_bins(self) -> int:
        """Number of linear STFT bins (``n_fft // 2 + 1``)."""
        return self.n_fft // 2 + 1

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The contract as a JSON-ready dict with exactly :data:`CONTRACT_KEYS`."""
        return {key: getattr(self, key) for key in CONTRACT_KEYS}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "spectrogram contract") -> SpectrogramParams:
        """Build from a dict with exactly :data:`CONTRACT_KEYS`; ``source`` names it in errors."""
        values = dict(exact_keys(data, keys=CONTRACT_KEYS, where=source, error=ContractError))
        for key in ("fmin", "fmax", "amin", "db_min", "db_max"):
            if isinstance(values[key], int) and not isinstance(values[key], bool):
                values[key] = float(values[key])
        try:
            return cls(**values)
        except ContractError as exc:
            raise ContractError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the contract as JSON, atomically."""
        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> SpectrogramParams:
        """Read a contract written by :meth:`save` (or by hand)."""
        path = Path(path)
        data = read_json_file(path, what="spectrogram contract", error=ContractError)
        return cls.from_dict(data, source=str(path))

    def require_equal(self, other: SpectrogramParams, *, what: str) -> None:
        """Raise :class:`ContractError` naming every differing key if ``other`` differs from ``self``."""
        diffs = [
            f"{k}: {getattr(self, k)!r} != {getattr(other, k)!r}"
            for k in CONTRACT_KEYS
            if getattr(self, k) != getattr(other, k)
        ]
        if diffs:
            raise ContractError(f"{what} uses a different spectrogram contract ({'; '.join(diffs)})")


# The filterbank, band centres and window are computed here with numpy rather than taken from librosa and
# scipy: importing ``librosa.filters`` loads numba, llvmlite and scipy (about 140 MB of resident memory and
# a second of start-up), and the live engine needs nothing else from them. tests/test_spectrogram.py checks
# all three against librosa and scipy.
_SLANEY_F_SP = 200.0 / 3.0  # Hz per mel below 1 kHz
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray, *, htk: bool) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    mels = hz / _SLANEY_F_SP
    log_part = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(hz, _SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(hz >= _SLANEY_MIN_LOG_HZ, log_part, mels)


def _mel_to_hz(mels: np.ndarray, *, htk: bool) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    log_part = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mels - _SLANEY_MIN_LOG_MEL))
    return np.where(mels >= _SLANEY_MIN_LOG_MEL, log_part, _SLANEY_F_SP * mels)


def _mel_edges(params: SpectrogramParams) -> np.ndarray:
    """``n_mels + 2`` frequencies (Hz) equally spaced in mel from fmin to fmax: band i spans edges i..i+2."""
    lo, hi = _hz_to_mel(np.array([params.fmin, params.fmax]), htk=params.htk)
    return _mel_to_hz(np.linspace(lo, hi, params.n_mels + 2), htk=params.htk)


@functools.lru_cache(maxsize=16)
def _mel_basis_cached(params: SpectrogramParams) -> np.ndarray:
    edges = _mel_edges(params)
    fft_freqs = np.fft.rfftfreq(params.n_fft, d=1.0 / params.sample_rate)
    ramps = edges[:, None] - fft_freqs[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    basis = np.maximum(0.0, np.minimum(lower, upper))
    if params.mel_norm == "slaney":  # equal area: each triangle's height is 2 / its width in Hz
        basis *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    elif params.mel_norm is not None:  # a p-norm spelled as a string: librosa's own normalisation
        import librosa

        basis = librosa.util.normalize(basis, norm=float(params.mel_norm), axis=-1)
    basis = basis.astype(np.float32)
    basis.setflags(write=False)
    return basis


def mel_basis(*, params: SpectrogramParams) -> np.ndarray:
    """The mel filterbank of the contract (``librosa.filters.mel`` with the contract's parameters), read-only.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_fft // 2 + 1), dtype=float32]
    """
    return _mel_basis_cached(params)


@functools.lru_cache(maxsize=16)
def _mel_band_frequencies_cached(params: SpectrogramParams) -> np.ndarray:
    freqs = _mel_edges(params)[1:-1]
    freqs.setflags(write=False)
    return freqs


def mel_band_frequencies(*, params: SpectrogramParams) -> np.ndarray:
    """Centre frequency in Hz of each mel band (the peak of its triangular filter).

    Returns
    -------
    np.ndarray [shape=(n_mels,), dtype=float64]
    """
    return _mel_band_frequencies_cached(params)


# Periodic ("fftbins") cosine-sum windows, numpy's symmetric window of length n + 1 without its last point.
_NUMPY_WINDOWS = {"hann": np.hanning, "hamming": np.hamming, "blackman": np.blackman}


@functools.lru_cache(maxsize=16)
def _window_cached(params: SpectrogramParams) -> np.ndarray:
    make = _NUMPY_WINDOWS.get(params.window)
    if make is not None:
        win = make(params.win_length + 1)[:-1]
    else:
        from scipy.signal import get_window

        try:
            win = get_window(params.window, params.win_length, fftbins=True)
        except ValueError as exc:
            raise ContractError(f"spectrogram contract: unknown window {params.window!r} ({exc})") from None
    win = np.asarray(win, dtype=np.float64)
    win.setflags(write=False)
    return win


def analysis_window(*, params: SpectrogramParams) -> np.ndarray:
    """The contract's periodic analysis window (``librosa.filters.get_window(window, win_length,
    fftbins=True)``), read-only.

    Returns
    -------
    np.ndarray [shape=(win_length,), dtype=float64]
    """
    return _window_cached(params)


def _check_audio(y: np.ndarray, *, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ParameterError(f"{name}: expected mono audio of shape (n,), got shape {y.shape}")
    if y.size == 0:
        raise ParameterError(f"{name}: audio is empty")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{name}: audio must be floating point, got {y.dtype}")
    if not np.all(np.isfinite(y)):
        raise ParameterError(f"{name}: audio contains NaN or Inf")
    return y


def fit_frames(x: np.ndarray, *, frames: int, fill: float = 0.0) -> np.ndarray:
    """Crop or pad the last axis of ``x`` to ``frames`` columns (padding with ``fill``)."""
    n = x.shape[-1]
    if n >= frames:
        return x[..., :frames]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, frames - n)]
    return np.pad(x, pad, constant_values=fill)


@functools.lru_cache(maxsize=16)
def _padded_window(params: SpectrogramParams) -> np.ndarray:
    # Centred in n_fft, as librosa pads a window shorter than the FFT.
    lpad = (params.n_fft - params.win_length) // 2
    full = np.zeros(params.n_fft)
    full[lpad : lpad + params.win_length] = analysis_window(params=params)
    full.setflags(write=False)
    return full


def mel_power(y: np.ndarray, *, params: SpectrogramParams, name: str = "audio") -> np.ndarray:
    """Mel power spectrogram of ``y`` by the contract.

    Computes exactly what ``librosa.feature.melspectrogram(..., power=2.0)`` computes with the contract's
    parameters (zero padding when centred, librosa 0.10+'s default), in float64 with numpy's FFT: it is
    an order of magnitude faster to start and to run than librosa's, and ``tests/test_spectrogram.py``
    checks it against librosa itself.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), floating, finite] mono audio at ``params.sample_rate``

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n // hop_length) when centred, dtype=float64]
    """
    y = _check_audio(y, name=name).astype(np.float64)
    n_fft, hop = params.n_fft, params.hop_length
    if params.center:
        y = np.pad(y, n_fft // 2, mode="constant")
    if y.size < n_fft:
        raise ParameterError(f"{name}: {y.size} samples is shorter than one frame ({n_fft})")
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * _padded_window(params), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    return mel_basis(params=params).astype(np.float64) @ power.T


def power_to_unit(power: np.ndarray, *, params: SpectrogramParams) -> np.ndarray:
    """Map mel power to the normalised [0, 1] scale of the contract (fixed dB range, clipped)."""
    db = 10.0 * np.log10(np.maximum(power, params.amin))
    return np.clip((db - params.db_min) / (params.db_max - params.db_min), 0.0, 1.0)


def log_mel(y: np.ndarray, *, params: SpectrogramParams, name: str = "audio") -> np.ndarray:
    """The normalised log-mel-spectrogram of one note, as the model sees it.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), floating, finite] mono audio at ``params.sample_rate``

    Returns
    -------
    np.ndarray [shape=(n_mels, frames), dtype=float32, values in [0, 1]]
        cropped or zero-padded to ``params.frames`` columns.
    """
    unit = power_to_unit(mel_power(y, params=params, name=name), params=params)
    return fit_frames(unit, frames=params.frames).astype(np.float32)


def unit_to_db(x: np.ndarray, *, params: SpectrogramParams) -> np.ndarray:
    """Inverse of the normalisation: [0, 1] -> dB (``db_min + x * (db_max - db_min)``)."""
    return params.db_min + np.asarray(x, dtype=np.float64) * (params.db_max - params.db_min)


def unit_to_power(x: np.ndarray, *, params: SpectrogramParams) -> np.ndarray:
    """[0, 1] -> mel power; values at 0 map to ``10**(db_min/10)``."""
    return np.power(10.0, unit_to_db(x, params=params) / 10.0)
