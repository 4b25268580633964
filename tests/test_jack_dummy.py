"""The JACK dummy server the benchmarks and tests share: it comes up under its own name, says which client
each xrun was blamed on, and is gone afterwards."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from synth.benchmarks.jack_dummy import dummy_jack_server

pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd (Debian jackd2) is not installed")


def test_an_xrun_is_blamed_on_the_client_that_overran_its_cycle(monkeypatch):
    jack = pytest.importorskip("jack")
    with dummy_jack_server(rate=48000, period=256) as server:
        monkeypatch.setenv("JACK_DEFAULT_SERVER", server.name)
        monkeypatch.setenv("JACK_NO_START_SERVER", "1")
        client = jack.Client("stalls", servername=server.name)
        cycles = []

        @client.set_process_callback
        def process(frames):
            cycles.append(frames)
            if len(cycles) in (50, 100):
                time.sleep(0.05)  # ten periods of 5.3 ms in one cycle

        client.activate()
        deadline = time.monotonic() + 20
        while not server.late_clients()["stalls"] and time.monotonic() < deadline:
            time.sleep(0.1)
        client.deactivate()
        client.close()
        late = server.late_clients()
        process_alive = server.process.poll() is None
    assert late["stalls"] >= 1 and set(late) == {"stalls"}
    assert process_alive and server.process.poll() is not None  # running inside, stopped after
    assert not os.path.exists(server.log)
