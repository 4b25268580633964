"""Features in float16 shards: the same notes as the one-file layout, resumable shard by shard, a bad note
skipped and named, each shard checked when first read, and reading them keeps a process's memory flat."""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path

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
    written = sorted(p.name for p in (work / "shards").glob("*.npy"))
    assert written == ["shard-00000.npy", "shard-00001.npy"] and not out.exists()
    assert sorted(p.name for p in (work / "progress").iterdir()) == ["00000.json", "00001.json"]
    stamps = {p: (work / "shards" / p).stat().st_mtime_ns for p in written}
    with pytest.raises(DataError, match="--resume continues it, --force starts again"):
        sharded(nsynth, out)
    with pytest.raises(DataError, match=r"resumed.partial: a partial run of another plan is there \(shard_notes: 7 "
                                        r"then, 5 now\); --resume continues only the same plan"):
        compute_features(nsynth, out=out, params=SMALL, workers=1, progress=False, shard_notes=5, resume=True)
    feats = load_features(sharded(nsynth, out, resume=True))
    np.testing.assert_allclose(np.asarray(feats.x), one_file.x, atol=1e-3)
    assert {p: (out / "shards" / p).stat().st_mtime_ns for p in written} == stamps  # kept, not made again


def test_each_row_is_checked_when_first_read_and_nothing_else_is_read(nsynth, tmp_path, monkeypatch):
    """A row is checked against its recorded hash (and for finite values) when it is first read, from the
    bytes read anyway: no shard is read whole, a corrupt row is named, the shard's other rows stay usable."""
    import os as os_module

    from training.datasets import shards as shards_module

    out = sharded(nsynth, tmp_path / "checked")
    clean = np.asarray(load_features(out).x)
    shard = out / "shards" / "shard-00002.npy"  # rows 14..20
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # in its last row, 20
    shard.write_bytes(bytes(data))
    read = {"bytes": 0}
    pread = os_module.pread

    def counted(fd, n, offset):
        read["bytes"] += n
        return pread(fd, n, offset)

    monkeypatch.setattr(shards_module.os, "pread", counted)
    monkeypatch.setattr(shards_module, "_verify_bytes", None)  # the whole-shard check: never called
    feats = load_features(out)  # opening reads no row
    row_bytes = SMALL.n_mels * SMALL.frames * 2
    assert read["bytes"] == 0
    np.testing.assert_array_equal(feats.x[np.array([15, 3])], clean[[15, 3]])  # shard 2's good rows: usable
    assert read["bytes"] == 2 * row_bytes  # the two rows read, and nothing else
    with pytest.raises(DataError, match=r"shard-00002.npy: checksum mismatch at row 20 \(note 6 of the shard"):
        feats.x[np.array([14, 20])]
    assert "row 20" in str(feats.x.failure)
    np.testing.assert_array_equal(feats.x[14:20], clean[14:20])
    # Row hashes that were changed are named as such; missing ones too; a missing shard at opening.
    hashes = out / "shards" / "shard-00001.sha256"
    hashes.write_bytes(hashes.read_bytes()[:-1] + b"\0")
    with pytest.raises(DataError, match="shard-00001.sha256: checksum mismatch .the row hashes of shard-00001.npy"):
        load_features(out).x[8]
    hashes.unlink()
    with pytest.raises(DataError, match="shard-00001.sha256: missing or unreadable row hashes of shard-00001.npy"):
        load_features(out).x[8]
    shard.unlink()
    with pytest.raises(DataError, match="shard-00002.npy: missing shard"):
        load_features(out)


def test_a_shard_written_before_row_hashes_is_checked_whole_when_first_read(nsynth, tmp_path):
    from training.datasets.features import sha256_file
    from training.datasets.shards import SHARDS_FILE

    out = sharded(nsynth, tmp_path / "legacy")
    table = json.loads((out / "shards" / SHARDS_FILE).read_text())
    for record in table["shards"]:
        del record["rows_sha256"]
    (out / "shards" / SHARDS_FILE).write_text(json.dumps(table))
    (out / "checksums.json").write_text(json.dumps({f"shards/{SHARDS_FILE}": sha256_file(out / "shards" / SHARDS_FILE)}))
    for hashes in (out / "shards").glob("*.sha256"):
        hashes.unlink()
    shard = out / "shards" / "shard-00002.npy"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # row 20
    shard.write_bytes(bytes(data))
    feats = load_features(out)
    feats.x[0:7]  # shard 0 is fine
    with pytest.raises(DataError, match="shard-00002.npy: checksum mismatch .the file"):
        feats.x[15]  # another row of the shard: the whole shard is checked


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


