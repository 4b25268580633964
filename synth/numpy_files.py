"""What a file meant to hold NumPy arrays begins with, looked at before numpy reads it. ``np.load`` with
``allow_pickle=False`` calls anything that is neither a .npy nor a zip file "pickled data": a features.npy
that was a link to a text file was reported as holding pickled data."""

from __future__ import annotations

from pathlib import Path

__all__ = ["numpy_file_problem"]

_NPY = b"\x93NUMPY"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip


def numpy_file_problem(path: str | Path, *, archive: bool) -> str:
    """"" when ``path`` begins as a .npy file does (``archive``: as a .npz, a zip, does), else what is wrong,
    for a message after the path: ``not a .npy file: it begins with b'root:x:0:0' (a .npy begins with
    b'\\x93NUMPY')``. Raises OSError when it cannot be read."""
    with open(path, "rb") as fh:
        head = fh.read(10)
    if head.startswith(_ZIP if archive else (_NPY,)):
        return ""
    kind, magic = (".npz", _ZIP[0]) if archive else (".npy", _NPY)
    seen = f"it begins with {head!r}" if head else "it is empty"
    return f"not a {kind} file: {seen} (a {kind} begins with {magic!r})"
