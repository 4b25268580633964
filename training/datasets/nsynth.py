"""Notes of real NSynth splits (folders or TFRecords): selected into a new NSynth-format folder, or turned
straight into a features folder.

A folder split is ``nsynth-{train,valid,test}/examples.json`` + ``audio/<note_str>.wav``; the TFRecord form
``nsynth-{split}.tfrecord`` carries the same fields plus ``audio`` (64000 floats in [-1, 1]). Reading TFRecords
needs TensorFlow (the ``train`` extra); folders need only soundfile.

TFRecords are read by a tf.data pipeline (:func:`read_tfrecords`): the files interleaved, records parsed in
batches of 64 by ``tf.io.parse_example`` in parallel, in a fixed order. :func:`nsynth_features` writes the
selected notes' log-mels as float16 shards (:func:`training.datasets.compute_features.write_sharded`) as they
are read: no WAV copy, one shard's notes in memory, resumable, a bad note skipped and named; with
``split="official"`` each note keeps the split of the file or folder it came from.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_directory
from synth.data.nsynth_format import FAMILIES, SOURCES, read_examples, write_examples, write_note_audio
from synth.errors import DataError
from synth.outputs import NSYNTH_DATASET, check_output_folder

__all__ = ["select_nsynth", "iter_tfrecord", "read_tfrecords", "nsynth_features", "official_split",
           "OFFICIAL_SPLITS"]

#: NSynth's own splits, as its files and folders are named (nsynth-train, nsynth-valid, nsynth-test).
OFFICIAL_SPLITS = ("train", "valid", "test")
#: Records parsed at once by tf.io.parse_example.
_PARSE_BATCH = 64
_INTS = ("note", "instrument", "pitch", "velocity", "sample_rate", "instrument_family", "instrument_source")
_STRS = ("note_str", "instrument_str", "instrument_family_str", "instrument_source_str")


def _matches(rec: dict[str, Any], *, pitch, families, sources, velocities) -> bool:
    if pitch is not None and rec.get("pitch") not in ((pitch,) if isinstance(pitch, int) else pitch):
        return False
    if families and rec.get("instrument_family_str") not in families:
        return False
    if sources and rec.get("instrument_source_str") not in sources:
        return False
    return not (velocities and rec.get("velocity") not in velocities)


def official_split(path: Path) -> str:
    """NSynth's split of a file or folder, from its name (``nsynth-valid.tfrecord`` -> "valid")."""
    stem = path.name.lower().removesuffix(".tfrecord")
    found = [name for name in OFFICIAL_SPLITS if stem.endswith(name)]
    if len(found) != 1:
        raise DataError(f"{path}: --split official takes NSynth's split from the name (nsynth-train, nsynth-valid, "
                        "nsynth-test), and this one names none")
    return found[0]


def _tensorflow(path: Path) -> Any:
    try:
        from training.quiet_tensorflow import import_tensorflow

        return import_tensorflow()
    except ModuleNotFoundError:
        raise DataError(f"{path}: reading TFRecords needs TensorFlow (pip install 'melsynth[train]')") from None


def read_tfrecords(paths: list[Path], *, parallel: int | None = None) -> Iterator[tuple[int, dict[str, Any], np.ndarray]]:
    """Yield (index of the file in ``paths``, record, audio [shape=(n,), float32]) from NSynth TFRecord files,
    read by tf.data: the files interleaved a record at a time, records parsed :data:`_PARSE_BATCH` at a time
    by ``parallel`` parsers (default: tf.data's autotuning), always in the same order.

    Raises
    ------
    DataError naming the file for a file that is not a readable NSynth TFRecord.
    """
    paths = [Path(p) for p in paths]
    tf = _tensorflow(paths[0])
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: no such TFRecord file")
    spec = {k: tf.io.FixedLenFeature([], tf.int64) for k in _INTS}
    spec.update({k: tf.io.FixedLenFeature([], tf.string) for k in _STRS})
    spec["qualities"] = tf.io.RaggedFeature(tf.int64)
    spec["audio"] = tf.io.RaggedFeature(tf.float32)
    calls = tf.data.AUTOTUNE if parallel is None else parallel

    def records(path: Any, index: Any) -> Any:
        return tf.data.TFRecordDataset(path).map(lambda raw: (raw, index))

    def parse(raw: Any, index: Any) -> Any:
        ex = tf.io.parse_example(raw, spec)
        audio, qualities = ex.pop("audio"), ex.pop("qualities")
        return ex, audio.values, audio.row_splits, qualities.values, qualities.row_splits, index

    files = tf.data.Dataset.from_tensor_slices(([str(p) for p in paths], np.arange(len(paths), dtype=np.int64)))
    ds = (files.interleave(records, cycle_length=len(paths), block_length=1, num_parallel_calls=calls,
                           deterministic=True)
          .batch(_PARSE_BATCH).map(parse, num_parallel_calls=calls, deterministic=True).prefetch(2))
    try:
        for ex, audio, splits, qualities, q_splits, index in ds.as_numpy_iterator():
            for i in range(len(index)):
                rec = {k: int(ex[k][i]) for k in _INTS}
                rec.update({k: ex[k][i].decode() for k in _STRS})
                rec["qualities"] = [int(q) for q in qualities[q_splits[i] : q_splits[i + 1]]]
                rec["qualities_str"] = []
                yield int(index[i]), rec, np.asarray(audio[splits[i] : splits[i + 1]], dtype=np.float32)
    except tf.errors.OpError as exc:
        names = ", ".join(str(p) for p in paths)
        raise DataError(f"{names}: not a readable NSynth TFRecord ({exc.message.splitlines()[0]})") from None


