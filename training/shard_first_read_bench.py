"""What the first read of a many-shard features set costs (issue 32): each shard checked whole the first time
a row of it is read (as before row hashes, and still for a shard recorded without them) against each row
checked from the bytes its read fetched. 40 shards of 512 random notes (128 x 512 float16, 2.7 GB); each mode
in a fresh process, reading (1) a first global batch of 64 notes of an epoch's order, (2) 400 notes spread
over the set, as an evaluate's held-out notes, (3) every row once; bytes read from the shard files counted.

Usage (niced: a throughput figure)::

    nice -n 10 .venv/bin/python bench/bench_shard_first_read.py make /tmp/fr
    for m in whole row whole row; do nice -n 10 .venv/bin/python bench/bench_shard_first_read.py measure /tmp/fr $m; done
"""

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SHARDS, PER, N_MELS, FRAMES = 40, 512, 128, 512


def make(root: Path) -> None:
    from training.datasets.shards import write_shard

    (root / "s").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    table = []
    for k in range(SHARDS):
        s = write_shard(root / "s" / f"shard-{k:05d}.npy", rng.random((PER, N_MELS, FRAMES), dtype=np.float32))
        table.append(dataclasses.replace(s, start=k * PER).to_dict())
    (root / "table.json").write_text(json.dumps(table))


def measure(root: Path, mode: str) -> None:
    from training.datasets import shards as sh

    table = [sh.Shard(**t) for t in json.loads((root / "table.json").read_text())]
    if mode == "whole":  # no row hashes recorded: the shard is checked whole at its first read
        table = [dataclasses.replace(t, rows_sha256="") for t in table]
    counted = {"bytes": 0}
    pread, verify = os.pread, sh._verify_bytes

    def counted_pread(fd, n, offset):
        counted["bytes"] += n
        return pread(fd, n, offset)

    def counted_verify(path, *, hash_from, data_from, stop, **kw):
        counted["bytes"] += stop - hash_from
        return verify(path, hash_from=hash_from, data_from=data_from, stop=stop, **kw)

    sh.os.pread, sh._verify_bytes = counted_pread, counted_verify
    n = SHARDS * PER
    out = {}
    for name, rows in (("first global batch of 64 (a training start)", np.random.default_rng(1).permutation(n)[:64]),
                       ("400 held-out notes spread over the set (an evaluate)",
                        np.sort(np.random.default_rng(2).choice(n, 400, replace=False))),
                       ("every row once (a full epoch)", np.arange(n))):
        x = sh.ShardedArray(root / "s", table, n_mels=N_MELS, frames=FRAMES)
        counted["bytes"] = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), 64):
            x[rows[i : i + 64]]
        out[name] = {"wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
                     "mb_read": round(counted["bytes"] / 1e6), "rows": len(rows),
                     "rows_mb": round(len(rows) * N_MELS * FRAMES * 2 / 1e6)}
    print(json.dumps({"mode": mode, **out}))


def main(argv: list[str] | None = None) -> int:
    """``bench/bench_shard_first_read.py make ROOT`` or ``measure ROOT whole|row``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("make", "measure") or (args[0] == "measure" and
                                                                (len(args) < 3 or args[2] not in ("whole", "row"))):
        print(__doc__, file=sys.stderr)
        return 2
    if args[0] == "make":
        make(Path(args[1]))
    else:
        measure(Path(args[1]), args[2])
    return 0
