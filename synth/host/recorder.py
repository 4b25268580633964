"""Recording what is played to a WAV file, on its own thread, written atomically.

The file is opened (under a temporary name beside the target) when the recorder is made, so an unwritable
path is reported before anything plays. The synthesis thread copies each block into a pool of buffers made
here (it allocates nothing per block and never waits on the disk) and a writing thread empties them. If the
disk falls so far behind that the pool (:data:`POOL_SECONDS` of audio) is full, the blocks that find no
buffer are recorded as silence of their length, so the take keeps its timing, and :attr:`Recorder.gap_frames`
counts them; memory never grows. A write that fails (disk full) stops the recording: what was written
before is kept and :attr:`Recorder.error` says where it stopped. :meth:`Recorder.close` drains the pool and
publishes the file (:func:`synth.atomic.publish_file`, the rule of every output file a user names, checked
again at the rename: a take lasts hours, and what holds its name may change meanwhile). A take that may not
be put there is kept under its temporary name, which :attr:`Recorder.error` gives.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from pathlib import Path

import numpy as np

from synth.atomic import publish_file
from synth.errors import OutputError, ParameterError
from synth.outputs import check_output_file, check_take_folder

__all__ = ["Recorder", "POOL_SECONDS"]

# Audio the pool holds while the disk is slow: seconds of stall a take survives without a gap.
POOL_SECONDS = 20.0
_CHUNK = 1024  # samples a pool buffer holds
_FULL_BYTES = 1 << 16  # free space under which a failed write is put down to a full disk
_WHAT = "the recording"  # how messages name it


class Recorder:
    """Write mono float32 blocks to ``path`` (32-bit float WAV at ``rate``).

    ``force``: an existing regular file at ``path`` may be replaced (``serve --force``); never a symbolic
    link, a device, a FIFO or a folder, nor a file of one of ``inputs`` (the take's bundle, ...), with or
    without it (:func:`synth.outputs.check_output_file`), checked now and again when the take is published.
    """

    def __init__(self, path: str | Path, *, rate: int, force: bool = False,
                 inputs: tuple[str | Path | None, ...] = ()) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.force = bool(force)
        self.inputs = tuple(inputs)
        if self.path.suffix.lower() != ".wav":
            raise ParameterError(f"recording {self.path}: the file name must end in .wav")
        check_take_folder(self.path, what=_WHAT)  # before any audio starts
        check_output_file(self.path, force=self.force, what=_WHAT, inputs=self.inputs)
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
        self.rate = int(rate)
        chunks = max(4, int(POOL_SECONDS * self.rate) // _CHUNK)
        self._pool = np.zeros((chunks, _CHUNK), dtype=np.float32)
        self._lengths = np.zeros(chunks, dtype=np.int64)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(chunks):
            self._free.put(i)
        # Items: a buffer's index (>= 0), -frames of silence, or None to stop.
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.frames = 0
        self.gap_frames = 0
        self.error = ""
        self._closed = False
        self._discarded = False
        self._published = False
        self._thread = threading.Thread(target=self._run, name="melsynth-record", daemon=True)
        self._thread.start()

    @property
    def thread_id(self) -> int:
        """The writing thread's native id (for its scheduling priority)."""
        return int(self._thread.native_id or 0)

    def put(self, block: np.ndarray) -> None:
        """Queue ``block`` (1-D) for writing: copied into the pool; never blocks, allocates no array."""
        start, n = 0, len(block)
        while start < n:
            m = min(_CHUNK, n - start)
            try:
                i = self._free.get_nowait()
            except queue.Empty:  # the disk is that far behind: a gap of silence, never more memory
                self.gap_frames += n - start
                self._queue.put(start - n)
                return
            self._pool[i, :m] = block[start : start + m]
            self._lengths[i] = m
            self._queue.put(i)
            start += m

    def put_silence(self, frames: int) -> None:
        """Queue ``frames`` samples of silence (never blocks; nothing is allocated here)."""
        if frames > 0:
            self._queue.put(-int(frames))

    def _run(self) -> None:
        silence = np.zeros(4096, dtype=np.float32)
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if self.error:  # stopped by a failed write: the rest is drained, not written
                    continue
                if item >= 0:
                    self._file.write(self._pool[item, : self._lengths[item]])
                    self.frames += int(self._lengths[item])
                else:
                    for start in range(0, -item, len(silence)):
                        self._file.write(silence[: min(len(silence), -item - start)])
                    self.frames += -item
            except (OSError, RuntimeError) as exc:  # disk full and the like: keep playing, report at the end
                self.error = f"stopped at {self.frames / self.rate:.1f} s ({self._why(exc)}); what came before is kept"
            finally:
                if item >= 0:
                    self._free.put(item)

    def _why(self, exc: BaseException) -> str:
        """What stopped a write: libsndfile says only "System error." of a full disk, so its free space is
        looked at too."""
        import shutil

        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return str(exc)
        return f"its disk is full: {exc}" if free < _FULL_BYTES else str(exc)

    def close(self) -> Path | None:
        """Finish the file and publish it; returns its path (None if nothing could be written, or if it may
        not be put there: then :attr:`error` says why and where the take is kept)."""
        if self._closed:
            return None if self._discarded or not self._published else self.path
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        try:
            self._file.close()
        except (OSError, RuntimeError) as exc:
            self.error = self.error or f"could not be finished ({exc})"
            self.frames = 0
        if not self.frames:
            self._tmp.unlink(missing_ok=True)
            return None
        try:
            publish_file(self._tmp, self.path, force=self.force, what=_WHAT, inputs=self.inputs)
        except (OutputError, OSError) as exc:
            # Kept, never lost: what holds the name now is not the recording's to replace (or the rename
            # failed); the take stays under its temporary name, and the error gives it.
            why = str(exc).removeprefix(f"{_WHAT} ") if isinstance(exc, OutputError) else (
                f"{self.path}: cannot be put in place ({exc.strerror or exc})")
            self.error = "; ".join(filter(None, (self.error, f"{why}; the take is kept in {self._tmp}")))
            return None
        self._published = True
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
