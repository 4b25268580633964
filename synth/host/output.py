"""Audio outputs that drain a ring of rendered samples: a sound card through PortAudio, or a clock.

Both note in a :class:`PlayClock` when which sample went out, which is the audio clock that OSC timetags
and latency figures are measured against. The null output's clock thread calls
:meth:`SampleRing.read_into` once per block. The sound card's callback is rtmixer's, written in C: it copies
from a :class:`~synth.host.ring.PortAudioRing` without the GIL, and zero-fills a shortfall; it never
allocates, locks, logs or blocks, and no Python thread can delay it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import numpy as np

from synth.errors import AudioDeviceError, ParameterError
from synth.host.priority import AUDIO_PRIORITY, raise_thread_priority, thread_priority
from synth.host.ring import PortAudioRing, SampleRing

__all__ = [
    "PlayClock", "NullOutput", "SoundDeviceOutput", "list_output_devices", "resolve_device", "null_output",
    "sounddevice_output", "output_named", "OutputChoice", "choose_output", "new_take_name", "DEFAULT_TAKE",
]

# The recording of a headless run, a new name each time ({stamp}: the local start time, YYYYMMDD-HHMMSS).
DEFAULT_TAKE = "melsynth-take-{stamp}.wav"


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
            # Marked when it is handed out (``now``), not when it was due. On time the two differ by the wake-up's
            # jitter; a thread that falls behind (its GIL waits stack up on a loaded machine: the loop below
            # then takes blocks as fast as it can, slower than real time, up to 0.5 s behind) hands out
            # blocks rendered after their due time, and marking those at the due time made changes sound
            # before they arrived: control latency p50 "0.1 ms", every figure clamped at 0.
            self.clock.mark(now + wall_offset, self.ring.read)
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

    def service(self) -> None:
        """Nothing to do between blocks (the clock thread marks and counts itself)."""

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


def _task_ids() -> set[int]:
    """Native ids of this process's threads (Linux; empty elsewhere)."""
    try:
        return {int(name) for name in os.listdir("/proc/self/task")}
    except OSError:
        return set()


