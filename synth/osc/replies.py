"""Replies the server sends back: ``/synth/status``, ``/synth/info`` and ``/synth/error``."""

from __future__ import annotations

import math

from synth.osc.encoding import encode_message

__all__ = ["status_reply", "info_reply", "STATUS_KEYS"]

STATUS_KEYS = (
    "voices", "underflows", "latency_ms", "decode_ms", "method", "provider", "preset", "messages", "errors",
    "dropped", "decode_errors", "notes", "underflows_startup", "underflows_idle", "underflows_playing", "buffer_ms",
)


def _finite(values: list) -> list:
    """Non-finite floats as 0.0: a reply must stay a valid OSC message whatever a figure is."""
    return [0.0 if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def status_reply(server) -> bytes:
    """``/synth/status`` followed by key, value pairs (see :data:`STATUS_KEYS`)."""
    live = server.live
    engine = live.engine
    s = live.stats()
    controls = engine.controls
    values = {
        "voices": int(engine.sounding_voices),
        "underflows": int(s["underflows"]),
        "latency_ms": float(s["latency_ms"]),
        "decode_ms": float(s["decode_ms"]),
        "method": controls.method,
        "provider": engine.provider,
        "preset": controls.preset,
        "messages": int(server.messages),
        "errors": int(server.errors),
        "dropped": int(server.dropped),
        "decode_errors": int(s["decode_errors"]),
        "notes": int(s["notes"]),
        "underflows_startup": int(s["underflows_startup"]),
        "underflows_idle": int(s["underflows_idle"]),
        "underflows_playing": int(s["underflows_playing"]),
        "buffer_ms": float(s["buffer_ms"]),
    }
    args: list = []
    for key in STATUS_KEYS:
        args += [key, values[key]]
    return encode_message("/synth/status", _finite(args))


def info_reply(engine) -> bytes:
    """``/synth/info latent_size N base_pitch P presets name1 name2 ...``."""
    args = ["latent_size", engine.control_spec.latent_size, "base_pitch", engine.base_pitch, "presets", *engine.control_spec.presets]
    return encode_message("/synth/info", _finite(args))
