"""OSC control of the engine: the address space (:mod:`.vocabulary`), the UDP server and its replies."""

from synth.osc.vocabulary import (
    CONTROL_ADDRESSES,
    DEFAULT_PORT,
    QUERY_ADDRESSES,
    command_to_message,
    parse_message,
)

__all__ = ["parse_message", "command_to_message", "CONTROL_ADDRESSES", "QUERY_ADDRESSES", "DEFAULT_PORT"]
