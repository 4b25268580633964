"""melsynth devices: audio outputs, and what decoding and training run on, with the reason when not a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synth.bundle.runtime import cuda_status, nvidia_driver

REPO = Path(__file__).resolve().parents[1]


def test_json_names_each_compute_library_and_why_it_runs_on_the_cpu():
    proc = subprocess.run([sys.executable, "-m", "synth.cli", "devices", "--json"], capture_output=True, text=True,
                          timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc["audio_outputs"], list)
    ort = doc["onnxruntime"]
    assert "CPUExecutionProvider" in ort["providers"]
    assert ort["cuda"] == (ort["why_not_cuda"] == "")
    tf = doc["tensorflow"]
    if tf is not None:
        assert (tf["gpus"] == []) == (tf["why_none"] != "")
        # what the command says of this CPU, against its flags read here
        flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        assert tf["cpu_bfloat16"] == any(f" {name}" in flags for name in ("amx_bf16", "avx512_bf16"))
    if nvidia_driver():  # this machine has no GPU: both say so, in the same words
        assert not ort["cuda"] and ort["why_not_cuda"] == nvidia_driver()
        assert tf is None or tf["why_none"] in (nvidia_driver(), f"TensorFlow {tf['version']} is a CPU-only build")
    assert "cuInit" not in proc.stderr and "I0000" not in proc.stderr


def test_the_readable_listing_says_where_decoding_and_training_run():
    proc = subprocess.run([sys.executable, "-m", "synth.cli", "devices"], capture_output=True, text=True,
                          timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "audio outputs:" in proc.stdout
    usable, why = cuda_status()
    assert "decoding: onnxruntime" in proc.stdout and ("CUDA" if usable else why) in proc.stdout
    assert "training: " in proc.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="the driver check reads Linux device files")
def test_driver_check_matches_the_device_files():
    present = Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists()
    assert (nvidia_driver() == "") == present


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    from training.devices import cpu_flags, why_no_bfloat16

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert cpu_flags(cpuinfo=info) == {"fpu", "sse", "avx512f", "amx_bf16", "amx_tile"}
    assert cpu_flags(cpuinfo=tmp_path / "missing") == frozenset()
    assert why_no_bfloat16(flags=cpu_flags(cpuinfo=info)) == ""
    assert "avx512_bf16" in why_no_bfloat16(flags=frozenset({"fpu", "avx2"}))
    assert "could not be read" in why_no_bfloat16(flags=frozenset())


def test_mixed_precision_policy_per_device():
    from synth.errors import ParameterError
    from training.devices import mixed_precision_policy

    assert mixed_precision_policy(gpus=1, flags=frozenset()) == "mixed_float16"
    assert mixed_precision_policy(gpus=0, flags=frozenset({"avx512_bf16"})) == "mixed_bfloat16"
    with pytest.raises(ParameterError, match="native bfloat16.*avx512_bf16"):
        mixed_precision_policy(gpus=0, flags=frozenset({"avx2", "fma"}))
