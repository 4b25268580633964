"""Your own instrument: a folder of recordings (mixed rates, stereo, lengths, formats, a few notes a semitone
off, one broken file) -> dataset audio -> features -> train -> export -> a bundle that plays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.errors import DataError, ParameterError
from training.datasets.audio_folder import make_audio_dataset

REPO = Path(__file__).resolve().parents[1]


def tone(midi: float, *, rate: int, seconds: float, level: float = 0.5, channels: int = 1, lead: float = 0.1,
         partials: int = 6, seed: int = 0) -> np.ndarray:
    """A harmonic note with an attack, a decay and ``lead`` seconds of silence before it."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, partials + 1))
    env = np.minimum(1.0, t / 0.02) * np.exp(-t / 1.5)
    y = level * y * env / np.max(np.abs(y))
    y = np.concatenate([np.zeros(int(lead * rate)), y]).astype(np.float32)
    return np.stack([y, 0.8 * y], axis=1) if channels == 2 else y


def recordings(root: Path) -> Path:
    """strings/violin (4 takes), brass/horn (3), two loose files, one broken, one silent, one noise."""
    takes = [
        ("strings/violin/a.wav", dict(midi=60, rate=44100, seconds=5.5, channels=2, seed=1)),
        ("strings/violin/b.flac", dict(midi=60, rate=48000, seconds=2.0, level=0.2, seed=2)),
        ("strings/violin/c.aiff", dict(midi=61, rate=22050, seconds=4.0, seed=3)),  # a semitone sharp
        ("strings/violin/d.ogg", dict(midi=60.2, rate=32000, seconds=3.0, seed=4)),
        ("brass/horn/low.wav", dict(midi=59, rate=16000, seconds=4.5, level=0.8, seed=5)),  # a semitone flat
        ("brass/horn/mid.wav", dict(midi=60, rate=96000, seconds=4.0, channels=2, seed=6)),
        ("brass/horn/far.wav", dict(midi=67, rate=44100, seconds=4.0, seed=7)),  # a fifth away: skipped
        ("loose_note.wav", dict(midi=60, rate=44100, seconds=3.5, seed=8)),
    ]
    for name, kw in takes:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rate = kw["rate"]
        sf.write(path, tone(**kw), rate)
    (root / "strings" / "violin" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    sf.write(root / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(root / "noise.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 32000).astype(np.float32), 16000)
    (root / "notes.txt").write_text("not audio")
    return root


def test_recordings_become_an_nsynth_folder_with_every_skip_explained(tmp_path):
    src = recordings(tmp_path / "mine")
    out = tmp_path / "data" / "mine"
    report = make_audio_dataset(src, out=out, progress=False)
    skipped = {s["file"]: s["reason"] for s in report.skipped}
    assert set(skipped) == {"strings/violin/broken.wav", "silence.wav", "noise.wav", "brass/horn/far.wav",
                            "notes.txt"}
    assert skipped["notes.txt"] == "not a format read here (convert it to WAV or FLAC)"
    assert skipped["strings/violin/broken.wav"].startswith("unreadable")
    assert skipped["silence.wav"].startswith("silent")
    assert skipped["noise.wav"].startswith("no stable pitch")
    assert skipped["brass/horn/far.wav"].startswith("too far from the pitch (67.0")
    transposed = {e["file"]: e["transposed_semitones"] for e in report.transposed}
    assert set(transposed) == {"strings/violin/c.aiff", "brass/horn/low.wav"}
    assert transposed["strings/violin/c.aiff"] == pytest.approx(-1.0, abs=0.1)
    assert transposed["brass/horn/low.wav"] == pytest.approx(1.0, abs=0.1)
    examples = json.loads((out / "examples.json").read_text())
    assert len(examples) == len(report.kept) == 7
    families = {e["instrument_family_str"] for e in examples.values()}
    assert families == {"strings", "brass", "other"}
    # The violin takes are one instrument (one split), the loose file its own.
    violin = {e["instrument_str"] for e in examples.values() if e["instrument_name"] == "strings/violin"}
    assert len(violin) == 1
    for note_str, e in examples.items():
        y, rate = sf.read(out / "audio" / f"{note_str}.wav", dtype="float32")
        assert rate == 16000 and y.ndim == 1 and len(y) == 64000
        assert 1 <= e["velocity"] <= 127 and e["pitch"] == 60
    # Level is kept: the quiet violin take is quieter, and so is its velocity.
    quiet = next(e for e in examples.values() if e["source_file"] == "strings/violin/b.flac")
    loud = next(e for e in examples.values() if e["source_file"] == "strings/violin/a.wav")
    assert quiet["velocity"] < loud["velocity"]
    # A take longer than 4 s is faded out at the end, not cut: its last samples are near silence.
    y, _ = sf.read(out / "audio" / f"{loud['note_str']}.wav", dtype="float32")
    assert np.abs(y[-160:]).max() < 0.01 * np.abs(y).max()


def test_bad_folders_are_named_and_nothing_is_written(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        make_audio_dataset(tmp_path / "nope", out=tmp_path / "o", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        make_audio_dataset(tmp_path / "empty", out=tmp_path / "o", progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    sf.write(bad / "silence.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(DataError, match="none of its 1 files could be kept \\(silent\\)"):
        make_audio_dataset(bad, out=tmp_path / "o", progress=False)
    with pytest.raises(ParameterError, match="--tolerance"):
        make_audio_dataset(bad, out=tmp_path / "o", tolerance=3, transpose=2, progress=False)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_your_own_instrument_in_four_commands(tmp_path):
    pytest.importorskip("tensorflow")
    src = recordings(tmp_path / "mine")

    def melsynth(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "synth.cli", *args], capture_output=True, text=True,
                              timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    said = melsynth("dataset", "audio", str(src), "--out", "data/mine")
    assert "kept 7 of 12 files (2 transposed)" in said and "skipped strings/violin/broken.wav" in said
    melsynth("dataset", "features", "data/mine", "--out", "data/mine-features")
    config = tmp_path / "tiny.json"
    from training.model.config import variant

    variant("clip").with_architecture(filters=(4, 8, 16)).with_schedule(batch_size=4, max_epochs=1).save(config)
    melsynth("train", "--data", "data/mine-features", "--config", str(config), "--out", "runs/mine", "--quiet")
    melsynth("export", "--run", "runs/mine", "--out", "presets/mine", "--presets-per-family", "1")
    info = json.loads(melsynth("info", "--bundle", "presets/mine", "--json"))
    assert info["base_pitch"] == 60 and info["presets"]
    out = melsynth("render", "--bundle", "presets/mine", "--preset", sorted(info["presets"])[0], "--note", "64",
                   "--out", "note.wav")
    assert "wrote note.wav" in out
    y, _ = sf.read(tmp_path / "note.wav", dtype="float32")
    assert np.isfinite(y).all() and np.abs(y).max() > 0


def test_takes_at_one_level_get_the_next_free_velocity_and_128_are_refused_by_name():
    from training.datasets.audio_folder import _free_velocity

    taken = {f"reed_acoustic_000-060-{v:03d}": {} for v in (126, 127, 1)}
    assert _free_velocity(taken, "reed_acoustic_000", pitch=60, wanted=126, instrument="reeds/oboe") == 2
    assert _free_velocity(taken, "reed_acoustic_000", pitch=60, wanted=50, instrument="reeds/oboe") == 50
    full = {f"reed_acoustic_000-060-{v:03d}": {} for v in range(1, 128)}
    with pytest.raises(DataError, match="reeds/oboe: more than 127 takes kept at pitch 60.*subfolders"):
        _free_velocity(full, "reed_acoustic_000", pitch=60, wanted=100, instrument="reeds/oboe")


def test_a_long_recording_is_read_only_as_far_as_its_note(tmp_path, monkeypatch):
    """A 691 MB WAV once took 3.7 GB to yield one 4 s note: every file was read whole. Now reading stops once
    the note is in hand, and what is held is bounded whatever the file's length (a minute of stereo here, a
    note 20 s in: whole, it is 23 MB of float32)."""
    import tracemalloc

    from training.datasets.audio_folder import prepare_note

    rate = 48000
    y = np.zeros((60 * rate, 2), np.float32)
    note = tone(60, rate=rate, seconds=5.0, lead=0.0, channels=2)
    y[20 * rate : 20 * rate + len(note)] = note
    path = tmp_path / "long.wav"
    sf.write(path, y, rate, subtype="PCM_16")
    del y

    read = []
    plain_read = sf.SoundFile.read

    def counting_read(self, *args, **kwargs):
        out = plain_read(self, *args, **kwargs)
        read.append(len(out))
        return out

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    kept, facts = prepare_note(path, pitch=60, tolerance=0.5, transpose=2.0)
    assert kept is not None and facts["onset_s"] == pytest.approx(20.0, abs=0.01) and facts["seconds"] == 60.0
    # To the note's start, its 4 s and the quarter second it may start late, and one block of reading ahead.
    assert sum(read) <= (20 + 4.25 + 1.5) * rate, f"{sum(read) / rate:.1f} s of a 60 s file read for one note"
    monkeypatch.setattr(sf.SoundFile, "read", plain_read)

    from training.datasets.audio_folder import read_note_span

    tracemalloc.start()
    try:
        span = read_note_span(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4e6, f"{peak / 1e6:.1f} MB held at once to read one note of a 60 s file"
    assert span.first_loud - span.offset == 16000  # the second before the note is kept for the onset detector
    assert len(span.audio) == 16000 + int(4.25 * 16000)
