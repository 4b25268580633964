"""One writer per run folder: a lock file beside it, held while a run writes it.

``runs/NAME`` is locked through ``runs/.NAME.lock`` (beside the folder, not in it: ``--force`` removes the
folder, and a new run has none yet), with ``fcntl.flock``, which the kernel releases when the holder dies
however it dies, so a killed run never leaves a stale lock and ``--resume`` after a kill just works. A second
run naming a locked folder is refused before it reads or writes anything. The file records the holder's pid
and host for the message; it is removed when the run ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from synth.errors import OutputError

__all__ = ["run_lock", "lock_path"]


def lock_path(out: Path) -> Path:
    """The lock file of run folder ``out``."""
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def run_lock(out: str | Path) -> Iterator[Path]:
    """Hold the lock of run folder ``out`` for the ``with`` block; OutputError naming the folder and the holder
    when another process holds it."""
    out = Path(out)
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputError(f"{out}: another run is writing this run folder ({holder}); wait for it to end or "
                              f"stop it, then --resume") from None
        # The file may have been removed by the holder that just released it: then lock the new one.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    try:
        doc = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(doc['pid'])} on {doc['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its lock file names no holder"
