"""Compute the features folder (see :mod:`training.datasets.features`) from an NSynth-format folder.

Two layouts: one ``features.npy`` of float32 (the default, all-or-nothing: the first bad note stops the run),
or float16 shards of ``shard_notes`` notes (:mod:`training.datasets.shards`) for sets too large to hold:
written shard by shard into ``OUT.partial`` (a run that stops resumes there with ``resume=True``, keeping the
shards already written), a bad note skipped and named with its reason in ``skipped.json`` instead of ending
the job, and the folder renamed to ``OUT`` once every shard is there. Memory holds one shard at a time.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_directory, atomic_write_text
from synth.data.nsynth_format import read_examples, read_note_audio
from synth.data.splits import SPLIT_RULES, make_splits, split_rows
from synth.errors import DataError
from synth.outputs import FEATURES, check_output_folder
from synth.spectrogram import SpectrogramParams, log_mel
from training.datasets.features import SPLIT_NAMES, sha256_file
from training.datasets.partial import PARTIAL_SUFFIX, disk_full_is_said, open_partial, publish_partial
from training.datasets.shards import features_checksums

__all__ = ["compute_features", "write_sharded", "SILENT_PEAK_DB", "PARTIAL_SUFFIX"]

# A note whose loudest mel bin is below this is silent for our purposes (16-bit dither sits near -90 dB).
SILENT_PEAK_DB = -80.0


def _note_features(args: tuple[Path, str, SpectrogramParams]) -> np.ndarray:
    audio_dir, note_str, params = args
    _, x, why = _features_or_reason((note_str, audio_dir / f"{note_str}.wav", params.sample_rate, params))
    if x is None:
        raise DataError(why)
    return x


def compute_features(
    src: str | Path, *, out: str | Path, params: SpectrogramParams | None = None, split: str = "instrument",
    seed: int = 0, workers: int | None = None, force: bool = False, progress: bool = True,
    shard_notes: int | None = None, resume: bool = False,
) -> Path:
    """Turn an NSynth-format folder into a features folder.

    Every note is checked (readable, at the contract's rate, finite, not silent) before anything is kept;
    the first bad note stops the run with an error naming the file, and ``out`` is left untouched.

    Returns
    -------
    Path of the features folder, holding features.npy (N, n_mels, frames) float32, index.json,
    spectrogram.json, splits.json and checksums.json.
    """
    from tqdm import tqdm

    src, out = Path(src), Path(out)
    params = params or SpectrogramParams()
    if shard_notes is not None:
        return _compute_sharded(src, out=out, params=params, split=split, seed=seed, workers=workers, force=force,
                                progress=progress, shard_notes=shard_notes, resume=resume)
    if resume:
        raise DataError("--resume continues a sharded run: give --shards too")
    # `dataset features D --out D --force` would replace the dataset by its own features.
    check_output_folder(out, kind=FEATURES, force=force, inputs=[src])
    examples, audio_dir = _source_rows(src)
    names = sorted(examples)
    rows = [_row(examples, n) for n in names]
    splits = make_splits(rows, rule=split, seed=seed)

    with atomic_directory(out, kind=FEATURES, force=force, inputs=[src]) as tmp:
        npy = tmp / "features.npy"
        x = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32,
                                      shape=(len(rows), params.n_mels, params.frames))
        workers = workers or os.cpu_count() or 1
        jobs = [(audio_dir, n, params) for n in names]
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            it = pool.map(_note_features, jobs, chunksize=8)
            for i, feat in enumerate(tqdm(it, total=len(jobs), desc="features", unit="note",
                                          disable=not progress)):
                x[i] = feat
        x.flush()
        del x
        params.save(tmp / "spectrogram.json")
        atomic_write_text(tmp / "index.json", json.dumps({"source": str(src.resolve()), "rows": rows}, indent=1) + "\n")
        atomic_write_text(tmp / "splits.json", json.dumps({"rule": split, "seed": seed, **splits}) + "\n")
        offset = int(np.load(npy, mmap_mode="r").offset)
        atomic_write_text(tmp / "checksums.json", json.dumps(features_checksums(
            npy, rows=len(rows), row_bytes=params.n_mels * params.frames * 4, offset=offset), indent=1) + "\n")
    return out


def _row(examples: dict, name: str) -> dict:
    """A note's index row: its examples.json record, with a source and an instrument name when it lacks them."""
    row = dict(examples[name])
    row.setdefault("dataset_source", "nsynth")
    row.setdefault("instrument_str", row["note_str"].rsplit("-", 2)[0])
    return row


def _source_rows(src: Path) -> tuple[dict, Path]:
    """examples.json of an NSynth-format folder and its audio folder, both checked."""
    examples = read_examples(src)
    audio_dir = src / "audio"
    if not audio_dir.is_dir():
        raise DataError(f"{audio_dir}: missing audio folder")
    return examples, audio_dir


def _compute_sharded(src: Path, *, out: Path, params: SpectrogramParams, split: str, seed: int, workers: int | None,
                     force: bool, progress: bool, shard_notes: int, resume: bool) -> Path:
    check_output_folder(out, kind=FEATURES, force=force, inputs=[src])
    examples, audio_dir = _source_rows(src)
    notes = ((_row(examples, name), audio_dir / f"{name}.wav") for name in sorted(examples))
    return write_sharded(notes, out=out, params=params, split=split, seed=seed, workers=workers, force=force,
                         progress=progress, shard_notes=shard_notes, resume=resume, total=len(examples),
                         plan={"source": str(src.resolve())}, inputs=[src])


def _features_or_reason(job: tuple[str, Path | np.ndarray, int, SpectrogramParams]) -> tuple[str, np.ndarray | None, str]:
    """(note, features or None, why not) of a note given as its WAV file or its audio at a rate: a bad note
    is reported, not raised, in a sharded run."""
    name, audio, rate, params = job
    try:
        if isinstance(audio, Path):
            y = read_note_audio(audio, sample_rate=params.sample_rate)
            where = str(audio)
        else:
            where = f"note {name}"
            if rate != params.sample_rate:
                raise DataError(f"{where}: sample rate {rate} Hz, expected {params.sample_rate} Hz")
            y = np.asarray(audio, dtype=np.float32)
            if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
                raise DataError(f"{where}: audio is empty, not mono or holds NaN or Inf")
        x = log_mel(y, params=params, name=where)
        peak_db = params.db_min + float(x.max()) * (params.db_max - params.db_min)
        if peak_db < SILENT_PEAK_DB:
            raise DataError(f"{where}: silent note (loudest mel bin {peak_db:.1f} dB < {SILENT_PEAK_DB} dB)")
        return name, x, ""
    except DataError as exc:
        return name, None, str(exc)


def write_sharded(
    notes: Iterable[tuple], *, out: Path, params: SpectrogramParams, split: str, seed: int, workers: int | None,
    force: bool, progress: bool, shard_notes: int, resume: bool, plan: dict[str, Any], inputs: list[Path],
    total: int | None = None, nothing: str = "no notes to write",
) -> Path:
    """Write the sharded features folder ``out`` (module docstring) from ``notes``: (index row with its
    ``note_str``, the note's WAV file or its audio [shape=(n,)] at the row's ``sample_rate``), in row order,
    read as they come (a generator holds one shard's notes at a time); with ``split`` "official" each note is
    a triple whose third item is its split ("train", "valid" or "test").

    ``plan`` says what the notes are (sources and selection): a run resumes only the same plan, and checks
    that the notes of each shard it keeps are the ones the stream gives again. ``split`` is "instrument",
    "random" (:func:`synth.data.splits.make_splits`) or "official". What the run holds does not grow with
    the number of notes: one shard's notes, audio and features at a time; each shard's index rows, skipped
    notes and splits go to disk with it (``OUT.partial/progress/NNNNN.json``, which is also what a resumed
    run keeps) and ``index.json`` is written from those files one shard at a time; what stays in memory is
    a few bytes a note for the splits (:func:`synth.data.splits.split_rows`). A stream with no note at all
    is a DataError saying ``nothing``, and leaves nothing behind.
    """
    import itertools
    import multiprocessing
    import shutil

    from tqdm import tqdm

    from training.datasets.shards import write_shard

    if isinstance(shard_notes, bool) or not isinstance(shard_notes, int) or shard_notes < 1:
        raise DataError(f"--shards must be a positive number of notes, got {shard_notes!r}")
    if split not in ("official", *SPLIT_RULES):
        raise DataError(f"split {split!r}: expected official or one of {SPLIT_RULES}")
    check_output_folder(out, kind=FEATURES, force=force, inputs=inputs)
    plan = {**plan, "shard_notes": shard_notes, "contract": params.to_dict(), "split": split}
    work = open_partial(out, plan=plan, resume=resume, force=force)
    records = work / "progress"
    (work / "shards").mkdir(exist_ok=True)
    records.mkdir(exist_ok=True)
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=total, desc="features", unit="note", disable=not progress)
    stream = iter(notes)
    groups = 0
    # Spawned, not forked: the notes may come from TensorFlow's threads (a TFRecord read by tf.data).
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                mp_context=multiprocessing.get_context("spawn")) as pool:
        for k in itertools.count():
            group = list(itertools.islice(stream, shard_notes))
            if not group:
                break
            groups = k + 1
            key = f"{k:05d}"
            names = [note[0]["note_str"] for note in group]
            record = _shard_record(records / f"{key}.json", work / "shards")
            if record is not None:
                if record["names"] != names:
                    raise DataError(f"{work}: shard {key} was made from other notes than the source gives now; "
                                    "--force starts again")
                bar.update(len(group))  # written by an earlier run
                continue
            if split == "official":
                where = {note[0]["note_str"]: _official(note) for note in group}
            jobs = [(row["note_str"], audio, int(row.get("sample_rate", params.sample_rate)), params)
                    for row, audio, *_ in group]
            rows = {note[0]["note_str"]: note[0] for note in group}
            del group
            kept, feats, skipped = [], [], []
            for name, x, why in pool.map(_features_or_reason, jobs, chunksize=4):
                if x is None:
                    skipped.append({"note_str": name, "reason": why})
                else:
                    kept.append(name)
                    feats.append(x)
                bar.update(1)
            del jobs
            file = f"shard-{key}.npy"
            with disk_full_is_said(work, f"shard {key}"):
                shard = write_shard(work / "shards" / file, np.stack(feats)).to_dict() if kept else None
                del feats
                doc = {"file": file, "shard": shard, "names": names, "rows": [rows[name] for name in kept],
                       "skipped": skipped}
                if split == "official":
                    doc["splits"] = [where[name] for name in kept]
                atomic_write_text(records / f"{key}.json", json.dumps(doc) + "\n")  # this shard survives a stop now
    bar.close()
    if not groups:
        shutil.rmtree(work, ignore_errors=True)
        raise DataError(nothing)
    with disk_full_is_said(work, "the index"):
        finished = _finish_sharded(work, groups=groups, params=params, split=split, seed=seed,
                                   source=plan.get("source", plan.get("sources")))
    if finished is None:
        raise DataError(f"{plan.get('source', 'the source')}: no note could be read ({_count_skipped(work)} "
                        f"skipped; {records} names them)")
    shutil.rmtree(records)
    publish_partial(work, out, kind=FEATURES, force=force, inputs=inputs)
    count, head = finished
    if count:
        print(f"skipped {count} notes (listed in {out / 'skipped.json'}): "
              + "; ".join(f"{s['note_str']}: {s['reason']}" for s in head), flush=True)
    return out


