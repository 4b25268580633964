"""Start and stop a JACK dummy server for tests (``jackd -d dummy``: real-time paced, no sound card), with
:func:`synth.benchmarks.jack_dummy.dummy_jack_server`, the one home of starting one.

PortAudio lists devices only when it initialises, so the server is started first and PortAudio is
re-initialised; at the end PortAudio is terminated *before* the server stops (PortAudio's JACK host aborts
the process when it terminates after its server died). Each server gets its own name (``JACK_DEFAULT_SERVER``
points this process at it), so tests running beside another JACK server do not collide.
"""

from __future__ import annotations

import contextlib
import os

import pytest


@contextlib.contextmanager
def jack_server(*, rate: int = 48000, period: int = 256, reinit_portaudio: bool = True):
    """Run a dummy JACK server (:func:`synth.benchmarks.jack_dummy.dummy_jack_server`) with this process's
    ``JACK_DEFAULT_SERVER`` pointing at it; yields ``(name, process)``. Skips without jackd."""
    from synth.benchmarks.jack_dummy import dummy_jack_server
    from synth.errors import ExternalToolError

    previous = os.environ.get("JACK_DEFAULT_SERVER")
    sd = None
    try:
        with contextlib.ExitStack() as stack:
            try:
                server = stack.enter_context(dummy_jack_server(rate=rate, period=period, clear_stale_shm=True))
            except ExternalToolError as exc:
                pytest.skip(str(exc))
            os.environ["JACK_DEFAULT_SERVER"] = server.name
            try:
                if reinit_portaudio:
                    import sounddevice as sd

                    sd._terminate()
                    sd._initialize()
                yield server.name, server.process
            finally:
                if sd is not None:
                    sd._terminate()  # before the server goes
    finally:
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        if sd is not None:
            sd._initialize()


def jack_device():
    """The JACK output device as :func:`synth.host.output.resolve_device` returns it."""
    from synth.host.output import list_output_devices

    for d in list_output_devices():
        if "JACK" in d["hostapi"]:
            return d
    pytest.skip("PortAudio lists no JACK output device (libportaudio2 built without JACK?)")
