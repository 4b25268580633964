"""The decoded timbre as a small picture: the log-mel the voices play now, for the page to draw.

A :class:`~synth.engine.timbre.Timbre` holds a note laid out for playing (held part, sustain frame, release);
the picture puts the whole note back together (the frames between the sustain loop and the note-off rest on
the sustain frame, as a held key does), averages it down to at most 128 bands by 128 frames, and sends the
contract's unit scale (0 = -100 dB, 1 = +30 dB) as bytes 0..255: 16 KB, base64 in a JSON frame.
"""

from __future__ import annotations

import base64
import dataclasses

import numpy as np

from synth.web.messages import TIMBRE, message_text

__all__ = ["TimbrePicture", "timbre_picture", "MAX_PICTURE_MELS", "MAX_PICTURE_FRAMES"]

MAX_PICTURE_MELS = 128
MAX_PICTURE_FRAMES = 128


@dataclasses.dataclass(frozen=True)
class TimbrePicture:
    """``n_mels`` rows (the lowest band first) of ``frames`` bytes each, row after row, 0..255."""

    n_mels: int
    frames: int
    pixels: bytes

    def text(self) -> str:
        """The :data:`~synth.web.messages.TIMBRE` message: ``[n_mels, frames, base64 of the pixels]``."""
        return message_text(TIMBRE, [self.n_mels, self.frames, base64.b64encode(self.pixels).decode("ascii")])


def _shrink(x: np.ndarray, axis: int, most: int) -> np.ndarray:
    """``x`` averaged along ``axis`` in runs of equal length, to at most ``most`` entries (the last run padded
    with the edge)."""
    n = x.shape[axis]
    step = -(-n // most)
    if step <= 1:
        return x
    pad = (-n) % step
    if pad:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, pad)
        x = np.pad(x, widths, mode="edge")
    shape = list(x.shape)
    shape[axis : axis + 1] = [shape[axis] // step, step]
    return x.reshape(shape).mean(axis=axis + 1)


def timbre_picture(timbre, *, frames: int, max_mels: int = MAX_PICTURE_MELS,
                   max_frames: int = MAX_PICTURE_FRAMES) -> TimbrePicture:
    """The picture of ``timbre`` (a Timbre, or a keyboard bundle's KeyedTimbre: its base key's), a note of
    ``frames`` frames (the contract's)."""
    t = timbre.for_key(None)
    held, sustain, release = t.held, t.sustain, t.release
    rest = max(0, frames - held.shape[0] - release.shape[0])
    note = np.concatenate([held, np.broadcast_to(sustain, (rest, sustain.shape[0])), release])
    small = _shrink(_shrink(note, 0, max_frames), 1, max_mels)
    pixels = np.clip(np.rint(small.T * 255.0), 0, 255).astype(np.uint8)
    return TimbrePicture(n_mels=int(pixels.shape[0]), frames=int(pixels.shape[1]), pixels=pixels.tobytes())