def test_a_features_npy_is_checked_block_by_block_when_first_read(one_file, tmp_path, monkeypatch):
    """No command reads a one-file features.npy whole before it starts: each block of rows is checked (its
    recorded SHA-256, finite values) the first time a row of it is read; a folder that records only the whole
    file's hash (written before blocks) is checked whole once and given its block hashes."""
    from training.datasets import shards
    from training.datasets.features import sha256_file

    calls = {"blocks": 0, "whole": 0}
    verify, whole = shards._verify_bytes, shards.features_checksums

    def counted_verify(*a, **kw):
        calls["blocks"] += 1
        return verify(*a, **kw)

    def counted_whole(*a, **kw):
        calls["whole"] += 1
        return whole(*a, **kw)

    monkeypatch.setattr(shards, "_verify_bytes", counted_verify)
    monkeypatch.setattr(shards, "features_checksums", counted_whole)
    folder = tmp_path / "blocks"
    shutil.copytree(one_file.path, folder)
    npy = folder / "features.npy"
    offset = int(np.load(npy, mmap_mode="r").offset)
    row_bytes = SMALL.n_mels * SMALL.frames * 4
    (folder / "checksums.json").write_text(json.dumps(
        whole(npy, rows=30, row_bytes=row_bytes, offset=offset, block_rows=8)))  # blocks 0-7, 8-15, 16-23, 24-29
    with open(npy, "r+b") as fh:  # one value of row 18
        fh.seek(offset + 18 * row_bytes + 100)
        fh.write(b"\x00\x00\xc0\x7f")
    feats = load_features(folder)
    assert calls == {"blocks": 0, "whole": 0}  # opening reads nothing
    np.testing.assert_array_equal(feats.x[0:8], one_file.x[0:8])
    np.testing.assert_array_equal(feats.x[np.array([9, 2])], one_file.x[np.array([9, 2])])
    feats.x[1]
    assert calls == {"blocks": 2, "whole": 0}  # blocks 0 and 1, once each
    with pytest.raises(DataError, match=r"features.npy: checksum mismatch \(rows 16..23\)"):
        feats.x[np.array([20, 2])]
    assert "rows 16..23" in str(feats.x.failure)
    np.testing.assert_array_equal(feats.x[24:30], one_file.x[24:30])  # the other blocks still read

    # A folder from before block hashes: checked whole at its first opening, then never again.
    legacy = tmp_path / "legacy"
    shutil.copytree(one_file.path, legacy)
    (legacy / "checksums.json").write_text(json.dumps({"features.npy": sha256_file(legacy / "features.npy")}))
    bad = tmp_path / "bad"
    shutil.copytree(legacy, bad)
    load_features(legacy)
    assert calls["whole"] == 1 and len(json.loads((legacy / "checksums.json").read_text())["blocks"]["sha256"]) == 1
    load_features(legacy)
    assert calls["whole"] == 1
    with open(bad / "features.npy", "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x00\xc0\x7f")
    recorded = (bad / "checksums.json").read_text()
    with pytest.raises(DataError, match="features.npy: checksum mismatch"):
        load_features(bad)
    assert (bad / "checksums.json").read_text() == recorded


@pytest.mark.parametrize("through", ["memory", "tf.data"])
def test_training_that_meets_a_corrupt_shard_names_it_and_keeps_nothing_or_its_checkpoint(nsynth, tmp_path,
                                                                                          monkeypatch, through):
    """A shard that fails its check when training first reads it stops the run with the shard's name (not
    TensorFlow's wrapping of it): a new run leaves no folder; a resumed one keeps its checkpoint."""
    pytest.importorskip("tensorflow")
    from training_fixtures import small_config

    from training.fit import FitOptions, fit
    from training.fit import notes as notes_module

    if through == "tf.data":  # rows read by the parallel numpy_function, not gathered from memory
        monkeypatch.setattr(notes_module, "IN_MEMORY_BYTES", 0)
    params = SpectrogramParams(n_mels=64, frames=64)
    out = compute_features(nsynth, out=tmp_path / "f", params=params, workers=1, progress=False, shard_notes=7)
    config = small_config("no_dense", max_epochs=1)
    run = fit(features=out, config=config, out=tmp_path / "kept", options=FitOptions(verbose=0))
    shard = out / "shards" / "shard-00003.npy"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        fit(features=out, config=config, out=tmp_path / "new", options=FitOptions(verbose=0))
    assert str(err.value).startswith(f"{shard}: checksum mismatch at row 27 ")
    assert str(err.value).endswith("(note 6 of the shard; the file is corrupt or was changed after it was written)")
    assert not (tmp_path / "new").exists()
    with pytest.raises(DataError, match=r"shard-00003.npy: checksum mismatch .*keeps its last checkpoint.*--resume"):
        fit(features=out, config=None, out=run, options=FitOptions(verbose=0, resume=True, max_epochs=2))
    assert (run / "history.csv").read_text().count("\n") == 2  # header and epoch 1: as it was


