"""The OSC server: a UDP receive thread that validates packets and hands commands to a live engine.

python-osc's ``Dispatcher`` is not used for dispatch: it does not pass a bundle's timetag to handlers (with
``strict_timing=True`` it sleeps in the receive thread instead), and it swallows malformed packets without a
trace. This server parses each datagram with python-osc's ``OscPacket``, maps a future timetag to a sample on
the audio clock, and answers every bad message with ``/synth/error address reason``. Nothing a packet
contains can raise out of the receive loop: every failure is counted and answered.

Security: it binds 127.0.0.1 unless told otherwise; a non-loopback bind needs an ``allow`` list, and
packets from addresses not on the list (when one is given) are dropped and counted. Each sender address has a
budget (:mod:`synth.control.rate`): commands beyond its rate are dropped before they reach the engine (told
once per flood, counted as ``throttled``; refused messages never reach the engine and do not count), and its replies may carry at most half the bytes it sent plus a
small allowance, so the server amplifies nothing onto a spoofed source; error replies are rate limited on
top of that. Whoever sends, the receive thread spends at most a share of the time reading and handling
datagrams, in short stretches (``SenderLimits.intake_share``): it holds the GIL while it works.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

# At import, not at the first datagram: imported in the receive thread while the engine plays, it held the
# first OSC note of a fresh serve ~40 ms late (a JACK client measured 51-55 ms against 8-16 ms for the rest).
from pythonosc.osc_packet import OscPacket, ParseError

from synth.control.peers import allowed_peers, normal_address
from synth.control.rate import SenderLimits, Senders, TokenBucket
from synth.control.router import ControlRouter, Reply
from synth.control.take_log import TakeLog
from synth.control.vocabulary import DEFAULT_PORT, ERROR_ADDRESS
from synth.errors import ParameterError
from synth.osc.packets import encode_message

__all__ = ["OscServer", "DEFAULT_PORT", "bundle_problem"]

MAX_DATAGRAM = 65536
ERROR_REPLIES_PER_SECOND = 200
MAX_SCHEDULE_AHEAD = 60.0  # seconds
INTAKE_PAUSE_S = 0.002


_BUNDLE = b"#bundle\x00"
MAX_BUNDLE_DEPTH = 8


def bundle_problem(dgram: bytes, depth: int = 0) -> str:
    """Why a bundle's framing is unsafe to parse ("" when fine, or when ``dgram`` is not a bundle).

    python-osc 1.10.2 trusts element sizes: a negative size makes its parser step back onto the size field
    and loop forever, and deep nesting recurses without a bound. Every element size is checked here first:
    positive, a multiple of 4, inside the datagram; nesting at most :data:`MAX_BUNDLE_DEPTH` deep.
    """
    if not dgram.startswith(_BUNDLE):
        return ""
    if depth > MAX_BUNDLE_DEPTH:
        return f"bundles nested more than {MAX_BUNDLE_DEPTH} deep"
    if len(dgram) < 16:
        return "truncated bundle header"
    i, n = 16, len(dgram)
    while i < n:
        if i + 4 > n:
            return "truncated bundle element size"
        size = int.from_bytes(dgram[i : i + 4], "big", signed=True)
        i += 4
        if size <= 0 or size % 4 or i + size > n:
            return f"bad bundle element size {size}"
        inner = bundle_problem(dgram[i : i + size], depth + 1)
        if inner:
            return inner
        i += size
    return ""


def _sender(host: str) -> str:
    """The sender's address in the allow list's spelling (an IPv4 sender of a socket bound to ``::`` arrives
    as ``::ffff:a.b.c.d``)."""
    try:
        return normal_address(host)
    except ValueError:
        return host


def _encode(reply: Reply) -> bytes:
    return encode_message(reply.address, reply.args)


class OscServer:
    """Receive OSC on UDP ``host:port`` for a :class:`~synth.host.live_engine.LiveEngine`.

    Parameters
    ----------
    live : LiveEngine (``submit``, ``engine``, ``stats``)
    host : address to bind (default loopback); anything else requires ``allow``
    port : UDP port (0: any free port, see :attr:`port`)
    allow : addresses whose packets are accepted (empty: all, only allowed on loopback)
    log_path : log every valid control message as a score there (a :class:`~synth.control.take_log.TakeLog`,
        written by :meth:`write_log`)
    log_force : the log may replace an existing regular file at ``log_path`` (``serve --force``)
    log_inputs : the take's inputs (the bundle folder, ...), which the log may not replace
    limits : each sender's message rate and reply bytes (:class:`~synth.control.rate.SenderLimits`)

    Each message goes to :attr:`router` (a :class:`~synth.control.router.ControlRouter` with the take log),
    which the page's socket shares, so that the log and the counters hold what every transport played.
    """

    def __init__(
        self,
        live,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        allow: tuple[str, ...] | list[str] = (),
        log_path: str | Path | None = None,
        log_force: bool = False,
        log_inputs: tuple[str | Path | None, ...] = (),
        limits: SenderLimits | None = None,
    ) -> None:
        allowed = allowed_peers(host, allow)
        self.live = live
        self.engine = live.engine
        # Told when control floods in (a sender over its budget, the receive thread's share spent): the live
        # engine then renders at its widest margin for a while (see synth.host.margin).
        self._pressure = getattr(live, "under_pressure", None)
        self.host = host
        self.allow = allowed
        self.packets = 0
        self.replies = 0
        self.replies_dropped = 0  # replies a sender's byte budget did not cover
        self.reply_bytes = 0
        self.senders = Senders(limits)
        self._tokens = float(ERROR_REPLIES_PER_SECOND)
        self._token_time = time.monotonic()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except (OSError, OverflowError) as exc:
            self._sock.close()
            raise ParameterError(f"cannot listen for OSC on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        take_log = None
        if log_path is not None:
            try:
                take_log = TakeLog(log_path, rate=self.engine.output_rate, force=log_force, inputs=log_inputs)
            except ParameterError:
                self._sock.close()
                raise
        self.router = ControlRouter(live, take_log=take_log)
        # The receive thread's CPU time, whoever sends (SenderLimits.intake_share): CPU seconds in a bucket of
        # wall-clock seconds. Attributes, so that tests can run both on clocks of their own.
        limits = self.senders.limits
        self.intake = TokenBucket(rate=limits.intake_share, burst=limits.intake_burst_s)
        self.cpu_clock = time.thread_time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="melsynth-osc", daemon=True)

    # ------------------------------------------------------------------ loop
    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        if getattr(self.live, "realtime", False):
            # See synth.host.priority: a preempted thread holding the GIL stalls the synthesis thread.
            from synth.host.priority import raise_thread_priority

            raise_thread_priority(self.live.priorities.control)
        while not self._stop.is_set():
            pause = self.intake.wait()
            if pause > 0.0:
                # The receive thread has spent its share: leave the datagrams to the kernel, which drops what
                # its buffer cannot hold, at no cost to the GIL the synthesis thread needs.
                if self._pressure is not None:
                    self._pressure()
                time.sleep(max(pause, INTAKE_PAUSE_S))
                continue
            c0 = self.cpu_clock()
            if self._receive_once():
                self.intake.charge(self.cpu_clock() - c0)

    def _receive_once(self) -> bool:
        """Read one datagram and act on it; False when none came (a timeout) or the socket closed."""
        try:
            data, addr = self._sock.recvfrom(MAX_DATAGRAM)
        except OSError:  # TimeoutError among them
            return False
        self.packets += 1
        if self.allow and _sender(addr[0]) not in self.allow:
            self.router.dropped += 1
            return True
        try:
            self.handle_datagram(data, addr)
        except Exception as exc:  # the engine never dies from a packet
            self._reply_error(addr, self.router.refuse("", f"malformed packet ({type(exc).__name__})"))
        return True

    def handle_datagram(self, data: bytes, addr) -> None:
        """Parse one datagram and act on each message in it (public so tests can feed raw bytes)."""
        received = time.time()
        budget = self.senders(addr[0])
        budget.received(len(data))
        over = "" if budget.packets.take() else f"{budget.limits.packets_per_second:g} packets"
        if not over and not budget.bytes.take(len(data)):
            over = f"{budget.limits.bytes_per_second:g} bytes"
        if over:
            # Dropped unread: under a flood the receive thread's work must stay next to nothing (it holds the
            # GIL the synthesis thread needs).
            self.router.throttled += 1
            if self._pressure is not None:
                self._pressure()
            if budget.notice.take():
                self._reply_error(addr, Reply(ERROR_ADDRESS, ("", f"more than {over} a second: the excess is "
                                                                  "dropped")))
            return
        problem = bundle_problem(data)
        if problem:
            self._reply_error(addr, self.router.refuse("", f"malformed packet: {problem}"))
            return
        try:
            packet = OscPacket(data)
        except ParseError as exc:
            self._reply_error(addr, self.router.refuse("", f"malformed packet: {str(exc)[:100]}"))
            return
        except Exception as exc:  # python-osc lets some garbage through as other errors (RecursionError ...)
            self._reply_error(addr, self.router.refuse("", f"malformed packet ({type(exc).__name__})"))
            return
        for timed in packet.messages:
            message = timed.message
            address = message.address
            at_time = timed.time if timed.time > received + 1e-3 else None
            if at_time is not None and at_time - received > MAX_SCHEDULE_AHEAD:
                # Far-future events would pile up unplayed (and could be used to fill memory).
                self._reply_error(addr, self.router.refuse(
                    address, f"timetag more than {MAX_SCHEDULE_AHEAD:g} s in the future"))
                continue
            reply = self.router.dispatch(address, message.params, at_time=at_time, received=received, budget=budget)
            if reply is not None:
                if reply.address == ERROR_ADDRESS:
                    self._reply_error(addr, reply)
                else:
                    self._send(addr, _encode(reply))

    # ------------------------------------------------------------------ replies
    def _send(self, addr, dgram: bytes) -> None:
        if not self.senders(addr[0]).may_reply(len(dgram)):
            self.replies_dropped += 1  # the sender has not sent enough to be owed this many bytes
            return
        try:
            self._sock.sendto(dgram, addr)
            self.replies += 1
            self.reply_bytes += len(dgram)
        except OSError:
            pass  # a sender that went away does not concern the engine

    def _reply_error(self, addr, reply: Reply) -> None:
        """Send an error reply, at most :data:`ERROR_REPLIES_PER_SECOND` a second (never a flood)."""
        now = time.monotonic()
        self._tokens = min(float(ERROR_REPLIES_PER_SECOND), self._tokens + (now - self._token_time) * ERROR_REPLIES_PER_SECOND)
        self._token_time = now
        if self._tokens < 1.0:
            return
        self._tokens -= 1.0
        self._send(addr, _encode(reply))

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop receiving (the take log stays open for :meth:`write_log`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._sock.close()

    def write_log(self) -> Path | None:
        """Write the take log, if one was asked for, and return its path: after the engine has stopped, so
        that the writing costs the take nothing. Raises ParameterError, naming where the entries are kept."""
        take_log = self.router.take_log
        return take_log.write() if take_log is not None else None

    def discard_log(self) -> None:
        """Drop the take log (a start that failed before anything played)."""
        if self.router.take_log is not None:
            self.router.take_log.discard()

    def counters(self) -> dict:
        router = self.router
        return {
            "packets": self.packets,
            "messages": router.messages,
            "errors": router.errors,
            "dropped": router.dropped,
            "throttled": router.throttled,
            "replies": self.replies,
            "replies_dropped": self.replies_dropped,
        }
