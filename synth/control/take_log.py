"""The take log: every control message a live take applied, written as a score (``melsynth serve --log-osc``).

Entries go to a hidden JSON-lines file beside the log as they come, not into a list in memory: an hour of
``/synth/latent`` messages is gigabytes of Python floats, and every tracked object the log kept would make
the garbage collector's full passes longer than the audio buffer (the engine freezes what it loaded at
start, not what comes after). :meth:`TakeLog.write` turns the lines into the score, in time order, once
the engine has stopped, streamed: each line is read once for its time, and the lines are then copied into the
score in time order, so memory holds a time and an offset an entry (16 bytes), never the entries (parsed
whole at the end, 2,423 ``/synth/latent`` messages once took serve from 334 MB to 1,088 MB at Ctrl-C). If
that fails the lines stay where they are, and the error names them.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from array import array
from pathlib import Path

import numpy as np

from synth.atomic import atomic_path
from synth.errors import OutputError, ParameterError
from synth.outputs import check_output_file, check_take_folder

__all__ = ["TakeLog"]


class TakeLog:
    """A score being written as it is played.

    Parameters
    ----------
    path : where :meth:`write` puts the score (a JSON list of ``{"time", "address", "args"}``)
    rate : the engine's output rate; an entry's time is its sample over ``rate``, in seconds
    force : replace an existing regular file at ``path`` (``serve --force``); never a symbolic link, a
        device, a FIFO or a folder, with or without it (:func:`synth.outputs.check_output_file`)
    inputs : the take's inputs (the bundle folder, ...): the log may not be one, or replace a file of one

    Raises :class:`~synth.errors.ParameterError` at once when ``path``'s folder cannot be written, and
    :class:`~synth.errors.OutputError` when it does not exist (it is never made) or ``path`` may not be
    replaced. :meth:`add` may be called from
    several threads (OSC, MIDI).
    """

    def __init__(self, path: str | Path, *, rate: int, force: bool = False,
                 inputs: tuple[str | Path | None, ...] = ()) -> None:
        self.path = Path(path)
        self.rate = int(rate)
        self.force = bool(force)
        self.inputs = tuple(inputs)
        self.count = 0
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise ParameterError(f"cannot write the OSC log {self.path}: it is a folder (name a .json file)")
        # At once, not when the take ends: a log that may not replace what holds its name is refused before
        # anything plays (it once turned a symlink, and as root a device node, into a JSON file).
        check_output_file(self.path, force=self.force, what="the OSC log", inputs=self.inputs)
        check_take_folder(self.path, what="the OSC log")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".jsonl.tmp", dir=self.path.parent)
        except OSError as exc:
            raise ParameterError(f"cannot write the OSC log {self.path}: {exc.strerror or exc}") from None
        self.lines_path = Path(name)
        # Line-buffered: each message reaches the file as it is logged, so a take killed outright (SIGKILL, a
        # power cut) keeps what it played; block-buffered, a killed serve once left an empty lines file.
        self._file = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def add(self, at_sample: int, address: str, args: list) -> None:
        """Log one applied message, due at output sample ``at_sample``."""
        line = json.dumps({"time": at_sample / self.rate, "address": address, "args": list(args)})
        with self._lock:
            if self._file.closed:  # a message that raced the stop: the take has ended
                return
            self._file.write(line + "\n")
            self.count += 1

    def write(self) -> Path:
        """Write the score to :attr:`path` (atomically, in time order) and delete the lines; returns the path.

        Raises :class:`~synth.errors.ParameterError` naming the lines file, which is kept, when it fails.
        """
        with self._lock:
            if not self._file.closed:
                self._file.close()
        try:
            self._write_score()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # An OutputError names the log itself; an OSError only what went wrong.
            problem = (f"cannot write {exc}" if isinstance(exc, OutputError)
                       else f"cannot write the OSC log {self.path}: {getattr(exc, 'strerror', None) or exc}")
            raise ParameterError(
                f"{problem}; its {self.count} entries are kept, one JSON object a line, in {self.lines_path}"
            ) from None
        self.lines_path.unlink(missing_ok=True)
        return self.path

    def _write_score(self) -> None:
        """The lines, in time order (OSC and MIDI threads interleave; equal times keep their order), as one
        JSON list an entry a line, streamed from the lines file into the score (see the module docstring)."""
        times, offsets = array("d"), array("q")
        with open(self.lines_path, "rb") as lines:
            offset = 0
            for line in lines:
                if line.strip():
                    times.append(float(json.loads(line)["time"]))
                    offsets.append(offset)
                offset += len(line)
            order = np.argsort(np.frombuffer(times, dtype=np.float64), kind="stable") if times else ()
            # Checked again at the rename (force=): what holds the name may have changed during the take.
            with atomic_path(self.path, force=self.force, what="the OSC log", inputs=self.inputs) as tmp, \
                    open(tmp, "wb") as score:
                score.write(b"[")
                for n, i in enumerate(order):
                    lines.seek(offsets[i])
                    score.write((b"\n" if n == 0 else b",\n") + lines.readline().rstrip(b"\r\n"))
                score.write(b"\n]\n")

    def discard(self) -> None:
        """Drop the log (a start that failed before anything played)."""
        with self._lock:
            if not self._file.closed:
                self._file.close()
        self.lines_path.unlink(missing_ok=True)
