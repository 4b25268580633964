"""Datasets: NSynth-format folders and TFRecords, SoundFont rendering, synthetic notes, features and splits."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from synth.data.splits import make_splits
from synth.errors import DataError, ExternalToolError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.datasets.compute_features import compute_features
from training.datasets.features import load_features
from training.datasets.nsynth import select_nsynth
from training.datasets.soundfont import render_soundfont_dataset
from training.datasets.synthetic import make_synthetic_dataset

SMALL = SpectrogramParams(n_mels=64, frames=128)  # fast features for tests; the contract travels with them


@pytest.fixture(scope="module")
def nsynth_folder(tmp_path_factory):
    return make_synthetic_dataset(out=tmp_path_factory.mktemp("ds") / "nsynth-test", instruments=6)


@pytest.fixture(scope="module")
def features(nsynth_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("feat") / "features"
    return compute_features(nsynth_folder, out=out, params=SMALL, workers=1, progress=False)


def melsynth(*args):
    return subprocess.run([sys.executable, "-m", "synth.cli", *map(str, args)], capture_output=True, text=True)


def test_features_folder_layout_and_loader(features, nsynth_folder):
    f = load_features(features)
    examples = json.loads((nsynth_folder / "examples.json").read_text())
    assert f.x.shape == (30, 64, 128) and f.x.dtype == np.float32
    assert isinstance(f.x[0:30], np.memmap)  # rows read from the memory map, each block checked first
    assert [r["note_str"] for r in f.rows] == sorted(examples)
    assert f.params == SMALL
    assert sorted(np.concatenate(list(f.splits.values())).tolist()) == list(range(30))
    assert f.description()["split_sizes"] == {k: len(v) for k, v in f.splits.items()}


def test_features_match_an_independent_librosa_computation(features, nsynth_folder):
    """Anyone with librosa and spectrogram.json reproduces the rows to 1e-5."""
    d = json.loads((features / "spectrogram.json").read_text())
    f = load_features(features)
    for row in (0, 17):
        y, sr = sf.read(nsynth_folder / "audio" / f"{f.rows[row]['note_str']}.wav", dtype="float32")
        M = librosa.feature.melspectrogram(
            y=y, sr=sr, n_fft=d["n_fft"], hop_length=d["hop_length"], win_length=d["win_length"],
            window=d["window"], center=d["center"], power=2.0, n_mels=d["n_mels"], fmin=d["fmin"],
            fmax=d["fmax"], htk=d["htk"], norm=d["mel_norm"])
        x = np.clip((10 * np.log10(np.maximum(M, d["amin"])) - d["db_min"]) / (d["db_max"] - d["db_min"]), 0, 1)
        np.testing.assert_allclose(f.x[row], x[:, : d["frames"]], atol=1e-5)


def test_instrument_split_never_shares_an_instrument_and_is_reproducible(features):
    f = load_features(features)
    owners = {}
    for split, rows in f.splits.items():
        for i in rows:
            owners.setdefault(f.rows[i]["instrument_str"], set()).add(split)
    assert all(len(s) == 1 for s in owners.values())
    rows = [{"instrument_str": f"i{i // 5}"} for i in range(100)]
    a, b = make_splits(rows, seed=3), make_splits(rows, seed=3)
    assert a == b and make_splits(rows, seed=4) != a
    assert [len(a[k]) for k in ("train", "valid", "test")] == [80, 10, 10]


def test_random_split_is_the_papers_80_10_10():
    rows = [{"instrument_str": "same"} for _ in range(200)]
    s = make_splits(rows, rule="random", seed=0)
    assert [len(s[k]) for k in ("train", "valid", "test")] == [160, 20, 20]


def test_corrupt_features_are_detected(features, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(features, copy)
    with open(copy / "features.npy", "r+b") as fh:
        fh.seek(-4, 2)
        fh.write(b"\x00\x00\xc0\x7f")  # a NaN in the last value
    feats = load_features(copy)  # opening reads no row: each block is checked when first read
    with pytest.raises(DataError, match=r"features.npy: checksum mismatch \(rows 0..29\)"):
        feats.x[3]


def test_tfrecord_selection(tmp_path):
    tf = pytest.importorskip("tensorflow")
    path = tmp_path / "nsynth-test.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        for pitch, vel in ((60, 100), (61, 100), (60, 25)):
            name = f"guitar_acoustic_001-{pitch:03d}-{vel:03d}"
            ints = {"note": 1, "instrument": 1, "pitch": pitch, "velocity": vel, "sample_rate": 16000,
                    "instrument_family": 3, "instrument_source": 0}
            strs = {"note_str": name, "instrument_str": "guitar_acoustic_001", "instrument_family_str": "guitar",
                    "instrument_source_str": "acoustic"}
            feat = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=[v])) for k, v in ints.items()}
            feat |= {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) for k, v in strs.items()}
            feat["qualities"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[0] * 10))
            audio = 0.3 * np.sin(2 * np.pi * 261.6 * np.arange(64000) / 16000)
            feat["audio"] = tf.train.Feature(float_list=tf.train.FloatList(value=audio.tolist()))
            w.write(tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString())
    n = select_nsynth(path, out=tmp_path / "sel", pitch=60, velocities=[100])
    assert n == 1
    ex = json.loads((tmp_path / "sel" / "examples.json").read_text())
    assert list(ex) == ["guitar_acoustic_001-060-100"]
    y, sr = sf.read(tmp_path / "sel" / "audio" / "guitar_acoustic_001-060-100.wav")
    assert sr == 16000 and y.shape == (64000,)


def _write_tfrecord(tf, path, notes):
    """An NSynth-format TFRecord of ``notes``: (instrument index, family, pitch, velocity, audio)."""
    from synth.data.nsynth_format import FAMILIES

    with tf.io.TFRecordWriter(str(path)) as w:
        for i, family, pitch, vel, audio in notes:
            instrument = f"{family}_acoustic_{i:03d}"
            ints = {"note": i, "instrument": i, "pitch": pitch, "velocity": vel, "sample_rate": 16000,
                    "instrument_family": FAMILIES.index(family), "instrument_source": 0}
            strs = {"note_str": f"{instrument}-{pitch:03d}-{vel:03d}", "instrument_str": instrument,
                    "instrument_family_str": family, "instrument_source_str": "acoustic"}
            feat = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=[v])) for k, v in ints.items()}
            feat |= {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()])) for k, v in strs.items()}
            feat["qualities"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[0, 1] + [0] * 8))
            feat["audio"] = tf.train.Feature(float_list=tf.train.FloatList(value=audio.tolist()))
            w.write(tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString())


def test_nsynth_tfrecords_become_features_directly_in_their_official_splits(tmp_path):
    """dataset nsynth --features: the notes of NSynth's three TFRecord files, every pitch, straight into
    float16 shards (no WAV written), each note in the split of its file, a silent note skipped and named;
    the features are the log-mels of the records' own audio."""
    tf = pytest.importorskip("tensorflow")
    from synth.cli import main
    from synth.spectrogram import log_mel
    from training.datasets.nsynth import nsynth_features
    from training.datasets.synthetic import synth_note

    audio = {}
    files = {}
    for split, instruments in (("train", (0, 1, 2)), ("valid", (3,)), ("test", (4,))):
        notes = []
        for i in instruments:
            for pitch in (48, 60, 67):
                y = synth_note(pitch=pitch, velocity=100, rng=np.random.default_rng([i, pitch]))
                notes.append((i, "guitar" if i % 2 else "brass", pitch, 100, y))
        if split == "train":
            notes.append((9, "organ", 60, 100, np.zeros(64000, np.float32)))  # silent
        files[split] = tmp_path / f"nsynth-{split}.tfrecord"
        _write_tfrecord(tf, files[split], notes)
        audio |= {f"{'guitar' if i % 2 else 'brass'}_acoustic_{i:03d}-{p:03d}-100": y for i, _, p, _, y in notes}
    out = nsynth_features(list(files.values()), out=tmp_path / "f", params=SMALL, pitch=None, shard_notes=4,
                          workers=1, progress=False)
    feats = load_features(out)
    names = [r["note_str"] for r in feats.rows]
    assert len(names) == 15 and "organ_acoustic_009-060-100" not in names
    assert {r["pitch"] for r in feats.rows} == {48, 60, 67}
    skipped = json.loads((out / "skipped.json").read_text())
    assert [s["note_str"] for s in skipped] == ["organ_acoustic_009-060-100"] and "silent" in skipped[0]["reason"]
    for split, file_instruments in (("train", {0, 1, 2}), ("valid", {3}), ("test", {4})):
        assert {feats.rows[r]["instrument"] for r in feats.subset(split)} == file_instruments
    assert json.loads((out / "splits.json").read_text())["rule"] == "official"
    assert not list(tmp_path.rglob("*.wav"))
    for row in (0, 7, 14):
        expected = log_mel(audio[names[row]], params=SMALL)
        np.testing.assert_allclose(feats.x[row], expected, atol=1e-3)  # float16 on disk
    assert feats.rows[0]["qualities"] == [0, 1] + [0] * 8

    # The command line: one pitch, a new instrument split, the paper's contract.
    code = main(["dataset", "nsynth", *map(str, files.values()), "--features", "--out", str(tmp_path / "g"),
                 "--pitch", "60,67", "--split", "random", "--shards", "5", "--workers", "1"])
    again = load_features(tmp_path / "g")
    assert code == 0 and {r["pitch"] for r in again.rows} == {60, 67} and len(again.rows) == 10
    assert again.split_rule == "random" and again.x.shape[1:] == (128, 512)
    with pytest.raises(DataError, match="no note matches"):
        nsynth_features(list(files.values()), out=tmp_path / "none", params=SMALL, pitch=99, workers=1,
                        progress=False)
    assert not list(tmp_path.glob("none*"))
    with pytest.raises(DataError, match="names none"):
        nsynth_features([files["train"].rename(tmp_path / "mine.tfrecord")], out=tmp_path / "h", params=SMALL)


