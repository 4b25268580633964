"""A decoded spectrogram laid out for playing: the hold part, a frozen sustain frame, the release part.

A note of the model is 4 s: held for ``hold_frames`` (3 s = frame 384) then released. A voice plays the hold
part from frame 0; if the key is still down it sustains on one frozen frame, the mean of the late hold part
(frames a little before the note-off edge, whose analysis window would already see the release). The last
frames before that point are blended into the sustain frame so that reaching it is smooth. Note-off moves a
voice into the release part, whose last frames are faded out in dB so that every note ends in silence.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth.spectrogram import SpectrogramParams

__all__ = [
    "Timbre", "make_timbre", "blend_timbres", "estimate_timbre", "SUSTAIN_GUARD_FRAMES", "SUSTAIN_WINDOW_FRAMES",
]

# The analysis window (690 samples at hop 125) spans ~6 frames: stay clear of the note-off edge.
SUSTAIN_GUARD_FRAMES = 8
# Frames averaged into the sustain frame, and blended towards it before the sustain starts.
SUSTAIN_WINDOW_FRAMES = 40
# Release frames at the end faded out, and by how much (unit scale, 1.0 = the full dB range).
END_FADE_FRAMES = 8
END_FADE_DEPTH = 0.6


@dataclasses.dataclass(frozen=True, eq=False)
class Timbre:
    """Read-only arrays a voice reads frames from (all float32, unit scale).

    held : [shape=(sustain_start, n_mels)] frames 0..sustain_start-1, the last ones blended to ``sustain``
    sustain : [shape=(n_mels,)] the frozen frame a held note rests on
    release : [shape=(frames - hold_frames, n_mels)] frames hold_frames..frames-1, end faded out
    """

    held: np.ndarray
    sustain: np.ndarray
    release: np.ndarray

    @property
    def sustain_start(self) -> int:
        return int(self.held.shape[0])

    @property
    def release_frames(self) -> int:
        return int(self.release.shape[0])


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    x.setflags(write=False)
    return x


def make_timbre(spec: np.ndarray, *, params: SpectrogramParams) -> Timbre:
    """Lay out one decoded spectrogram.

    Parameters
    ----------
    spec : np.ndarray [shape=(n_mels, frames), unit scale, finite]

    Returns
    -------
    Timbre
    """
    frames_major = np.clip(np.asarray(spec, dtype=np.float32).T, 0.0, 1.0)  # (frames, n_mels)
    hold = params.frame_of(3.0) if params.frames > params.frame_of(3.0) else (3 * params.frames) // 4
    guard = min(SUSTAIN_GUARD_FRAMES, hold // 4)
    window = max(1, min(SUSTAIN_WINDOW_FRAMES, (hold - guard) // 2))
    start = hold - guard
    sustain = frames_major[start - window : start].mean(axis=0)
    held = frames_major[:start].copy()
    ramp = (np.arange(1, window + 1, dtype=np.float32) / window)[:, None]
    held[start - window :] = (1 - ramp) * held[start - window :] + ramp * sustain
    release = frames_major[hold:].copy()
    n_fade = min(END_FADE_FRAMES, release.shape[0])
    if n_fade:
        fade = (np.arange(1, n_fade + 1, dtype=np.float32) / n_fade * END_FADE_DEPTH)[:, None]
        release[-n_fade:] = np.maximum(release[-n_fade:] - fade, 0.0)
    return Timbre(held=_readonly(held), sustain=_readonly(sustain), release=_readonly(release))


def blend_timbres(a: Timbre, b: Timbre, w: float) -> Timbre:
    """(1 - w) * a + w * b, part by part (used to freeze a crossfade that a newer latent interrupts)."""
    w32 = np.float32(w)
    return Timbre(
        held=_readonly((1 - w32) * a.held + w32 * b.held),
        sustain=_readonly((1 - w32) * a.sustain + w32 * b.sustain),
        release=_readonly((1 - w32) * a.release + w32 * b.release),
    )


def estimate_timbre(known: Timbre, steps: list[tuple[float, Timbre]]) -> Timbre:
    """``known + sum_i w_i * timbre_i``, clipped to the unit range, part by part.

    A first-order estimate of the timbre of a latent near one already decoded (``known``): for a move from
    preset weights ``u`` to ``v`` the steps are ``(v_i - u_i, timbre of preset i)``. Used by the live engine
    to sound a morph or XY move at the next frame while the decoder works on the exact timbre.
    """
    parts = []
    for name in ("held", "sustain", "release"):
        acc = np.array(getattr(known, name), dtype=np.float32)
        for w, timbre in steps:
            acc += np.float32(w) * getattr(timbre, name)
        parts.append(_readonly(np.clip(acc, 0.0, 1.0, out=acc)))
    return Timbre(held=parts[0], sustain=parts[1], release=parts[2])
