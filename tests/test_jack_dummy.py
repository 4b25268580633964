"""The JACK dummy server the benchmarks and tests share: it comes up under its own name, says which client
each xrun was blamed on, and is gone afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from synth.benchmarks.jack_dummy import dummy_jack_server

pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd (Debian jackd2) is not installed")

# A client that overruns two of its cycles by ten periods. In a process of its own: libjack keeps per-process
# state that an earlier test's dead servers can leave stale, and then opening a client fails.
STALLING_CLIENT = """
import sys, time, jack
client = jack.Client("stalls", servername=sys.argv[1], no_start_server=True)
cycles = []
@client.set_process_callback
def process(frames):
    cycles.append(frames)
    if len(cycles) in (50, 100):
        time.sleep(0.05)
client.activate()
time.sleep(3)
client.deactivate()
client.close()
"""


def test_an_xrun_is_blamed_on_the_client_that_overran_its_cycle():
    pytest.importorskip("jack")
    with dummy_jack_server(rate=48000, period=256) as server:
        client = subprocess.run([sys.executable, "-c", STALLING_CLIENT, server.name], capture_output=True, text=True,
                                timeout=60)
        assert client.returncode == 0, client.stderr[-500:]
        deadline = time.monotonic() + 10
        while not server.late_clients()["stalls"] and time.monotonic() < deadline:
            time.sleep(0.1)
        late = server.late_clients()
        running = server.process.poll() is None
    assert late["stalls"] >= 1 and set(late) == {"stalls"}
    assert running and server.process.poll() is not None  # running inside, stopped after
    assert not os.path.exists(server.log)
