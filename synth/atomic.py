"""Atomic writes: a file or folder appears complete under its final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from synth.errors import OutputError
from synth.outputs import OutputKind, check_output_file, check_output_folder

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_path", "atomic_directory", "publish_file",
           "replace_directory"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(
    path: str | Path, *, suffix: str = "", force: bool | None = None, what: str = "output",
    inputs: Iterable[str | Path | None] = (), keep: bool = False,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary name keeps ``suffix`` (e.g. ".wav") so that writers that look at the extension work.
    On any exception the temporary file is removed and ``path`` is left untouched.

    ``force`` is for a file the user named (an output flag; ``what`` names it in messages): with False an
    existing ``path`` is never replaced, with True only a regular file is, and never a symbolic link, a
    device, a FIFO or a folder, nor a file of one of ``inputs`` (:func:`synth.outputs.check_output_file`),
    checked before the work and again at the rename (:func:`publish_file`). None (the default) is for
    melsynth's own files inside a folder it writes.

    ``keep``: when the finished file may not be put at ``path`` (refused at the rename, or the rename
    fails), leave it under its temporary name and say so: an :class:`~synth.errors.OutputError` ending
    ``; what was written is kept in TMP`` (``render --out``: nothing lost of a render that took minutes).
    A failure before the file is finished still removes it.
    """
    path = Path(path)
    inputs = tuple(inputs)
    if force is not None:
        check_output_file(path, force=force, what=what, inputs=inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); the result should get the usual permissions.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        if force is None:
            os.replace(tmp, path)
        else:
            publish_file(tmp, path, force=force, what=what, inputs=inputs)
    except (OutputError, OSError) as exc:
        if not keep:
            tmp.unlink(missing_ok=True)
            raise
        why = str(exc) if isinstance(exc, OutputError) else f"{path}: cannot be put in place ({exc.strerror or exc})"
        raise OutputError(f"{why}; what was written is kept in {tmp}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_file(
    tmp: str | Path, path: str | Path, *, force: bool, what: str = "output", inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Rename the finished file ``tmp`` onto the user-named ``path`` under the rule of :func:`check_output_file`
    (``force``, ``what`` and ``inputs`` as there), checked again now: what holds the name may have changed
    while the file was written (a render takes minutes, a take hours). The one publishing step of every output
    file a user names (``render --out``, ``serve --record`` and ``--log-osc``). Returns ``path``.

    Raises :class:`~synth.errors.OutputError` (``tmp`` is then left as it is, for the caller to keep or
    remove) or ``OSError`` from the rename.
    """
    tmp, path = Path(tmp), Path(path)
    check_output_file(path, force=force, what=what, inputs=inputs)
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
            return path
    os.replace(tmp, path)
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, force: bool | None = None, what: str = "output",
                       inputs: Iterable[str | Path | None] = ()) -> None:
    with atomic_path(path, force=force, what=what, inputs=inputs) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str, *, force: bool | None = None, what: str = "output",
                      inputs: Iterable[str | Path | None] = ()) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), force=force, what=what, inputs=inputs)


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
        replace_directory(tmp, path, kind=kind, force=force, inputs=inputs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_directory(
    tmp: str | Path, path: str | Path, *, kind: OutputKind, force: bool, inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Rename the finished folder ``tmp`` onto ``path`` under :func:`synth.outputs.check_output_folder`'s rule
    (``kind``, ``force`` and ``inputs`` as there), checked again now. An earlier output at ``path`` is moved
    aside first and removed after, so ``path`` holds the old folder or the new one at every moment. Returns
    ``path``; a refusal (:class:`~synth.errors.OutputError`) or a failed rename leaves ``tmp`` as it is, for
    the caller to remove or keep (a resumable run keeps it).
    """
    tmp, path = Path(tmp), Path(path)
    check_output_folder(path, kind=kind, force=force, inputs=inputs)
    if os.path.lexists(path):
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / path.name)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    return path
