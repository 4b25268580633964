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
    "Timbre", "make_timbre", "splice_timbre", "blend_timbres", "estimate_timbre", "SUSTAIN_GUARD_FRAMES", "SUSTAIN_WINDOW_FRAMES",
    "RELEASE_SILENT_U",
]

# The analysis window (690 samples at hop 125) spans ~6 frames: stay clear of the note-off edge.
SUSTAIN_GUARD_FRAMES = 8
# Frames averaged into the sustain frame, and blended towards it before the sustain starts.
SUSTAIN_WINDOW_FRAMES = 40
# Release frames at the end faded out, and by how much (unit scale, 1.0 = the full dB range).
END_FADE_FRAMES = 8
END_FADE_DEPTH = 0.6
# Release frames no louder than this (unit scale) are silence to a listener: 10 dB above the floor of the
# contract's fixed 130 dB range (-90 dB), which is also where the sinusoidal inverter stops picking peaks
# (floor_db = db_min + 10). A voice ends after its last louder release frame (Timbre.audible_release_frames),
# so the engine is silent, and can take back the silence it renders ahead, as soon as nothing can be heard.
RELEASE_SILENT_U = 10.0 / 130.0


@dataclasses.dataclass(frozen=True, eq=False)
class Timbre:
    """Read-only arrays a voice reads frames from (all float32, unit scale).

    held : [shape=(sustain_start, n_mels)] frames 0..sustain_start-1, the last ``window`` ones blended to
        ``sustain``
    sustain : [shape=(n_mels,)] the frozen frame a held note rests on: the mean of frames
        ``sustain_start - window .. sustain_start - 1`` of the note
    release : [shape=(frames - hold_frames, n_mels)] frames hold_frames..frames-1, end faded out
    window : frames averaged into ``sustain`` (and blended towards it at the end of ``held``)

    ``audible_release_frames`` (derived): release frames up to and including the last one with a value above
    :data:`RELEASE_SILENT_U`; a released voice ends there.
    """

    held: np.ndarray
    sustain: np.ndarray
    release: np.ndarray
    window: int = SUSTAIN_WINDOW_FRAMES
    audible_release_frames: int = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        loud = np.flatnonzero(self.release.max(axis=1, initial=0.0) > RELEASE_SILENT_U)
        object.__setattr__(self, "audible_release_frames", int(loud[-1]) + 1 if loud.size else 0)

    @property
    def sustain_start(self) -> int:
        return int(self.held.shape[0])

    @property
    def release_frames(self) -> int:
        return int(self.release.shape[0])

    @property
    def sustain_span(self) -> tuple[int, int]:
        """Note frames ``[first, end)`` that the sustain frame (and the blend into it) is made of."""
        return self.sustain_start - self.window, self.sustain_start

    def hold_frame(self, frames: int) -> int:
        """The note frame where the release part starts, for a note of ``frames`` frames."""
        return frames - self.release_frames


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    x.setflags(write=False)
    return x


def _geometry(params: SpectrogramParams) -> tuple[int, int, int]:
    """(hold frame, sustain start, sustain window) of a note under ``params``."""
    hold = params.frame_of(3.0) if params.frames > params.frame_of(3.0) else (3 * params.frames) // 4
    guard = min(SUSTAIN_GUARD_FRAMES, hold // 4)
    window = max(1, min(SUSTAIN_WINDOW_FRAMES, (hold - guard) // 2))
    return hold, hold - guard, window


def _lay_out(part: np.ndarray, first: int, *, base: Timbre | None, params: SpectrogramParams) -> Timbre:
    """Note frames ``first .. first + len(part) - 1`` (``part``: (frames, n_mels), unit scale) laid out
    over ``base`` (every other frame from it; None: ``part`` is the whole note)."""
    hold, start, window = _geometry(params)
    part = np.clip(np.asarray(part, dtype=np.float32), 0.0, 1.0)
    lo, hi = first, first + part.shape[0]
    if base is None:
        if (lo, hi) != (0, params.frames):
            raise ValueError(f"a timbre without a base needs all {params.frames} frames, got {lo}..{hi - 1}")
        held = np.empty((start, part.shape[1]), dtype=np.float32)
        release = np.empty((params.frames - hold, part.shape[1]), dtype=np.float32)
        sustain = None
    else:
        held, release, sustain = base.held.copy(), base.release.copy(), base.sustain
    if lo <= start - window and start <= hi:
        sustain = part[start - window - lo : start - lo].mean(axis=0)
    # Held frames: as decoded, then the last ``window`` ones blended towards the sustain frame.
    a, b = max(lo, 0), min(hi, start)
    if a < b:
        held[a:b] = part[a - lo : b - lo]
        c = max(a, start - window)
        if c < b:
            ramp = (np.arange(c - (start - window) + 1, b - (start - window) + 1, dtype=np.float32) / window)[:, None]
            held[c:b] = (1 - ramp) * held[c:b] + ramp * sustain
    # Release frames: as decoded, the last END_FADE_FRAMES faded out.
    a, b = max(lo, hold), min(hi, params.frames)
    if a < b:
        release[a - hold : b - hold] = part[a - lo : b - lo]
        n_fade = min(END_FADE_FRAMES, release.shape[0])
        fade_from = release.shape[0] - n_fade
        c = max(a - hold, fade_from)
        if c < b - hold:
            depth = (np.arange(c - fade_from + 1, b - hold - fade_from + 1, dtype=np.float32) / n_fade
                     * END_FADE_DEPTH)[:, None]
            release[c : b - hold] = np.maximum(release[c : b - hold] - depth, 0.0)
    return Timbre(held=_readonly(held), sustain=_readonly(sustain), release=_readonly(release), window=window)


def make_timbre(mel: np.ndarray, *, params: SpectrogramParams) -> Timbre:
    """Lay out one decoded spectrogram.

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, frames), unit scale, finite]

    Returns
    -------
    Timbre
    """
    return _lay_out(np.asarray(mel, dtype=np.float32).T, 0, base=None, params=params)


def splice_timbre(base: Timbre, part: np.ndarray, *, first: int, params: SpectrogramParams) -> Timbre:
    """``base`` with note frames ``first .. first + part.shape[1] - 1`` replaced by ``part`` (a tile of a
    decode, see :mod:`synth.bundle.tiles`).

    Every frame of the result in that span is what :func:`make_timbre` of the whole decode gives, and the
    sustain frame too when the span holds :attr:`Timbre.sustain_span`; frames outside it are ``base``'s.

    Parameters
    ----------
    part : np.ndarray [shape=(n_mels, k), unit scale, finite]
    """
    part = np.asarray(part, dtype=np.float32)
    if not 0 <= first and first + part.shape[1] <= params.frames:
        raise ValueError(f"frames {first}..{first + part.shape[1] - 1} are outside the note's 0..{params.frames - 1}")
    return _lay_out(part.T, first, base=base, params=params)


def blend_timbres(a: Timbre, b: Timbre, w: float) -> Timbre:
    """(1 - w) * a + w * b, part by part (used to freeze a crossfade that a newer latent interrupts)."""
    w32 = np.float32(w)
    return Timbre(
        held=_readonly((1 - w32) * a.held + w32 * b.held),
        sustain=_readonly((1 - w32) * a.sustain + w32 * b.sustain),
        release=_readonly((1 - w32) * a.release + w32 * b.release),
        window=b.window,
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
    return Timbre(held=parts[0], sustain=parts[1], release=parts[2], window=known.window)
