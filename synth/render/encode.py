"""Making a preset from audio: any file soundfile reads, at any rate and channel count, to a latent.

Each file is read, mixed to mono (the mean of its channels), resampled to the bundle's rate with soxr,
started at its onset (leading samples more than 60 dB below the file's peak are dropped: the model's notes
start at time 0), then trimmed or zero-padded to the contract's 4 s and turned into the contract's log-mel.
Levels are kept as they are, as in the training data (no normalisation). Only the first
:data:`MAX_READ_SECONDS` of a file are read. The encoder maps each log-mel to a latent; several files give
the mean of their latents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams, log_mel

__all__ = [
    "EncodedFile",
    "Encoding",
    "read_audio_for_model",
    "encode_audio_files",
    "ONSET_DB",
    "SILENT_PEAK_DB",
]

# Leading samples this far below the file's peak are before the sound's onset.
ONSET_DB = -60.0
# Only the start of a long file is read: the onset and the 4 s after it are all the model sees.
MAX_READ_SECONDS = 60.0
# A file whose loudest mel bin stays below this has nothing to encode (16-bit dither sits near -90 dB).
SILENT_PEAK_DB = -80.0


@dataclasses.dataclass(frozen=True)
class EncodedFile:
    """One input file: where it came from, what it was, and its log-mel [shape=(n_mels, frames)]."""

    path: str
    sample_rate: int
    channels: int
    seconds: float
    onset_seconds: float
    mel: np.ndarray

    def describe(self) -> dict:
        return {
            "file": Path(self.path).name,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "seconds": round(self.seconds, 4),
            "onset_seconds": round(self.onset_seconds, 4),
        }


@dataclasses.dataclass(frozen=True)
class Encoding:
    """The result of :func:`encode_audio_files`.

    latent : [shape=latent_shape, float32] the mean of ``latents``
    latents : [shape=(n_files, *latent_shape), float32] one per file
    files : the inputs, in order
    rmse : [shape=(n_files,)] unit-scale RMSE between the decoded ``latent`` and each file's log-mel (how well
        the preset reproduces each input); None when no decoder was given
    """

    latent: np.ndarray
    latents: np.ndarray
    files: tuple[EncodedFile, ...]
    rmse: np.ndarray | None

    def source(self) -> dict:
        """The ``source`` object of a preset made from this encoding."""
        src: dict = {
            "description": "encoded from audio"
            + (f" (mean latent of {len(self.files)} files)" if len(self.files) > 1 else ""),
            "files": [f.describe() for f in self.files],
        }
        if self.rmse is not None:
            src["reconstruction_rmse"] = [round(float(r), 5) for r in self.rmse]
        return src


def _onset(y: np.ndarray) -> int:
    peak = float(np.abs(y).max())
    above = np.flatnonzero(np.abs(y) > peak * 10.0 ** (ONSET_DB / 20.0))
    return int(above[0]) if above.size else 0


def read_audio_for_model(path: str | Path, *, params: SpectrogramParams, trim_onset: bool = True) -> EncodedFile:
    """Read one audio file and make the log-mel the encoder expects.

    Returns an :class:`EncodedFile` (its ``mel`` is [shape=(n_mels, frames), float32, unit scale]).
    Raises :class:`~synth.errors.DataError` naming the file when it is missing, unreadable, empty, not
    finite, or silent.
    """
    import soundfile as sf
    import soxr

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such audio file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        info = sf.info(str(path))
        data, rate = sf.read(path, dtype="float64", always_2d=True, frames=int(MAX_READ_SECONDS * info.samplerate))
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable audio file ({exc})") from None
    frames, channels = data.shape
    seconds = (info.frames if info.frames > 0 else frames) / rate
    if frames == 0 or channels == 0:
        raise DataError(f"{path}: the audio is empty (0 samples)")
    if not np.all(np.isfinite(data)):
        raise DataError(f"{path}: the audio contains NaN or Inf")
    mono = data.mean(axis=1)
    if rate != params.sample_rate:
        mono = soxr.resample(mono, rate, params.sample_rate, quality="HQ")
    if not np.any(mono):
        raise DataError(f"{path}: the audio is silent")
    start = _onset(mono) if trim_onset else 0
    y = mono[start : start + params.n_samples]
    if y.size < params.n_samples:
        y = np.concatenate([y, np.zeros(params.n_samples - y.size)])
    mel = log_mel(y.astype(np.float32), params=params, name=str(path))
    peak_db = params.db_min + float(mel.max()) * (params.db_max - params.db_min)
    if peak_db < SILENT_PEAK_DB:
        raise DataError(f"{path}: the audio is silent (loudest mel bin {peak_db:.1f} dB < {SILENT_PEAK_DB:g} dB)")
    return EncodedFile(
        path=str(path), sample_rate=int(rate), channels=int(channels), seconds=seconds,
        onset_seconds=start / params.sample_rate, mel=mel,
    )


def encode_audio_files(
    bundle, paths: Sequence[str | Path], *, encoder=None, decoder=None, trim_onset: bool = True
) -> Encoding:
    """Encode audio files to one latent of ``bundle`` (the mean latent when there are several).

    Every file is read and checked before the encoder runs, so a bad one stops the whole call.

    Parameters
    ----------
    bundle : a loaded :class:`~synth.bundle.Bundle` (``params``, ``latent_shape``, ``encoder()``)
    paths : one or more audio files
    encoder, decoder : sessions to reuse; None: new ones (the decoder only scores the reconstruction;
        pass ``decoder=False`` to skip that)
    """
    if isinstance(paths, (str, Path)) or len(paths) == 0:
        raise ParameterError("give one or more audio files")
    files = tuple(read_audio_for_model(p, params=bundle.params, trim_onset=trim_onset) for p in paths)
    encoder = encoder if encoder is not None else bundle.encoder()
    mels = np.stack([f.mel for f in files])
    latents = np.asarray(encoder.encode(mels), dtype=np.float32)
    if not np.all(np.isfinite(latents)):
        raise DataError("the encoder returned NaN or Inf for " + ", ".join(str(p) for p in paths))
    latent = latents.mean(axis=0).astype(np.float32)
    rmse = None
    if decoder is not False:
        decoder = decoder if decoder is not None else bundle.decoder()
        decoded = np.asarray(decoder.decode(latent[None]), dtype=np.float64)[0]
        rmse = np.sqrt(np.mean((mels.astype(np.float64) - decoded[None]) ** 2, axis=(1, 2)))
    return Encoding(latent=latent, latents=latents, files=files, rmse=rmse)
