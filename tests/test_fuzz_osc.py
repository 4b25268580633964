"""OSC fuzzing over real UDP on loopback: 10,000 malformed packets at a running engine (null output).

Afterwards the engine must be alive, its state must be what the few valid messages sent in between made it,
and a valid note must still sound at its pitch. The 100,000-packet version is bench/bench_fuzz.py.
"""

from __future__ import annotations

import collections
import time

import numpy as np
import soundfile as sf
from engine_fixtures import (
    OscClient,
    cents,
    f0_of,
    live_session,
    midi_hz,
    synthetic_bundle,
    synthetic_bundle_path,
)
from reliability_fixtures import serve_process, status_of

from synth.benchmarks.fuzz import KINDS, UdpFlood, fuzz_packets, negative_size_bundle, osc_message
from synth.control.rate import SenderLimits

RATE = 48000
N_PACKETS = 10_000

# Valid messages spread through the fuzz; the last value of each kind is the state the engine must end in.
VALID = [
    ("/synth/gain", "f", [0.9]), ("/synth/method", "s", ["griffinlim"]), ("/synth/preset", "s", ["hollow"]),
    ("/synth/note/on", "ii", [55, 90]), ("/synth/note/off", "i", [55]), ("/synth/gain", "f", [0.4]),
    ("/synth/preset", "s", ["dark"]), ("/synth/method", "s", ["sinusoidal"]),
]


def test_ten_thousand_bad_packets_change_nothing_and_a_note_still_sounds(tmp_path):
    bundle = synthetic_bundle()
    record = tmp_path / "fuzz.wav"
    kinds: collections.Counter = collections.Counter()
    # Every packet read: this tests what lies behind the rate limits (tests/test_osc_flood.py tests those).
    with live_session(record=record, max_voices=16, limits=SenderLimits.unlimited()) as (live, server):
        flood = UdpFlood(("127.0.0.1", server.port), received=lambda: server.packets)
        every = N_PACKETS // len(VALID)
        valid = 0
        for i, (kind, data) in enumerate(fuzz_packets(N_PACKETS, seed=7, presets=tuple(bundle.presets),
                                                      latent_size=bundle.latent_size)):
            if i % every == every // 2 and valid < len(VALID):
                flood.send(osc_message(*VALID[valid]))
                valid += 1
            flood.send(data)
            kinds[kind] += 1
        assert flood.wait(timeout=30), (server.packets, flood.sent)
        flood.close()
        assert valid == len(VALID)
        assert set(kinds) == set(KINDS)
        assert live.running and live.failure == ""
        counters = server.counters()
        # Not one fuzz packet passed as a control message, and every one was answered as an error.
        assert counters["messages"] == len(VALID)
        assert counters["errors"] >= N_PACKETS
        assert counters["packets"] == N_PACKETS + len(VALID)

        client = OscClient(server.port)
        time.sleep(0.5)  # error replies are rate limited (200/s): let the budget the flood spent refill
        # A bundle far in the future would sit in memory unplayed: refused with a reason.
        client.send_bundle(time.time() + 120, [("/synth/gain", 0.1)])
        address, args = client.receive(timeout=5.0)
        assert address == "/synth/error" and args[0] == "/synth/gain" and "in the future" in args[1], args
        status = status_of(client)
        assert (status["preset"], status["method"]) == ("dark", "sinusoidal")
        assert abs(live.engine.gain - 0.4) < 1e-6
        assert status["notes"] == 1 and status["messages"] == len(VALID) + 1
        time.sleep(0.3)
        start = live.sample_now()
        client.send("/synth/note/on", 64, 100)
        time.sleep(0.8)
        client.send("/synth/note/off", 64)
        time.sleep(0.2)
        client.close()
        stats = live.stats()
    print(f"fuzz: {counters}, underflows during the flood {stats.underflows}, kinds {dict(kinds)}")
    y, rate = sf.read(record, dtype="float32")
    assert rate == RATE and np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    loud = np.flatnonzero(np.abs(y[start:]) > 1e-3)
    assert loud.size, "the note after the fuzz is silent"
    first = start + int(loud[0])
    seg = y[first + RATE // 5 : first + RATE // 2]
    assert abs(cents(f0_of(seg, rate=RATE), midi_hz(64))) < 10


def test_a_bundle_element_with_a_negative_size_does_not_hang_the_server():
    """python-osc 1.10.2 loops forever on a bundle element of size -4 (it steps back onto the size field).

    The server must refuse such a packet (it checks bundle framing before handing the datagram to
    python-osc) and keep answering. Runs against a `melsynth serve` subprocess so a hang cannot take the
    test process with it.
    """
    with serve_process("--bundle", str(synthetic_bundle_path()), "--output", "null", "--port", "0") as (proc, port, _):
        client = OscClient(port)
        client.send_raw(negative_size_bundle())
        try:
            reply = client.receive(timeout=5.0)
            status = status_of(client, timeout=2.0)
        except (TimeoutError, OSError):
            reply = status = None
            proc.kill()  # its receive thread spins and holds the GIL: SIGTERM would wait for nothing
        client.close()
    assert reply is not None and status is not None, "the OSC receive thread hangs on a negative element size"
    assert reply == ("/synth/error", ["", "malformed packet: bad bundle element size -4"]), reply
    assert status["errors"] == 1 and status["messages"] == 1
