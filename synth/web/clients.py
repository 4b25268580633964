"""One connection to the page's socket: its token bucket and its bounded outbox.

Everything the server sends a page goes through :meth:`Client.offer`, which never waits: a message joins the
connection's outbox, and the connection's own sender task writes it out, each write bounded by
``send_timeout_s``. A peer that stops reading (a dead tablet, a hostile script) fills its outbox or times a
write out, and is cut off at once (the TCP connection aborted): it never holds up the other pages, the
event loop, or anything the engine does.
"""

from __future__ import annotations

import asyncio

from synth.control.rate import TokenBucket
from synth.web.limits import WebLimits

__all__ = ["Client"]


class Client:
    """A connected page: ``ws`` (an aiohttp WebSocketResponse, or anything with ``send_str``), the
    ``transport`` under it (aborted when the peer is cut off), and where it connected from (``peer``).

    ``limited``: the sender has been told it is over its rate (once per flood, see
    :meth:`synth.web.server.WebServer`); ``reason``: why the connection was cut off ("" while it is not).
    """

    def __init__(self, ws, *, transport=None, peer: str = "", limits: WebLimits) -> None:
        self.ws = ws
        self.peer = peer
        self.bucket = TokenBucket(rate=limits.messages_per_second, burst=limits.burst)
        self.limited = False
        self.reason = ""
        self.sent = 0
        self._transport = transport
        self._timeout = limits.send_timeout_s
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=limits.outbox)
        self._sender = asyncio.get_running_loop().create_task(self._send_all())

    @property
    def cut_off(self) -> bool:
        return bool(self.reason)

    def offer(self, text: str) -> bool:
        """Queue ``text`` for this page without waiting; False (and the connection cut off) if its outbox is
        full, False too once it is cut off."""
        if self.reason:
            return False
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            self.cut(f"not reading: {self._outbox.maxsize} messages waited for it")
            return False
        return True

    async def _send_all(self) -> None:
        while True:
            text = await self._outbox.get()
            try:
                await asyncio.wait_for(self.ws.send_str(text), self._timeout)
            except asyncio.TimeoutError:
                self.cut(f"not reading: a send waited {self._timeout:g} s")
                return
            except (ConnectionError, RuntimeError) as exc:  # closed under us (aiohttp raises both)
                self.cut(f"gone ({type(exc).__name__})")
                return
            self.sent += 1

    def cut(self, reason: str) -> None:
        """Cut the connection off now (no closing handshake: the peer is not reading)."""
        if self.reason:
            return
        self.reason = reason
        self._sender.cancel()
        if self._transport is not None:
            self._transport.abort()

    async def close(self, *, code: int = 1001, message: str = "") -> None:
        """Close politely (within the send timeout), else cut off; stops the sender either way."""
        self._sender.cancel()
        await asyncio.wait([self._sender])  # (wait does not raise the sender's cancellation here)
        if not self.reason and not getattr(self.ws, "closed", True):
            try:
                await asyncio.wait_for(self.ws.close(code=code, message=message.encode()[:120]), self._timeout)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                self.cut("did not close in time")
        self.reason = self.reason or "closed"
