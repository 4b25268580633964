"""Features in shards: many notes' log-mels as float16 files of a fixed number of notes, read row by row.

A features folder too large to hold (all of NSynth is 80 GB as float32; the keyboard set of 36-84 at every
key ~15 GB) is written as ``shards/shard-00000.npy`` ... each ``(notes, n_mels, frames)`` in float16 (the
unit scale's 11-bit mantissa is 0.06 dB at the top of the 130 dB range), with ``shards.json`` recording each
shard's file, first row, row count and SHA-256. :class:`ShardedArray` presents them as one read-only
``(N, n_mels, frames)`` float32 array to the code that indexes ``Features.x``:

- rows are read with ``os.pread`` into a fresh array, not through a memory map, so what a process has read
  does not stay mapped in it: its resident memory stays flat however large the set (the page cache still
  speeds up a second epoch, outside the process);
- each row is checked the first time it is read (once per process), against the SHA-256 of that row that
  the writer recorded in the shard's row-hash file (``shard-00000.sha256``: 32 bytes a row, its own SHA-256
  in ``shards.json``), and for finite values: the check hashes the bytes the read fetched anyway, so a
  command that uses a few notes of a many-shard set reads those notes and nothing else (a corrupt row is
  named when it is read, the shard's other rows stay usable). A shard written before row hashes (no
  ``rows_sha256`` in its record) is checked whole, SHA-256 and values, the first time a row of it is read.

The one-file layout (a float32 ``features.npy``) is checked the same way by :class:`CheckedRows`: its
``checksums.json`` records, beside the whole file's SHA-256, one per block of :data:`BLOCK_ROWS` rows
(:func:`features_checksums`), each checked the first time a row of the block is read. Either array keeps the
first :class:`~synth.errors.DataError` its checks raised as ``failure``, so a caller that sees it only through
TensorFlow (a check failing inside a tf.data ``numpy_function``) can raise it as it was.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError

__all__ = ["BLOCK_ROWS", "SHARDS_FILE", "SHARDS_FORMAT", "CheckedRows", "Shard", "ShardedArray", "features_checksums",
           "write_shard", "read_shard_table", "row_hash_file", "row_indices"]

SHARDS_FILE = "shards.json"
SHARDS_FORMAT = "melsynth.shards/1"
_DTYPE = np.dtype("<f2")
#: Rows of a one-file features.npy hashed together: 256 notes of 128 x 512 float32 values are 64 MB.
BLOCK_ROWS = 256
#: Bytes read at once while a shard or block is checked.
_CHUNK_BYTES = 4 << 20


def _verify_bytes(path: Path, *, hash_from: int, data_from: int, stop: int, dtype: np.dtype, expected: str,
                  what: str) -> None:
    """Check that bytes ``[hash_from, stop)`` of ``path`` hash to ``expected`` (SHA-256) and that the values in
    ``[data_from, stop)`` are finite, streamed in chunks (never mapped); ``what`` names them in the error.
    A file that fails both reports the checksum: the values of a changed file say nothing."""
    digest = hashlib.sha256()
    finite = True
    chunk = max(dtype.itemsize, _CHUNK_BYTES // dtype.itemsize * dtype.itemsize)
    with open(path, "rb") as fh:
        fh.seek(hash_from)
        if data_from > hash_from:
            digest.update(fh.read(data_from - hash_from))
        at = data_from
        while at < stop:
            block = fh.read(min(chunk, stop - at))
            if not block:
                break
            digest.update(block)
            finite = finite and bool(np.all(np.isfinite(np.frombuffer(block, dtype=dtype))))
            at += len(block)
    if digest.hexdigest() != expected:
        raise DataError(f"{path}: checksum mismatch{what} (the file is corrupt or was changed after it was written)")
    if not finite:
        raise DataError(f"{path}: contains NaN or Inf{what}")


def row_indices(key: Any, n: int) -> np.ndarray | int:
    """The rows an index of a features array names: an int (negative counts from the end) or an int64 array
    for a slice or a 1-D integer array; TypeError for anything else, IndexError for a row outside 0..n-1."""
    if isinstance(key, (int, np.integer)):
        row = int(key) + (n if key < 0 else 0)
        if not 0 <= row < n:
            raise IndexError(f"row {int(key)} outside 0..{n - 1}")
        return row
    if isinstance(key, slice):
        return np.arange(*key.indices(n))
    rows = np.asarray(key)
    if rows.dtype == bool or rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise TypeError("a features array takes an int, a slice or a 1-D array of row indices")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise IndexError(f"rows outside 0..{n - 1}")
    return rows.astype(np.int64)


def features_checksums(npy: Path, *, rows: int, row_bytes: int, offset: int, block_rows: int = BLOCK_ROWS,
                       expected: str | None = None) -> dict[str, Any]:
    """``checksums.json`` of a one-file features folder: the SHA-256 of ``features.npy`` and of each block of
    ``block_rows`` rows (data starting at byte ``offset``), in one streamed pass. With ``expected`` (the
    whole file's recorded hash) the pass is also its check: DataError for another hash, or for values that
    are not finite."""
    whole = hashlib.sha256()
    blocks: list[str] = []
    bad_rows = None
    with open(npy, "rb") as fh:
        whole.update(fh.read(offset))
        for first in range(0, rows, block_rows):
            count = min(block_rows, rows - first)
            digest = hashlib.sha256()
            left = count * row_bytes
            while left:
                chunk = fh.read(min(left, _CHUNK_BYTES))
                if not chunk:
                    raise DataError(f"{npy}: truncated at row {first + count - left // row_bytes}")
                whole.update(chunk)
                digest.update(chunk)
                left -= len(chunk)
                if bad_rows is None and not np.all(np.isfinite(np.frombuffer(chunk, dtype="<f4"))):
                    bad_rows = f"rows {first}..{first + count - 1}"
            blocks.append(digest.hexdigest())
        whole.update(fh.read())
    if expected is not None and whole.hexdigest() != expected:
        raise DataError(f"{npy}: checksum mismatch (file is corrupt or was changed after it was written)")
    if expected is not None and bad_rows is not None:
        raise DataError(f"{npy}: contains NaN or Inf ({bad_rows})")
    return {"features.npy": whole.hexdigest(),
            "blocks": {"file": "features.npy", "rows": block_rows, "sha256": blocks}}


@dataclasses.dataclass(frozen=True)
class Shard:
    """One shard file: rows ``[start, start + rows)`` of the set; ``sha256`` the file's, ``rows_sha256`` that of
    its row-hash file (:func:`row_hash_file`; "" for a shard written before them)."""

    file: str
    start: int
    rows: int
    sha256: str
    rows_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        if not self.rows_sha256:
            del doc["rows_sha256"]
        return doc


def row_hash_file(file: str) -> str:
    """The name of the row-hash file of shard file ``file`` (``shard-00000.npy`` -> ``shard-00000.sha256``)."""
    return file[: -len(".npy")] + ".sha256" if file.endswith(".npy") else file + ".sha256"


def _header_bytes(path: Path, *, shape: tuple[int, ...]) -> int:
    """Where the data of an ``.npy`` file starts, after checking it holds little-endian float16 of ``shape``."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            header = read(fh)  # (shape, fortran order, dtype)
            offset = fh.tell()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy shard ({exc})") from None
    got_shape, fortran, dtype = header
    if tuple(got_shape) != shape or fortran or np.dtype(dtype) != _DTYPE:
        raise DataError(f"{path}: expected a float16 shard of shape {shape}, got {np.dtype(dtype)} {tuple(got_shape)}")
    return offset


def write_shard(path: Path, x: np.ndarray) -> Shard:
    """Write ``x`` ((rows, n_mels, frames), unit scale) as a float16 shard at ``path`` and its row hashes beside
    it (:func:`row_hash_file`), each atomically; returns its record with ``start`` 0 (the caller sets it)."""
    from synth.atomic import atomic_path, atomic_write_bytes

    data = np.ascontiguousarray(x, dtype=_DTYPE)
    rows = b"".join(hashlib.sha256(row).digest() for row in data)  # a row's bytes are the file's, in order
    atomic_write_bytes(path.with_name(row_hash_file(path.name)), rows)
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as fh:
        np.lib.format.write_array(fh, data, allow_pickle=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Shard(file=path.name, start=0, rows=int(data.shape[0]), sha256=digest,
                 rows_sha256=hashlib.sha256(rows).hexdigest())


def read_shard_table(path: Path) -> list[Shard]:
    """The shards of a features folder's ``shards.json``, checked to tile rows 0..N-1 in order."""
    from synth.json_files import read_json_file

    doc = read_json_file(path / SHARDS_FILE, what="features shards", error=DataError)
    if not isinstance(doc, dict) or doc.get("format") != SHARDS_FORMAT or not isinstance(doc.get("shards"), list):
        raise DataError(f"{path / SHARDS_FILE}: expected {{'format': {SHARDS_FORMAT!r}, 'shards': [...]}}")
    shards = []
    expected = 0
    for i, item in enumerate(doc["shards"]):
        try:
            shard = Shard(file=str(item["file"]), start=int(item["start"]), rows=int(item["rows"]),
                          sha256=str(item["sha256"]), rows_sha256=str(item.get("rows_sha256", "")))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path / SHARDS_FILE}: shard {i} is malformed") from None
        if shard.start != expected or shard.rows < 1 or "/" in shard.file or shard.file.startswith("."):
            raise DataError(f"{path / SHARDS_FILE}: shard {i} ({shard.file}) does not follow row {expected - 1}")
        expected += shard.rows
        shards.append(shard)
    return shards


class ShardedArray:
    """A read-only ``(N, n_mels, frames)`` float32 view of float16 shards (see the module docstring).

    Indexing takes an int, a slice or an integer array (any order, repeats allowed) and returns a new
    float32 array; ``np.asarray`` of the whole reads every shard.
    """

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, folder: Path, shards: list[Shard], *, n_mels: int, frames: int, verify: bool = True) -> None:
        self.folder = Path(folder)
        self.shards = list(shards)
        self._starts = [s.start for s in self.shards]
        self._row_shape = (n_mels, frames)
        self._row_bytes = n_mels * frames * _DTYPE.itemsize
        self.shape = (sum(s.rows for s in self.shards), n_mels, frames)
        self._verify = verify
        self._checked: set[int] = set()  # shards checked whole (those without row hashes)
        self._row_checked = np.zeros(self.shape[0], dtype=bool)
        self._row_hashes: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self.failure: DataError | None = None
        self._offsets: dict[int, int] = {}
        for k, shard in enumerate(self.shards):
            path = self.folder / shard.file
            if not path.is_file():
                raise DataError(f"{path}: missing shard (rows {shard.start}..{shard.start + shard.rows - 1})")
            self._offsets[k] = _header_bytes(path, shape=(shard.rows, n_mels, frames))

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of the whole set as float32 (what holding it in memory would take)."""
        return int(np.prod(self.shape)) * 4

    def _fail(self, exc: DataError) -> DataError:
        self.failure = self.failure or exc
        return exc

    def _hashes(self, k: int) -> bytes:
        """The row hashes of shard ``k``, read and checked against its record the first time they are needed."""
        hashes = self._row_hashes.get(k)
        if hashes is not None:
            return hashes
        with self._lock:
            if k not in self._row_hashes:
                shard = self.shards[k]
                path = self.folder / row_hash_file(shard.file)
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise self._fail(DataError(f"{path}: missing or unreadable row hashes of {shard.file} "
                                               f"({exc.strerror})")) from None
                if len(data) != 32 * shard.rows or hashlib.sha256(data).hexdigest() != shard.rows_sha256:
                    raise self._fail(DataError(f"{path}: checksum mismatch (the row hashes of {shard.file} are "
                                               "corrupt or were changed after they were written)"))
                self._row_hashes[k] = data
            return self._row_hashes[k]

    def _check_row(self, k: int, row: int, data: bytes) -> None:
        """The first read of ``row`` (of shard ``k``, which has row hashes): the bytes read hash to the
        recorded ones, and hold finite values."""
        shard = self.shards[k]
        j = row - shard.start
        if hashlib.sha256(data).digest() != self._hashes(k)[32 * j : 32 * (j + 1)]:
            raise self._fail(DataError(f"{self.folder / shard.file}: checksum mismatch at row {row} (note {j} of "
                                       "the shard; the file is corrupt or was changed after it was written)"))
        if not np.all(np.isfinite(np.frombuffer(data, dtype=_DTYPE))):
            raise self._fail(DataError(f"{self.folder / shard.file}: contains NaN or Inf at row {row}"))
        self._row_checked[row] = True  # idempotent: two threads checking one row both find it good

    def _check(self, k: int) -> None:
        """The first read of shard ``k`` without row hashes: its SHA-256 and finite values, whole (streamed)."""
        if not self._verify or k in self._checked:
            return
        with self._lock:
            if k in self._checked:
                return
            shard = self.shards[k]
            path = self.folder / shard.file
            try:
                _verify_bytes(path, hash_from=0, data_from=self._offsets[k],
                              stop=self._offsets[k] + shard.rows * self._row_bytes, dtype=_DTYPE,
                              expected=shard.sha256, what="")
            except DataError as exc:
                self.failure = self.failure or exc
                raise
            self._checked.add(k)

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((rows.size, *self._row_shape), dtype=np.float32)
        for i, row in enumerate(rows.tolist()):
            if not 0 <= row < self.shape[0]:
                raise IndexError(f"row {row} outside 0..{self.shape[0] - 1}")
            k = bisect.bisect_right(self._starts, row) - 1
            shard = self.shards[k]
            by_row = self._verify and bool(shard.rows_sha256)
            if not by_row:
                self._check(k)
            offset = self._offsets[k] + (row - shard.start) * self._row_bytes
            fd = os.open(self.folder / shard.file, os.O_RDONLY)
            try:
                data = os.pread(fd, self._row_bytes, offset)
            finally:
                os.close(fd)
            if len(data) != self._row_bytes:
                raise self._fail(DataError(f"{self.folder / shard.file}: truncated at row {row}"))
            if by_row and not self._row_checked[row]:
                self._check_row(k, row, data)
            out[i] = np.frombuffer(data, dtype=_DTYPE).reshape(self._row_shape)
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = row_indices(key, self.shape[0])
        if isinstance(rows, int):
            return self._read_rows(np.array([rows]))[0]
        return self._read_rows(rows)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self._read_rows(np.arange(self.shape[0]))
        return whole if dtype is None else whole.astype(dtype, copy=False)


class CheckedRows:
    """A float32 ``features.npy`` memory map whose blocks of ``block_rows`` rows are each checked (recorded
    SHA-256, finite values) the first time a row of them is read, once per process (module docstring).

    Indexing takes what :class:`ShardedArray` takes and returns the memory map's rows; ``np.asarray`` of the
    whole checks every block first.
    """

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, x: np.ndarray, path: Path, *, offset: int, block_rows: int, sha256: list[str]) -> None:
        self._x = x
        self.path = Path(path)
        self.shape = tuple(x.shape)
        self._offset = offset
        self._row_bytes = int(np.prod(self.shape[1:])) * 4
        self._block_rows = block_rows
        self._sha256 = list(sha256)
        self._checked: set[int] = set()
        self._lock = threading.Lock()
        self.failure: DataError | None = None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(self._x.nbytes)

    def _check(self, blocks: Any) -> None:
        for k in sorted(set(blocks) - self._checked):
            with self._lock:
                if k in self._checked:
                    continue
                first = k * self._block_rows
                last = min(first + self._block_rows, self.shape[0]) - 1
                start = self._offset + first * self._row_bytes
                try:
                    _verify_bytes(self.path, hash_from=start, data_from=start,
                                  stop=self._offset + (last + 1) * self._row_bytes, dtype=np.dtype("<f4"),
                                  expected=self._sha256[k], what=f" (rows {first}..{last})")
                except DataError as exc:
                    self.failure = self.failure or exc
                    raise
                self._checked.add(k)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = row_indices(key, self.shape[0])
        if isinstance(rows, int):
            self._check([rows // self._block_rows])
            return self._x[rows]
        self._check(np.unique(rows // self._block_rows).tolist())
        # A slice stays a view of the map (read when used), as it was before the map was wrapped.
        return self._x[key] if isinstance(key, slice) else self._x[rows]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        self._check(range(len(self._sha256)))
        return np.asarray(self._x, dtype=dtype)