class SoundDeviceOutput:
    """A PortAudio output stream whose callback is written in C (rtmixer's), fed from a
    :class:`~synth.host.ring.PortAudioRing`.

    The callback copies from the lock-free ring without touching Python, so no Python thread holding the GIL
    can make it late (with a Python callback, one did: JACK counted xruns while our ring never ran dry). When
    the ring runs dry the callback plays silence for the rest of the block and stops reading; the synthesis
    thread, which calls :meth:`service` between blocks, counts an underflow and starts reading again.
    """

    kind = "sounddevice"

    # No progress for this long while the ring has samples to play means the device is gone (JACK stopped).
    STALL_SECONDS = 1.0
    # How often the callback's counters (blocks, device xruns) are fetched.
    STATS_SECONDS = 0.25

    def __init__(self, ring, *, rate: int, blocksize: int, device: dict) -> None:
        import rtmixer
        import sounddevice as sd

        self.ring = ring
        self.rate = rate
        self.blocksize = blocksize
        self.clock = PlayClock(rate=rate)
        self.callbacks = 0
        self.device_xruns = 0
        self.device_name = f"{device['index']}: {device['name']} ({device['hostapi']})"
        self._action = None
        self._stats_action = None
        self._stats_due = 0.0
        self._last_read = 0
        self._last_poll = time.time()
        self._last_progress = 0.0
        self._started_at = 0.0
        self._new_threads: set[int] = set()
        try:
            self._mixer = rtmixer.Mixer(
                samplerate=rate, blocksize=blocksize, device=device["index"], channels=ring.channels,
                latency="low",
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioDeviceError(f"cannot open output device {self.device_name} at {rate} Hz: {exc}") from None
        self.latency = float(self._mixer.latency)

    def start(self) -> None:
        import sounddevice as sd

        self.clock.start_time = time.time()
        before = _task_ids()
        try:
            self._mixer.start()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot start output device {self.device_name}: {exc}") from None
        # The threads PortAudio (and JACK) started for the stream: one of them calls back.
        self._new_threads = _task_ids() - before
        self._started_at = self._last_progress = time.perf_counter()
        self._last_read = self.ring.read
        self._play()

    def _play(self) -> None:
        self._action = self._mixer.play_ringbuffer(self.ring.ringbuffer)

    def audio_thread_id(self, timeout: float = 1.0) -> int:
        """Native id of the thread that runs the callback, 0 when that cannot be told: the real-time thread
        with the highest priority that Python did not start (JACK's client thread, made when PortAudio
        initialises; ALSA's, made when the stream starts), else the only thread the stream started."""
        python = {t.native_id for t in threading.enumerate()}
        foreign = sorted(_task_ids() - python)
        realtime = [(p, t) for t in foreign if (p := thread_priority(t)) is not None]
        if realtime:
            return max(realtime)[1]
        started = sorted(self._new_threads - python)
        return started[0] if len(started) == 1 else 0

    def service(self) -> None:
        """Between blocks (synthesis thread): restart reading after the ring ran dry (an underflow), note
        when samples went out (the play clock), fetch the callback's counters."""
        now = time.perf_counter()
        wall = time.time()
        actions = self._mixer.actions  # (reading it collects the actions the callback has finished)
        if self._action not in actions:
            self.ring.underflows += 1
            self._play()
        read = self.ring.read
        if read != self._last_read:
            # A callback took a block since the last call: it ran between then and now (this is called
            # every quarter block, so the midpoint is within ~1 ms of the truth).
            self.clock.mark((self._last_poll + wall) / 2, max(self._last_read, read - self.blocksize))
            self._last_read = read
            self._last_progress = now
        self._last_poll = wall
        if self._stats_action is not None and self._stats_action not in actions:
            self.device_xruns += int(self._stats_action.stats.output_underflows)
            self.callbacks += int(self._stats_action.stats.blocks)
            self._stats_action = None
        if self._stats_action is None and now >= self._stats_due:
            self._stats_action = self._mixer.fetch_and_reset_stats()
            self._stats_due = now + self.STATS_SECONDS

    def failure(self) -> str:
        """Why the stream stopped on its own ("" while it plays)."""
        if not self._mixer.active:
            return f"the audio device {self.device_name} stopped (was the audio server stopped?)"
        stalled = time.perf_counter() - self._last_progress
        if self.ring.available() > 0 and stalled > self.STALL_SECONDS:
            if self._last_read == 0 and stalled > 5 * self.STALL_SECONDS:
                return f"the audio device {self.device_name} never started playing"
            if self._last_read:
                return f"the audio device {self.device_name} stopped calling back for {self.STALL_SECONDS:.1f} s"
        return ""

    def stop(self) -> None:
        """Stop and close the stream, only while the device is alive: PortAudio's JACK host hangs or aborts
        the process (an assertion in CleanUpStream) when it closes a stream whose server has died. A stream
        left open is reclaimed when the process exits. Call after the synthesis thread has stopped."""
        if not self._started_at or self.failure():
            return
        # The server may have died a moment ago, before failure() could tell: the callback answering a
        # request proves it alive (one block away while it plays).
        probe = self._mixer.fetch_and_reset_stats()
        deadline = time.perf_counter() + self.STALL_SECONDS
        while probe in self._mixer.actions:
            if time.perf_counter() > deadline or not self._mixer.active:
                return
            time.sleep(0.002)
        try:
            self._mixer.stop()
            self._mixer.close()
        except Exception:  # a device vanishing during shutdown must not turn a clean stop into a crash
            pass


# ---------------------------------------------------------------------- factories for LiveEngine
# A LiveEngine is handed one of these: ``make(*, capacity, channels, rate, blocksize) -> (ring, output)``,
# the ring the synthesis thread fills and the output that drains it (each output kind needs its own ring).


def null_output(*, capacity: int, channels: int, rate: int, blocksize: int):
    """A :class:`~synth.host.ring.SampleRing` drained by a :class:`NullOutput` (no device)."""
    ring = SampleRing(capacity=capacity, channels=channels)
    return ring, NullOutput(ring, rate=rate, blocksize=blocksize)


def sounddevice_output(device: dict):
    """A factory of a PortAudio ring drained by a :class:`SoundDeviceOutput` on ``device`` (see
    :func:`resolve_device`)."""

    def make(*, capacity: int, channels: int, rate: int, blocksize: int):
        ring = PortAudioRing(capacity=capacity, channels=channels)
        return ring, SoundDeviceOutput(ring, rate=rate, blocksize=blocksize, device=device)

    return make


def output_named(name: str, *, device: dict | None = None):
    """The factory for ``serve --output NAME``: ``"null"`` or ``"sounddevice"`` (which needs ``device``)."""
    if name == "null":
        return null_output
    if name == "sounddevice":
        if device is None:
            raise ParameterError("the sounddevice output needs a device")
        return sounddevice_output(device)
    raise ParameterError(f"output must be 'null' or 'sounddevice', got {name!r}")


@dataclasses.dataclass(frozen=True)
class OutputChoice:
    """Where serve plays: ``kind`` (sounddevice or null), the ``device`` (None for null), the ``record`` path
    or None, and ``fallback``: why it fell back to the null output ("" when it did not)."""

    kind: str
    device: dict | None
    record: str | None
    fallback: str = ""


def choose_output(output: str, *, device: str | int | None, record: str | None) -> OutputChoice:
    """``auto`` plays to the device when there is one, else to the null output while recording to a new
    take (:func:`new_take_name`), so a headless run can still be heard afterwards; ``sounddevice`` (or a named
    device) without one is an :class:`~synth.errors.AudioDeviceError`."""
    if output not in ("auto", "sounddevice"):
        return OutputChoice(output, None, record)
    try:
        return OutputChoice("sounddevice", resolve_device(device), record)
    except AudioDeviceError as exc:
        if output == "sounddevice" or device is not None:
            raise
        return OutputChoice("null", None, record or new_take_name(), fallback=str(exc))


def new_take_name() -> str:
    """DEFAULT_TAKE at this second, with -2, -3, ... when a take of that second exists: never an old take's
    (``make run`` on a machine without a sound card once replaced the previous take every time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = DEFAULT_TAKE.format(stamp=stamp)
    n = 2
    while os.path.lexists(name):
        name = DEFAULT_TAKE.format(stamp=f"{stamp}-{n}")
        n += 1
    return name
