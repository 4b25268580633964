"""A JACK dummy server (``jackd -d dummy``: real-time paced, no sound card) for benchmarks and tests.

One home for starting and stopping it: the benchmark suites use :func:`dummy_jack_server` directly, the
tests through ``tests/jack_fixtures.py`` (which adds PortAudio's re-initialisation and turns
:class:`~synth.errors.ExternalToolError` into a skip). jackd's own log goes to a file, not a pipe (a pipe
nobody reads fills up on a long run and blocks the server), and :meth:`JackServer.late_clients` reads from
it which client each xrun was blamed on: a client that had not finished its cycle when the next began.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from synth.errors import ExternalToolError

__all__ = ["JackServer", "dummy_jack_server"]

_LATE = re.compile(r"JackEngine::XRun: client = (.+?) was not finished")


@dataclasses.dataclass(frozen=True)
class JackServer:
    """A running dummy server: its ``name`` (set ``JACK_DEFAULT_SERVER`` to it for clients), the ``process``,
    and the ``log`` file jackd writes."""

    name: str
    process: subprocess.Popen
    log: Path

    def late_clients(self) -> collections.Counter:
        """How many xruns jackd blamed on each client so far (``{"PortAudio": 2, ...}``)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return collections.Counter()
        return collections.Counter(m.group(1) for m in _LATE.finditer(text))


def _clear_stale_jack_shm() -> None:
    """Remove JACK's shared-memory files when no jackd runs at all.

    A server killed with SIGKILL (as the fault tests do) leaves /dev/shm/jack* behind, and enough of them make
    the next jackd fail with "Failed to open server". With no jackd running they belong to no one, so removing
    them cannot disturb anybody's JACK session.
    """
    if subprocess.run(["pgrep", "-x", "jackd"], capture_output=True).returncode == 0:
        return
    shm = Path("/dev/shm")
    for entry in shm.glob("jack*") if shm.is_dir() else ():
        if entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()


@contextlib.contextmanager
def dummy_jack_server(*, rate: int = 48000, period: int = 256, timeout: float = 30.0, name: str | None = None,
                      clear_stale_shm: bool = False):
    """Run ``jackd -n NAME -d dummy -r RATE -p PERIOD`` under a name of its own (or ``name``); yields a
    :class:`JackServer` and stops the server afterwards.

    A process that opens JACK clients itself should use one ``name`` for all its servers: libjack sets up
    its shared memory for the first server name a process uses, and a client for a server of another name
    then fails to open ("server_error"; the benchmark's meter did after the soak's servers).

    ``clear_stale_shm``: first remove JACK's shared-memory files if no jackd runs at all (what servers killed
    with SIGKILL leave behind, as the fault tests do). Not for a process that has used JACK before: it keeps
    the files it mapped, and clients it opens afterwards cannot reach the new server.

    Raises :class:`~synth.errors.ExternalToolError` when jackd (Debian's jackd2) is not installed or does not
    come up within ``timeout`` seconds (a loaded machine starts it slowly).
    """
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        raise ExternalToolError("jackd (Debian jackd2) is not installed")
    if clear_stale_shm:
        _clear_stale_jack_shm()
    # Short: longer server names (about 22+ characters here) make jackd fail to come up.
    name = name or f"mst{os.getpid() % 100000}{time.monotonic_ns() % 1000}"
    with tempfile.TemporaryDirectory(prefix="melsynth-jackd-") as tmp:
        log = Path(tmp) / "jackd.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                ["jackd", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
                stdout=sink, stderr=subprocess.STDOUT, env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"),
            )
        try:
            # JACK_NO_START_SERVER: the probe must not autostart a server of its own while ours is starting.
            probe_env = dict(os.environ, JACK_NO_START_SERVER="1")
            deadline = time.monotonic() + timeout
            ready = False
            while not ready and time.monotonic() < deadline and proc.poll() is None:
                ready = subprocess.run(["jack_lsp", "-s", name], capture_output=True, env=probe_env).returncode == 0
                if not ready:
                    time.sleep(0.2)
            if not ready:
                said = log.read_text(errors="replace")[-300:].strip()
                raise ExternalToolError(f"jackd did not start within {timeout:g} s: {said or 'no output'}")
            yield JackServer(name=name, process=proc, log=log)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
