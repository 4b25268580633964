"""Audio outputs that drain a :class:`~synth.engine.ring.SampleRing`: a sounddevice stream, or a clock.

Both call :meth:`SampleRing.read_into` once per block and note in a :class:`PlayClock` when which sample
went out, which is the audio clock that OSC timetags and latency figures are measured against.

The sounddevice callback follows the rules of real-time audio: it only copies from the preallocated ring,
zero-fills and counts a shortfall, and never allocates arrays, locks, logs or blocks.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from synth.engine.priority import AUDIO_PRIORITY, raise_thread_priority
from synth.engine.ring import SampleRing
from synth.errors import AudioDeviceError

__all__ = ["PlayClock", "NullOutput", "SoundDeviceOutput", "list_output_devices", "resolve_device"]


class PlayClock:
    """When (``time.time()``) each block started to be handed to the output, and at which ring sample."""

    def __init__(self, *, rate: int, size: int = 8192) -> None:
        self.rate = rate
        self.times = np.zeros(size, dtype=np.float64)
        self.positions = np.zeros(size, dtype=np.int64)
        self.count = 0
        self._size = size
        self.start_time = time.time()

    def mark(self, t: float, position: int) -> None:
        i = self.count % self._size
        self.times[i] = t
        self.positions[i] = position
        self.count += 1

    def sample_at(self, t: float) -> int:
        """The ring sample that is (or will be) handed out at wall time ``t`` (extrapolated)."""
        if self.count == 0:
            return int(round((t - self.start_time) * self.rate))
        i = (self.count - 1) % self._size
        return int(self.positions[i] + round((t - self.times[i]) * self.rate))

    def time_of(self, sample: int) -> float | None:
        """Wall time at which ``sample`` was handed out (None when too old to tell or not yet out)."""
        count = self.count
        for j in range(count - 1, max(count - self._size, 0) - 1, -1):
            i = j % self._size
            if self.positions[i] <= sample:
                return float(self.times[i] + (sample - self.positions[i]) / self.rate)
        return None


class NullOutput:
    """No device: a thread consumes one block every ``blocksize / rate`` seconds, like a sound card would."""

    kind = "null"

    def __init__(self, ring: SampleRing, *, rate: int, blocksize: int) -> None:
        self.ring = ring
        self.rate = rate
        self.blocksize = blocksize
        self.clock = PlayClock(rate=rate)
        self.callbacks = 0
        self.device_xruns = 0
        self.latency = 0.0
        self.device_name = "null (paced by the system clock)"
        self._scratch = np.zeros((blocksize, ring.channels), dtype=np.float32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="melsynth-null-output", daemon=True)

    def start(self) -> None:
        self.clock.start_time = time.time()
        self._thread.start()

    def audio_thread_id(self, timeout: float = 1.0) -> int:
        """Native id of the thread that takes the blocks (0 before start)."""
        return int(self._thread.native_id or 0)

    def _run(self) -> None:
        raise_thread_priority(AUDIO_PRIORITY)
        period = self.blocksize / self.rate
        due = time.perf_counter()
        wall_offset = time.time() - due
        while not self._stop.is_set():
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
                continue
            # The block's due time, not the (jittery) wake-up time: an ideal sound card's clock.
            self.clock.mark(due + wall_offset, self.ring.read)
            self.ring.read_into(self._scratch)
            self.callbacks += 1
            due += period
            if now - due > 0.5:  # the process was suspended: resume at the current time, do not burst
                due = now
            # Catching up after a late wake-up, let the synthesis thread run between blocks (a sound card
            # takes blocks at a steady rate; a burst holding the GIL would starve the producer).
            time.sleep(0)

    def failure(self) -> str:
        return ""

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)


def list_output_devices() -> list[dict]:
    """Output devices PortAudio sees: ``[{"index", "name", "hostapi", "channels", "default_samplerate",
    "default"}]``."""
    import sounddevice as sd

    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_out = sd.default.device[1]
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from None
    out = []
    for d in devices:
        if d["max_output_channels"] > 0:
            out.append(
                {
                    "index": d["index"],
                    "name": d["name"],
                    "hostapi": hostapis[d["hostapi"]]["name"],
                    "channels": d["max_output_channels"],
                    "default_samplerate": d["default_samplerate"],
                    "default": d["index"] == default_out,
                }
            )
    return out


def resolve_device(device: str | int | None) -> dict:
    """The output device named by index, by (part of) its name, or the default one.

    Raises :class:`~synth.errors.AudioDeviceError` when there is none.
    """
    devices = list_output_devices()
    if not devices:
        raise AudioDeviceError("no audio output device found")
    if device is None or device == "":
        chosen = [d for d in devices if d["default"]] or devices[:1]
        return chosen[0]
    if isinstance(device, int) or (isinstance(device, str) and device.strip().isdigit()):
        index = int(device)
        for d in devices:
            if d["index"] == index:
                return d
        raise AudioDeviceError(f"no output device with index {index} (see melsynth devices)")
    matches = [d for d in devices if str(device).lower() in d["name"].lower()]
    if not matches:
        raise AudioDeviceError(f"no output device named {device!r} (see melsynth devices)")
    if len(matches) > 1:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in matches)
        raise AudioDeviceError(f"several output devices match {device!r} ({names}); give an index")
    return matches[0]


class SoundDeviceOutput:
    """A PortAudio output stream through sounddevice, fed from the ring."""

    kind = "sounddevice"

    # No callback for this long while the stream should run means the device is gone (e.g. JACK stopped).
    STALL_SECONDS = 1.0

    def __init__(self, ring: SampleRing, *, rate: int, blocksize: int, device: dict) -> None:
        import sounddevice as sd

        self.ring = ring
        self.rate = rate
        self.blocksize = blocksize
        self.clock = PlayClock(rate=rate)
        self.callbacks = 0
        self.device_xruns = 0
        self.xrun_callbacks = np.zeros(64, dtype=np.int64)  # callback index of the first xruns (diagnosis)
        self._audio_tid = np.zeros(1, dtype=np.int64)  # the callback thread's native id, from its first call
        self.device_name = f"{device['index']}: {device['name']} ({device['hostapi']})"
        self._finished = False
        self._started_at = 0.0
        try:
            self._stream = sd.OutputStream(
                samplerate=rate,
                blocksize=blocksize,
                device=device["index"],
                channels=ring.channels,
                dtype="float32",
                latency="low",
                callback=self._callback,
                finished_callback=self._on_finished,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioDeviceError(f"cannot open output device {self.device_name} at {rate} Hz: {exc}") from None
        self.latency = float(self._stream.latency)

    def _callback(self, outdata, frames, time_info, status) -> None:
        if not self._audio_tid[0]:  # once, at the first callback (the engine places its threads below it)
            self._audio_tid[0] = threading.get_native_id()
        if status.output_underflow:
            if self.device_xruns < len(self.xrun_callbacks):
                self.xrun_callbacks[self.device_xruns] = self.callbacks
            self.device_xruns += 1
        self.clock.mark(time.time(), self.ring.read)
        self.ring.read_into(outdata)
        self.callbacks += 1

    def audio_thread_id(self, timeout: float = 1.0) -> int:
        """Native id of PortAudio's callback thread, once it has called back (0 if it has not within
        ``timeout`` seconds of this call)."""
        deadline = time.perf_counter() + timeout
        while not self._audio_tid[0] and time.perf_counter() < deadline:
            time.sleep(0.002)
        return int(self._audio_tid[0])

    def _on_finished(self) -> None:
        self._finished = True

    def start(self) -> None:
        import sounddevice as sd

        self.clock.start_time = time.time()
        self._started_at = time.perf_counter()
        try:
            self._stream.start()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot start output device {self.device_name}: {exc}") from None

    def failure(self) -> str:
        """Why the stream stopped on its own ("" while it plays)."""
        if self._finished or not self._stream.active:
            return f"the audio device {self.device_name} stopped (was the audio server stopped?)"
        count = self.clock.count
        if count:
            last = self.clock.times[(count - 1) % len(self.clock.times)]
            if time.time() - last > self.STALL_SECONDS:
                return f"the audio device {self.device_name} stopped calling back for {self.STALL_SECONDS:.1f} s"
        elif time.perf_counter() - self._started_at > 5 * self.STALL_SECONDS:
            return f"the audio device {self.device_name} never started playing"
        return ""

    def stop(self) -> None:
        """Stop and close the stream, only while the device is alive: PortAudio's JACK host hangs or aborts
        the process (an assertion in CleanUpStream) when it closes a stream whose server has died. A stream
        left open is reclaimed when the process exits."""
        if self.failure():
            return
        # The server may have died a moment ago, before failure() could tell: a callback from now on proves
        # it alive (one block away while it plays).
        count = self.clock.count
        deadline = time.perf_counter() + self.STALL_SECONDS
        while self.clock.count == count:
            if time.perf_counter() > deadline or self.failure():
                return
            time.sleep(0.002)
        try:
            self._stream.stop()
            self._stream.close()
        except Exception:  # a device vanishing during shutdown must not turn a clean stop into a crash
            pass
