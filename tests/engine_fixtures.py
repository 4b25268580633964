"""Shared helpers for the engine, voice, OSC, audio-out and Pd tests.

- :class:`ToneInverter`: a tiny inverter obeying the streaming protocol (a sine at the loudest band's
  frequency times the pitch ratio, level from that band), for voice logic tests that must not depend on the
  real inverters' details.
- :func:`synthetic_bundle_path`: one real synthetic bundle per test process.
- :func:`f0_of`: fundamental of a harmonic signal (Hz), by the harmonic sum spectrum, for pitch checks.
- :class:`OscClient`: a UDP socket that sends python-osc messages/bundles and reads replies.
- :func:`live_session`: a LiveEngine (null output, recording) + OscServer on a free loopback port.
"""

from __future__ import annotations

import functools
import math
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from synth.benchmarks.pitch import f0_of  # noqa: F401  (re-exported for the engine tests)
from synth.osc.packets import encode_bundle, encode_message
from synth.spectrogram import SpectrogramParams, mel_band_frequencies


class ToneInverter:
    """A protocol-conforming inverter: one sine per frame, phase carried across frames."""

    def __init__(self, method: str = "tone", *, params: SpectrogramParams, output_rate: int, latency: int = 0,
                 tail: int = 1) -> None:
        self.output_rate = output_rate
        self.tail_frames = tail
        self.latency_samples = latency
        self._freqs = mel_band_frequencies(params=params)
        self._params = params
        self.frames = 0
        self.reset()

    def reset(self) -> None:
        self._phase = 0.0
        self.frames = 0

    def process_frame(self, mel_frame, *, pitch_ratio: float, out, gain: float = 1.0) -> None:
        k = int(np.argmax(mel_frame))
        level = float(mel_frame[k])
        amp = 0.0 if level <= 0.0 else gain * 10 ** ((level - 1.0) * 130.0 / 40.0)  # unit -> dB/2 -> amplitude
        w = 2 * math.pi * self._freqs[k] * pitch_ratio / self.output_rate
        n = np.arange(len(out))
        out[:] = (amp * np.sin(self._phase + w * n)).astype(np.float32)
        self._phase = (self._phase + w * len(out)) % (2 * math.pi)
        self.frames += 1


def tone_factory(method, *, params, output_rate):
    return ToneInverter(method, params=params, output_rate=output_rate)


@functools.lru_cache(maxsize=1)
def synthetic_bundle_path() -> Path:
    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle

    root = Path(tempfile.mkdtemp(prefix="melsynth-engine-tests-"))
    return make_synthetic_bundle(root / "bundle")


@functools.lru_cache(maxsize=1)
def synthetic_bundle():
    from synth.bundle import load_bundle

    return load_bundle(synthetic_bundle_path())




def cents(f: float, ref: float) -> float:
    return 1200.0 * math.log2(f / ref)


def midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def highband_peak(y: np.ndarray, *, rate: int, cutoff: float) -> np.ndarray:
    """|y| after a steep high-pass at ``cutoff`` (FFT brickwall, per 1024-sample hop with overlap)."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(10, cutoff, btype="highpass", fs=rate, output="sos")
    return np.abs(sosfiltfilt(sos, np.asarray(y, dtype=np.float64)))


class OscClient:
    """Send OSC over UDP to ``port`` from ``source`` and read replies."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", source: str = "127.0.0.1") -> None:
        self.target = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(2.0)

    def send(self, address: str, *args) -> None:
        self.sock.sendto(encode_message(address, args), self.target)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def send_bundle(self, at_time: float, messages: list[tuple]) -> None:
        self.sock.sendto(encode_bundle(at_time, messages), self.target)

    def receive(self, timeout: float = 2.0):
        """The next reply as ``(address, [args])`` (raises TimeoutError)."""
        from pythonosc.osc_message import OscMessage

        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65536)
        m = OscMessage(data)
        return m.address, list(m.params)

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.receive(timeout=0.05))
            except (TimeoutError, OSError):
                return out

    def close(self) -> None:
        self.sock.close()


def live_session(*, max_voices: int = 4, **kw):
    """A running LiveEngine + OscServer on the synthetic bundle (4 voices unless told); yields ``(live, server)``
    and stops both afterwards (see :func:`synth.benchmarks.live.engine_session` for the keywords)."""
    from synth.benchmarks.live import engine_session

    return engine_session(synthetic_bundle(), max_voices=max_voices, **kw)


def least_peak_bytes(setup, work, *, tries: int = 3) -> int:
    """The least, over ``tries``, of the most memory held at once by ``work(setup())`` beyond what was held
    before it (tracemalloc). tracemalloc counts every thread's allocations, and a thread an earlier test left
    running may allocate inside one window; what ``work`` itself allocates, it allocates every time."""
    import tracemalloc

    peaks = []
    for _ in range(tries):
        state = setup()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            work(state)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
        finally:
            tracemalloc.stop()
    return min(peaks)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_until(predicate, timeout: float = 10.0) -> None:
    """:func:`wait_for`, raising TimeoutError when the condition is not reached (a decode worker's state)."""
    if not wait_for(predicate, timeout=timeout, interval=0.005):
        raise TimeoutError("condition not reached")
