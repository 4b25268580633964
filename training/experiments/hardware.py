"""The machine a row was measured on, as each row file records it and the tables' header names it."""

from __future__ import annotations

import os
import platform
from typing import Any

__all__ = ["hardware", "hardware_text"]


def hardware() -> dict[str, Any]:
    """The machine: CPU model and cores (from /proc/cpuinfo), GPUs visible to TensorFlow, platform."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpus: list[str] = []
    try:
        import tensorflow as tf

        for device in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(device)
            gpus.append(str(details.get("device_name", device.name)))
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus, "platform": platform.platform()}


def hardware_text(hw: dict[str, Any]) -> str:
    gpus = ", ".join(hw.get("gpus") or []) or "no GPU"
    return f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {gpus}"
