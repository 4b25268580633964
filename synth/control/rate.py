"""How much one sender may ask of the engine, and how much it may get back.

A flood of valid messages must not starve the synthesis thread (10,000 ``/synth/latent/set`` a second from one
process once gave 1,503 underflows in 10 s; 2,000 a second gave none), and the engine must not be a UDP
amplifier (one 65 KB bundle of ``/synth/info`` once drew 4 MB of replies, which a spoofed source address turns
onto a third party). :class:`SenderBudget` holds both bounds for one sender: a token bucket of messages, and a
bucket of reply bytes credited with half of what the sender sent, plus a small allowance for a client that
polls ``/synth/status`` now and then, so that under a flood the replies carry at most about half the bytes of
the requests. :class:`Senders` keeps a bounded number of them (spoofed sources cannot grow it without bound).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable

__all__ = ["TokenBucket", "SenderLimits", "SenderBudget", "Senders"]


class TokenBucket:
    """``rate`` tokens a second up to ``burst`` (full at start); :meth:`take` spends ``n`` when there are that many.

    ``clock``: seconds (``time.monotonic`` by default; tests pass their own).
    """

    def __init__(self, *, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._time = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._time) * self.rate)
        self._time = now

    def take(self, n: float = 1.0) -> bool:
        """Spend ``n`` tokens: True if there were that many (the message may pass), else False (none spent)."""
        self._refill()
        if self._tokens < n:
            return False
        self._tokens -= n
        return True

    def credit(self, n: float) -> None:
        """Add ``n`` tokens (up to ``burst``): what a sender's own traffic earns it."""
        self._refill()
        self._tokens = min(self.burst, self._tokens + n)

    def charge(self, n: float) -> None:
        """Spend ``n`` tokens whether or not there are that many: what work already done cost. Below zero the
        bucket is in debt, which its rate pays back before :meth:`wait` says go again."""
        self._refill()
        self._tokens -= n

    def wait(self) -> float:
        """Seconds until the bucket is out of debt (0.0 when it is)."""
        self._refill()
        return 0.0 if self._tokens >= 0.0 else -self._tokens / self.rate


@dataclasses.dataclass(frozen=True)
class SenderLimits:
    """The bounds of one sender (:meth:`unlimited` for tests of what lies behind them, such as the fuzzer's).

    packets_per_second, packet_burst : datagrams it may send; beyond them a datagram is dropped unread, which
        costs the receive thread almost nothing (parsing 10,000 packets a second held the GIL long enough to
        underflow a 16-voice chord)
    bytes_per_second, byte_burst : datagram bytes it may send; beyond them, likewise dropped unread. python-osc
        parses a float at a time, so what a datagram costs the GIL grows with its size, and the packet bound
        alone would let 2,500 whole latents (8 KB each, 20 MB) a second be parsed. 1 MiB/s is 128 whole
        latents a second, one per frame of the 16 kHz contract (the engine decodes at most one latent a
        frame), or about 40,000 note messages
    messages_per_second, message_burst : engine commands it may send (a ten-finger chord, a fader at 1 kHz and
        a sequencer fit; a flood does not; 2,000 latent changes a second under a 16-voice chord play without
        an underflow on a 2-core machine)
    reply_bytes_per_second, reply_burst : reply bytes it gets regardless of what it sends (a patch polling
        ``/synth/status`` 30 times a second needs 14 KB/s; under a flood of 10,000 messages a second this is a
        tenth of what the sender sends)
    reply_credit : reply bytes earned per byte it sends (below 1: the engine never amplifies a flood)
    max_senders : senders remembered at once (the oldest is forgotten first)
    intake_share, intake_burst_s : the receive thread's CPU time, whoever sends: a share of the wall clock,
        spent in stretches of at most ``intake_burst_s`` seconds; beyond them it pauses and the kernel drops
        what its buffer cannot hold. What reading costs, not how many datagrams are read: while the receive
        thread works it holds the GIL the synthesis thread needs, and a thread waiting for the GIL may wait
        out the 5 ms switch interval. A count of datagrams (4,000 a second in bursts of 1,000, before) let a
        flood's first 1,000 be read and parsed back to back: 1-11 underflows of a 16-voice chord at the
        start of each 2 s flood of ``/synth/latent/set`` at 10,000 or 100,000 a second (68 in ten floods,
        2026-12-07 15:33 UTC, quiet), and 2,500 ``/synth/status`` requests a second took 80% of a core.
        With 0.25 and 2 ms: 2 in ten such floods, and 1 in five such spans with no sender; the 2,000
        commands a second a sender may send take about 16% of a core
    """

    packets_per_second: float = 2500.0
    packet_burst: float = 1000.0
    bytes_per_second: float = 1048576.0
    byte_burst: float = 262144.0
    messages_per_second: float = 2000.0
    message_burst: float = 500.0
    reply_bytes_per_second: float = 16384.0
    reply_burst: float = 32768.0
    reply_credit: float = 0.5
    max_senders: int = 1024
    intake_share: float = 0.25
    intake_burst_s: float = 0.002

    @classmethod
    def unlimited(cls) -> SenderLimits:
        inf = float("inf")
        return cls(packets_per_second=inf, packet_burst=inf, bytes_per_second=inf, byte_burst=inf,
                   messages_per_second=inf, message_burst=inf,
                   reply_bytes_per_second=inf, reply_burst=inf, intake_share=inf, intake_burst_s=inf)


class SenderBudget:
    """One sender's message bucket and reply-byte bucket."""

    def __init__(self, limits: SenderLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.packets = TokenBucket(rate=limits.packets_per_second, burst=limits.packet_burst, clock=clock)
        self.bytes = TokenBucket(rate=limits.bytes_per_second, burst=limits.byte_burst, clock=clock)
        self.messages = TokenBucket(rate=limits.messages_per_second, burst=limits.message_burst, clock=clock)
        self.reply_bytes = TokenBucket(rate=limits.reply_bytes_per_second, burst=limits.reply_burst, clock=clock)
        self.notice = TokenBucket(rate=1.0, burst=1.0, clock=clock)  # telling it so: at most once a second

    def received(self, nbytes: int) -> None:
        """The sender sent ``nbytes``: it earns ``reply_credit`` of them in reply bytes."""
        self.reply_bytes.credit(nbytes * self.limits.reply_credit)

    def may_reply(self, nbytes: int) -> bool:
        return self.reply_bytes.take(nbytes)


class Senders:
    """Sender key (its address) -> :class:`SenderBudget`, at most ``limits.max_senders`` of them."""

    def __init__(self, limits: SenderLimits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or SenderLimits()
        self._clock = clock
        self._budgets: collections.OrderedDict = collections.OrderedDict()

    def __call__(self, sender) -> SenderBudget:
        budget = self._budgets.get(sender)
        if budget is None:
            budget = self._budgets[sender] = SenderBudget(self.limits, clock=self._clock)
            if len(self._budgets) > self.limits.max_senders:
                self._budgets.popitem(last=False)
        else:
            self._budgets.move_to_end(sender)
        return budget

    def __len__(self) -> int:
        return len(self._budgets)