def test_folder_selection_by_family_and_velocity(nsynth_folder, tmp_path):
    n = select_nsynth(nsynth_folder, out=tmp_path / "sel", families=["bass", "brass"], velocities=[127])
    assert n == 2
    with pytest.raises(DataError, match="no note matches"):
        select_nsynth(nsynth_folder, out=tmp_path / "none", pitch=61)
    assert not (tmp_path / "none").exists()


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/TimGM6mb.sf2").exists(),
                    reason="needs fluidsynth and timgm6mb-soundfont (installed by .ci/run)")
def test_soundfont_render_is_nsynth_format(tmp_path):
    fonts = [Path("/usr/share/sounds/sf2/TimGM6mb.sf2")]
    if Path("/usr/share/sounds/sf2/FluidR3_GM.sf2").exists():
        fonts.append(Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"))
    report = render_soundfont_dataset(fonts=fonts, out=tmp_path / "sf", programs=[0, 43, 56], velocities=[50, 127],
                                      progress=False)
    ex = json.loads((tmp_path / "sf" / "examples.json").read_text())
    assert report.rendered == len(ex) > 0
    # FluidR3_GM has no contrabass sample at key 60: skipped and reported, not fatal.
    if len(fonts) == 2:
        assert {s["program"] for s in report.skipped} == {43}
    rec = ex["brass_acoustic_000-060-127"]
    assert rec["soundfont"] == "TimGM6mb.sf2" and rec["program"] == 56 and rec["instrument_family"] == 1
    y, sr = sf.read(tmp_path / "sf" / "audio" / "brass_acoustic_000-060-127.wav")
    info = sf.info(tmp_path / "sf" / "audio" / "brass_acoustic_000-060-127.wav")
    assert sr == 16000 and y.shape == (64000,) and info.subtype == "PCM_16"
    # held 3 s, then released: the last half second is much quieter than the held part
    held, tail = np.abs(y[16000:44000]).max(), np.abs(y[-8000:]).max()
    assert held > 0.01 and tail < held / 10


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/TimGM6mb.sf2").exists(),
                    reason="needs fluidsynth and timgm6mb-soundfont (installed by .ci/run)")
