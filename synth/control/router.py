"""One control message in, its effect and its reply out, whatever carried it (OSC over UDP, the page's socket).

The transports parse their own framing (OSC packets, JSON) and hand each message's address and arguments to
:meth:`ControlRouter.dispatch`; the router reads it with the vocabulary (the one validation), hands an engine
command to the live engine already checked, answers queries, passes MIDI learn to the MIDI input, adds what was
played to the take log, and returns the reply as a :class:`Reply` each transport encodes its own way. Several
transport threads may call it at once: the live engine's inbox and the take log are thread-safe, and the
counters are only figures.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from synth.control.messages import Command, InfoRequest, MidiLearn, StatusRequest
from synth.control.rate import SenderBudget
from synth.control.status import Status
from synth.control.vocabulary import ERROR_ADDRESS, command_to_message, parse_message
from synth.errors import ParameterError

__all__ = ["ControlRouter", "Reply", "error_reply"]


@dataclasses.dataclass(frozen=True)
class Reply:
    """A message back to the sender: ``address`` and ``args`` (ints, finite floats, strings)."""

    address: str
    args: tuple = ()


def error_reply(address: Any, reason: str) -> Reply:
    """``/synth/error address reason``, both cut short: a reply never grows with what a sender sent."""
    return Reply(ERROR_ADDRESS, ((address if isinstance(address, str) else "")[:200], str(reason)[:300]))


def _finite(values) -> tuple:
    """Non-finite floats as 0.0: a reply must stay a valid message whatever a figure is."""
    return tuple(0.0 if isinstance(v, float) and not math.isfinite(v) else v for v in values)


class ControlRouter:
    """Handle control messages for a :class:`~synth.host.live_engine.LiveEngine`.

    Parameters
    ----------
    live : the live engine (``submit``, ``engine``, ``stats``)
    take_log : a :class:`~synth.control.take_log.TakeLog` that records every played message, or None
    midi : the :class:`~synth.midi.port.MidiInput` that ``/synth/midi/learn`` teaches (settable later)
    """

    def __init__(self, live, *, take_log=None, midi=None) -> None:
        self.live = live
        self.take_log = take_log
        self.midi = midi
        self.messages = 0  # messages applied or answered
        self.errors = 0  # messages refused, here or by a transport (malformed packets)
        self.dropped = 0  # packets a transport dropped unread (senders not allowed)
        self.throttled = 0  # messages a transport dropped over a sender's rate (synth.control.rate)

    def dispatch(self, address: Any, args, *, at_time: float | None = None,
                 received: float | None = None, budget: SenderBudget | None = None) -> Reply | None:
        """Act on one message; the reply to send back (a query's answer, an error), or None.

        ``at_time``: when to apply it (``time.time()`` seconds, e.g. an OSC timetag); ``received``: when it
        arrived, for the control-latency figures; ``budget``: the sender's (:mod:`synth.control.rate`): a
        command beyond its rate is dropped here, before the engine, and the sender told once per flood.
        """
        try:
            message = parse_message(address, args, spec=self.live.engine.control_spec)
        except ParameterError as exc:
            return self.refuse(address, str(exc))
        if isinstance(message, Command):
            if budget is not None:
                if not budget.messages.take():
                    # A flood of valid commands must not starve the synthesis thread.
                    self.throttled += 1
                    if not budget.notice.take():
                        return None  # told already within the last second
                    return error_reply(address, f"more than {budget.limits.messages_per_second:g} commands a "
                                                "second: the excess is dropped")
            at_sample = self.live.submit(message, at_time=at_time, received=received, checked=True)
            self.messages += 1
            if self.take_log is not None:
                self.take_log.add(at_sample, address, list(args))
            return None
        if isinstance(message, MidiLearn):
            if self.midi is None:
                return self.refuse(address, "no MIDI input (start serve with --midi)")
            self.midi.translator.learn(message.target)
            self.messages += 1
            return None
        self.messages += 1
        if isinstance(message, StatusRequest):
            return Reply("/synth/status", _finite(self.status().pairs()))
        if isinstance(message, InfoRequest):
            spec = self.live.engine.control_spec
            return Reply("/synth/info", ("latent_size", spec.latent_size, "base_pitch", spec.base_pitch,
                                         "presets", *spec.presets))
        raise TypeError(f"the vocabulary made a message the router does not handle: {message!r}")

    def refuse(self, address: Any, reason: str) -> Reply:
        """Count a refused message and return its error reply."""
        self.errors += 1
        return error_reply(address, reason)

    def log_command(self, command: Command, at_sample: int) -> None:
        """Add a command that came another way (MIDI) to the take log, as the message that says it."""
        if self.take_log is not None:
            self.take_log.add(at_sample, *command_to_message(command))

    def status(self) -> Status:
        """The figures of ``/synth/status``, built now: the live engine's (:class:`~synth.host.stats.LiveStats`),
        its controls and this router's counters."""
        engine = self.live.engine
        s = self.live.stats()
        controls = engine.controls
        return Status(
            voices=s.engine.voices,
            underflows=s.underflows,
            latency_ms=float(s.latency_ms),
            decode_ms=float(s.engine.timbres.decode_ms),
            method=controls.method,
            provider=engine.provider,
            preset=controls.preset,
            messages=int(self.messages),
            errors=int(self.errors),
            dropped=int(self.dropped),
            decode_errors=s.engine.timbres.decode_errors,
            notes=s.engine.notes,
            underflows_startup=s.underflows_startup,
            underflows_idle=s.underflows_idle,
            underflows_playing=s.underflows_playing,
            buffer_ms=float(s.buffer_ms),
            throttled=int(self.throttled),
        )
