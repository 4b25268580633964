"""A page's worth of playing over the page's socket, without a browser: what ``melsynth serve --web`` sees when a
performer plays 16-voice chords and drags the XY pad, while the page listens to the status and the timbre
pictures (aiohttp's WebSocket client on a thread of its own)."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import urllib.parse

import numpy as np

__all__ = ["PagePlayer"]


class PagePlayer:
    """Play the engine behind ``url`` (the address serve prints, with its token) until the ``with`` block ends.

    Every ``chord_seconds`` the sounding chord is released and a new ``chord``-note one struck (random notes of
    ``note_range``); in between the XY pad moves along a slow Lissajous figure, ``xy_rate`` positions a second,
    over four of ``presets`` as its corners. Entering returns :attr:`figures`, a dict filled in as it plays:
    messages ``sent``, ``statuses`` and ``pictures`` received, ``errors`` (the first few reasons, then counted),
    the longest wait between two statuses (``status_gap_s``), and ``failure`` (what ended it early, or "").
    """

    def __init__(self, url: str, *, presets, note_range: tuple[int, int], chord: int = 16,
                 chord_seconds: float = 2.0, xy_rate: float = 30.0, seed: int = 0) -> None:
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.socket_url = f"{self.origin}/ws?token={urllib.parse.quote(token)}"
        self.presets = [str(p) for p in presets]
        self.note_range = note_range
        self.chord = int(chord)
        self.chord_seconds = float(chord_seconds)
        self.xy_rate = float(xy_rate)
        self.seed = seed
        self.figures: dict = {"sent": 0, "statuses": 0, "pictures": 0, "errors": 0, "error_reasons": [],
                              "status_gap_s": 0.0, "failure": ""}
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="page-player", daemon=True)

    def __enter__(self) -> dict:
        self._thread.start()
        if not self._connected.wait(30.0) and not self.figures["failure"]:
            self.figures["failure"] = "did not connect within 30 s"
        return self.figures

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30.0)

    async def _main(self) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(self.socket_url, origin=self.origin) as ws:
                    self._connected.set()
                    listener = asyncio.create_task(self._listen(ws))
                    try:
                        await self._play(ws)
                    finally:
                        listener.cancel()
                        await asyncio.wait([listener])
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            self.figures["failure"] = f"{type(exc).__name__}: {exc}"
        finally:
            self._connected.set()

    async def _send(self, ws, address: str, args: list) -> None:
        await ws.send_str(json.dumps({"address": address, "args": args}))
        self.figures["sent"] += 1

    async def _play(self, ws) -> None:
        rng = np.random.default_rng(self.seed)
        lo, hi = self.note_range
        corners = [self.presets[i % len(self.presets)] for i in range(4)]
        await self._send(ws, "/synth/corners", corners)
        held: list[int] = []
        start = time.monotonic()
        next_chord = start
        moves = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_chord:
                for note in held:
                    await self._send(ws, "/synth/note/off", [note])
                count = min(self.chord, hi - lo + 1)
                held = [int(n) for n in rng.choice(np.arange(lo, hi + 1), size=count, replace=False)]
                for note in held:
                    await self._send(ws, "/synth/note/on", [note, int(rng.integers(60, 120))])
                next_chord += self.chord_seconds
            t = now - start
            await self._send(ws, "/synth/xy", [0.5 + 0.45 * math.sin(2 * math.pi * t / 7.0),
                                              0.5 + 0.45 * math.sin(2 * math.pi * t / 5.0)])
            moves += 1
            await asyncio.sleep(max(0.0, start + moves / self.xy_rate - time.monotonic()))
        for note in held:
            await self._send(ws, "/synth/note/off", [note])

    async def _listen(self, ws) -> None:
        import aiohttp

        last = time.monotonic()
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            address = json.loads(msg.data).get("address")
            if address == "/synth/status":
                now = time.monotonic()
                if self.figures["statuses"]:
                    self.figures["status_gap_s"] = max(self.figures["status_gap_s"], now - last)
                last = now
                self.figures["statuses"] += 1
            elif address == "/web/timbre":
                self.figures["pictures"] += 1
            elif address == "/synth/error":
                self.figures["errors"] += 1
                if len(self.figures["error_reasons"]) < 5:
                    self.figures["error_reasons"].append(json.loads(msg.data)["args"])
