"""The NSynth folder format: ``examples.json`` plus ``audio/<note_str>.wav`` (16-bit mono 16 kHz, 4 s).

``examples.json`` is a dict keyed by ``note_str`` (``{family}_{source}_{NNN}-{pitch:03}-{velocity:03}``) with
the fields of :data:`REQUIRED_FIELDS`. Folders written by melsynth add a few fields of their own
(``dataset_source``, and for SoundFont renders ``soundfont`` and ``program``); readers ignore unknown fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_path, atomic_write_text
from synth.errors import DataError
from synth.json_files import read_json_file

__all__ = [
    "FAMILIES",
    "SOURCES",
    "REQUIRED_FIELDS",
    "read_examples",
    "write_examples",
    "read_note_audio",
    "write_note_audio",
    "make_example",
]

FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal",
)
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    "bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic", "nonlinear_env",
    "percussive", "reverb", "tempo-synced",
)
REQUIRED_FIELDS = (
    "note", "note_str", "instrument", "instrument_str", "pitch", "velocity", "sample_rate", "qualities",
    "qualities_str", "instrument_family", "instrument_family_str", "instrument_source", "instrument_source_str",
)


def make_example(
    *, family: str, source: str, instrument_index: int, instrument_id: int, note_id: int, pitch: int,
    velocity: int, sample_rate: int = 16000, **extra: Any,
) -> dict[str, Any]:
    """One examples.json record with NSynth's fields (qualities all 0: we do not annotate them)."""
    instrument_str = f"{family}_{source}_{instrument_index:03d}"
    note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
    record = {
        "note": note_id,
        "note_str": note_str,
        "instrument": instrument_id,
        "instrument_str": instrument_str,
        "pitch": pitch,
        "velocity": velocity,
        "sample_rate": sample_rate,
        "qualities": [0] * len(QUALITIES),
        "qualities_str": [],
        "instrument_family": FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": SOURCES.index(source),
        "instrument_source_str": source,
    }
    record.update(extra)
    return record


def read_examples(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Read and validate ``folder/examples.json``; every error names the file and the note."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such dataset folder")
    path = folder / "examples.json"
    data = read_json_file(path, what="NSynth-format examples", error=DataError)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a non-empty JSON object keyed by note_str")
    for key, record in data.items():
        if not isinstance(record, dict):
            raise DataError(f"{path}: entry {key!r} is not an object")
        missing = [f for f in ("note_str", "pitch", "velocity") if f not in record]
        if missing:
            raise DataError(f"{path}: entry {key!r} lacks the fields {missing}")
        if record["note_str"] != key:
            raise DataError(f"{path}: entry {key!r} has note_str {record['note_str']!r}")
        for field in ("pitch", "velocity"):
            if not isinstance(record[field], int) or isinstance(record[field], bool) or not 0 <= record[field] <= 127:
                raise DataError(f"{path}: entry {key!r} has an invalid {field} {record[field]!r}")
        if "/" in key or "\\" in key or key.startswith("."):
            raise DataError(f"{path}: entry {key!r} is not a valid note name")
    return data


def write_examples(folder: str | Path, examples: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(Path(folder) / "examples.json", json.dumps(examples, indent=1, sort_keys=True) + "\n")


def read_note_audio(path: str | Path, *, sample_rate: int) -> np.ndarray:
    """Read one note's WAV as float32 mono, refusing another rate, NaN/Inf, or an empty file.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing audio file")
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DataError(f"{path}: unreadable audio ({exc})") from None
    if sr != sample_rate:
        raise DataError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz")
    if y.shape[0] == 0:
        raise DataError(f"{path}: empty audio file")
    y = y.mean(axis=1) if y.shape[1] > 1 else y[:, 0]
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: audio contains NaN or Inf")
    return np.ascontiguousarray(y, dtype=np.float32)


def write_note_audio(path: str | Path, y: np.ndarray, *, sample_rate: int) -> None:
    """Write 16-bit PCM mono, atomically."""
    import soundfile as sf

    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(tmp, np.clip(y, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
