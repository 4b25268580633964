"""The page's socket speaks JSON text frames, one message each: ``{"address": "/synth/...", "args": [...]}``.

In: a score's entry without its time (the addresses and arguments of docs/OSC.md), read here into an address
and arguments for the :class:`~synth.control.router.ControlRouter`, or refused with a reason; plus the page's
own :data:`KEEP_PRESET`. Out: the router's replies (``/synth/error``, ``/synth/status``, ``/synth/info``) in the
same shape, and what the server tells every page: :data:`HELLO` once, the status ten times a second (the
``/synth/status`` keys and a few more, :func:`status_text`) and :data:`TIMBRE` when the sound changes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from synth.control.messages import MidiLearn, StatusRequest
from synth.control.status import Status
from synth.control.vocabulary import control_for
from synth.errors import ParameterError

__all__ = [
    "WebMessage", "FrameError", "parse_frame", "message_text", "status_text", "HELLO", "TIMBRE",
    "KEEP_PRESET", "KEPT_PRESET", "MIDI_LEARN", "WRITE_ADDRESSES", "MAX_ADDRESS",
]

HELLO = "/web/hello"
TIMBRE = "/web/timbre"
#: Keep the sound playing now as a preset of the bundle (a file): only with ``serve --web-write``.
KEEP_PRESET = "/web/preset/keep"
KEPT_PRESET = "/web/preset/kept"
#: The vocabulary's MIDI learn (the page may send it only with --web-write, see WRITE_ADDRESSES).
MIDI_LEARN = control_for(MidiLearn).address
#: What the page may send only when serve was started with ``--web-write`` (the page hides them otherwise).
WRITE_ADDRESSES = frozenset({KEEP_PRESET, MIDI_LEARN})
MAX_ADDRESS = 200
# Whole numbers beyond what a JavaScript number holds exactly are no control value: refused, not rounded (a
# 400-digit integer once reached float() and overflowed).
MAX_INT = 2**53
_KEYS = frozenset({"address", "args"})


@dataclasses.dataclass(frozen=True)
class WebMessage:
    """One message read off the socket: ``address`` and ``args`` (ints, floats and strings)."""

    address: str
    args: tuple = ()


class FrameError(ParameterError):
    """A frame that is not a message; ``address`` is its address when it had a readable one, else ""."""

    def __init__(self, reason: str, *, address: str = "") -> None:
        super().__init__(reason)
        self.address = address


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_frame(text: str) -> WebMessage:
    """Read one text frame into a :class:`WebMessage`; :class:`FrameError` with the reason otherwise."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise FrameError("malformed JSON: nested too deep") from None
    except ValueError as exc:  # json.JSONDecodeError, and NaN / Infinity
        raise FrameError(f"malformed JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise FrameError(f'expected a JSON object {{"address": ..., "args": [...]}}, got {_kind(data)}')
    address = data.get("address")
    if not isinstance(address, str) or not address:
        raise FrameError(f'"address" must be a non-empty string, got {_kind(address)}')
    if len(address) > MAX_ADDRESS:
        raise FrameError(f"address longer than {MAX_ADDRESS} characters", address=address[:MAX_ADDRESS])
    extra = sorted(set(data) - _KEYS)
    if extra:
        hint = ' (the socket plays each message at once: leave "time" out)' if "time" in extra else ""
        raise FrameError(f'unknown key {extra[0][:40]!r}: a message has "address" and "args"{hint}', address=address)
    args = data.get("args", [])
    if not isinstance(args, list):
        raise FrameError(f'"args" must be a list, got {_kind(args)}', address=address)
    for i, value in enumerate(args):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise FrameError(f"args[{i}] must be a number or a string, got {_kind(value)}", address=address)
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise FrameError(f"args[{i}] is too large a number", address=address)
    return WebMessage(address, tuple(args))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), "a number")


def _finite(value):
    # A figure that is not finite yet (a percentile before the first event) is sent as 0: strict JSON.
    return 0.0 if isinstance(value, float) and not math.isfinite(value) else value


def message_text(address: str, args=()) -> str:
    """One message as the text of a frame."""
    return json.dumps({"address": address, "args": [_finite(a) for a in args]}, separators=(",", ":"),
                      allow_nan=False)


def status_text(status: Status, extras: dict[str, Any]) -> str:
    """``/synth/status`` with ``status``'s pairs (the OSC reply's, :class:`~synth.control.status.Status`), then
    ``extras``, as key, value pairs."""
    args = list(status.pairs())
    for key, value in extras.items():
        args += [key, value]
    return message_text(control_for(StatusRequest).address, args)
