"""Capture what native libraries write straight to file descriptor 2 (not through ``sys.stderr``).

libjack prints "Cannot connect to server socket" and more when a client probes for a server that is not
there; TensorFlow prints its start-up notices. Those lines are expected and say nothing to a user, so the
probes run inside :func:`captured_native_stderr`, which hands the lines back for the caller to filter.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["captured_native_stderr"]


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Redirect descriptor 2 to a temporary file for the ``with`` block; the list it yields is filled with the
    captured lines when the block ends."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(line for line in capture.read().decode("utf-8", "replace").splitlines() if line.strip())
