"""``melsynth info`` and ``melsynth presets`` on a real synthetic bundle, run as the console command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synth.benchmarks.synthetic_bundle import make_synthetic_bundle

# The installed console command when it sits beside this interpreter (the venv), else the module.
_SCRIPT = Path(sys.executable).parent / "melsynth"
MELSYNTH = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "synth.cli"]


def _melsynth(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MELSYNTH, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return make_synthetic_bundle(tmp_path_factory.mktemp("cmd") / "b")


@pytest.fixture
def copy(made, tmp_path) -> Path:
    return Path(shutil.copytree(made, tmp_path / "copy"))


def test_info_text(made):
    out = _melsynth("info", "--bundle", str(made))
    assert out.returncode == 0, out.stderr
    for text in (
        "melsynth.bundle/1",
        "2x8x128 = 2048",
        "base pitch   60",
        "keys         one pitch",
        "CPUExecutionProvider",
        "hollow",
        "decoder.onnx",
        "16 components",
    ):
        assert text in out.stdout
    assert "CUDA" not in out.stderr


def test_info_names_a_keyboard_bundles_trained_keys(tmp_path):
    out = _melsynth("info", "--bundle", str(make_synthetic_bundle(tmp_path / "keys", keys=(48, 60, 72))))
    assert out.returncode == 0, out.stderr
    assert "keys         3 trained, 48..72 (48, 60, 72)" in out.stdout


def test_info_json(made):
    out = _melsynth("info", "--bundle", str(made), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["latent_shape"] == [2, 8, 128]
    assert info["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert sorted(info["presets"]) == ["bright", "dark", "hollow", "soft"]
    assert set(info["sha256"]) == {"decoder.onnx", "encoder.onnx"}


def test_info_refuses_a_tampered_bundle(copy):
    (copy / "encoder.onnx").write_bytes((copy / "encoder.onnx").read_bytes() + b"\0")
    out = _melsynth("info", "--bundle", str(copy))
    assert out.returncode == 1
    assert "SHA-256 mismatch" in out.stderr and "Traceback" not in out.stderr


def test_presets_list_and_show(made):
    out = _melsynth("presets", "list", "--bundle", str(made))
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()] == ["bright", "dark", "hollow", "soft"]
    out = _melsynth("presets", "show", "dark", "--bundle", str(made), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["name"] == "dark" and len(doc["latent"]) == 2048
    out = _melsynth("presets", "show", "nope", "--bundle", str(made))
    assert out.returncode == 1 and "unknown preset 'nope'" in out.stderr


def test_presets_remove(copy, tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    for name in ("../../victim", "../victim", str(victim), "a/b"):
        out = _melsynth("presets", "remove", name, "--bundle", str(copy))
        assert out.returncode == 1 and "invalid preset name" in out.stderr, name
    assert victim.exists()
    out = _melsynth("presets", "remove", "soft", "--bundle", str(copy))
    assert out.returncode == 0, out.stderr
    assert not (copy / "presets" / "soft.json").exists()
    out = _melsynth("presets", "remove", "soft", "--bundle", str(copy))
    assert out.returncode == 1 and "no preset 'soft'" in out.stderr
    out = _melsynth("presets", "remove", "soft", "--bundle", str(tmp_path))
    assert out.returncode == 1 and "not a model bundle" in out.stderr


def test_presets_remove_works_on_a_broken_preset(copy):
    (copy / "presets" / "dark.json").write_text("{broken")
    listed = _melsynth("presets", "list", "--bundle", str(copy))
    assert listed.returncode == 0 and "dark.json" in listed.stdout and "BROKEN" in listed.stdout
    assert _melsynth("presets", "remove", "dark", "--bundle", str(copy)).returncode == 0
    listed = _melsynth("presets", "list", "--bundle", str(copy))
    assert listed.returncode == 0 and "BROKEN" not in listed.stdout and "left out" not in listed.stderr


def test_a_closed_pipe_ends_a_command_quietly(copy):
    """`melsynth presets list | head`: the reader goes away before the listing is written."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "synth.cli", "presets", "list", "--bundle", str(copy)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_what_the_system_refuses_is_named_not_a_traceback(copy, tmp_path):
    """A preset the system will not write (a folder stands where its file goes, and --force asks to replace
    it) ends in one line naming the paths and the reason, exit 1, and leaves no temporary file."""
    import numpy as np
    import soundfile as sf

    audio = tmp_path / "note.wav"
    sf.write(audio, (0.3 * np.sin(2 * np.pi * 261.6 * np.arange(64000) / 16000)).astype(np.float32), 16000)
    blocker = copy / "presets" / "mine.json"
    blocker.mkdir()
    out = _melsynth("encode", "--bundle", str(copy), "--name", "mine", "--force", str(audio))
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert f"-> {blocker}: Is a directory" in out.stderr, out.stderr
    assert blocker.is_dir() and not [p for p in (copy / "presets").iterdir() if p.name.endswith(".tmp")]