def test_soundfont_render_at_several_pitches_keeps_an_instrument_in_one_split(tmp_path):
    font = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
    report = render_soundfont_dataset(fonts=[font], out=tmp_path / "sf", programs=[0, 56, 73], velocities=[100],
                                      pitch=[59, 60, 61], progress=False)
    ex = json.loads((tmp_path / "sf" / "examples.json").read_text())
    assert report.rendered == len(ex) == 9
    assert {r["pitch"] for r in ex.values()} == {59, 60, 61}
    # one note a semitone up sounds a semitone up: its fundamental is 2**(1/12) higher
    y60, _ = sf.read(tmp_path / "sf" / "audio" / "flute_acoustic_000-060-100.wav")
    y61, _ = sf.read(tmp_path / "sf" / "audio" / "flute_acoustic_000-061-100.wav")
    f60, f61 = (float(np.median(librosa.yin(y[4000:36000], fmin=100, fmax=800, sr=16000))) for y in (y60, y61))
    assert f61 / f60 == pytest.approx(2 ** (1 / 12), rel=0.01)
    rows = list(ex.values())
    for rule_seed in range(3):
        splits = make_splits(rows, seed=rule_seed)
        where = {rows[i]["instrument_str"]: name for name, idx in splits.items() for i in idx}
        for name, idx in splits.items():
            assert all(where[rows[i]["instrument_str"]] == name for i in idx)
    with pytest.raises(ParameterError, match=r"pitches \[60, 128\]: each must be a MIDI key"):
        render_soundfont_dataset(fonts=[font], out=tmp_path / "bad", pitch=[60, 128], progress=False)
    assert not (tmp_path / "bad").exists()


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2/TimGM6mb.sf2").exists(),
                    reason="needs fluidsynth and timgm6mb-soundfont (installed by .ci/run)")
