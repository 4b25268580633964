"""The streaming interface every inversion method implements, its factory, and an offline driver.

The engine's synthesis thread calls ``process_frame`` once per mel frame and voice. Frame k owns output
samples ``[round(k * H), round((k + 1) * H))`` with ``H = hop_length * output_rate / sample_rate`` (fractional
at 44.1 kHz), so ``len(out)`` may vary by one sample from call to call; :func:`frame_lengths` computes them.

Use one inverter object per voice and method. One object is not thread-safe (it is a state machine), but
separate objects share only read-only tables, and their per-frame work runs in numba with the GIL released,
so voices can be stepped from several threads. ``process_frame`` does not allocate in the sinusoidal
method and allocates one 1024-sample FFT output in the Griffin-Lim method. Inputs are sanitised (NaN -> 0,
clipped to [0, 1]) so a bad decode cannot poison a voice's phases.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from synth.errors import ParameterError
from synth.inversion.frames import frame_lengths
from synth.spectrogram import SpectrogramParams

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "StreamingInverter",
    "invert",
    "make_inverter",
]

METHODS = ("harmonic", "sinusoidal", "griffinlim")
# The engine's and the renderers' default: harmonic + noise keeps the upper partials, the attack and the
# breath that the other two lose (the region table in docs/BENCHMARKS.md).
DEFAULT_METHOD = "harmonic"


@runtime_checkable
class StreamingInverter(Protocol):
    """Turns unit-scale mel frames into audio, one frame per call, with state carried between calls."""

    output_rate: int
    tail_frames: int  # frames of silence to push after the last real frame to flush all audio out
    latency_samples: int  # output samples between pushing a frame and the audio of that frame's centre

    def reset(self) -> None:
        """Back to the state of a fresh object (phases, tracks, buffers)."""

    def retune(self, harmonic_f0: float) -> None:
        """Tune to notes of another fundamental (Hz, before the pitch ratio), as if built for it; a no-op for
        an inverter built without a fundamental. :meth:`reset` follows before the next frame."""

    def process_frame(self, mel_frame: np.ndarray, *, pitch_ratio: float, out: np.ndarray, gain: float = 1.0) -> None:
        """Write exactly ``len(out)`` float32 samples for one ``(n_mels,)`` unit-scale mel frame.

        ``gain`` (positive, finite) scales this frame's audio linearly, where the method turns the frame's
        levels into amplitudes (after any threshold on the levels, so it changes which partials or bins are
        kept in no way): the gain travels with the frame through the method's latency and is crossfaded
        from the frame before's exactly as the frame's content is. A voice's loudness gain belongs here, not
        on the audio that comes out: that audio is still the frames of ``latency_samples`` ago."""


def make_inverter(method: str, *, params: SpectrogramParams, output_rate: int, **kw) -> StreamingInverter:
    """Build a streaming inverter: ``method`` is ``"harmonic"``, ``"sinusoidal"`` or ``"griffinlim"``.

    Extra keywords go to the method's constructor (``max_partials`` for sinusoidal and harmonic;
    ``look_ahead``, ``resampler`` for griffinlim).
    """
    if method == "harmonic":
        from synth.inversion.harmonic_noise import HarmonicNoiseInverter

        return HarmonicNoiseInverter(params=params, output_rate=output_rate, **kw)
    if method == "sinusoidal":
        from synth.inversion.sinusoidal import SinusoidalInverter

        return SinusoidalInverter(params=params, output_rate=output_rate, **kw)
    if method == "griffinlim":
        from synth.inversion.griffin_lim import GriffinLimInverter

        return GriffinLimInverter(params=params, output_rate=output_rate, **kw)
    raise ParameterError(f"unknown inversion method {method!r}; expected one of {', '.join(METHODS)}")


def invert(
    mel: np.ndarray,
    *,
    method: str | StreamingInverter,
    params: SpectrogramParams,
    output_rate: int,
    pitch_ratio: float = 1.0,
) -> np.ndarray:
    """Invert a whole unit-scale mel spectrogram by driving a streaming inverter frame by frame.

    Pushes the ``tail_frames`` of silence after the last frame and drops the first ``latency_samples``, so
    sample 0 of the result lines up with sample 0 of the original audio.

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, T), values in [0, 1]]
    method : "sinusoidal", "griffinlim", or an already built inverter (it is reset first)

    Returns
    -------
    np.ndarray [shape=(round(T * H),), float32] audio at ``output_rate``
    """
    mel = np.asarray(mel)
    if mel.ndim != 2 or mel.shape[0] != params.n_mels or mel.shape[1] == 0:
        raise ParameterError(f"invert: expected mel of shape ({params.n_mels}, T>0), got {mel.shape}")
    if not np.all(np.isfinite(mel)):
        raise ParameterError("invert: mel contains NaN or Inf")
    if isinstance(method, str):
        inverter = make_inverter(method, params=params, output_rate=output_rate)
    else:
        inverter = method
        if inverter.output_rate != output_rate:
            raise ParameterError(
                f"invert: inverter renders at {inverter.output_rate} Hz, asked for {output_rate} Hz"
            )
        inverter.reset()
    frames = np.ascontiguousarray(mel.T, dtype=np.float32)
    n_real = frames.shape[0]
    n_total = n_real + inverter.tail_frames
    lengths = frame_lengths(n_total, params=params, output_rate=output_rate)
    audio = np.zeros(int(lengths.sum()), dtype=np.float32)
    silence = np.zeros(params.n_mels, dtype=np.float32)
    pos = 0
    for k in range(n_total):
        frame = frames[k] if k < n_real else silence
        n = int(lengths[k])
        inverter.process_frame(frame, pitch_ratio=pitch_ratio, out=audio[pos : pos + n])
        pos += n
    n_out = int(lengths[:n_real].sum())
    start = inverter.latency_samples
    result = audio[start : start + n_out]
    if result.size < n_out:
        result = np.concatenate([result, np.zeros(n_out - result.size, dtype=np.float32)])
    return result
