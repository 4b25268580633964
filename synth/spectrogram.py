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

__all__ = [
    "CONTRACT_KEYS",
    "SpectrogramParams",
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
        if not isinstance(data, dict):
            raise ContractError(f"{source}: expected a JSON object, got {type(data).__name__}")
        missing = [k for k in CONTRACT_KEYS if k not in data]
        unknown = [k for k in data if k not in CONTRACT_KEYS]
        if missing or unknown:
            raise ContractError(f"{source}: missing keys {missing}, unknown keys {unknown}")
        values = dict(data)
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
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ContractError(f"{path}: no such spectrogram contract file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContractError(f"{path}: not a readable JSON file ({exc})") from None
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


@functools.lru_cache(maxsize=16)
def _mel_basis_cached(params: SpectrogramParams) -> np.ndarray:
    import librosa

    basis = librosa.filters.mel(
        sr=params.sample_rate,
        n_fft=params.n_fft,
        n_mels=params.n_mels,
        fmin=params.fmin,
        fmax=params.fmax,
        htk=params.htk,
        norm=params.mel_norm,
    ).astype(np.float32)
    basis.setflags(write=False)
    return basis


def mel_basis(*, params: SpectrogramParams) -> np.ndarray:
    """The mel filterbank of the contract, read-only.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_fft // 2 + 1), dtype=float32]
    """
    return _mel_basis_cached(params)


@functools.lru_cache(maxsize=16)
def _mel_band_frequencies_cached(params: SpectrogramParams) -> np.ndarray:
    import librosa

    freqs = librosa.mel_frequencies(
        n_mels=params.n_mels + 2, fmin=params.fmin, fmax=params.fmax, htk=params.htk
    )[1:-1]
    freqs.setflags(write=False)
    return freqs


def mel_band_frequencies(*, params: SpectrogramParams) -> np.ndarray:
    """Centre frequency in Hz of each mel band (the peak of its triangular filter).

    Returns
    -------
    np.ndarray [shape=(n_mels,), dtype=float64]
    """
    return _mel_band_frequencies_cached(params)


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
def _analysis_window(params: SpectrogramParams) -> np.ndarray:
    from scipy.signal import get_window

    # librosa.filters.get_window(..., fftbins=True) is scipy's periodic window, centred in n_fft.
    win = get_window(params.window, params.win_length, fftbins=True)
    lpad = (params.n_fft - params.win_length) // 2
    full = np.zeros(params.n_fft)
    full[lpad : lpad + params.win_length] = win
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
    spectrum = np.fft.rfft(frames * _analysis_window(params), axis=-1)
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
