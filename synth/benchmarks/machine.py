"""What a benchmark ran on: CPU model, cores, load, memory, GPU, library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

__all__ = ["describe_machine"]

LIBRARIES = ("numpy", "scipy", "onnxruntime-gpu", "onnxruntime", "librosa", "numba", "soxr", "sounddevice",
             "python-osc", "tensorflow", "keras", "tf2onnx", "onnx")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _gpu() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().replace("\n", "; ")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "none"


def describe_machine() -> dict:
    """A JSON-ready description of this machine and the library versions in this environment."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "ram_gib": round(_ram_gib(), 1),
        "gpu": _gpu(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "libraries": versions,
    }
