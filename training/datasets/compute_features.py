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
from synth.data.splits import make_splits
from synth.errors import DataError
from synth.outputs import FEATURES, check_output_folder
from synth.spectrogram import SpectrogramParams, log_mel
from training.datasets.features import sha256_file
from training.datasets.shards import features_checksums

__all__ = ["compute_features", "write_sharded", "SILENT_PEAK_DB", "PARTIAL_SUFFIX"]

# A sharded run is built in OUT + this suffix, so that a run stopped part-way can resume there.
PARTIAL_SUFFIX = ".partial"

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
    notes: Iterable[tuple[dict[str, Any], Path | np.ndarray]], *, out: Path, params: SpectrogramParams,
    split: str, seed: int, workers: int | None, force: bool, progress: bool, shard_notes: int, resume: bool,
    plan: dict[str, Any], inputs: list[Path], total: int | None = None, splits_of: dict[str, str] | None = None,
    nothing: str = "no notes to write",
) -> Path:
    """Write the sharded features folder ``out`` (module docstring) from ``notes``: (index row with its
    ``note_str``, the note's WAV file or its audio [shape=(n,)] at the row's ``sample_rate``), in row order,
    read as they come (a generator holds one shard's notes at a time).

    ``plan`` says what the notes are (sources and selection): a run resumes only the same plan, and checks
    that the notes of each shard it keeps are the ones the stream gives again. ``split`` is "instrument",
    "random" (:func:`synth.data.splits.make_splits`) or "official" with ``splits_of`` (note -> its split).
    Memory holds one shard's notes, audio and features at a time, whatever the number of notes. A stream
    with no note at all is a DataError saying ``nothing``, and leaves nothing behind.
    """
    import itertools
    import multiprocessing
    import shutil

    from tqdm import tqdm

    from training.datasets.shards import SHARDS_FILE, SHARDS_FORMAT, Shard, write_shard

    if isinstance(shard_notes, bool) or not isinstance(shard_notes, int) or shard_notes < 1:
        raise DataError(f"--shards must be a positive number of notes, got {shard_notes!r}")
    if split == "official" and splits_of is None:
        raise DataError("--split official keeps NSynth's own train/valid/test: give its split files or folders")
    check_output_folder(out, kind=FEATURES, force=force, inputs=inputs)
    work = out.with_name(out.name + PARTIAL_SUFFIX)
    done_file = work / "progress.json"
    plan = {**plan, "shard_notes": shard_notes, "contract": params.to_dict()}
    if work.exists():
        if resume and done_file.is_file():
            recorded = json.loads(done_file.read_text())
            if {k: recorded.get(k) for k in plan} != plan:
                raise DataError(f"{work}: a partial run of other notes, shard size or contract; --force starts again")
        elif force or resume:
            shutil.rmtree(work)
        else:
            raise DataError(f"{work}: a partial run is there: --resume continues it, --force starts again")
    (work / "shards").mkdir(parents=True, exist_ok=True)
    if not done_file.is_file():
        atomic_write_text(done_file, json.dumps({**plan, "done": {}}) + "\n")
    state = json.loads(done_file.read_text())
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=total, desc="features", unit="note", disable=not progress)
    rows_by_name: dict[str, dict[str, Any]] = {}
    stream = iter(notes)
    # Spawned, not forked: the notes may come from TensorFlow's threads (a TFRecord read by tf.data).
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers,
                                                mp_context=multiprocessing.get_context("spawn")) as pool:
        for k in itertools.count():
            group = list(itertools.islice(stream, shard_notes))
            if not group:
                break
            key = f"{k:05d}"
            names = [row["note_str"] for row, _ in group]
            for row, _ in group:
                rows_by_name[row["note_str"]] = row
            record = state["done"].get(key)
            if record is not None and (work / "shards" / record["file"]).is_file():
                if record["names"] != names:
                    raise DataError(f"{work}: shard {key} was made from other notes than the source gives now; "
                                    "--force starts again")
                bar.update(len(group))  # written by an earlier run
                continue
            jobs = [(row["note_str"], audio, int(row.get("sample_rate", params.sample_rate)), params)
                    for row, audio in group]
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
            sha = ""
            if kept:
                sha = write_shard(work / "shards" / file, np.stack(feats)).sha256
            else:
                (work / "shards" / file).touch()  # nothing to write: an empty marker
            del feats
            state["done"][key] = {"file": file, "sha256": sha, "names": names, "notes": kept, "skipped": skipped}
            atomic_write_text(done_file, json.dumps(state) + "\n")  # this shard survives a stop from here on
    bar.close()
    groups = len(state["done"])
    if not groups:
        shutil.rmtree(work, ignore_errors=True)
        raise DataError(nothing)
    rows, shards, skipped, start = [], [], [], 0
    for k in range(groups):
        record = state["done"][f"{k:05d}"]
        skipped += record["skipped"]
        if not record["notes"]:
            (work / "shards" / record["file"]).unlink(missing_ok=True)
            continue
        shards.append(Shard(file=record["file"], start=start, rows=len(record["notes"]), sha256=record["sha256"]))
        start += len(record["notes"])
        rows += [rows_by_name[name] for name in record["notes"]]
    if not rows:
        raise DataError(f"{plan.get('source', 'the source')}: no note could be read ({len(skipped)} skipped; "
                        f"{done_file} names them)")
    if split == "official":
        where = [splits_of[row["note_str"]] for row in rows]
        splits = {name: [i for i, s in enumerate(where) if s == name] for name in ("train", "valid", "test")}
    else:
        splits = make_splits(rows, rule=split, seed=seed)
    params.save(work / "spectrogram.json")
    source = plan.get("source", plan.get("sources"))
    atomic_write_text(work / "index.json", json.dumps({"source": source, "rows": rows}, indent=1) + "\n")
    atomic_write_text(work / "splits.json", json.dumps({"rule": split, "seed": seed, **splits}) + "\n")
    atomic_write_text(work / "skipped.json", json.dumps(skipped, indent=1) + "\n")
    shards_doc = {"format": SHARDS_FORMAT, "dtype": "float16", "shards": [s.to_dict() for s in shards]}
    atomic_write_text(work / "shards" / SHARDS_FILE, json.dumps(shards_doc, indent=1) + "\n")
    atomic_write_text(work / "checksums.json", json.dumps({f"shards/{SHARDS_FILE}": sha256_file(work / "shards" / SHARDS_FILE)},
                                                          indent=1) + "\n")
    done_file.unlink()
    # The rule again at the rename: what holds OUT may have changed during a long run.
    check_output_folder(out, kind=FEATURES, force=force, inputs=inputs)
    if out.exists():
        shutil.rmtree(out)
    os.replace(work, out)
    if skipped:
        print(f"skipped {len(skipped)} notes (listed in {out / 'skipped.json'}): "
              + "; ".join(f"{s['note_str']}: {s['reason']}" for s in skipped[:3]), flush=True)
    return out
