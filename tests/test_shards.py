"""Features in float16 shards: the same notes as the one-file layout, resumable shard by shard, a bad note
skipped and named, each shard checked when first read, and reading them keeps a process's memory flat."""

from __future__ import annotations

import json
import resource
import shutil

import numpy as np
import pytest

from synth.errors import DataError
from synth.spectrogram import SpectrogramParams
from training.datasets import compute_features as compute_module
from training.datasets.compute_features import PARTIAL_SUFFIX, compute_features
from training.datasets.features import load_features
from training.datasets.synthetic import make_synthetic_dataset

SMALL = SpectrogramParams(n_mels=64, frames=128)


@pytest.fixture(scope="module")
def nsynth(tmp_path_factory):
    return make_synthetic_dataset(out=tmp_path_factory.mktemp("ds") / "nsynth", instruments=6)


@pytest.fixture(scope="module")
def one_file(nsynth, tmp_path_factory):
    return load_features(compute_features(nsynth, out=tmp_path_factory.mktemp("f") / "one", params=SMALL, workers=1,
                                          progress=False))


def sharded(nsynth, out, **kw):
    return compute_features(nsynth, out=out, params=SMALL, workers=1, progress=False, shard_notes=7, **kw)


def test_shards_hold_the_same_notes_as_one_file(nsynth, one_file, tmp_path):
    feats = load_features(sharded(nsynth, tmp_path / "sharded"))
    assert len(feats.x) == len(one_file.x) == 30 and feats.x.shape == one_file.x.shape
    assert len(feats.x.shards) == 5  # 30 notes in shards of 7
    assert [r["note_str"] for r in feats.rows] == [r["note_str"] for r in one_file.rows]
    assert {k: v.tolist() for k, v in feats.splits.items()} == {k: v.tolist() for k, v in one_file.splits.items()}
    rows = np.array([29, 3, 3, 14])  # any order, across shards, repeats
    np.testing.assert_allclose(feats.x[rows], one_file.x[rows], atol=1e-3)  # float16: 0.06 dB at most
    np.testing.assert_allclose(feats.x[5:9], one_file.x[5:9], atol=1e-3)
    np.testing.assert_allclose(np.asarray(feats.x, dtype=np.float32), one_file.x, atol=1e-3)
    assert feats.x[0].dtype == np.float32 and feats.x.nbytes == one_file.x.nbytes
    assert not (tmp_path / f"sharded{PARTIAL_SUFFIX}").exists()


def test_a_bad_note_is_skipped_and_named_not_the_end_of_the_job(nsynth, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(nsynth, src)
    bad = sorted((src / "audio").iterdir())[8]
    bad.write_bytes(b"not a wav file")
    feats = load_features(sharded(src, tmp_path / "out"))
    assert len(feats.rows) == 29 and bad.stem not in {r["note_str"] for r in feats.rows}
    skipped = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert [s["note_str"] for s in skipped] == [bad.stem] and str(bad) in skipped[0]["reason"]


def test_a_stopped_run_resumes_where_it_stopped(nsynth, one_file, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    real = compute_module.np.stack
    calls = {"n": 0}

    def stop_at_the_third_shard(arrays, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(arrays, *a, **kw)

    monkeypatch.setattr(compute_module.np, "stack", stop_at_the_third_shard)
    with pytest.raises(KeyboardInterrupt):
        sharded(nsynth, out)
    monkeypatch.setattr(compute_module.np, "stack", real)
    work = tmp_path / f"resumed{PARTIAL_SUFFIX}"
    written = sorted(p.name for p in (work / "shards").iterdir())
    assert written == ["shard-00000.npy", "shard-00001.npy"] and not out.exists()
    stamps = {p: (work / "shards" / p).stat().st_mtime_ns for p in written}
    with pytest.raises(DataError, match="--resume continues it, --force starts again"):
        sharded(nsynth, out)
    feats = load_features(sharded(nsynth, out, resume=True))
    np.testing.assert_allclose(np.asarray(feats.x), one_file.x, atol=1e-3)
    assert {p: (out / "shards" / p).stat().st_mtime_ns for p in written} == stamps  # kept, not made again


def test_each_shard_is_checked_when_first_read(nsynth, tmp_path):
    out = sharded(nsynth, tmp_path / "checked")
    shard = out / "shards" / "shard-00002.npy"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    feats = load_features(out)  # opening reads no shard
    feats.x[0:7]  # shard 0 is fine
    with pytest.raises(DataError, match="shard-00002.npy: checksum mismatch"):
        feats.x[15]
    shard.unlink()
    with pytest.raises(DataError, match="shard-00002.npy: missing shard"):
        load_features(out)


def test_reading_every_row_keeps_memory_flat(tmp_path):
    """Rows are read with pread, not a memory map: a process that has read a set does not hold it."""
    from training.datasets.shards import ShardedArray, write_shard

    n_mels, frames, per_shard, shards = 64, 128, 500, 8  # 4000 notes, 64 MB as float16
    (tmp_path / "s").mkdir()
    table = []
    rng = np.random.default_rng(0)
    for k in range(shards):
        s = write_shard(tmp_path / "s" / f"shard-{k:05d}.npy",
                        rng.random((per_shard, n_mels, frames), dtype=np.float32))
        table.append(type(s)(file=s.file, start=k * per_shard, rows=s.rows, sha256=s.sha256))
    x = ShardedArray(tmp_path / "s", table, n_mels=n_mels, frames=frames)

    def resident_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20

    x[np.arange(0, 200)]  # warm: the code paths, one batch
    before = resident_mb()
    for start in range(0, len(x), 200):
        x[np.arange(start, start + 200)]
    assert resident_mb() - before < 16, "reading 64 MB of shards kept them resident"
    # The measure sees what a memory map would keep: the same shards read through np.load's map.
    maps = [np.load(tmp_path / "s" / t.file, mmap_mode="r") for t in table]
    before = resident_mb()
    for m in maps:
        float(np.asarray(m, dtype=np.float32).sum())
    assert resident_mb() - before > 40
