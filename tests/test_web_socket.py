"""The page's socket over real TCP on loopback, with aiohttp's client: who may connect, what a message does,
and the bounds (size, rate, connections) that keep a bad or hostile client from changing anything else."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import aiohttp
import pytest
from web_fixtures import (
    origin_of,
    pairs,
    receive_json,
    run,
    send,
    socket_session,
    socket_url,
    wait_for_message,
    wait_until,
    web_session,
)

from synth.web.limits import WebLimits
from synth.web.server import WebServer


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    log = tmp_path_factory.mktemp("web-socket") / "take.json"
    with web_session(log_path=log) as (live, server, web):
        yield live, server, web


@pytest.fixture
def extra_web(session):
    """Another page server on the same router, with the limits a test asks for."""
    made = []

    def make(**kw):
        web = WebServer(session[1].router, port=0, **kw)
        web.start()
        made.append(web)
        return web

    yield make
    for web in made:
        web.stop()


def _is_error(reason_part: str):
    return lambda m: m["address"] == "/synth/error" and reason_part in m["args"][1]


# ---------------------------------------------------------------------------------------------- who may connect
def test_the_socket_opens_with_the_token_and_the_pages_origin_and_says_hello(session):
    live, server, web = session

    async def go():
        async with socket_session(web) as (_, ws):
            hello = await receive_json(ws)
            status = await wait_for_message(ws, lambda m: m["address"] == "/synth/status")
            picture = await wait_for_message(ws, lambda m: m["address"] == "/web/timbre")
            await send(ws, "/synth/info")
            info = await wait_for_message(ws, lambda m: m["address"] == "/synth/info")
            return hello, status, picture, info

    hello, status, picture, info = run(go())
    assert hello["address"] == "/web/hello"
    h = pairs(hello["args"])
    spec = live.engine.control_spec
    assert h["write"] == 0 and h["midi"] == 0 and h["macros"] == spec.macro_count
    assert (h["note_low"], h["note_high"]) == spec.note_range and h["methods"].split(",") == list(spec.methods)
    s = pairs(status["args"])
    from synth.control.status import STATUS_KEYS

    assert list(s)[: len(STATUS_KEYS)] == list(STATUS_KEYS)
    assert {"output_peak", "output_rms", "gain", "x", "y", "clients"} <= set(s) and s["clients"] >= 1
    assert picture["args"][0] > 0 and picture["args"][1] > 0
    assert info["args"][info["args"].index("presets") + 1 :] == list(spec.presets)


@pytest.mark.parametrize("how", ["no token", "wrong token", "other origin", "no origin", "rebound name",
                                 "other port origin"])
def test_a_connection_without_the_token_or_from_another_origin_is_refused_before_the_upgrade(session, how):
    web = session[2]
    url, headers, origin = socket_url(web), {}, origin_of(web)
    if how == "no token":
        url = f"http://127.0.0.1:{web.port}/ws"
    elif how == "wrong token":
        url = socket_url(web, token=web.token[:-1] + ("A" if web.token[-1] != "A" else "B"))
    elif how == "other origin":
        origin = "http://evil.example"
    elif how == "no origin":
        origin = None
    elif how == "rebound name":  # DNS rebinding: the attacker's name for this machine, with its own Origin
        headers = {"Host": f"evil.example:{web.port}"}
        origin = f"http://evil.example:{web.port}"
    elif how == "other port origin":
        origin = f"http://127.0.0.1:{web.port + 1}"
    refused_before = web.refused

    async def go():
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_connect(url, origin=origin, headers=headers)
            return info.value.status

    assert run(go()) == 403
    assert web.refused == refused_before + 1


def test_the_page_needs_the_token_too_and_its_files_say_where_they_may_connect(session):
    web = session[2]

    async def go():
        async with aiohttp.ClientSession() as s:
            page = await s.get(web.url)
            body = await page.text()
            headers = page.headers
            bare = await s.get(f"http://127.0.0.1:{web.port}/")
            wrong = await s.get(f"http://127.0.0.1:{web.port}/?token=nope")
            script = await s.get(f"http://127.0.0.1:{web.port}/static/app.js")
            missing = await s.get(f"http://127.0.0.1:{web.port}/static/..%2F..%2Fserver.py")
            return page.status, body, headers, bare.status, wrong.status, script.status, missing.status

    status, body, headers, bare, wrong, script, missing = run(go())
    assert status == 200 and "<title>melsynth</title>" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["Referrer-Policy"] == "no-referrer"
    assert (bare, wrong, script, missing) == (403, 403, 200, 404)


def test_only_the_allowed_addresses_may_open_the_page(session, extra_web):
    web = extra_web(allow=["10.9.8.7"])  # loopback itself is not on the list

    async def go():
        async with aiohttp.ClientSession() as s:
            page = await s.get(web.url)
            return page.status, await page.text()

    status, text = run(go())
    assert status == 403 and "127.0.0.1 is not among the addresses --allow names" in text


def test_connections_are_bounded(session, extra_web):
    web = extra_web(limits=WebLimits(max_clients=2))

    async def go():
        async with aiohttp.ClientSession() as s:
            a = await s.ws_connect(socket_url(web), origin=origin_of(web))
            b = await s.ws_connect(socket_url(web), origin=origin_of(web))
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await s.ws_connect(socket_url(web), origin=origin_of(web))
            await a.close()
            wait_until(lambda: web.clients == 1, what="the first page leaving")
            c = await s.ws_connect(socket_url(web), origin=origin_of(web))  # room again
            await b.close()
            await c.close()
            return info.value.status

    assert run(go()) == 503


# ---------------------------------------------------------------------------------------------- what it does
def test_a_message_goes_the_way_osc_goes_and_is_logged(session):
    live, server, web = session
    router = server.router
    messages = router.messages

    async def go():
        async with socket_session(web) as (_, ws):
            await send(ws, "/synth/note/on", 62, 90)
            wait_until(lambda: live.engine.held_notes() == (62,), what="note 62 held")
            await send(ws, "/synth/xy", 0.25, 0.75)
            await send(ws, "/synth/note/off", 62)
            wait_until(lambda: live.engine.held_notes() == (), what="note 62 released")
            wait_until(lambda: live.engine.controls.xy == (0.25, 0.75), what="the XY position")
            await send(ws, "/synth/status")
            return await wait_for_message(ws, lambda m: m["address"] == "/synth/status"
                                          and pairs(m["args"]).get("messages", 0) >= messages + 3
                                          and "output_peak" not in pairs(m["args"]))

    reply = run(go())
    assert pairs(reply["args"])["notes"] >= 1  # the router's own reply: the OSC keys only
    assert router.messages >= messages + 4
    # The take log has what the page played, as a score's entries.
    log_lines = _log_entries(router.take_log)
    assert {"address": "/synth/note/on", "args": [62, 90]} in log_lines
    assert {"address": "/synth/xy", "args": [0.25, 0.75]} in log_lines


def _log_entries(take_log) -> list[dict]:
    take_log._file.flush()  # (the lines are written as messages arrive; flushed here to read them mid-take)
    with open(take_log.lines_path, encoding="utf-8") as f:
        return [{k: e[k] for k in ("address", "args")} for e in map(json.loads, f)]


@pytest.mark.parametrize("frame, reason", [
    ("{not json", "malformed JSON"),
    ('{"address": "/synth/note/on", "args": [60], "time": 2}', 'leave "time" out'),
    ('{"address": "/synth/note/on", "args": [500]}', "note 500 out of range"),
    ('{"address": "/synth/preset", "args": ["nope"]}', "unknown preset 'nope'"),
    ('{"address": "/synth/nope"}', "unknown address"),
    ('{"address": "/synth/xy", "args": ["a", "b"]}', "must be a number"),
    ('{"address": "/web/preset/keep", "args": ["mine"]}', "start serve with --web-write"),
    ('{"address": "/synth/midi/learn", "args": ["x"]}', "start serve with --web-write"),
])
def test_a_bad_message_changes_nothing_and_is_answered_with_the_reason(session, frame, reason):
    live, server, web = session
    errors, controls = server.router.errors, live.engine.controls

    async def go():
        async with socket_session(web) as (_, ws):
            await ws.send_str(frame)
            return await wait_for_message(ws, lambda m: m["address"] == "/synth/error")

    reply = run(go())
    assert reason in reply["args"][1]
    assert server.router.errors == errors + 1 and live.engine.controls == controls


def test_binary_frames_are_refused(session):
    web = session[2]

    async def go():
        async with socket_session(web) as (_, ws):
            await ws.send_bytes(b"\x00\x01")
            return await wait_for_message(ws, _is_error("binary frames are not read"))

    assert run(go())


# ---------------------------------------------------------------------------------------------- bounds
def test_a_frame_over_the_size_limit_closes_that_connection_only(session):
    live, server, web = session

    async def go():
        async with socket_session(web) as (_, other):
            async with socket_session(web) as (_, ws):
                await ws.send_str(json.dumps({"address": "/synth/gain", "args": ["x" * (70 * 1024)]}))
                end = time.monotonic() + 30
                while time.monotonic() < end:  # (statuses may come first)
                    msg = await ws.receive(timeout=30)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                        break
                code = ws.close_code
            await send(other, "/synth/gain", 0.5)
            await send(other, "/synth/status")
            await wait_for_message(other, lambda m: m["address"] == "/synth/status" and "clients" not in pairs(m["args"]))
            return code

    assert run(go()) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


def test_a_flood_is_dropped_beyond_the_rate_and_told_once(session, extra_web):
    live, server, web = session
    web = extra_web(limits=WebLimits(messages_per_second=20.0, burst=20.0))
    router = server.router

    async def go():
        async with socket_session(web) as (_, ws):
            before, dropped = router.messages, router.throttled
            t0 = time.monotonic()
            for _ in range(300):
                await send(ws, "/synth/gain", 0.5)
            await send(ws, "/synth/status")  # a marker: it may itself be dropped, so wait on the figures
            wait_until(lambda: router.messages + router.throttled >= before + dropped + 300, what="the flood read")
            elapsed = time.monotonic() - t0
            applied = router.messages - before
            errors = []
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    m = json.loads((await ws.receive(timeout=0.2)).data)
                except asyncio.TimeoutError:
                    continue
                if m["address"] == "/synth/error":
                    errors.append(m["args"][1])
            return applied, elapsed, errors

    applied, elapsed, errors = run(go())
    assert 20 <= applied <= 20 + 20 * elapsed + 2
    assert errors == ["more than 20 messages a second: the excess is dropped"]
    assert web.rate_dropped >= 300 - applied


def test_a_hostile_client_that_vanishes_mid_stream_changes_nothing_else(session):
    live, server, web = session
    header = (f"GET /ws?token={web.token} HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              f"Origin: {origin_of(web)}\r\n\r\n").encode()

    def hostile(tail: bytes) -> None:
        s = socket.create_connection(("127.0.0.1", web.port), timeout=10)
        s.sendall(header)
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        s.sendall(tail)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST, no FIN
        s.close()

    async def go():
        async with socket_session(web) as (_, ws):
            await send(ws, "/synth/note/on", 64, 100)
            wait_until(lambda: 64 in live.engine.held_notes(), what="the good page's note")
            errors = server.router.errors
            hostile(b"\x81\xfe\xff")  # a text frame cut off inside its length
            hostile(b"\x81\xff" + b"\x7f" * 8)  # a frame that claims 2**63 bytes
            hostile(b"\x81\x85\x00\x00\x00\x00{\"a")  # 3 bytes of a 5-byte message, then gone
            hostile(b"\x00" * 64)  # garbage
            raw = socket.create_connection(("127.0.0.1", web.port), timeout=10)
            raw.sendall(b"\x16\x03\x01 not even HTTP\r\n\r\n")
            raw.close()
            wait_until(lambda: web.clients == 1, what="the hostile connections gone")
            # The good page still plays and still hears the engine.
            await send(ws, "/synth/note/off", 64)
            await wait_for_message(ws, lambda m: m["address"] == "/synth/status" and pairs(m["args"])["clients"] == 1)
            wait_until(lambda: 64 not in live.engine.held_notes(), what="the good page's note-off")
            return errors

    errors = run(go())
    assert server.router.errors == errors  # nothing the hostile clients sent reached the engine
    assert live.running and not live.failure


def test_stopping_closes_every_page_as_going_away_and_ends_the_thread(session):
    web = WebServer(session[1].router, port=0)
    web.start()

    async def read_to_the_end(ws):
        end = time.monotonic() + 30
        while time.monotonic() < end:  # (reading answers the server's close, as a browser does)
            msg = await ws.receive(timeout=30)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
        return ws.close_code

    async def go():
        async with socket_session(web) as (_, ws):
            await receive_json(ws)
            reader = asyncio.create_task(read_to_the_end(ws))
            await asyncio.get_running_loop().run_in_executor(None, web.stop)
            return await reader

    assert run(go()) == aiohttp.WSCloseCode.GOING_AWAY
    assert not web._thread.is_alive()
    with pytest.raises(OSError):  # the port is free again
        socket.create_connection(("127.0.0.1", web.port), timeout=2).close()


def test_a_port_in_use_is_named_before_anything_starts(session):
    from synth.errors import ParameterError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ParameterError, match=f"cannot serve the page on 127.0.0.1:{port}: .*--web PORT"):
            WebServer(session[1].router, port=port)


def test_on_every_address_the_page_is_given_by_this_machines_address_and_serves_the_allowed(session, extra_web):
    from synth.web.server import _network_address

    web = extra_web(host="0.0.0.0", allow=["127.0.0.1"])
    routed = _network_address("0.0.0.0") != "0.0.0.0"  # (a machine without a network keeps the wildcard)
    assert ("0.0.0.0" not in web.url) == routed and f":{web.port}/?token={web.token}" in web.url

    async def go():
        async with aiohttp.ClientSession() as s:
            page = await s.get(f"http://127.0.0.1:{web.port}/?token={web.token}")
            return page.status

    assert run(go()) == 200