def _fat_notes(n: int, *, payload: int):
    """(index row, audio) of ``n`` short noise notes whose rows each carry ``payload`` bytes of metadata."""
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(4000)).astype(np.float32)
    for i in range(n):
        yield {"note_str": f"fat_synthetic_{i // 10:03d}-{i:05d}", "instrument_str": f"fat_synthetic_{i // 10:03d}",
               "sample_rate": SMALL.sample_rate, "pitch": 60, "comment": f"{i:05d}" + "x" * payload}, audio * (1 + i % 7)


def test_the_writer_holds_no_note_of_earlier_shards(tmp_path):
    """write_sharded keeps each shard's index rows on disk with the shard and writes index.json from there:
    the writer's own peak memory (its process, not the log-mel workers) is the same for 24 notes and 240 of
    20 kB rows each, shards of 8 (holding every row would add 4.3 MB)."""
    import tracemalloc

    from synth.data.splits import make_splits
    from training.datasets.compute_features import write_sharded

    payload = 20_000

    def peak_of(n: int, name: str) -> tuple[int, Path]:
        tracemalloc.start()
        try:
            out = write_sharded(_fat_notes(n, payload=payload), out=tmp_path / name, params=SMALL, split="instrument",
                                seed=0, workers=1, force=False, progress=False, shard_notes=8, resume=False,
                                plan={"source": name}, inputs=[])
            return tracemalloc.get_traced_memory()[1], out
        finally:
            tracemalloc.stop()

    peak_of(8, "warm")  # the imports a first run makes
    small, _ = peak_of(24, "small")
    large, out = peak_of(240, "large")
    assert large - small < 1_000_000, f"peak {small / 1e6:.1f} MB at 24 notes, {large / 1e6:.1f} MB at 240"
    feats = load_features(out)
    assert [r["note_str"] for r in feats.rows] == [r["note_str"] for r, _ in _fat_notes(240, payload=10)]
    assert all(len(r["comment"]) == 5 + payload for r in feats.rows)
    expected = make_splits(feats.rows, rule="instrument", seed=0)
    assert {k: v.tolist() for k, v in feats.splits.items()} == expected
    assert sorted(p.name for p in out.iterdir()) == ["checksums.json", "index.json", "shards", "skipped.json",
                                                      "spectrogram.json", "splits.json"]


def test_a_stop_while_the_index_is_written_leaves_nothing_and_resumes(nsynth, one_file, tmp_path, monkeypatch):
    from training.datasets import compute_features as module

    out = tmp_path / "stopped"
    real = module._JsonList.add
    calls = {"n": 0}

    def stop_at_row_12(self, item):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real(self, item)

    monkeypatch.setattr(module._JsonList, "add", stop_at_row_12)
    with pytest.raises(KeyboardInterrupt):
        sharded(nsynth, out)
    monkeypatch.setattr(module._JsonList, "add", real)
    work = tmp_path / f"stopped{PARTIAL_SUFFIX}"
    assert not out.exists() and sorted(p.name for p in work.iterdir()) == ["progress", "progress.json", "shards"]
    assert len(list((work / "shards").glob("*.npy"))) == 5  # every shard kept
    feats = load_features(sharded(nsynth, out, resume=True))
    np.testing.assert_allclose(np.asarray(feats.x), one_file.x, atol=1e-3)
    assert [r["note_str"] for r in feats.rows] == [r["note_str"] for r in one_file.rows]


def test_a_disk_that_fills_while_shards_are_written_says_so_and_resumes(nsynth, one_file, tmp_path, monkeypatch):
    """The third shard's write runs out of space half-way: an OutputError saying so and what to do; no file
    half-written (the shard's temporary file is gone), no OUT; --resume then finishes the same features."""
    import errno

    from synth.errors import OutputError

    out = tmp_path / "full"
    real = np.lib.format.write_array
    calls = {"n": 0}

    def fills(fh, array, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            fh.write(b"\x93NUMPY half a shard")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fh, array, *a, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", fills)
    with pytest.raises(OutputError, match=r"full.partial: the disk is full while writing shard 00002 .*"
                                          r"No space left.*run again with --resume"):
        sharded(nsynth, out)
    monkeypatch.setattr(np.lib.format, "write_array", real)
    work = tmp_path / f"full{PARTIAL_SUFFIX}"
    assert not out.exists()
    assert sorted(p.name for p in (work / "shards").iterdir() if p.suffix == ".npy") == ["shard-00000.npy",
                                                                                        "shard-00001.npy"]
    assert not [p for p in (work / "shards").iterdir() if "tmp" in p.name]
    feats = load_features(sharded(nsynth, out, resume=True))
    np.testing.assert_allclose(np.asarray(feats.x), one_file.x, atol=1e-3)
