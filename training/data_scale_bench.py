"""Features and training at 1,000 and 100,000 synthetic notes: throughput and peak memory (issue 32).

For each set size N this writes N synthetic 4-second notes as float16 feature shards through the sharded
writer every large set goes through (:func:`training.datasets.compute_features.write_sharded`: the notes'
audio handed to spawned workers for the log-mel, 512 notes a shard), then trains a patch model on it with
:func:`training.fit.fit` for one epoch of a fixed number of training notes drawn from the whole set (so the
same number of steps at every N, reading rows from every shard), validation and the test metrics included.
Each stage runs in a process of its own, so its peak resident memory (``ru_maxrss``) is its own: the
process's, and the largest of its workers'.

On the 2-core machine the log-mels cost ~0.25-0.5 s a note a worker under the other agents' load, so 100,000 notes would
take hours: the features stage computes at most ``--features-limit`` notes (10,240) of the stream; for a
larger set those shards are copied, round and round, into the partial folder a stopped run of the whole
stream would leave (each copy recorded with the stream's own rows for its notes), and a second stage
(``index``) resumes the writer on the whole N-note stream: it reads every note, keeps every shard and writes
the N-row index from the shards' records, so the writer's memory is measured over N notes. Training then
reads a real N-note folder: N rows in the index, N / 512 shard files on disk. The features throughput at
such an N is that of the notes computed, and says so (``computed``).

The notes are a bank of 64 rendered synthetic notes (:func:`training.datasets.synthetic.synth_note`, eight
instruments at eight keys), each note of the set one of them at its own gain with its own low noise: rendering
every note from scratch would cost more than its features and measure the generator, not the data path. The
splits are official ones made by the bench (50 notes each in valid and test, drawn from the whole set, the
rest training), so that validation and the test metrics cost the same at every N.

Usage (niced: it is a throughput figure, and it takes the machine's cores for most of an hour at 100,000)::

    nice -n 10 .venv/bin/python bench/bench_data_scale.py --notes 1000 100000 --root /tmp/scale [--json]

The folders under ``--root`` are removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SHARD_NOTES = 512
#: Notes whose features a stage computes; a larger set is completed with copies of the shards written (see
#: the module docstring). A multiple of SHARD_NOTES.
FEATURES_LIMIT = 10240
TRAIN_NOTES = 960  # one epoch's training notes at every N: 30 steps of 32
BATCH = 32
BANK = 64
HELD_OUT = 50  # notes in each of valid and test, at every N


def _rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_rss_mb": round(own, 1), "peak_worker_rss_mb": round(workers, 1)}


def _notes(n: int, *, seed: int = 0, audio: bool = True):
    """(index row, audio, split) of ``n`` synthetic notes, made as they are asked for; without ``audio`` the
    same rows with an empty array in place of the audio (which the writer then never needs: every shard of
    the stream is already written)."""
    from synth.data.nsynth_format import FAMILIES, make_example
    from training.datasets.synthetic import synth_note

    keys = (36, 43, 50, 57, 64, 71, 78, 85)
    bank = ([synth_note(pitch=keys[b % 8], velocity=100, rng=np.random.default_rng([seed, b])) for b in range(BANK)]
            if audio else [])
    rows_rng, rng = np.random.default_rng([seed, 1]), np.random.default_rng(seed)
    where = _splits_of(n)
    empty = np.zeros(0, np.float32)
    for i in range(n):
        b = i % BANK
        family = FAMILIES[(i // BANK) % len(FAMILIES)]
        row = make_example(family=family, source="synthetic", instrument_index=i // BANK, instrument_id=i // BANK,
                           note_id=i, pitch=keys[b % 8], velocity=1 + int(rows_rng.integers(0, 127)),
                           dataset_source="synthetic")
        row["note_str"] = f"{row['instrument_str']}-{i:06d}"  # unique however many instruments share a name
        if not audio:
            yield row, empty, str(where[i])
            continue
        y = bank[b] * rng.uniform(0.3, 1.0) + rng.normal(0.0, 1e-4, bank[b].size).astype(np.float32)
        yield row, y.astype(np.float32), str(where[i])


def _splits_of(n: int) -> np.ndarray:
    """The split of each of ``n`` notes: :data:`HELD_OUT` each in valid and test, the rest train."""
    held = HELD_OUT
    order = np.random.default_rng(1).permutation(n)
    split = np.full(n, "train", dtype=object)
    split[order[:held]] = "valid"
    split[order[held : 2 * held]] = "test"
    return split


def _write(notes, n: int, out: Path, *, total: int, resume: bool) -> None:
    from synth.spectrogram import SpectrogramParams
    from training.datasets.compute_features import write_sharded

    write_sharded(notes, out=out, params=SpectrogramParams(), split="official", seed=0, workers=2, force=not resume,
                  progress=False, shard_notes=SHARD_NOTES, resume=resume, plan={"source": f"bench {n}"}, inputs=[],
                  total=total)


def stage_features(n: int, out: Path, *, limit: int) -> dict[str, Any]:
    """Write the first ``min(n, limit)`` notes of the ``n``-note stream; a larger ``n`` is then prepared for
    :func:`stage_index` (:func:`_prepare_copies`)."""
    computed = min(n, limit)
    target = out if n == computed else out.with_name(out.name + "-computed")

    def limited():
        for i, note in enumerate(_notes(n)):
            if i == computed:
                return
            yield note

    t0 = time.perf_counter()
    _write(limited(), n, target, total=computed, resume=False)
    seconds = time.perf_counter() - t0
    rss = _rss_mb()
    copy_s = None
    if n > computed:
        t1 = time.perf_counter()
        _prepare_copies(target, out, n)
        copy_s = round(time.perf_counter() - t1, 1)
    return {"notes": n, "computed": computed, "seconds": round(seconds, 1), "notes_per_s": round(computed / seconds, 1),
            "copies_s": copy_s, **rss}


def stage_index(n: int, out: Path) -> dict[str, Any]:
    """The writer over the whole ``n``-note stream, resumed on the partial folder :func:`_prepare_copies`
    made: it reads every note of the stream, finds every shard written and writes the ``n``-row index."""
    t0 = time.perf_counter()
    _write(_notes(n, audio=False), n, out, total=n, resume=True)
    seconds = time.perf_counter() - t0
    return {"notes": n, "seconds": round(seconds, 1), **_rss_mb()}


def _disk(out: Path) -> dict[str, Any]:
    size = sum(p.stat().st_size for p in (out / "shards").iterdir())
    return {"shards": len(list((out / "shards").glob("shard-*.npy"))), "disk_gb": round(size / 1e9, 2)}


def _prepare_copies(computed: Path, out: Path, n: int) -> None:
    """Make ``out``'s partial folder (``OUT.partial``, as a stopped :func:`write_sharded` run leaves it) hold
    every shard of the ``n``-note stream: copies of the shards of ``computed`` (its first notes), round and
    round, the last cut to what is left, each recorded with the stream's own rows and splits for its notes.
    A resumed run (:func:`stage_index`) then keeps them all and only writes the index."""
    from synth.atomic import atomic_write_text
    from synth.spectrogram import SpectrogramParams
    from training.datasets.compute_features import PARTIAL_SUFFIX
    from training.datasets.shards import read_shard_table, row_hash_file, write_shard

    base = read_shard_table(computed / "shards")
    work = out.with_name(out.name + PARTIAL_SUFFIX)
    shutil.rmtree(work, ignore_errors=True)
    (work / "shards").mkdir(parents=True)
    (work / "progress").mkdir()
    plan = {"source": f"bench {n}", "shard_notes": SHARD_NOTES, "contract": SpectrogramParams().to_dict(),
            "split": "official"}
    atomic_write_text(work / "progress.json", json.dumps(plan) + "\n")
    stream = _notes(n, audio=False)
    for k in range(-(-n // SHARD_NOTES)):
        group = [next(stream) for _ in range(min(SHARD_NOTES, n - k * SHARD_NOTES))]
        src = base[k % len(base)]
        name = f"shard-{k:05d}.npy"
        if len(group) == src.rows:
            shutil.copyfile(computed / "shards" / src.file, work / "shards" / name)
            shutil.copyfile(computed / "shards" / row_hash_file(src.file), work / "shards" / row_hash_file(name))
            shard = dataclasses.replace(src, file=name)
        else:
            part = np.load(computed / "shards" / src.file, mmap_mode="r")[: len(group)]
            shard = write_shard(work / "shards" / name, np.asarray(part, np.float32))
        record = {"file": name, "shard": shard.to_dict(), "names": [row["note_str"] for row, _, _ in group],
                  "rows": [row for row, _, _ in group], "skipped": [], "splits": [split for _, _, split in group]}
        atomic_write_text(work / "progress" / f"{k:05d}.json", json.dumps(record) + "\n")
    shutil.rmtree(computed)


def stage_training(features: Path, run: Path) -> dict[str, Any]:
    from training.quiet_tensorflow import import_tensorflow

    import_tensorflow()
    from training.fit import FitOptions, fit
    from training.model.config import variant

    config = variant("patch").with_schedule(batch_size=BATCH, max_epochs=1)
    t0 = time.perf_counter()
    fit(features=features, config=config, out=run, options=FitOptions(verbose=0, force=True, limit=TRAIN_NOTES))
    seconds = time.perf_counter() - t0
    history = (run / "history.csv").read_text().splitlines()
    epoch_s = float(history[1].split(",")[3])
    metrics = json.loads((run / "metrics.json").read_text())
    doc = json.loads((run / "config.json").read_text())
    sizes = doc.get("data", {}).get("split_sizes", {})
    return {"train_notes": TRAIN_NOTES, "valid_notes": sizes.get("valid"), "test_notes": sizes.get("test"),
            "epoch_s": round(epoch_s, 1), "train_notes_per_s": round(TRAIN_NOTES / epoch_s, 1),
            "fit_s": round(seconds, 1), "test_rmse": round(float(metrics["rmse"]), 4), **_rss_mb()}


def _stage(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-m", "training.data_scale_bench", *args], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"stage {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, nargs="+", default=[1000, 100000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/melsynth-scale"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--features-limit", type=int, default=FEATURES_LIMIT,
                        help="notes whose features are computed; more are copies (module docstring)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--stage", choices=["features", "index", "training"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage == "features":
        print(json.dumps(stage_features(args.n, args.root / f"features-{args.n}", limit=args.features_limit)))
        return 0
    if args.stage == "index":
        print(json.dumps(stage_index(args.n, args.root / f"features-{args.n}")))
        return 0
    if args.stage == "training":
        print(json.dumps(stage_training(args.root / f"features-{args.n}", args.root / f"run-{args.n}")))
        return 0
    args.root.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for n in args.notes:
            start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            load = os.getloadavg()
            row: dict[str, Any] = {"notes": n, "started": start, "load_at_start": [round(v, 2) for v in load]}
            row["features"] = _stage(["--stage", "features", "--n", str(n), "--root", str(args.root),
                                      "--features-limit", str(args.features_limit)])
            if n > args.features_limit:
                row["index"] = _stage(["--stage", "index", "--n", str(n), "--root", str(args.root)])
            row["features"].update(_disk(args.root / f"features-{n}"))
            row["training"] = _stage(["--stage", "training", "--n", str(n), "--root", str(args.root)])
            row["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if not args.keep:
                shutil.rmtree(args.root / f"features-{n}", ignore_errors=True)
                shutil.rmtree(args.root / f"run-{n}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.root, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print("| notes | computed | features notes/s | features peak RSS (process / worker) MB | the writer over "
              "every note: s, peak RSS MB | shards, GB | training notes/s (epoch, validation included) | "
              "training peak RSS MB | test RMSE |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            f, t, x = r["features"], r["training"], r.get("index")
            whole = f"{x['seconds']} s, {x['peak_rss_mb']}" if x else "(the same run)"
            print(f"| {r['notes']} | {f['computed']} | {f['notes_per_s']} | {f['peak_rss_mb']} / {f['peak_worker_rss_mb']} | "
                  f"{whole} | {f['shards']}, {f['disk_gb']} | {t['train_notes_per_s']} ({t['epoch_s']} s) | "
                  f"{t['peak_rss_mb']} | {t['test_rmse']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
