"""Import TensorFlow without its native start-up log lines.

TensorFlow 2.18 and later write INFO lines ("oneDNN custom operations are on", "Could not find cuda
drivers") and, on a machine without a GPU, an error line ("failed call to cuInit: ... UNKNOWN ERROR (303)")
from C++ straight to file descriptor 2 while it loads and first lists its devices, before and regardless of
``TF_CPP_MIN_LOG_LEVEL``. A user of ``melsynth train`` should see melsynth's lines and real warnings only, so
:func:`import_tensorflow` captures descriptor 2 during those two steps and passes on every line that is not
one of those known start-up notices.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from synth.native_stderr import captured_native_stderr

__all__ = ["import_tensorflow", "is_startup_noise"]

_NOISE = (
    re.compile(r"^[IW]\d{4} "),  # absl INFO / WARNING lines
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^E\d{4} .*(cuInit|cuda_platform|cuda_dnn|cuda_fft|cuda_blas|Unable to register cu)"),
)


def is_startup_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's native start-up notices (see the module docstring)."""
    return any(p.search(line) for p in _NOISE)


def import_tensorflow() -> Any:
    """``import tensorflow`` (and list its GPUs once) with the start-up notices filtered out of stderr."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with captured_native_stderr() as lines:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    kept = [line for line in lines if not is_startup_noise(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
    return tf
