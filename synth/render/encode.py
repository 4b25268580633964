"""Making a preset from audio: any file soundfile reads, at any rate and channel count, to a latent.

Each file is read, mixed to mono (the mean of its channels), resampled to the bundle's rate with soxr,
started at its onset (leading samples more than 60 dB below the file's peak are dropped: the model's notes
start at time 0), then trimmed or zero-padded to the contract's 4 s and turned into the contract's log-mel.
Levels are kept as they are, as in the training data (no normalisation). Only the first
:data:`MAX_READ_SECONDS` of a file are read. The encoder maps each log-mel to a latent; several files give
the mean of their latents.

A keyboard bundle's encoder also takes the note's key: each file's pitch is found (librosa.pyin, or the
``note`` given), the trained key nearest it chosen, and the note moved onto that key (librosa's phase-vocoder
pitch shift, as the audio-folder dataset moves its takes) before its log-mel is made; its reconstruction is
scored at that key.
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
    "at_key",
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
    """One input file: where it came from, what it was, its log-mel [shape=(n_mels, frames)] and the 4 s note
    it was made of [shape=(n_samples,), float32, the contract's rate]. For a keyboard bundle: ``pitch`` the
    note's pitch (MIDI, found or given), ``key`` the trained key it was encoded at (moved by ``key - pitch``
    semitones)."""

    path: str
    sample_rate: int
    channels: int
    seconds: float
    onset_seconds: float
    mel: np.ndarray
    audio: np.ndarray
    pitch: float | None = None
    key: int | None = None

    def describe(self) -> dict:
        out = {
            "file": Path(self.path).name,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "seconds": round(self.seconds, 4),
            "onset_seconds": round(self.onset_seconds, 4),
        }
        if self.key is not None:
            out.update(pitch=round(float(self.pitch), 3), key=int(self.key))
        return out


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
    y = y.astype(np.float32)
    return EncodedFile(
        path=str(path), sample_rate=int(rate), channels=int(channels), seconds=seconds,
        onset_seconds=start / params.sample_rate, mel=mel, audio=y,
    )


def at_key(f: EncodedFile, *, bundle, note: float | None = None) -> EncodedFile:
    """``f`` moved onto the trained key of keyboard ``bundle`` nearest its pitch (``note``, a MIDI number, or
    found in its audio), its log-mel made again. Raises :class:`~synth.errors.DataError` naming the file when
    no pitch is given and none is found."""
    import librosa

    from synth.data.note_pitch import note_pitch

    params = bundle.params
    if note is None:
        note, why = note_pitch(f.audio, rate=params.sample_rate, around=float(bundle.base_pitch))
        if note is None:
            raise DataError(f"{f.path}: {why}; a keyboard model needs the note's pitch: give it (--note MIDI)")
    key = bundle.nearest_key(note)
    y = f.audio
    if abs(key - note) > 0.01:
        y = np.clip(librosa.effects.pitch_shift(y, sr=params.sample_rate, n_steps=key - note), -1.0, 1.0)
    mel = log_mel(np.asarray(y, dtype=np.float32), params=params, name=f.path)
    return dataclasses.replace(f, mel=mel, audio=np.asarray(y, dtype=np.float32), pitch=float(note), key=int(key))


def encode_audio_files(
    bundle, paths: Sequence[str | Path], *, encoder=None, decoder=None, trim_onset: bool = True,
    note: float | None = None,
) -> Encoding:
    """Encode audio files to one latent of ``bundle`` (the mean latent when there are several).

    Every file is read and checked before the encoder runs, so a bad one stops the whole call.

    Parameters
    ----------
    bundle : a loaded :class:`~synth.bundle.Bundle` (``params``, ``latent_shape``, ``encoder()``)
    paths : one or more audio files
    encoder, decoder : sessions to reuse; None: new ones (the decoder only scores the reconstruction;
        pass ``decoder=False`` to skip that)
    note : a keyboard bundle's: the MIDI pitch of every file (None: found in each); a one-pitch bundle's
        encoder takes none
    """
    if isinstance(paths, (str, Path)) or len(paths) == 0:
        raise ParameterError("give one or more audio files")
    keyed = getattr(bundle, "keys", None) is not None
    if note is not None and (isinstance(note, bool) or not isinstance(note, (int, float)) or not 0 <= note <= 127):
        raise ParameterError(f"note must be a MIDI number 0..127, got {note!r}")
    if note is not None and not keyed:
        raise ParameterError(f"this bundle's model knows one pitch ({bundle.base_pitch}): it takes no note")
    files = tuple(read_audio_for_model(p, params=bundle.params, trim_onset=trim_onset) for p in paths)
    if keyed:
        files = tuple(at_key(f, bundle=bundle, note=note) for f in files)
    keys = np.asarray([f.key for f in files], dtype=np.int32) if keyed else None
    encoder = encoder if encoder is not None else bundle.encoder()
    mels = np.stack([f.mel for f in files])
    latents = np.asarray(encoder.encode(mels, pitch=keys), dtype=np.float32)
    if not np.all(np.isfinite(latents)):
        raise DataError("the encoder returned NaN or Inf for " + ", ".join(str(p) for p in paths))
    latent = latents.mean(axis=0).astype(np.float32)
    rmse = None
    if decoder is not False:
        decoder = decoder if decoder is not None else bundle.decoder()
        if keyed:  # the preset at each file's key
            decoded = np.asarray(decoder.decode(np.repeat(latent[None], len(files), axis=0), pitch=keys),
                                 dtype=np.float64)
        else:
            decoded = np.asarray(decoder.decode(latent[None]), dtype=np.float64)
        rmse = np.sqrt(np.mean((mels.astype(np.float64) - decoded) ** 2, axis=(1, 2)))
    return Encoding(latent=latent, latents=latents, files=files, rmse=rmse)
