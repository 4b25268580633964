"""Features and training at 1,000 and 100,000 synthetic notes: throughput and peak memory (issue 32).

For each set size N this writes N synthetic 4-second notes as float16 feature shards through the sharded
writer every large set goes through (:func:`training.datasets.compute_features.write_sharded`: the notes'
audio handed to spawned workers for the log-mel, 512 notes a shard), then trains a patch model on it with
:func:`training.fit.fit` for one epoch of a fixed number of training notes drawn from the whole set (so the
same number of steps at every N, reading rows from every shard), validation and the test metrics included.
Each stage runs in a process of its own, so its peak resident memory (``ru_maxrss``) is its own: the
process's, and the largest of its workers'.

On the 2-core machine the log-mels cost ~0.25-0.5 s a note a worker under the other agents' load, so 100,000 notes would
take hours: the features stage computes at most ``--features-limit`` notes (10,240) of the stream, and a
larger set is completed by copying those shards under new names (each keeps its recorded hash; its notes get
new names), so that training reads a real N-note folder: N rows in the index, N / 512 shard files on disk.
The features figures at such an N are those of the notes computed, and say so (``computed``).

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


def _notes(n: int, *, seed: int = 0):
    """(index row, audio) of ``n`` synthetic notes, made as they are asked for."""
    from synth.data.nsynth_format import FAMILIES, make_example
    from training.datasets.synthetic import synth_note

    keys = (36, 43, 50, 57, 64, 71, 78, 85)
    bank = [synth_note(pitch=keys[b % 8], velocity=100, rng=np.random.default_rng([seed, b])) for b in range(BANK)]
    rng = np.random.default_rng(seed)
    for i in range(n):
        b = i % BANK
        family = FAMILIES[(i // BANK) % len(FAMILIES)]
        row = make_example(family=family, source="synthetic", instrument_index=i // BANK, instrument_id=i // BANK,
                           note_id=i, pitch=keys[b % 8], velocity=1 + int(rng.integers(0, 127)),
                           dataset_source="synthetic")
        row["note_str"] = f"{row['instrument_str']}-{i:06d}"  # unique however many instruments share a name
        audio = bank[b] * rng.uniform(0.3, 1.0) + rng.normal(0.0, 1e-4, bank[b].size).astype(np.float32)
        yield row, audio.astype(np.float32)


def _splits_of(n: int) -> np.ndarray:
    """The split of each of ``n`` notes: :data:`HELD_OUT` each in valid and test, the rest train."""
    held = HELD_OUT
    order = np.random.default_rng(1).permutation(n)
    split = np.full(n, "train", dtype=object)
    split[order[:held]] = "valid"
    split[order[held : 2 * held]] = "test"
    return split


def stage_features(n: int, out: Path, *, limit: int) -> dict[str, Any]:
    from synth.spectrogram import SpectrogramParams
    from training.datasets.compute_features import write_sharded

    computed = min(n, limit)
    where = _splits_of(n)

    def notes():
        for i, (row, audio) in enumerate(_notes(n)):
            yield row, audio, str(where[i])

    def limited():
        for i, note in enumerate(notes()):
            if i == computed:
                return
            yield note

    t0 = time.perf_counter()
    write_sharded(limited(), out=out, params=SpectrogramParams(), split="official", seed=0, workers=2, force=True,
                  progress=False, shard_notes=SHARD_NOTES, resume=False, plan={"source": f"bench {n}"}, inputs=[],
                  total=computed)
    seconds = time.perf_counter() - t0
    rss = _rss_mb()
    copy_s = None
    if n > computed:
        t1 = time.perf_counter()
        _complete_by_copies(out, n)
        copy_s = round(time.perf_counter() - t1, 1)
    size = sum(p.stat().st_size for p in (out / "shards").iterdir())
    return {"notes": n, "computed": computed, "seconds": round(seconds, 1), "notes_per_s": round(computed / seconds, 1),
            "copies_s": copy_s, "shards": len(list((out / "shards").glob("shard-*.npy"))),
            "disk_gb": round(size / 1e9, 2), **rss}


def _complete_by_copies(out: Path, n: int) -> None:
    """Make the features folder ``out`` hold ``n`` notes: its shards copied under new names, round and round
    (the last one cut to what is left), each copy's notes renamed; then its index, splits (50 + 50 drawn from
    all ``n``), shard table and checksums written again."""
    from synth.atomic import atomic_write_text
    from training.datasets.features import sha256_file
    from training.datasets.shards import (SHARDS_FILE, SHARDS_FORMAT, Shard, read_shard_table, row_hash_file,
                                          write_shard)

    base = read_shard_table(out / "shards")
    index = json.loads((out / "index.json").read_text())
    rows, have = index["rows"], sum(s.rows for s in base)
    table = list(base)
    k = len(table)
    while have < n:
        src = base[(k - len(base)) % len(base)]
        take = min(src.rows, n - have)
        name = f"shard-{k:05d}.npy"
        if take == src.rows:
            shutil.copyfile(out / "shards" / src.file, out / "shards" / name)
            shutil.copyfile(out / "shards" / row_hash_file(src.file), out / "shards" / row_hash_file(name))
            shard = Shard(file=name, start=have, rows=take, sha256=src.sha256, rows_sha256=src.rows_sha256)
        else:
            part = np.load(out / "shards" / src.file, mmap_mode="r")[:take]
            shard = dataclasses.replace(write_shard(out / "shards" / name, np.asarray(part, np.float32)), start=have)
        table.append(shard)
        for j in range(take):
            row = dict(rows[src.start + j])
            row["note_str"] = f"{row['note_str']}-copy{k:05d}"
            rows.append(row)
        have += take
        k += 1
    where = _splits_of(n)
    splits = {name: [i for i in range(n) if where[i] == name] for name in ("train", "valid", "test")}
    atomic_write_text(out / "index.json", json.dumps({"source": index.get("source"), "rows": rows}) + "\n")
    atomic_write_text(out / "splits.json", json.dumps({"rule": "official", "seed": 0, **splits}) + "\n")
    doc = {"format": SHARDS_FORMAT, "dtype": "float16", "shards": [s.to_dict() for s in table]}
    atomic_write_text(out / "shards" / SHARDS_FILE, json.dumps(doc, indent=1) + "\n")
    atomic_write_text(out / "checksums.json",
                      json.dumps({f"shards/{SHARDS_FILE}": sha256_file(out / "shards" / SHARDS_FILE)}) + "\n")


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
    parser.add_argument("--stage", choices=["features", "training"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage == "features":
        print(json.dumps(stage_features(args.n, args.root / f"features-{args.n}", limit=args.features_limit)))
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
            row = {"notes": n, "started": start, "load_at_start": [round(v, 2) for v in load],
                   "features": _stage(["--stage", "features", "--n", str(n), "--root", str(args.root),
                                       "--features-limit", str(args.features_limit)]),
                   "training": _stage(["--stage", "training", "--n", str(n), "--root", str(args.root)])}
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
        print("| notes | computed | features notes/s | features peak RSS (process / worker) MB | shards, GB | "
              "training notes/s (epoch, validation included) | training peak RSS MB | test RMSE |")
        print("|---|---|---|---|---|---|---|---|")
        for r in results:
            f, t = r["features"], r["training"]
            print(f"| {r['notes']} | {f['computed']} | {f['notes_per_s']} | {f['peak_rss_mb']} / {f['peak_worker_rss_mb']} | "
                  f"{f['shards']}, {f['disk_gb']} | {t['train_notes_per_s']} ({t['epoch_s']} s) | {t['peak_rss_mb']} | "
                  f"{t['test_rmse']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
