"""Atomic writes (synth/atomic.py): a file or folder appears whole under its name, or not at all, and a
failed write leaves what was there and no temporary behind."""

from __future__ import annotations

import os

import pytest

from synth.atomic import atomic_directory, atomic_path, atomic_write_text
from synth.errors import OutputError
from synth.outputs import OutputKind

THING = OutputKind("thing", ("thing.json",))


def test_a_file_appears_whole_with_the_usual_permissions(tmp_path):
    target = tmp_path / "deep" / "score.json"
    atomic_write_text(target, "[]\n")
    assert target.read_text() == "[]\n" and os.listdir(target.parent) == ["score.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600


def test_a_failed_file_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "take.wav"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="half-way"), atomic_path(target, suffix=".wav") as tmp:
        assert tmp.name.endswith(".wav.tmp") and tmp.parent == tmp_path
        tmp.write_text("half")
        raise RuntimeError("half-way")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["take.wav"]


def test_a_folder_replaces_the_old_one_only_when_whole(tmp_path):
    target = tmp_path / "bundle"
    with pytest.raises(OSError, match="disk"), atomic_directory(target, kind=THING) as out:
        (out / "thing.json").write_bytes(b"x")
        raise OSError("disk full")
    assert os.listdir(tmp_path) == []
    with atomic_directory(target, kind=THING) as out:
        (out / "thing.json").write_bytes(b"1")
    with pytest.raises(OutputError, match=r"bundle already exists \(use --force"), atomic_directory(target, kind=THING):
        pass
    with atomic_directory(target, kind=THING, force=True) as out:
        (out / "thing.json").write_bytes(b"2")
    assert os.listdir(target) == ["thing.json"] and os.listdir(tmp_path) == ["bundle"]
    assert (target / "thing.json").read_bytes() == b"2"
    # What --force may replace is synth/outputs.py's rule (tests/test_outputs.py): not a folder of another kind.
    (target / "thing.json").unlink()
    (target / "recording.wav").write_bytes(b"RIFF")
    with pytest.raises(OutputError, match="is not a thing folder"), atomic_directory(target, kind=THING, force=True):
        pass
    assert os.listdir(target) == ["recording.wav"] and os.listdir(tmp_path) == ["bundle"]
