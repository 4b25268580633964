"""What ``/synth/status`` answers, over OSC and on the page's socket: one typed object and its wire order.

:class:`Status` is the wire table: its fields, in their order, are the reply's keys (:data:`STATUS_KEYS`) and
their types are the values'. Renaming a field renames a key that senders, the page (synth/web/static/app.js)
and the soak's monitor read, so tests/test_status.py pins the keys as they go out; the router builds the
object from the live engine's :class:`~synth.host.stats.LiveStats` by attribute, so renaming a figure
there without the router following fails at the first status asked for.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Status", "STATUS_KEYS"]


@dataclasses.dataclass(frozen=True)
class Status:
    """The figures of ``/synth/status``, in the order they go out as ``key value`` pairs.

    Attributes
    ----------
    voices : int  voices sounding now
    underflows : int  times the output found its buffer empty
    latency_ms : float  control latency, median, ms beyond the device buffer (0.0 before the first command)
    decode_ms : float  median of the recent decode times, ms
    method : str  the inversion method playing
    provider : str  the onnxruntime provider decoding
    preset : str  what the base latent is: a preset's name, or what set it otherwise (a morph, a vector)
    messages : int  messages applied or answered
    errors : int  messages refused
    dropped : int  packets dropped unread (senders not allowed)
    decode_errors : int  decodes that failed (the previous sound kept)
    notes : int  notes started
    underflows_startup, underflows_idle, underflows_playing : int  ``underflows`` by what the engine was
        doing: its start-up decodes, nothing sounding, playing
    buffer_ms : float  how far ahead of the output the engine renders now, ms
    throttled : int  messages dropped over a sender's rate
    """

    voices: int
    underflows: int
    latency_ms: float
    decode_ms: float
    method: str
    provider: str
    preset: str
    messages: int
    errors: int
    dropped: int
    decode_errors: int
    notes: int
    underflows_startup: int
    underflows_idle: int
    underflows_playing: int
    buffer_ms: float
    throttled: int

    def pairs(self) -> tuple:
        """``key, value, key, value, ...`` in :data:`STATUS_KEYS` order: the reply's arguments."""
        return tuple(item for key in STATUS_KEYS for item in (key, getattr(self, key)))


#: The reply's keys, in the order they go out.
STATUS_KEYS = tuple(field.name for field in dataclasses.fields(Status))
