"""Shared helpers for the page's tests: a live engine with the page served, a headless Chromium, a socket.

- :func:`web_session`: the synthetic bundle's live engine (null output) and its OSC server, with a
  :class:`~synth.web.server.WebServer` on the OSC server's own router; yields ``(live, server, web)``.
- :func:`chromium_or_skip`: a headless Chromium, or the test skipped with the reason (not installed).
- :func:`socket_session`: an aiohttp client session and a WebSocket opened as the page opens it.
- :func:`wait_until`: poll a condition with a generous timeout (the suite runs on a loaded 2-core machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from engine_fixtures import live_session

# A test waits this long at most for anything the engine or the browser does (polling, not sleeping).
PATIENCE = 30.0


def wait_until(condition, *, timeout: float = PATIENCE, every: float = 0.05, what: str = "the condition"):
    """Poll ``condition()`` until it returns something true (returned), or fail naming ``what``."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"{what} did not happen within {timeout:g} s (last: {value!r})")
        time.sleep(every)


@contextlib.contextmanager
def web_session(*, log_path=None, record=None, max_voices: int = 4, **web_kw):
    """A live engine, its OSC server and the page's server on a free port; yields ``(live, server, web)``."""
    from synth.web.server import WebServer

    with live_session(log_path=log_path, record=record, max_voices=max_voices) as (live, server):
        web = WebServer(server.router, port=0, **web_kw)
        web.start()
        try:
            yield live, server, web
        finally:
            web.stop()


def chromium_or_skip(**kw):
    """A headless Chromium WebDriver (see :func:`synth.web.browser.headless_chromium`), or a skip saying what
    is missing."""
    from synth.errors import ExternalToolError
    from synth.web.browser import chromium_paths, headless_chromium

    if chromium_paths() is None:
        pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("Selenium is not installed (pip install -e '.[dev]')")
    try:
        return headless_chromium(**kw)
    except ExternalToolError as exc:
        pytest.skip(str(exc))


def origin_of(web) -> str:
    return f"http://127.0.0.1:{web.port}"


def socket_url(web, *, token: str | None = None) -> str:
    return f"http://127.0.0.1:{web.port}/ws?token={web.token if token is None else token}"


@contextlib.asynccontextmanager
async def socket_session(web, **kw):
    """``(session, ws)``: a WebSocket to ``web`` with its token and its own Origin, as the page opens it."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(socket_url(web), origin=origin_of(web), **kw) as ws:
            yield session, ws


async def receive_json(ws, *, timeout: float = PATIENCE) -> dict:
    """The next message of ``ws`` as JSON (fails on a close or an error)."""
    import aiohttp

    msg = await ws.receive(timeout=timeout)
    if msg.type != aiohttp.WSMsgType.TEXT:
        pytest.fail(f"expected a text frame, got {msg.type!r} {msg.data!r} {msg.extra!r}")
    return json.loads(msg.data)


async def wait_for_message(ws, predicate, *, timeout: float = PATIENCE) -> dict:
    """Read messages of ``ws`` until one for which ``predicate(message)`` holds; returns it."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            pytest.fail(f"no message as expected within {timeout:g} s")
        message = await receive_json(ws, timeout=left)
        if predicate(message):
            return message


async def send(ws, address: str, *args) -> None:
    await ws.send_str(json.dumps({"address": address, "args": list(args)}))


def run(coro):
    """Run a coroutine to its end on a fresh event loop (the tests are plain functions)."""
    return asyncio.run(coro)


def pairs(args) -> dict:
    return dict(zip(args[::2], args[1::2], strict=True))