def _official(note: tuple) -> str:
    """The split a note of an official-split stream carries: (row, audio, split)."""
    if len(note) != 3 or note[2] not in SPLIT_NAMES:
        raise DataError(f"note {note[0]['note_str']}: an official split needs its split (train, valid or test)")
    return note[2]


def _shard_record(path: Path, shards: Path) -> dict[str, Any] | None:
    """The record of a shard an earlier run finished (its progress file, and its shard and row-hash files
    when it kept a note), or None."""
    from training.datasets.shards import row_hash_file

    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record["shard"] is not None and not all((shards / f).is_file()
                                               for f in (record["file"], row_hash_file(record["file"]))):
        return None
    return record


def _count_skipped(work: Path) -> int:
    return sum(len(json.loads(p.read_text())["skipped"]) for p in sorted((work / "progress").glob("*.json")))


class _JsonList:
    """A JSON list written item by item into an open file: ``[`` item ``,`` ... ``]``."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.count, self.head = fh, 0, []

    def add(self, item: Any) -> None:
        self.fh.write(("[\n" if not self.count else ",\n") + json.dumps(item))
        self.count += 1
        if len(self.head) < 3:
            self.head.append(item)

    def close(self) -> None:
        self.fh.write("[]" if not self.count else "\n]")


class _NoNote(Exception):
    """No shard kept a note: the index being written is dropped."""


def _finish_sharded(work: Path, *, groups: int, params: SpectrogramParams, split: str, seed: int,
                    source: Any) -> tuple[int, list[dict[str, str]]] | None:
    """Write ``work``'s index.json, splits.json, skipped.json, spectrogram.json, shard table and checksums
    from the progress records of shards 0..groups-1, one record at a time (an empty shard's files are
    removed). Returns the number of notes skipped and the first three of them; None, with none of the files
    written, when no shard kept a note."""
    import array

    from training.datasets.shards import SHARDS_FILE, SHARDS_FORMAT, Shard

    shards: list[Shard] = []
    instruments: list[str] = []  # one reference a note to a name shared by its instrument's notes
    where = array.array("b") if split == "official" else None
    try:
        skipped = _write_index(work, groups=groups, source=source, split=split, shards=shards,
                               instruments=instruments, where=where)
    except _NoNote:
        return None
    start = sum(s.rows for s in shards)
    if where is not None:
        codes = np.frombuffer(where, dtype=np.int8)
        splits = {name: np.flatnonzero(codes == i) for i, name in enumerate(SPLIT_NAMES)}
    else:
        splits = split_rows(start, instruments=instruments if split == "instrument" else None, rule=split, seed=seed)
    del instruments
    params.save(work / "spectrogram.json")
    atomic_write_text(work / "splits.json", json.dumps({"rule": split, "seed": seed,
                                                          **{k: v.tolist() for k, v in splits.items()}}) + "\n")
    shards_doc = {"format": SHARDS_FORMAT, "dtype": "float16", "shards": [s.to_dict() for s in shards]}
    atomic_write_text(work / "shards" / SHARDS_FILE, json.dumps(shards_doc, indent=1) + "\n")
    atomic_write_text(work / "checksums.json", json.dumps({f"shards/{SHARDS_FILE}": sha256_file(work / "shards" / SHARDS_FILE)},
                                                          indent=1) + "\n")
    return skipped


def _write_index(work: Path, *, groups: int, source: Any, split: str, shards: list, instruments: list[str],
                 where: Any) -> tuple[int, list[dict[str, str]]]:
    """index.json and skipped.json of ``work`` from its progress records, streamed; fills ``shards`` (the
    shard table), ``instruments`` (each note's, for an instrument split) and ``where`` (each note's official
    split, as its place in SPLIT_NAMES). Returns the number of notes skipped and the first three. Raises
    _NoNote, writing neither file, when no shard kept a note."""
    from synth.atomic import atomic_path
    from training.datasets.shards import Shard, row_hash_file

    names: dict[str, str] = {}
    start = 0
    with atomic_path(work / "index.json") as index_tmp, atomic_path(work / "skipped.json") as skipped_tmp, \
            open(index_tmp, "w") as index_fh, open(skipped_tmp, "w") as skipped_fh:
        index_fh.write("{\"source\": " + json.dumps(source) + ", \"rows\": ")
        rows, skipped = _JsonList(index_fh), _JsonList(skipped_fh)
        for k in range(groups):
            record = json.loads((work / "progress" / f"{k:05d}.json").read_text())
            for item in record["skipped"]:
                skipped.add(item)
            if record["shard"] is None:
                for name in (record["file"], row_hash_file(record["file"])):
                    (work / "shards" / name).unlink(missing_ok=True)
                continue
            shards.append(Shard(**{**record["shard"], "start": start}))
            start += len(record["rows"])
            for row in record["rows"]:
                rows.add(row)
                if split == "instrument":
                    name = str(row.get("instrument_str"))
                    instruments.append(names.setdefault(name, name))
            if where is not None:
                where.extend(SPLIT_NAMES.index(s) for s in record["splits"])
        rows.close()
        index_fh.write("}\n")
        skipped.close()
        skipped_fh.write("\n")
        if not start:
            raise _NoNote
    return skipped.count, skipped.head
