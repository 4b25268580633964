"""The web server: the page, its static files and its socket, on a thread and an event loop of their own.

The synthesis thread never runs any of it: everything here happens on the ``melsynth-web`` thread (raised to
the OSC thread's real-time priority where the live engine's threads are, for the same reason: a thread
preempted while it holds the GIL would hold up the ones that feed the audio), and it reaches the engine only
through the :class:`~synth.control.router.ControlRouter` it shares with OSC (commands into the live engine's
inbox, the take log) and by reading figures and immutable objects (:mod:`synth.web.feed`).

Routes: ``GET /?token=T`` the page; ``GET /static/NAME`` its script, style sheet and icon; ``GET /ws?token=T``
the socket (JSON text frames, :mod:`synth.web.messages`). The listening socket is bound when the server is
made, so a port in use is reported before the engine starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import importlib.resources
import socket
import threading
import time

from synth.control.router import error_reply
from synth.errors import ParameterError
from synth.web.access import Access, allowed_peers, new_token
from synth.web.clients import Client
from synth.web.feed import Feed
from synth.web.limits import DEFAULT_WEB_PORT, WebLimits
from synth.web.messages import (
    KEEP_PRESET,
    KEPT_PRESET,
    WRITE_ADDRESSES,
    FrameError,
    message_text,
    parse_frame,
)

__all__ = ["WebServer", "DEFAULT_WEB_PORT", "STATIC_FILES"]

#: The files of the page (served from the installed package; nothing is fetched from elsewhere).
STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
    "icon.svg": "image/svg+xml",
}

# How long an orderly stop waits for the pages to close and the loop to end (seconds).
STOP_TIMEOUT = 5.0


def _static_files() -> dict[str, bytes]:
    folder = importlib.resources.files("synth.web").joinpath("static")
    try:
        return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}
    except OSError as exc:  # an installation without package data
        raise ParameterError(f"the page's files are missing from the installed package ({exc})") from None


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (ParameterError naming both when that fails)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ParameterError(f"--web port must be 0..65535, got {port!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise ParameterError(f"cannot serve the page on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ParameterError(f"cannot serve the page on {host}:{port}: {exc.strerror or exc}"
                             + (" (another program uses it: choose another with --web PORT)"
                                if exc.errno == errno.EADDRINUSE else "")) from None
    sock.setblocking(False)
    return sock


def _network_address(wildcard: str) -> str:
    """This machine's address on the network its default route leads to (no packet is sent), else
    ``wildcard``."""
    family, probe = (socket.AF_INET6, "2001:db8::1") if ":" in wildcard else (socket.AF_INET, "192.0.2.1")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            return s.getsockname()[0]
    except OSError:
        return wildcard


class WebServer:
    """Serve the page for ``router`` (the :class:`~synth.control.router.ControlRouter` OSC uses too).

    Parameters
    ----------
    router : ControlRouter (``dispatch``, ``refuse``, ``status``, ``live``, ``midi``, ``throttled``)
    host, port : where to listen (port 0: any free port, see :attr:`port`); a non-loopback host needs ``allow``
    allow : the only peers that may connect (as ``--allow`` for OSC); empty: any, on loopback only
    write : the page may keep presets and learn MIDI (``serve --web-write``); otherwise it may not
    keeper : a :class:`~synth.web.keep.PresetKeeper` (needed with ``write``)
    limits : :class:`~synth.web.limits.WebLimits`
    token : the page's secret (default: a new one, :func:`~synth.web.access.new_token`)

    Raises ParameterError at once for a host without ``allow``, a bad address, or a port that cannot be bound.
    """

    def __init__(self, router, *, host: str = "127.0.0.1", port: int = DEFAULT_WEB_PORT, allow=(),
                 write: bool = False, keeper=None, limits: WebLimits | None = None, token: str | None = None) -> None:
        if write and keeper is None:
            raise ParameterError("a page that may write needs a PresetKeeper")
        peers = allowed_peers(host, allow)
        self.router = router
        self.live = router.live
        self.host = host
        self.write = bool(write)
        self.keeper = keeper
        self.limits = limits or WebLimits()
        self.token = token or new_token()
        self._files = _static_files()
        self.feed = Feed(router, write=self.write)
        self._sock = _bind(host, port)
        self.port = int(self._sock.getsockname()[1])
        self.access = Access(token=self.token, port=self.port, peers=peers)
        # Figures (for serve's closing line and the tests).
        self.connections = 0
        self.refused = 0
        self.frames = 0
        self.rate_dropped = 0
        self.cut_off = 0
        self._clients: set[Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner = None
        self._ready = threading.Event()
        self._failure = ""
        self._thread = threading.Thread(target=self._run, name="melsynth-web", daemon=True)

    # ------------------------------------------------------------------ the address
    @property
    def url(self) -> str:
        """The page's address with this run's token, as serve prints it (on every address: this machine's
        address on its network, which a tablet types)."""
        host = _network_address(self.host) if self.host in ("0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/?token={self.token}"

    @property
    def clients(self) -> int:
        return len(self._clients)

    # ------------------------------------------------------------------ start and stop
    def start(self) -> None:
        """Start the thread and its loop, serving on the socket bound at construction."""
        self._thread.start()
        if not self._ready.wait(30.0):
            raise ParameterError(f"the page's server on {self.host}:{self.port} did not start within 30 s")
        if self._failure:
            raise ParameterError(self._failure)

    def _run(self) -> None:
        if getattr(self.live, "realtime", False):
            from synth.host.priority import raise_thread_priority

            raise_thread_priority(self.live.priorities.control)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # this thread's own
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._open())
            except (OSError, RuntimeError) as exc:
                self._failure = f"cannot serve the page on {self.host}:{self.port}: {exc}"
                return
            finally:
                self._ready.set()
            loop.run_forever()
        finally:
            # Whatever is still running (a page's handler, a preset being written) ends before the loop closes.
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _open(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=self.limits.max_message_bytes)
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/ws", self._socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        loop = asyncio.get_running_loop()
        self._feed_task = loop.create_task(self._run_feed())

    def stop(self) -> None:
        """Close every page's socket, stop serving and end the thread (before the engine stops)."""
        loop = self._loop
        if loop is not None and self._thread.is_alive() and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(STOP_TIMEOUT)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass  # the loop ends below regardless
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # already closed
                pass
            self._thread.join(STOP_TIMEOUT)
        self._sock.close()

    async def _close(self) -> None:
        self._feed_task.cancel()
        await asyncio.gather(*(c.close(code=1001, message="the engine stops") for c in list(self._clients)),
                             return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    def counters(self) -> dict:
        return {"connections": self.connections, "clients": self.clients, "refused": self.refused,
                "frames": self.frames, "rate_dropped": self.rate_dropped, "cut_off": self.cut_off}

    # ------------------------------------------------------------------ HTTP
    def _headers(self, request) -> dict[str, str]:
        host = request.headers.get("Host", "")
        return {
            # Nothing from elsewhere, no framing by another page, no token in a Referer.
            "Content-Security-Policy": (
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src 'self' ws://{host}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        }

    def _refused(self, status: int, reason: str):
        from aiohttp import web

        self.refused += 1
        return web.Response(status=status, text=f"melsynth: {reason}\n")

    async def _page(self, request):
        from aiohttp import web

        reason = self.access.refuse_page(peer=request.remote, host=request.headers.get("Host"),
                                         token=request.query.get("token"))
        if reason:
            return self._refused(403, reason)
        return web.Response(body=self._files["index.html"], content_type="text/html", charset="utf-8",
                            headers=self._headers(request))

    async def _static(self, request):
        from aiohttp import web

        name = request.match_info["name"]
        # The files are not secret (they are the package's), but only those peers and Hosts get them.
        reason = self.access.refuse_page(peer=request.remote, host=request.headers.get("Host"), token=self.token)
        if reason:
            return self._refused(403, reason)
        if name not in STATIC_FILES or name == "index.html":
            return self._refused(404, f"no file {name[:60]!r}")
        return web.Response(body=self._files[name], content_type=STATIC_FILES[name],
                            headers=self._headers(request))

    # ------------------------------------------------------------------ the socket
    async def _socket(self, request):
        from aiohttp import WSMsgType, web

        reason = self.access.refuse_socket(peer=request.remote, host=request.headers.get("Host"),
                                           origin=request.headers.get("Origin"), token=request.query.get("token"))
        if reason:
            return self._refused(403, reason)
        if len(self._clients) >= self.limits.max_clients:
            return self._refused(503, f"{self.limits.max_clients} pages are connected already")
        ws = web.WebSocketResponse(max_msg_size=self.limits.max_message_bytes, compress=False, heartbeat=20.0,
                                   timeout=self.limits.send_timeout_s)
        await ws.prepare(request)
        client = Client(ws, transport=request.transport, peer=str(request.remote), limits=self.limits)
        self._clients.add(client)
        self.connections += 1
        try:
            client.offer(self.feed.hello_text())
            client.offer(self.feed.status_text(clients=len(self._clients)))
            client.offer(self.feed.picture_text(changed_only=False))
            async for msg in ws:
                if client.cut_off:
                    break
                if msg.type == WSMsgType.TEXT:
                    await self._handle(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._answer(client, self.router.refuse("", "binary frames are not read: send JSON text"))
                else:  # an error (a frame over the size limit: aiohttp has closed with 1009) or a close
                    break
        finally:
            self._clients.discard(client)
            if client.cut_off:
                self.cut_off += 1
            await client.close()
        return ws

    def _answer(self, client: Client, reply) -> None:
        if reply is not None:
            client.offer(message_text(reply.address, reply.args))

    async def _handle(self, client: Client, text: str) -> None:
        """One frame from a page: rate, shape, permission, then the router (or the preset keeper)."""
        received = time.time()
        self.frames += 1
        if not client.bucket.take():
            # Dropped unread, and the sender told once per flood: answering each would make a flood an echo.
            self.rate_dropped += 1
            self.router.throttled += 1
            if not client.limited:
                client.limited = True
                self._answer(client, error_reply("", f"more than {self.limits.messages_per_second:g} messages a "
                                                     "second: the excess is dropped"))
            return
        client.limited = False
        try:
            message = parse_frame(text)
        except FrameError as exc:
            self._answer(client, self.router.refuse(exc.address, str(exc)))
            return
        if message.address in WRITE_ADDRESSES and not self.write:
            self._answer(client, self.router.refuse(
                message.address, "this page may not keep presets or learn MIDI: start serve with --web-write"))
        elif message.address == KEEP_PRESET:
            await self._keep(client, message)
        else:
            self._answer(client, self.router.dispatch(message.address, list(message.args), received=received))

    async def _keep(self, client: Client, message) -> None:
        if len(message.args) != 1 or not isinstance(message.args[0], str):
            self._answer(client, self.router.refuse(KEEP_PRESET, "expected 1 argument, the preset's name"))
            return
        name = message.args[0]
        loop = asyncio.get_running_loop()
        try:
            # A file write: on an executor thread, so the loop serves the other pages meanwhile.
            path = await loop.run_in_executor(None, self.keeper.keep, name)
        except ParameterError as exc:
            self._answer(client, self.router.refuse(KEEP_PRESET, str(exc)))
            return
        self.router.messages += 1
        client.offer(message_text(KEPT_PRESET, [name, str(path)]))

    # ------------------------------------------------------------------ the feed
    async def _run_feed(self) -> None:
        period = 1.0 / self.limits.status_hz
        while True:
            await asyncio.sleep(period)
            if not self._clients:
                continue
            texts = [self.feed.status_text(clients=len(self._clients))]
            picture = self.feed.picture_text()
            if picture is not None:
                texts.append(picture)
            for client in list(self._clients):
                for text in texts:
                    client.offer(text)
