"""Recording what is played to a WAV file, on its own thread, written atomically.

The file is opened (under a temporary name beside the target) when the recorder is made, so an unwritable
path is reported before anything plays. The synthesis thread hands blocks over through a queue and never
waits on the disk; :meth:`Recorder.close` drains the queue and renames the file into place.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from pathlib import Path

import numpy as np

from synth.errors import ParameterError

__all__ = ["Recorder"]


class Recorder:
    """Write mono float32 blocks to ``path`` (32-bit float WAV at ``rate``)."""

    def __init__(self, path: str | Path, *, rate: int) -> None:
        import soundfile as sf

        self.path = Path(path)
        if self.path.suffix.lower() != ".wav":
            raise ParameterError(f"recording {self.path}: the file name must end in .wav")
        if not self.path.parent.is_dir():
            # A typo in a folder name should not silently create folders: say so before any audio starts.
            raise ParameterError(f"cannot write the recording {self.path}: no such folder {self.path.parent}")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".wav.tmp", dir=self.path.parent)
            os.close(fd)
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would make the take private
        except OSError as exc:
            raise ParameterError(f"cannot write the recording {self.path}: {exc.strerror or exc}") from None
        self._tmp = Path(tmp)
        try:
            self._file = sf.SoundFile(self._tmp, mode="w", samplerate=rate, channels=1, subtype="FLOAT", format="WAV")
        except (OSError, RuntimeError) as exc:
            self._tmp.unlink(missing_ok=True)
            raise ParameterError(f"cannot write the recording {self.path}: {exc}") from None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.frames = 0
        self.error = ""
        self._closed = False
        self._discarded = False
        self._thread = threading.Thread(target=self._run, name="melsynth-record", daemon=True)
        self._thread.start()

    @property
    def thread_id(self) -> int:
        """The writing thread's native id (for its scheduling priority)."""
        return int(self._thread.native_id or 0)

    def put(self, block: np.ndarray) -> None:
        """Queue a copy of ``block`` for writing (never blocks)."""
        self._queue.put(np.array(block, dtype=np.float32, copy=True))

    def put_silence(self, frames: int) -> None:
        """Queue ``frames`` samples of silence (never blocks; nothing is allocated here)."""
        if frames > 0:
            self._queue.put(int(frames))

    def _run(self) -> None:
        silence = np.zeros(4096, dtype=np.float32)
        while True:
            block = self._queue.get()
            if block is None:
                return
            if self.error:
                continue
            try:
                if isinstance(block, int):
                    for start in range(0, block, len(silence)):
                        self._file.write(silence[: min(len(silence), block - start)])
                    self.frames += block
                    continue
                self._file.write(block)
                self.frames += len(block)
            except (OSError, RuntimeError) as exc:  # disk full and the like: keep playing, report at the end
                self.error = str(exc)

    def close(self) -> Path | None:
        """Finish the file and move it into place; returns its path (None if writing failed)."""
        if self._closed:
            return None if self.error or self._discarded else self.path
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._file.close()
        if self.error:
            self._tmp.unlink(missing_ok=True)
            return None
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Stop and delete the unfinished file (startup failed before anything played)."""
        if self._closed:
            return
        self._closed = self._discarded = True
        self._queue.put(None)
        self._thread.join()
        self._file.close()
        self._tmp.unlink(missing_ok=True)
