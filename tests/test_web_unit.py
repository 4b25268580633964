"""The page's server logic without a browser or a socket: frames, access rules, the token bucket, the timbre
picture, a connection's outbox, and keeping a preset."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil

import numpy as np
import pytest
from engine_fixtures import synthetic_bundle, synthetic_bundle_path

from synth.control.status import STATUS_KEYS, Status
from synth.errors import ParameterError
from synth.web.access import Access, allowed_peers, new_token, split_host
from synth.web.limits import WebLimits
from synth.web.messages import FrameError, message_text, parse_frame, status_text


# ---------------------------------------------------------------------------------------------- frames
def test_a_frame_is_a_score_entry_without_its_time():
    m = parse_frame('{"address": "/synth/note/on", "args": [60, 100]}')
    assert (m.address, m.args) == ("/synth/note/on", (60, 100))
    assert parse_frame('{"address": "/synth/panic"}').args == ()
    assert parse_frame('{"address": "/synth/preset", "args": ["dark"]}').args == ("dark",)


@pytest.mark.parametrize("text, reason", [
    ("{bad", "malformed JSON"),
    ("", "malformed JSON"),
    ('{"address": "/synth/gain", "args": [NaN]}', "NaN is not a number JSON allows"),
    ('{"address": "/synth/gain", "args": [Infinity]}', "Infinity is not a number JSON allows"),
    ("[" * 100000 + "]" * 100000, "malformed JSON"),
    ('["/synth/note/on", 60]', 'expected a JSON object .*, got a list'),
    ("42", "expected a JSON object"),
    ('{"args": [60]}', '"address" must be a non-empty string, got null'),
    ('{"address": 7}', '"address" must be a non-empty string, got a number'),
    ('{"address": ""}', '"address" must be a non-empty string'),
    ('{"address": "/synth/note/on", "args": 60}', '"args" must be a list, got a number'),
    ('{"address": "/synth/note/on", "args": [[60]]}', "args\\[0\\] must be a number or a string, got a list"),
    ('{"address": "/synth/note/on", "args": [60, true]}', "args\\[1\\] must be a number or a string, got true"),
    ('{"address": "/synth/note/on", "args": [null]}', "args\\[0\\] must be a number or a string, got null"),
    ('{"address": "/synth/note/on", "args": [1' + "0" * 400 + "]}", "args\\[0\\] is too large a number"),
    ('{"address": "/synth/note/on", "args": [60], "time": 1.5}', 'unknown key \'time\'.*leave "time" out'),
    ('{"address": "/synth/note/on", "args": [60], "x": 1}', "unknown key 'x'"),
    ('{"address": "' + "/a" * 200 + '"}', "address longer than 200 characters"),
])
def test_a_frame_that_is_not_a_message_is_refused_with_the_reason(text, reason):
    with pytest.raises(FrameError, match=reason):
        parse_frame(text)


def test_a_refused_frame_keeps_its_address_when_it_had_one():
    with pytest.raises(FrameError) as info:
        parse_frame('{"address": "/synth/xy", "args": {"x": 1}}')
    assert info.value.address == "/synth/xy"


def test_outgoing_messages_are_strict_json_whatever_a_figure_is():
    text = message_text("/synth/status", ["latency_ms", float("nan"), "decode_ms", float("inf"), "voices", 2])
    assert json.loads(text) == {"address": "/synth/status", "args": ["latency_ms", 0.0, "decode_ms", 0.0, "voices", 2]}
    status = Status(voices=3, underflows=0, latency_ms=float("nan"), decode_ms=1.5, method="griffinlim",
                    provider="CPUExecutionProvider", preset="dark", messages=1, errors=0, dropped=0,
                    decode_errors=0, notes=2, underflows_startup=0, underflows_idle=0, underflows_playing=0,
                    buffer_ms=16.0, throttled=0)
    args = json.loads(status_text(status, {"output_peak": 0.5}))["args"]
    assert args[:8] == ["voices", 3, "underflows", 0, "latency_ms", 0.0, "decode_ms", 1.5]
    assert args[-2:] == ["output_peak", 0.5] and len(args) == 2 * len(STATUS_KEYS) + 2


# ---------------------------------------------------------------------------------------------- access
def test_tokens_are_fresh_and_url_safe():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 20 and all(c.isalnum() or c in "-_" for c in a)


@pytest.mark.parametrize("header, parts", [
    ("127.0.0.1:9138", ("127.0.0.1", 9138)), ("localhost", ("localhost", 80)), ("[::1]:9138", ("::1", 9138)),
    ("LOCALHOST:1", ("localhost", 1)), ("[::1", None), ("a:b", None), ("::1:80", None), (":80", None),
    ("[::1]x", None), ("host:123456", None),
])
def test_host_headers_are_read_or_refused(header, parts):
    assert split_host(header) == parts


ACCESS = Access(token="secret-token", port=9138)
GOOD = {"peer": "127.0.0.1", "host": "127.0.0.1:9138", "origin": "http://127.0.0.1:9138", "token": "secret-token"}


def test_the_page_and_its_socket_open_with_the_token_and_the_pages_origin():
    assert ACCESS.refuse_socket(**GOOD) == ""
    assert ACCESS.refuse_page(peer="127.0.0.1", host="localhost:9138", token="secret-token") == ""
    assert ACCESS.refuse_socket(**{**GOOD, "host": "[::1]:9138", "origin": "http://[::1]:9138"}) == ""


@pytest.mark.parametrize("change, reason", [
    ({"token": None}, "no token"),
    ({"token": "secret-tokeN"}, "wrong token"),
    ({"token": "sécret"}, "wrong token"),
    ({"origin": None}, "no Origin header"),
    ({"origin": "http://evil.example"}, "is not this page's"),
    ({"origin": "http://127.0.0.1:9139"}, "is not this page's"),
    ({"origin": "null"}, "is not this page's"),
    ({"origin": "https://127.0.0.1:9138"}, "is not this page's"),
    # DNS rebinding: the attacker's own name, pointed at 127.0.0.1, with a matching Origin.
    ({"host": "evil.example:9138", "origin": "http://evil.example:9138"}, "open the page by IP address"),
    ({"host": "127.0.0.1:80", "origin": "http://127.0.0.1:80"}, "names another port"),
    ({"host": None}, "bad Host header"),
])
def test_the_socket_is_refused_without_the_token_or_from_another_origin(change, reason):
    assert reason in ACCESS.refuse_socket(**{**GOOD, **change})


def test_only_the_allowed_peers_may_connect_where_a_list_is_given():
    access = Access(token="t", port=9138, peers=allowed_peers("0.0.0.0", ["192.168.1.20"]))
    good = {"host": "192.168.1.10:9138", "token": "t"}
    assert access.refuse_page(peer="192.168.1.20", **good) == ""
    assert access.refuse_page(peer="::ffff:192.168.1.20", **good) == ""  # an IPv4 peer of an IPv6 socket
    assert "not among the addresses --allow names" in access.refuse_page(peer="192.168.1.21", **good)
    assert "not among" in access.refuse_page(peer="127.0.0.1", **good)
    assert "not among" in access.refuse_page(peer=None, **good)


def test_a_non_loopback_address_needs_allow_as_for_osc():
    with pytest.raises(ParameterError, match="serving the page on 0.0.0.0 would let any machine .* --allow"):
        allowed_peers("0.0.0.0", [])
    with pytest.raises(ParameterError, match="--allow 'tablet' is not an IP address"):
        allowed_peers("0.0.0.0", ["tablet"])
    assert allowed_peers("127.0.0.1", []) == frozenset()
    assert allowed_peers("::1", ["::ffff:10.0.0.2"]) == frozenset({"10.0.0.2"})


# ---------------------------------------------------------------------------------------------- limits
@pytest.mark.parametrize("field, value", [("max_message_bytes", 0), ("max_clients", 1.5), ("outbox", True),
                                           ("messages_per_second", 0), ("burst", float("inf")),
                                           ("status_hz", "10")])
def test_limits_are_checked(field, value):
    with pytest.raises(ParameterError, match=f"web limit {field} must be a positive"):
        WebLimits(**{field: value})


# ---------------------------------------------------------------------------------------------- picture
def test_the_picture_is_the_whole_note_averaged_down_and_scaled_to_bytes():
    from synth.engine.timbre import make_timbre
    from synth.web.picture import timbre_picture

    params = synthetic_bundle().params
    n_mels, frames = params.n_mels, params.frames
    # A ramp over the bands (low quiet, high loud) that is silent after the note-off.
    mel = np.tile(np.linspace(0.0, 1.0, n_mels, dtype=np.float32)[:, None], (1, frames))
    hold = params.frame_of(3.0)
    mel[:, hold:] = 0.0
    picture = timbre_picture(make_timbre(mel, params=params), frames=frames)
    assert picture.n_mels <= 128 and picture.frames <= 128
    pixels = np.frombuffer(picture.pixels, dtype=np.uint8).reshape(picture.n_mels, picture.frames)
    start = pixels[:, : picture.frames // 2]
    assert start[0].max() <= 2 and start[-1].min() >= 250  # the lowest band first, 0..255
    assert (np.diff(start[:, 0].astype(int)) >= 0).all()
    assert pixels[:, -2:].max() <= 2  # silence at the end of the release
    message = json.loads(picture.text())
    assert message["address"] == "/web/timbre" and message["args"][:2] == [picture.n_mels, picture.frames]
    assert base64.b64decode(message["args"][2]) == picture.pixels


# ---------------------------------------------------------------------------------------------- outbox
class _Socket:
    """A stand-in WebSocket whose sends take ``delay`` seconds (None: never finish)."""

    def __init__(self, delay: float | None = 0.0) -> None:
        self.delay = delay
        self.sent: list[str] = []
        self.closed = False

    async def send_str(self, text: str) -> None:
        if self.delay is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay)
        self.sent.append(text)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> None:
        self.closed = True


class _Transport:
    aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_a_reading_client_gets_every_message_in_order():
    from synth.web.clients import Client

    async def go():
        ws = _Socket()
        client = Client(ws, transport=_Transport(), limits=WebLimits(outbox=4))
        for i in range(20):
            assert client.offer(str(i))
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        await client.close()
        return ws, client

    ws, client = asyncio.run(go())
    assert ws.sent == [str(i) for i in range(20)] and client.reason == "closed" and ws.closed


def test_a_client_that_does_not_read_is_cut_off_when_its_outbox_fills():
    from synth.web.clients import Client

    async def go():
        transport = _Transport()
        client = Client(_Socket(None), transport=transport, limits=WebLimits(outbox=3, send_timeout_s=60.0))
        offered = [client.offer("x") for _ in range(3)]
        await asyncio.sleep(0.01)  # the sender takes one and waits on it for ever
        offered += [client.offer("x") for _ in range(3)]
        return client, transport, offered

    client, transport, offered = asyncio.run(go())
    # One taken by the stuck send, three waiting, the fifth finds the outbox full.
    assert offered == [True, True, True, True, False, False]
    assert client.cut_off and "not reading" in client.reason and transport.aborted


def test_a_send_that_waits_too_long_cuts_the_client_off():
    from synth.web.clients import Client

    async def go():
        transport = _Transport()
        client = Client(_Socket(None), transport=transport, limits=WebLimits(send_timeout_s=0.05))
        client.offer("x")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if client.cut_off:
                break
        return client, transport

    client, transport = asyncio.run(go())
    assert client.cut_off and "a send waited 0.05 s" in client.reason and transport.aborted


# ---------------------------------------------------------------------------------------------- keeping
class _Engine:
    def __init__(self, bundle) -> None:
        from synth.control.spec import ControlSpec

        self.control_spec = ControlSpec.for_bundle(bundle)
        self.requested_latent = np.full(bundle.latent_shape, 0.25, dtype=np.float32)

        class _Controls:
            preset = "dark"

        self.controls = _Controls()


def test_keeping_a_sound_writes_a_preset_of_the_bundle_and_never_over_one(tmp_path):
    from synth.bundle import load_bundle
    from synth.web.keep import PresetKeeper

    folder = shutil.copytree(synthetic_bundle_path(), tmp_path / "bundle")
    bundle = load_bundle(folder)
    keeper = PresetKeeper(bundle, _Engine(bundle))
    path = keeper.keep("my_pad")
    assert path == folder / "presets" / "my_pad.json"
    kept = load_bundle(folder).presets["my_pad"]
    np.testing.assert_array_equal(kept.latent, np.full(bundle.latent_shape, 0.25, dtype=np.float32))
    with pytest.raises(ParameterError, match="my_pad.json already exists"):
        keeper.keep("my_pad")
    with pytest.raises(ParameterError, match="preset 'dark' exists"):
        keeper.keep("dark")
    for bad in ("../evil", ".hidden", "a/b", "", 7):
        with pytest.raises(ParameterError, match="preset name"):
            keeper.keep(bad)
    assert sorted(p.name for p in (folder / "presets").iterdir()) == sorted(
        [f"{n}.json" for n in (*bundle.presets, "my_pad")])
