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
from pathlib import Path

import numpy as np

from synth.atomic import atomic_directory, atomic_write_text
from synth.data.nsynth_format import read_examples, read_note_audio
from synth.data.splits import make_splits
from synth.errors import DataError
from synth.outputs import FEATURES, check_output_folder
from synth.spectrogram import SpectrogramParams, log_mel
from training.datasets.features import sha256_file
from training.datasets.shards import features_checksums

__all__ = ["compute_features", "SILENT_PEAK_DB", "PARTIAL_SUFFIX"]

# A sharded run is built in OUT + this suffix, so that a run stopped part-way can resume there.
PARTIAL_SUFFIX = ".partial"

# A note whose loudest mel bin is below this is silent for our purposes (16-bit dither sits near -90 dB).
SILENT_PEAK_DB = -80.0


def _note_features(args: tuple[Path, str, SpectrogramParams]) -> np.ndarray:
    audio_dir, note_str, params = args
    path = audio_dir / f"{note_str}.wav"
    y = read_note_audio(path, sample_rate=params.sample_rate)
    x = log_mel(y, params=params, name=str(path))
    peak_db = params.db_min + float(x.max()) * (params.db_max - params.db_min)
    if peak_db < SILENT_PEAK_DB:
        raise DataError(f"{path}: silent note (loudest mel bin {peak_db:.1f} dB < {SILENT_PEAK_DB} dB)")
    return x


def _note_or_reason(args: tuple[Path, str, SpectrogramParams]) -> tuple[str, np.ndarray | None, str]:
    """(note, features or None, why not): a bad note is reported, not raised, in a sharded run."""
    try:
        return args[1], _note_features(args), ""
    except DataError as exc:
        return args[1], None, str(exc)


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
    import shutil

    from tqdm import tqdm

    from training.datasets.shards import SHARDS_FILE, SHARDS_FORMAT, Shard, write_shard

    if isinstance(shard_notes, bool) or not isinstance(shard_notes, int) or shard_notes < 1:
        raise DataError(f"--shards must be a positive number of notes, got {shard_notes!r}")
    check_output_folder(out, kind=FEATURES, force=force, inputs=[src])
    examples, audio_dir = _source_rows(src)
    names = sorted(examples)
    work = out.with_name(out.name + PARTIAL_SUFFIX)
    done_file = work / "progress.json"
    plan = {"source": str(src.resolve()), "notes": names, "shard_notes": shard_notes, "contract": params.to_dict()}
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
    groups = [names[i : i + shard_notes] for i in range(0, len(names), shard_notes)]
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(names), desc="features", unit="note", disable=not progress)
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        for k, group in enumerate(groups):
            key = f"{k:05d}"
            record = state["done"].get(key)
            if record is not None and (work / "shards" / record["file"]).is_file():
                bar.update(len(group))  # written by an earlier run
                continue
            kept, feats, skipped = [], [], []
            for name, x, why in pool.map(_note_or_reason, [(audio_dir, n, params) for n in group], chunksize=4):
                if x is None:
                    skipped.append({"note_str": name, "reason": why})
                else:
                    kept.append(name)
                    feats.append(x)
                bar.update(1)
            shard = None
            if kept:
                shard = write_shard(work / "shards" / f"shard-{key}.npy", np.stack(feats)).to_dict()
            state["done"][key] = {"file": shard["file"] if shard else "", "sha256": shard["sha256"] if shard else "",
                                  "notes": kept, "skipped": skipped}
            if not kept:
                state["done"][key]["file"] = f"shard-{key}.npy"  # nothing to write: an empty marker
                (work / "shards" / state["done"][key]["file"]).touch()
            atomic_write_text(done_file, json.dumps(state) + "\n")  # this shard survives a stop from here on
    bar.close()
    rows, shards, skipped, start = [], [], [], 0
    for k in range(len(groups)):
        record = state["done"][f"{k:05d}"]
        skipped += record["skipped"]
        if not record["notes"]:
            (work / "shards" / record["file"]).unlink(missing_ok=True)
            continue
        shards.append(Shard(file=record["file"], start=start, rows=len(record["notes"]), sha256=record["sha256"]))
        start += len(record["notes"])
        rows += [_row(examples, name) for name in record["notes"]]
    if not rows:
        raise DataError(f"{src}: no note could be read ({len(skipped)} skipped; {work / 'progress.json'} names them)")
    splits = make_splits(rows, rule=split, seed=seed)
    params.save(work / "spectrogram.json")
    atomic_write_text(work / "index.json", json.dumps({"source": str(src.resolve()), "rows": rows}, indent=1) + "\n")
    atomic_write_text(work / "splits.json", json.dumps({"rule": split, "seed": seed, **splits}) + "\n")
    atomic_write_text(work / "skipped.json", json.dumps(skipped, indent=1) + "\n")
    shards_doc = {"format": SHARDS_FORMAT, "dtype": "float16", "shards": [s.to_dict() for s in shards]}
    atomic_write_text(work / "shards" / SHARDS_FILE, json.dumps(shards_doc, indent=1) + "\n")
    atomic_write_text(work / "checksums.json", json.dumps({f"shards/{SHARDS_FILE}": sha256_file(work / "shards" / SHARDS_FILE)},
                                                          indent=1) + "\n")
    done_file.unlink()
    # The rule again at the rename: what holds OUT may have changed during a long run.
    check_output_folder(out, kind=FEATURES, force=force, inputs=[src])
    if out.exists():
        shutil.rmtree(out)
    os.replace(work, out)
    if skipped:
        print(f"skipped {len(skipped)} notes (listed in {out / 'skipped.json'}): "
              + "; ".join(f"{s['note_str']}: {s['reason']}" for s in skipped[:3]), flush=True)
    return out
