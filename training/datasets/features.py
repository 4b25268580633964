"""The features folder: normalised log-mels of an NSynth-format folder, ready for memory-mapped training.

Layout of ``DIR``:

- ``features.npy``: float32 array of shape (N, n_mels, frames), loadable with ``np.load(..., mmap_mode="r")``;
- ``index.json``: ``{"rows": [{"note_str": ..., <examples.json metadata>}, ...]}`` in row order;
- ``spectrogram.json``: the contract the rows were computed with (:mod:`synth.spectrogram`);
- ``splits.json``: ``{"rule": "instrument"|"random", "seed": int, "train": [rows], "valid": [rows],
  "test": [rows]}``;
- ``checksums.json``: SHA-256 of ``features.npy`` and of each block of 256 rows (``"blocks"``), each block
  checked the first time one of its rows is read, so a corrupt file is caught without reading it whole before
  every command.

Or, for sets too large to hold, ``shards/`` in place of ``features.npy``: float16 shards and their
``shards.json`` (:mod:`training.datasets.shards`), ``checksums.json`` then holding the SHA-256 of
``shards/shards.json``, each shard's own checked the first time a row of it is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError
from synth.json_files import read_json_file
from synth.numpy_files import numpy_file_problem
from synth.spectrogram import SpectrogramParams

__all__ = ["Features", "NoteRows", "load_features", "sha256_file", "SPLIT_NAMES"]

SPLIT_NAMES = ("train", "valid", "test")


def sha256_file(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class NoteRows:
    """Rows ``rows`` of a features array ``x`` as a (len(rows), n_mels, frames) array-like read a slice at a
    time: ``view[a:b]`` reads rows ``rows[a:b]`` (as float32) and nothing else, so a step that streams a
    split through it never holds the split."""

    def __init__(self, x: Any, rows: np.ndarray) -> None:
        self.x = x
        self.rows = np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), *tuple(x.shape[1:]))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, part: slice) -> np.ndarray:
        if not isinstance(part, slice):
            raise TypeError("note rows are read by slices")
        return np.asarray(self.x[self.rows[part]], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Features:
    """A loaded features folder.

    ``x`` is the memory-mapped (N, n_mels, frames) float32 array; ``rows`` the metadata per row;
    ``splits`` maps "train"/"valid"/"test" to sorted row-index arrays.
    """

    path: Path
    x: np.ndarray
    rows: list[dict[str, Any]]
    splits: dict[str, np.ndarray]
    split_rule: str
    split_seed: int
    params: SpectrogramParams

    def subset(self, split: str) -> np.ndarray:
        """Row indices of ``split``; an empty split is an error."""
        idx = self.splits[split]
        if idx.size == 0:
            why = ""
            if self.split_rule == "instrument":
                n = len({str(r.get("instrument_str")) for r in self.rows})
                if n < 3:
                    why = (f" (its notes are split by instrument, and it has {n}: each split needs one of its own; "
                           "make the features again with --split random, or record more instruments)")
            raise DataError(f"{self.path}: the {split!r} split is empty{why}")
        return idx

    def notes(self, rows: np.ndarray) -> NoteRows:
        """Rows ``rows`` of the features, read a slice at a time (:class:`NoteRows`)."""
        return NoteRows(self.x, rows)

    def differences(self, recorded: dict[str, Any]) -> list[str]:
        """How this folder's :meth:`description` differs from a ``recorded`` one, as "key recorded -> now"
        strings, over the keys ``recorded`` has; not the path (a folder may move: what it holds counts)."""
        have = self.description()
        return [f"{key} {recorded[key]!r} -> {have[key]!r}" for key in sorted(have)
                if key != "path" and key in recorded and recorded[key] != have[key]]

    def description(self) -> dict[str, Any]:
        """A JSON-ready description for run folders and bundles."""
        families = sorted({r.get("instrument_family_str", "?") for r in self.rows})
        return {
            "path": str(self.path),
            "notes": len(self.rows),
            "split_rule": self.split_rule,
            "split_seed": self.split_seed,
            "split_sizes": {k: int(v.size) for k, v in self.splits.items()},
            "families": families,
            "pitches": sorted({int(r.get("pitch", -1)) for r in self.rows}),
            "sources": sorted({str(r.get("dataset_source", "nsynth")) for r in self.rows}),
        }


def load_features(path: str | Path, *, verify: bool = True) -> Features:
    """Open a features folder written by ``melsynth dataset features``.

    Parameters
    ----------
    path : folder holding features.npy, index.json, spectrogram.json, splits.json, checksums.json
    verify : check the recorded SHA-256 and that values are finite: of each shard, or of each block of rows of
        features.npy, the first time a row of it is read (opening reads none; a features.npy written before
        block hashes were recorded is checked whole once and given them)

    Raises
    ------
    DataError
        for a missing, malformed, corrupt or inconsistent folder; the message names the file.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such features folder")
    params = SpectrogramParams.load(path / "spectrogram.json")
    index = read_json_file(path / "index.json", what="features index", error=DataError)
    rows = index.get("rows") if isinstance(index, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "note_str" in r for r in rows):
        raise DataError(f"{path / 'index.json'}: expected {{'rows': [{{'note_str': ...}}, ...]}}")
    if (path / "shards").is_dir():
        x = _load_sharded(path, params=params, rows=len(rows), verify=verify)
        return _finish(path, x, rows, params)
    npy = path / "features.npy"
    if not npy.is_file():
        raise DataError(f"{npy}: missing")
    sums = read_json_file(path / "checksums.json", what="features checksums", error=DataError) if verify else None
    try:
        problem = numpy_file_problem(npy, archive=False)
        if problem:
            raise DataError(f"{npy}: {problem}")
        x = np.load(npy, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{npy}: not a readable .npy array ({exc})") from None
    want = (len(rows), params.n_mels, params.frames)
    if x.shape != want or x.dtype != np.float32:
        raise DataError(f"{npy}: expected float32 array of shape {want}, got {x.dtype} {x.shape}")
    if verify:
        x = _checked(npy, x, sums)
    return _finish(path, x, rows, params)


def _checked(npy: Path, x: np.ndarray, sums: Any):
    """The memory map ``x`` of ``npy`` checked by blocks as they are read (:class:`CheckedRows`) when
    ``checksums.json`` (``sums``) records them; a folder written before that is checked whole once, as it
    always was, and its block hashes (from the same pass) added to its checksums.json, so that the next
    command reads nothing before it starts (a folder it cannot write is checked whole each time)."""
    from synth.atomic import atomic_write_text
    from training.datasets.shards import CheckedRows, features_checksums

    expected = sums.get("features.npy") if isinstance(sums, dict) else None
    if not isinstance(expected, str):
        raise DataError(f"{npy.parent / 'checksums.json'}: records no SHA-256 of features.npy")
    offset = int(x.offset)
    blocks = sums.get("blocks")
    row_bytes = int(np.prod(x.shape[1:])) * 4
    if isinstance(blocks, dict) and blocks.get("file") == "features.npy":
        block_rows, hashes = blocks.get("rows"), blocks.get("sha256")
        if (not isinstance(block_rows, int) or isinstance(block_rows, bool) or block_rows < 1
                or not isinstance(hashes, list) or len(hashes) != -(-len(x) // block_rows)
                or not all(isinstance(h, str) for h in hashes)):
            raise DataError(f"{npy.parent / 'checksums.json'}: its blocks do not cover the {len(x)} rows of "
                            "features.npy")
        return CheckedRows(x, npy, offset=offset, block_rows=block_rows, sha256=hashes)
    record = features_checksums(npy, rows=len(x), row_bytes=row_bytes, offset=offset, expected=expected)
    try:
        atomic_write_text(npy.parent / "checksums.json", json.dumps(record, indent=1) + "\n")
    except OSError:
        pass  # a read-only folder: checked whole again next time
    return x


def _load_sharded(path: Path, *, params: SpectrogramParams, rows: int, verify: bool):
    from training.datasets.shards import SHARDS_FILE, ShardedArray, read_shard_table

    table = path / "shards" / SHARDS_FILE
    if verify:
        sums = read_json_file(path / "checksums.json", what="features checksums", error=DataError)
        expected = sums.get(f"shards/{SHARDS_FILE}") if isinstance(sums, dict) else None
        if not table.is_file() or expected != sha256_file(table):
            raise DataError(f"{table}: missing or changed after it was written (checksum mismatch)")
    x = ShardedArray(path / "shards", read_shard_table(path / "shards"), n_mels=params.n_mels, frames=params.frames,
                     verify=verify)
    if len(x) != rows:
        raise DataError(f"{table}: its shards hold {len(x)} notes, index.json names {rows}")
    return x


def _finish(path: Path, x, rows: list[dict[str, Any]], params: SpectrogramParams) -> Features:
    """The splits of a features folder, checked, and the :class:`Features` of ``x``."""
    splits_doc = read_json_file(path / "splits.json", what="features splits", error=DataError)
    try:
        splits = {k: np.asarray(sorted(splits_doc[k]), dtype=np.int64) for k in SPLIT_NAMES}
        rule, seed = str(splits_doc["rule"]), int(splits_doc["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path / 'splits.json'}: malformed ({exc})") from None
    for name, idx in splits.items():
        if idx.size and (idx.min() < 0 or idx.max() >= len(rows)):
            raise DataError(f"{path / 'splits.json'}: split {name!r} names rows outside 0..{len(rows) - 1}")
    return Features(path, x, rows, splits, rule, seed, params)
