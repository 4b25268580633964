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
    re.compile(r"^E\d{4} .*oneDNN supports DT_INT32 only on platforms with AVX-512"),
)


def is_startup_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's native start-up notices (see the module docstring)."""
    return any(p.search(line) for p in _NOISE)


def _first_training_step() -> None:
    """One step of a tiny conv / pool / upsample model: on a CPU without AVX-512, oneDNN says once per process
    that it falls back for int32 ("oneDNN supports DT_INT32 only on platforms with AVX-512") the first time
    such a model trains, so that line comes here, inside the capture, and not in the middle of a run."""
    import keras
    import numpy as np

    x = keras.Input((8, 8, 1))
    h = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(2, 4, strides=2, padding="same")(x))
    h = keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same")(keras.layers.UpSampling2D(2)(h))
    model = keras.Model(x, h)
    model.compile(loss="mse", optimizer="adam", jit_compile=False)
    model.fit(np.zeros((2, 8, 8, 1), np.float32), np.zeros((2, 8, 8, 1), np.float32), verbose=0)


def import_tensorflow(*, training: bool = False) -> Any:
    """``import tensorflow`` (and list its GPUs once) with the start-up notices filtered out of stderr;
    ``training``: also take one step of a tiny model (about a second) so that the notices TensorFlow prints at
    its first training step are filtered too."""
    if "tensorflow" in sys.modules and not training:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with captured_native_stderr() as lines:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
        if training:
            _first_training_step()
    kept = [line for line in lines if not is_startup_noise(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
    return tf
