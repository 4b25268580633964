"""Well-formed OSC packets as bytes, for the server's replies, the benchmarks' senders and the tests.

Built with python-osc's builders: an ``int`` is sent as ``i``, a ``float`` as ``f``, a ``str`` as ``s``, a
``bool`` as ``i`` (Max and Pure Data have no boolean). Deliberately malformed packets, for fuzzing, are made
by hand in :mod:`synth.benchmarks.fuzz`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["encode_message", "encode_bundle"]


def _builder(address: str, args: Iterable):
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address=address)
    for a in args:
        builder.add_arg(int(a) if isinstance(a, bool) else a)
    return builder


def encode_message(address: str, args: Iterable = ()) -> bytes:
    """One OSC message: ``address`` with ``args`` (ints, floats, strings)."""
    return _builder(address, args).build().dgram


def encode_bundle(at_time: float, messages: Sequence[tuple]) -> bytes:
    """One OSC bundle timetagged ``at_time`` (``time.time()`` seconds) holding ``(address, *args)`` messages."""
    from pythonosc.osc_bundle_builder import OscBundleBuilder

    bundle = OscBundleBuilder(at_time)
    for address, *args in messages:
        bundle.add_content(_builder(address, args).build())
    return bundle.build().dgram
