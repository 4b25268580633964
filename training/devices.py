"""What TensorFlow sees to train on: its GPUs, or why it sees none; and which mixed precision the device has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synth.errors import ParameterError

__all__ = ["tensorflow_devices", "cpu_flags", "why_no_bfloat16", "mixed_precision_policy"]

#: CPU flags (as Linux names them in /proc/cpuinfo) of native bfloat16 arithmetic, which oneDNN uses for
#: TensorFlow's bfloat16 convolutions. Without them bfloat16 is emulated and slower than float32.
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(*, cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The first CPU's feature flags from ``cpuinfo`` (empty when there is none to read: not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def why_no_bfloat16(*, flags: frozenset[str] | None = None) -> str:
    """"" when the CPU computes bfloat16 natively (AMX or AVX512-BF16), else why not."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return "the CPU's flags could not be read (/proc/cpuinfo)"
    if any(f in flags for f in BFLOAT16_FLAGS):
        return ""
    return f"this CPU has none of {', '.join(BFLOAT16_FLAGS)} (no native bfloat16)"


def mixed_precision_policy(*, gpus: int, flags: frozenset[str] | None = None) -> str:
    """The Keras policy of ``fit(mixed_precision=True)``: "mixed_float16" on a GPU, "mixed_bfloat16" on a CPU
    with native bfloat16 (1.22 and 1.40 times float32's epochs of the paper-size model in two runs on this
    project's CPU machine, see docs/BENCHMARKS.md); a CPU without it is refused, since emulated bfloat16 is slower than float32.

    Raises
    ------
    ParameterError
        on a CPU without native bfloat16, naming what it lacks.
    """
    if gpus:
        return "mixed_float16"
    why = why_no_bfloat16(flags=flags)
    if why:
        raise ParameterError(f"mixed precision on the CPU needs native bfloat16, and {why}: train without "
                             "--mixed-precision (a run trained with it resumes only where it can run)")
    return "mixed_bfloat16"


def tensorflow_devices() -> dict[str, Any]:
    """``{"version", "gpus": [names], "built_with_cuda", "why_none", "cpu_bfloat16", "why_no_bfloat16"}`` of the
    installed TensorFlow and this CPU (``cpu_bfloat16``: whether ``--mixed-precision`` can train on it).

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
    no_bf16 = why_no_bfloat16()
    return {"version": tf.__version__, "gpus": gpus, "built_with_cuda": built, "why_none": why,
            "cpu_bfloat16": not no_bf16, "why_no_bfloat16": no_bf16}
