"""TensorFlow's native start-up notices are kept off a user's terminal; real messages are not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from training.quiet_tensorflow import is_startup_noise

pytest.importorskip("tensorflow")

NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796168440.029568    8204 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796168440.030183    8204 cudart_stub.cc:31] Could not find cuda drivers on your machine",
    "E0000 00:00:1796168432.386143    8177 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796170538.143822   17734 util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
]


def test_known_notices_are_noise_and_other_lines_are_not():
    assert all(is_startup_noise(line) for line in NOTICES)
    for line in ("E0000 00:00:1.0 1 op_kernel.cc:1] OOM when allocating tensor", "melsynth train: epoch 1",
                 "UserWarning: something real"):
        assert not is_startup_noise(line)


def test_importing_through_it_prints_no_notice_and_keeps_python_warnings():
    code = (
        "import sys, warnings\n"
        "from training.quiet_tensorflow import import_tensorflow\n"
        "tf = import_tensorflow(training=True)\n"
        "assert tf.constant(2).numpy() == 2\n"
        "warnings.warn('a real warning')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert not [line for line in lines if is_startup_noise(line)], proc.stderr
    assert any("a real warning" in line for line in lines)
