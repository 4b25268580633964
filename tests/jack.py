"""Start and stop a JACK dummy server for tests (``jackd -d dummy``: real-time paced, no sound card).

PortAudio lists devices only when it initialises, so the server is started first and PortAudio is
re-initialised; at the end PortAudio is terminated *before* the server stops (PortAudio's JACK host aborts
the process when it terminates after its server died). Each server gets its own name (``JACK_DEFAULT_SERVER``
points this process at it), so tests running beside another JACK server do not collide.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def _clear_stale_jack_shm() -> None:
    """Remove JACK's shared-memory files when no jackd runs at all.

    A server killed with SIGKILL (as the fault tests do) leaves /dev/shm/jack* behind, and enough of them
    make the next jackd fail with "Failed to open server" (seen here). With no jackd running they belong to
    no one, so removing them cannot disturb anybody's JACK session.
    """
    if subprocess.run(["pgrep", "-x", "jackd"], capture_output=True).returncode == 0:
        return
    shm = Path("/dev/shm")
    for entry in shm.glob("jack*") if shm.is_dir() else ():
        if entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()


@contextlib.contextmanager
def jack_server(*, rate: int = 48000, period: int = 256, reinit_portaudio: bool = True):
    """Run ``jackd -n NAME -d dummy -r RATE -p PERIOD``; yields ``(name, process)``. Skips without jackd."""
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.skip("jackd (Debian jackd2) is not installed")
    _clear_stale_jack_shm()
    # Short: longer server names (about 22+ characters here) make jackd fail to come up.
    name = f"mst{os.getpid() % 100000}{time.monotonic_ns() % 1000}"
    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    proc = subprocess.Popen(
        ["jackd", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    probe_env = dict(os.environ, JACK_NO_START_SERVER="1")
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    sd = None
    try:
        deadline = time.monotonic() + 30  # a loaded machine starts jackd slowly
        ready = False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            # JACK_NO_START_SERVER: a client must not autostart its own server while ours is starting.
            ready = subprocess.run(["jack_lsp", "-s", name], capture_output=True, env=probe_env).returncode == 0
            if not ready:
                time.sleep(0.2)
        if not ready:
            output = ""
            if proc.poll() is not None and proc.stdout is not None:
                output = proc.stdout.read().decode(errors="replace")[-300:]
            pytest.skip(f"jackd did not start: {output}")
        if reinit_portaudio:
            import sounddevice as sd

            sd._terminate()
            sd._initialize()
        yield name, proc
    finally:
        if sd is not None:
            sd._terminate()  # before the server goes
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        if sd is not None:
            sd._initialize()


def jack_device():
    """The JACK output device as :func:`synth.engine.output.resolve_device` returns it."""
    from synth.engine.output import list_output_devices

    for d in list_output_devices():
        if "JACK" in d["hostapi"]:
            return d
    pytest.skip("PortAudio lists no JACK output device (libportaudio2 built without JACK?)")
