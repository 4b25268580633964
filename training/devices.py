"""What TensorFlow sees to train on: its GPUs, or why it sees none."""

from __future__ import annotations

from typing import Any

__all__ = ["tensorflow_devices"]


def tensorflow_devices() -> dict[str, Any]:
    """``{"version", "gpus": [names], "built_with_cuda", "why_none"}`` of the installed TensorFlow.

    ``why_none`` is "" when a GPU is visible, else the first reason that applies: a CPU-only build, no NVIDIA
    driver, or a driver without the CUDA libraries this build needs (the ``gpu`` extra installs them).
    """
    import tensorflow as tf

    from synth.bundle.runtime import nvidia_driver

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    built = bool(tf.test.is_built_with_cuda())
    why = ""
    if not gpus:
        if not built:
            why = f"TensorFlow {tf.__version__} is a CPU-only build"
        elif nvidia_driver():
            why = nvidia_driver()
        else:
            why = "an NVIDIA driver is present but TensorFlow found no usable GPU: pip install -e '.[train,gpu]'"
    return {"version": tf.__version__, "gpus": gpus, "built_with_cuda": built, "why_none": why}
