"""``melsynth serve --web`` end to end: the address it prints, the page and its socket playing the engine
beside OSC, the take log recording the page, an orderly stop, and the flags refused before anything starts."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket

import aiohttp
import pytest
from engine_fixtures import OscClient, synthetic_bundle_path
from reliability_fixtures import serve_process
from web_fixtures import pairs


def test_serve_prints_the_pages_address_and_the_page_plays_beside_osc(tmp_path):
    log = tmp_path / "take.json"
    with serve_process("--bundle", str(synthetic_bundle_path()), "--port", "0", "--output", "null", "--voices", "4",
                       "--log-osc", str(log), "--web", "0") as (proc, osc_port, lines):
        line = proc.stdout.readline()
        m = re.fullmatch(r"melsynth: play it in a browser: (http://127\.0\.0\.1:(\d+)/\?token=([\w-]{20,}))\n", line)
        assert m, (lines, line)
        url, port, token = m.group(1), int(m.group(2)), m.group(3)

        async def play():
            async with aiohttp.ClientSession() as s:
                page = await s.get(url)
                assert page.status == 200 and "melsynth" in await page.text()
                async with s.ws_connect(f"http://127.0.0.1:{port}/ws?token={token}",
                                        origin=f"http://127.0.0.1:{port}") as ws:
                    async def status_until(condition):
                        while True:
                            m = json.loads((await ws.receive(timeout=30)).data)
                            if m["address"] == "/synth/status" and condition(pairs(m["args"])):
                                return

                    await ws.send_str(json.dumps({"address": "/synth/note/on", "args": [60, 100]}))
                    await status_until(lambda s: s["voices"] >= 1)
                    OscClient(osc_port).send("/synth/preset", "dark")  # OSC beside the page: one router
                    await status_until(lambda s: s["preset"] == "dark")
                    await ws.send_str(json.dumps({"address": "/synth/note/off", "args": [60]}))
                    await ws.send_str(json.dumps({"address": "/synth/note/on", "args": [1000]}))
                    while True:
                        m = json.loads((await ws.receive(timeout=30)).data)
                        if m["address"] == "/synth/error":
                            return m["args"]

        error = asyncio.run(play())
        assert error == ["/synth/note/on", "note 1000 out of range 36..84 (base pitch 60 +- 24)"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "melsynth: the page: 1 connections, 3 messages, 0 refused, 0 over the rate, 0 cut off" in out, out
    # One router counts both: the page's two notes and OSC's preset applied, the page's bad note refused.
    assert "3 messages, 1 errors, 0 dropped" in out, out
    played = [(e["address"], e["args"]) for e in json.loads(log.read_text())]
    assert played == [("/synth/note/on", [60, 100]), ("/synth/preset", ["dark"]), ("/synth/note/off", [60])]


@pytest.mark.parametrize("flags, message", [
    (["--web-write"], "--web-write needs --web"),
    (["--web-host", "127.0.0.1"], "--web-host needs --web"),
    (["--web", "70000"], "--web port must be 0..65535, got 70000"),
    (["--web", "0", "--web-host", "0.0.0.0"], "serving the page on 0.0.0.0 would let any machine .* --allow ADDR .*"),
    (["--web", "0", "--web-host", "0.0.0.0", "--allow", "tablet"], "--allow 'tablet' is not an IP address"),
])
def test_the_pages_flags_are_checked_before_anything_starts(tmp_path, capsys, flags, message):
    from synth.cli import main

    take = tmp_path / "take.wav"
    code = main(["serve", "--bundle", str(synthetic_bundle_path()), "--port", "0", "--output", "null",
                 "--record", str(take), *flags])
    assert code == 1
    assert re.fullmatch(f"melsynth: error: {message}\n", capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_a_port_in_use_is_named_and_nothing_is_left_behind(tmp_path, capsys):
    from synth.cli import main

    take, log = tmp_path / "take.wav", tmp_path / "take.json"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = main(["serve", "--bundle", str(synthetic_bundle_path()), "--port", "0", "--output", "null",
                     "--record", str(take), "--log-osc", str(log), "--web", str(port)])
    assert code == 1
    err = capsys.readouterr().err
    assert re.fullmatch(f"melsynth: error: cannot serve the page on 127.0.0.1:{port}: .*--web PORT\\)\n", err), err
    assert list(tmp_path.iterdir()) == []
