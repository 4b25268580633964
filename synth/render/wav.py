"""Writing rendered audio: 24-bit PCM or 32-bit float WAV, atomically, never beyond full scale.

The engine's limiter already keeps every sample within its ceiling (-0.2 dBFS). :func:`guard_full_scale` is
the last guard before the file: it replaces anything non-finite by silence and clips to full scale, and
counts what it had to touch, so a fault upstream shows up as a number instead of as wrapped-around PCM.

A file appears under its final name complete or not at all (:func:`synth.atomic.atomic_path`); an
interrupted render leaves at most a hidden ``.NAME.*.wav.tmp`` that is removed on the way out.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from synth.atomic import atomic_path
from synth.errors import ParameterError

__all__ = ["FORMATS", "WavWriter", "open_wav", "write_wav", "guard_full_scale", "check_output_path"]

# --format name -> libsndfile subtype.
FORMATS = {"pcm24": "PCM_24", "float": "FLOAT"}
# The largest value a 24-bit sample can hold, as a float: 1.0 itself would wrap to the most negative value.
_PCM24_MAX = 1.0 - 2.0**-23


def guard_full_scale(block: np.ndarray, *, fmt: str = "float") -> int:
    """Make ``block`` (float32, any shape) safe to write, in place; returns how many samples were changed.

    Non-finite samples become 0; samples beyond full scale are clipped to it (for ``"pcm24"`` to the
    largest 24-bit value below 1.0).
    """
    if fmt not in FORMATS:
        raise ParameterError(f"unknown WAV format {fmt!r}; use {' or '.join(FORMATS)}")
    top = _PCM24_MAX if fmt == "pcm24" else 1.0
    bad = ~np.isfinite(block)
    changed = int(np.count_nonzero(bad))
    if changed:
        block[bad] = 0.0
    over = np.abs(block) > top
    n_over = int(np.count_nonzero(over))
    if n_over:
        np.clip(block, -top, top, out=block)
    return changed + n_over


def check_output_path(path: str | Path, *, suffix: str = ".wav", force: bool = False) -> Path:
    """Refuse an output path before any work: wrong suffix, an existing file without ``force``, and, even with
    it, anything but a regular file (a folder, a symbolic link, a device: :func:`synth.outputs.check_output_file`).

    Raises :class:`~synth.errors.ParameterError` naming the path.
    """
    from synth.outputs import check_output_file

    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ParameterError(f"{path}: the output file name must end in {suffix}")
    check_output_file(path, force=force, what="output")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ParameterError(f"{path}: {parent} is not a folder")
    return path


class WavWriter:
    """Append mono float32 blocks to a WAV being written under a temporary name (see :func:`open_wav`).

    ``frames`` counts the samples written, ``peak`` is the largest absolute sample written, ``guarded``
    counts the samples :func:`guard_full_scale` had to change.
    """

    def __init__(self, file, *, fmt: str, path: Path) -> None:
        self._file = file
        self.fmt = fmt
        self.path = path
        self.frames = 0
        self.peak = 0.0
        self.guarded = 0

    def write(self, block: np.ndarray) -> None:
        """Write one block [shape=(n,)] (copied before the guard, so the caller's array is untouched)."""
        block = np.array(block, dtype=np.float32, copy=True).reshape(-1)
        if block.size == 0:
            return
        self.guarded += guard_full_scale(block, fmt=self.fmt)
        self.peak = max(self.peak, float(np.abs(block).max()))
        try:
            self._file.write(block)
        except (OSError, RuntimeError) as exc:  # disk full and the like (libsndfile raises RuntimeError)
            raise ParameterError(f"cannot write {self.path}: {exc}") from None
        self.frames += block.size


@contextlib.contextmanager
def open_wav(path: str | Path, *, rate: int, fmt: str = "pcm24", force: bool | None = None) -> Iterator[WavWriter]:
    """Yield a :class:`WavWriter`; on success the file is renamed onto ``path``, on any error removed, except
    that a user-named file (``force`` not None) whose rename is refused is kept under its temporary name and
    the :class:`~synth.errors.OutputError` says where.

    Parameters
    ----------
    path : the ``.wav`` file to write
    rate : sample rate (Hz)
    fmt : "pcm24" (24-bit PCM) or "float" (32-bit float)
    force : for a file the user named (``render --out``): whether an existing regular file may be replaced,
        checked again at the rename (:func:`synth.atomic.publish_file`); None: melsynth's own file
    """
    import soundfile as sf

    if fmt not in FORMATS:
        raise ParameterError(f"unknown WAV format {fmt!r}; use {' or '.join(FORMATS)}")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ParameterError(f"sample rate must be a positive integer, got {rate!r}")
    path = Path(path)
    stack = contextlib.ExitStack()
    try:
        # A user-named file (force not None) refused at its rename is kept, the error saying where.
        tmp = stack.enter_context(atomic_path(path, suffix=".wav", force=force, keep=force is not None))
        file = stack.enter_context(
            sf.SoundFile(tmp, mode="w", samplerate=rate, channels=1, subtype=FORMATS[fmt], format="WAV")
        )
    except (OSError, RuntimeError) as exc:
        # Leave with the error, so that atomic_path removes its temporary file instead of publishing it.
        stack.__exit__(*sys.exc_info())
        raise ParameterError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None
    with stack:
        yield WavWriter(file, fmt=fmt, path=path)


def write_wav(path: str | Path, audio: np.ndarray, *, rate: int, fmt: str = "pcm24",
              force: bool | None = None) -> WavWriter:
    """Write a whole mono signal [shape=(n,), float] to ``path``; returns the finished writer's figures
    (``force`` as :func:`open_wav`'s)."""
    audio = np.asarray(audio)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise ParameterError(f"expected mono float audio of shape (n,), got {audio.dtype} {audio.shape}")
    with open_wav(path, rate=rate, fmt=fmt, force=force) as writer:
        writer.write(audio)
    return writer