def iter_tfrecord(path: Path) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
    """Yield (record, audio) from an NSynth TFRecord file (:func:`read_tfrecords` of that one file)."""
    for _, rec, audio in read_tfrecords([Path(path)]):
        yield rec, audio


def _check_filters(families: list[str] | None, sources: list[str] | None) -> None:
    for fam in families or []:
        if fam not in FAMILIES:
            raise DataError(f"family {fam!r}: expected one of {FAMILIES}")
    for s in sources or []:
        if s not in SOURCES:
            raise DataError(f"source {s!r}: expected one of {SOURCES}")


def nsynth_features(
    srcs: list[str | Path], *, out: str | Path, params: Any = None, pitch: int | Iterable[int] | None = None,
    families: list[str] | None = None, sources: list[str] | None = None, velocities: list[int] | None = None,
    split: str = "official", seed: int = 0, shard_notes: int = 512, workers: int | None = None,
    parallel: int | None = None, resume: bool = False, force: bool = False, progress: bool = True,
) -> Path:
    """The features folder ``out`` (float16 shards, :func:`training.datasets.compute_features.write_sharded`)
    of the notes of NSynth splits ``srcs`` (all TFRecord files, read by :func:`read_tfrecords`, or all
    NSynth-format folders, read from their WAVs in place) that match the filters; ``pitch`` None takes every
    pitch. ``split`` "official" keeps each note in the split its file or folder is named for
    (:func:`official_split`); "instrument" or "random" split the selected notes anew.

    Raises
    ------
    DataError for a missing or unreadable source, a split that cannot be told from a name, a note found in two
    sources, or no note selected.
    """
    from synth.spectrogram import SpectrogramParams
    from training.datasets.compute_features import write_sharded

    paths = [Path(p) for p in srcs]
    if not paths:
        raise DataError("dataset nsynth: no source given")
    params = params or SpectrogramParams()
    _check_filters(families, sources)
    tfrecords = [p.is_file() for p in paths]
    if any(tfrecords) and not all(tfrecords):
        raise DataError("dataset nsynth: give TFRecord files or NSynth folders, not both")
    where = [official_split(p) for p in paths] if split == "official" else None
    wanted = None if pitch is None else ((pitch,) if isinstance(pitch, int) else tuple(pitch))
    filt = {"pitch": wanted, "families": families, "sources": sources, "velocities": velocities}

    def selected() -> Iterator[tuple]:
        seen: set[str] = set()
        if all(tfrecords):
            notes = ((i, rec, audio) for i, rec, audio in read_tfrecords(paths, parallel=parallel))
        else:
            notes = _folder_notes(paths)
        for i, rec, audio in notes:
            if not _matches(rec, **filt):
                continue
            name = rec["note_str"]
            if name in seen:
                raise DataError(f"{paths[i]}: note {name} is in two of the sources")
            seen.add(name)
            row = dict(rec, dataset_source=rec.get("dataset_source", "nsynth"))
            yield (row, audio) if where is None else (row, audio, where[i])

    plan = {"sources": [str(p.resolve()) for p in paths],
            "selection": {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in filt.items()}}
    return write_sharded(selected(), out=Path(out), params=params, split=split, seed=seed, workers=workers,
                         force=force, progress=progress, shard_notes=shard_notes, resume=resume, plan=plan,
                         inputs=paths, nothing=f"{', '.join(map(str, paths))}: no note matches the selection {filt}")


def _folder_notes(paths: list[Path]) -> Iterator[tuple[int, dict[str, Any], Path]]:
    """(source index, record, WAV path) of every note of NSynth-format folders, each folder's in name order."""
    for i, folder in enumerate(paths):
        examples = read_examples(folder)
        for name in sorted(examples):
            yield i, examples[name], folder / "audio" / f"{name}.wav"


def select_nsynth(
    src: str | Path, *, out: str | Path, pitch: int | None = 60, families: list[str] | None = None,
    sources: list[str] | None = None, velocities: list[int] | None = None, force: bool = False,
) -> int:
    """Copy the notes of ``src`` that match the filters into the NSynth-format folder ``out``.

    Returns the number of notes selected (zero is an error: nothing is written).
    """
    src, out = Path(src), Path(out)
    _check_filters(families, sources)
    check_output_folder(out, kind=NSYNTH_DATASET, force=force, inputs=[src])
    filt = {"pitch": pitch, "families": families, "sources": sources, "velocities": velocities}
    chosen: dict[str, dict] = {}
    with atomic_directory(out, kind=NSYNTH_DATASET, force=force, inputs=[src]) as tmp:
        (tmp / "audio").mkdir()
        if src.is_file():
            for rec, audio in iter_tfrecord(src):
                if _matches(rec, **filt):
                    rec["dataset_source"] = "nsynth"
                    write_note_audio(tmp / "audio" / f"{rec['note_str']}.wav", audio, sample_rate=rec["sample_rate"])
                    chosen[rec["note_str"]] = rec
        else:
            examples = read_examples(src)
            for key, rec in examples.items():
                if _matches(rec, **filt):
                    wav = src / "audio" / f"{key}.wav"
                    if not wav.is_file():
                        raise DataError(f"{wav}: missing audio file for note {key}")
                    shutil.copyfile(wav, tmp / "audio" / f"{key}.wav")
                    chosen[key] = dict(rec, dataset_source=rec.get("dataset_source", "nsynth"))
        if not chosen:
            raise DataError(f"{src}: no note matches the selection {filt}")
        write_examples(tmp, chosen)
    return len(chosen)
