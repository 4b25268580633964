"""Atomic writes: a file or folder appears complete under its final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from synth.outputs import OutputKind, check_output_file, check_output_folder

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path", "atomic_directory"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(
    path: str | Path, *, suffix: str = "", force: bool | None = None, what: str = "output",
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps ``suffix`` (e.g. ".wav") so that writers that look at the extension work.
    On any exception the temporary file is removed and ``path`` is left untouched.

    ``force`` is for a file the user named (an output flag; ``what`` names it in messages): with False an
    existing ``path`` is never replaced, with True only a regular file is, and never a symbolic link, a
    device, a FIFO or a folder (:func:`synth.outputs.check_output_file`), checked before the work and again
    at the rename. None (the default) is for melsynth's own files inside a folder it writes.
    """
    path = Path(path)
    if force is not None:
        check_output_file(path, force=force, what=what)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); the result should get the usual permissions.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        if force is None:
            os.replace(tmp, path)
        else:
            _publish_file(tmp, path, force=force, what=what)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _publish_file(tmp: Path, path: Path, *, force: bool, what: str) -> None:
    """Rename ``tmp`` onto the user-named ``path`` under the rule of :func:`check_output_file`, checked again
    now: what holds the name may have changed while the file was written (a take lasts hours)."""
    check_output_file(path, force=force, what=what)
    if not force:
        # A hard link fails if anything appeared under the name since the check, so nothing is replaced
        # even then; where links are not supported, the check just made has to do.
        try:
            os.link(tmp, path)
        except FileExistsError:
            check_output_file(path, force=False, what=what)  # raises, naming what is there now
            raise
        except OSError:
            pass
        else:
            tmp.unlink()
            return
    os.replace(tmp, path)


def atomic_write_bytes(path: str | Path, data: bytes, *, force: bool | None = None, what: str = "output") -> None:
    with atomic_path(path, force=force, what=what) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str, *, force: bool | None = None, what: str = "output") -> None:
    atomic_write_bytes(path, text.encode("utf-8"), force=force, what=what)


@contextlib.contextmanager
def atomic_directory(
    path: str | Path, *, kind: OutputKind, force: bool = False, inputs: Iterable[str | Path | None] = (),
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``.

    What may be replaced is :func:`synth.outputs.check_output_folder`'s rule, checked before any work and
    again just before the rename (the work may take minutes, and what holds the name may change meanwhile):
    without ``force`` nothing that exists; with it only an empty folder or an earlier output of ``kind``, and
    never a folder that is or holds one of ``inputs``. Refusals are :class:`~synth.errors.OutputError`.
    On any exception the temporary folder is removed and ``path`` is left as it was.
    """
    path = Path(path)
    check_output_folder(path, kind=kind, force=force, inputs=inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        check_output_folder(path, kind=kind, force=force, inputs=inputs)
        if os.path.lexists(path):
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
