"""How much one page may ask of the engine (each connection's messages are held to it by a
:class:`~synth.control.rate.TokenBucket`, as an OSC sender's are)."""

from __future__ import annotations

import dataclasses

from synth.errors import ParameterError

__all__ = ["WebLimits", "DEFAULT_WEB_PORT"]

# Beside OSC's 9137.
DEFAULT_WEB_PORT = 9138


@dataclasses.dataclass(frozen=True)
class WebLimits:
    """The bounds of the page's socket.

    max_message_bytes : the largest frame read (a whole ``/synth/latent`` of 2048 values is ~40 KB of JSON);
        a larger one closes the connection with 1009 (message too big) before it is read into memory
    messages_per_second, burst : each connection's token bucket: a ten-finger chord or a drag at the display's
        rate fits easily; beyond it messages are dropped, and the sender is told once per flood
    max_clients : connections at once (pages, scripts); one more is refused with 503
    outbox : messages waiting to go to one connection; a client that lets it fill is dropped (it is not
        reading: a dead or hostile peer must not hold memory or the loop)
    send_timeout_s : the longest one send may wait for a peer that does not read
    status_hz : status messages a second to each page (and at most as many timbre pictures)
    """

    max_message_bytes: int = 64 * 1024
    messages_per_second: float = 200.0
    burst: float = 200.0
    max_clients: int = 8
    outbox: int = 64
    send_timeout_s: float = 2.0
    status_hz: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "max_clients", "outbox"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"web limit {name} must be a positive integer, got {value!r}")
        for name in ("messages_per_second", "burst", "send_timeout_s", "status_hz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ParameterError(f"web limit {name} must be a positive number, got {value!r}")

