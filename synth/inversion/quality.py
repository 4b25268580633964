"""How close an inversion comes to the original audio: spectral convergence in dB."""

from __future__ import annotations

import numpy as np

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams

__all__ = ["spectral_convergence", "stft_magnitude"]


def stft_magnitude(y: np.ndarray, *, params: SpectrogramParams) -> np.ndarray:
    """Linear STFT magnitude of ``y`` with the contract's analysis (window, n_fft, hop, centring).

    Returns
    -------
    np.ndarray [shape=(n_bins, 1 + len(y) // hop_length)]
    """
    import librosa

    return np.abs(
        librosa.stft(
            np.asarray(y, dtype=np.float32),
            n_fft=params.n_fft,
            hop_length=params.hop_length,
            win_length=params.win_length,
            window=params.window,
            center=params.center,
        )
    )


def _best_lag(reference: np.ndarray, audio: np.ndarray, max_lag: int) -> int:
    """Lag in [-max_lag, max_lag] maximising the cross-correlation (audio shifted left by the lag)."""
    n = min(reference.size, audio.size)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(audio[:n], size) * np.conj(np.fft.rfft(reference[:n], size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xc[: max_lag + 1], xc[size - max_lag :]])
    return int(lags[int(np.argmax(values))])


def spectral_convergence(
    reference_audio: np.ndarray,
    audio: np.ndarray,
    *,
    params: SpectrogramParams,
    audio_rate: int | None = None,
    max_lag: int | None = None,
) -> float:
    """Spectral convergence ``20 log10(|| |S_ref| - |S| ||_F / || |S_ref| ||_F)`` in dB (lower is better).

    Parameters
    ----------
    reference_audio : np.ndarray [shape=(n,)] the original, at ``params.sample_rate``
    audio : np.ndarray [shape=(m,)] the inversion, at ``audio_rate`` (default ``params.sample_rate``;
        resampled with soxr when different), already compensated for its inverter's latency (``invert``
        does that)
    max_lag : int, residual misalignment searched by cross-correlation, in samples at the contract's
        rate (default: one hop); both signals are cut to the shorter length after aligning

    Returns
    -------
    float, dB; -inf for a perfect match
    """
    reference_audio = np.asarray(reference_audio, dtype=np.float32)
    audio = np.asarray(audio, dtype=np.float32)
    if reference_audio.ndim != 1 or audio.ndim != 1 or reference_audio.size == 0 or audio.size == 0:
        raise ParameterError(
            f"spectral_convergence: expected two non-empty 1-D signals, got {reference_audio.shape} "
            f"and {audio.shape}"
        )
    if audio_rate is not None and audio_rate != params.sample_rate:
        import soxr

        audio = soxr.resample(audio, audio_rate, params.sample_rate).astype(np.float32)
    lag = _best_lag(reference_audio, audio, params.hop_length if max_lag is None else int(max_lag))
    if lag > 0:
        audio = audio[lag:]
    elif lag < 0:
        audio = np.concatenate([np.zeros(-lag, dtype=np.float32), audio])
    n = min(reference_audio.size, audio.size)
    ref = stft_magnitude(reference_audio[:n], params=params)
    est = stft_magnitude(audio[:n], params=params)
    denom = np.linalg.norm(ref)
    if denom == 0:
        raise ParameterError("spectral_convergence: the reference is silent")
    num = np.linalg.norm(ref - est)
    return float(20.0 * np.log10(num / denom)) if num > 0 else float("-inf")