def test_a_soundfont_named_like_an_option_is_read_as_a_file(tmp_path, monkeypatch):
    """A font named `-Fx.sf2` once reached fluidsynth as its option -F (write the audio to x.sf2)."""
    from training.datasets.soundfont import render_note

    monkeypatch.chdir(tmp_path)
    (tmp_path / "-Fx.sf2").symlink_to("/usr/share/sounds/sf2/TimGM6mb.sf2")
    y = render_note(Path("-Fx.sf2"), program=0, pitch=60, velocity=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["-Fx.sf2"]  # no x.sf2 written beside it
    assert np.abs(y).max() > 0.01


def test_soundfont_bad_inputs(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="nope.sf2: SoundFont not found"):
        render_soundfont_dataset(fonts=[tmp_path / "nope.sf2"], out=tmp_path / "o", progress=False)
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"not a soundfont")
    with pytest.raises(DataError, match="not a SoundFont 2 file"):
        render_soundfont_dataset(fonts=[fake], out=tmp_path / "o", progress=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExternalToolError, match="fluidsynth: program not found"):
        render_soundfont_dataset(fonts=[fake], out=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def _copy(folder, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def _edit_note(folder, fn):
    name = sorted(json.loads((folder / "examples.json").read_text()))[3]
    fn(folder / "audio" / f"{name}.wav")
    return name


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: (d / "examples.json").write_text("{broken"), "examples.json: not a readable JSON"),
    (lambda d: (d / "examples.json").unlink(), "examples.json: no such NSynth-format examples file"),
    (lambda d: _edit_note(d, lambda p: sf.write(p, np.zeros(64000) + 0.1, 22050)), "sample rate 22050 Hz, expected 16000"),
    (lambda d: _edit_note(d, lambda p: sf.write(p, np.full(64000, np.nan), 16000, subtype="FLOAT")), "NaN"),
    (lambda d: _edit_note(d, lambda p: sf.write(p, np.zeros(64000), 16000)), "silent note"),
    (lambda d: _edit_note(d, lambda p: p.unlink()), "missing audio file"),
    (lambda d: _edit_note(d, lambda p: p.write_bytes(b"RIFF....WAVEjunk")), "unreadable audio"),
])
def test_bad_dataset_inputs_fail_cleanly(nsynth_folder, tmp_path, damage, fragment):
    src = _copy(nsynth_folder, tmp_path)
    damage(src)
    out = tmp_path / "features"
    with pytest.raises(DataError, match=fragment):
        compute_features(src, out=out, params=SMALL, workers=1, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".features.*"))


def test_cli_reports_one_line_error_and_nonzero_exit(tmp_path):
    r = melsynth("dataset", "features", tmp_path / "missing", "--out", tmp_path / "f")
    assert r.returncode == 1
    assert r.stderr.strip() == f"melsynth: error: {tmp_path / 'missing'}: no such dataset folder"


def test_cli_refuses_to_overwrite(features, nsynth_folder):
    r = melsynth("dataset", "features", nsynth_folder, "--out", features)
    assert r.returncode == 1 and "already exists (use --force" in r.stderr


def test_an_empty_split_of_too_few_instruments_says_why_and_what_to_do(tmp_path):
    from training_fixtures import synthetic_notes, write_features

    from training.datasets.features import load_features

    path = write_features(tmp_path / "feat", synthetic_notes(6), splits={"train": [0, 1, 2, 3, 4, 5], "valid": [],
                                                                         "test": []})
    index = json.loads((path / "index.json").read_text())
    for i, row in enumerate(index["rows"]):
        row["instrument_str"] = f"string_acoustic_00{i % 2}"  # two instruments: all in train
    (path / "index.json").write_text(json.dumps(index))
    splits = json.loads((path / "splits.json").read_text())
    (path / "splits.json").write_text(json.dumps(dict(splits, rule="instrument")))
    with pytest.raises(DataError, match=r"'valid' split is empty \(its notes are split by instrument, and it has 2:"
                                        r".*--split random"):
        load_features(path).subset("valid")
