"""Live playing: the :class:`~synth.engine.Engine` on a synthesis thread, a bounded buffer, an output.

Threads::

    OSC receive thread --submit()--> inbox (SimpleQueue of checked commands)
    decode worker (onnxruntime) <--> Engine (latent requests / finished timbres)
    synthesis thread: inbox -> Engine.schedule; Engine.render_into(block) -> ring, a few blocks ahead
    output (rtmixer's C callback on a PortAudioRing, or the null clock on a SampleRing): ring -> device;
    zero-fill and count on shortfall

Timetags are turned into ring sample positions with the output's :class:`PlayClock`, so a bundle for time T
sounds when the sample for T goes out, without anyone sleeping until T.
"""

from __future__ import annotations

import collections
import gc
import math
import queue
import sys
import threading
import time

import numpy as np

from synth.control.messages import Command, NoteOn
from synth.control.vocabulary import check_message
from synth.engine.engine import Engine, check_sample_time
from synth.errors import ParameterError
from synth.host.histogram import Histogram
from synth.host.margin import MarginPolicy
from synth.host.output import output_named
from synth.host.priority import plan_priorities, raise_thread_priority
from synth.host.recorder import Recorder
from synth.host.stats import LiveStats

__all__ = ["LiveEngine", "SWITCH_INTERVAL", "PRESSURE_SECONDS", "raise_thread_priority"]

SWITCH_INTERVAL = 0.0005  # seconds
# Silence rendered ahead while nothing sounds (128 ms at 256 / 48 kHz): whole-process stalls of 25-60 ms were
# traced on the 2-core machines under load, and this much costs no latency (it is taken back for a command).
IDLE_AHEAD_BLOCKS = 24
# How long the margin stays at its widest after the last sign of a flood (see synth.host.margin): longer than
# the gaps between a sender's bursts, so that a flood does not reopen at the narrow margin each time.
PRESSURE_SECONDS = 2.0


class LiveEngine:
    """Run ``engine`` (built with :class:`~synth.engine.decoding.LiveDecoding`) in real time.

    Parameters
    ----------
    engine : Engine (``decoding=LiveDecoding()`` decodes on a worker; ``OfflineDecoding()`` decodes inline on
        the synthesis thread, which makes a null-output run equal to an offline render of the same sample
        times)
    output : "null" | "sounddevice", or a factory ``f(*, capacity, channels, rate, blocksize) -> (ring, output)``
        (see :mod:`synth.host.output`; the live replay hands in its stepped output this way)
    device : dict from :func:`synth.host.output.resolve_device` (with ``output="sounddevice"``)
    blocksize : int  samples per output block
    ahead_blocks : int  blocks the synthesis thread keeps rendered ahead of the output on a calm machine
    max_ahead_blocks : int  the widest that margin grows after near-misses (see :mod:`synth.host.margin`;
        equal to ``ahead_blocks``: a fixed margin); default ``max(8, ahead_blocks)``
    idle_ahead_blocks : int  blocks rendered ahead while nothing sounds (default ``max(24, max_ahead_blocks)``):
        that silence is taken back when a command comes, so a note still starts ``onset_blocks`` after it
        arrives, while a stall of the process in between costs nothing (see :meth:`_take_back`)
    onset_blocks : int  how far a command coming onto silence (a note, or the preset change before it) takes
        that silence back: it applies this many blocks after what the output has taken (1..``ahead_blocks``;
        default ``ahead_blocks - 1``, at least 1: while playing, the ring holds between ``ahead_blocks - 1``
        and ``ahead_blocks`` when a note comes, so this is the shorter of the two waits a note has while
        others sound), plus however far the margin has widened after near-misses. The margin then refills
        to ``ahead_blocks`` within the note's first few milliseconds: a short margin for the attack only, and
        the normal one for the rest of the playing. Every command takes the silence back to the same place,
        so a preset change and the note after it apply in the order they came, as while playing
    record : path of a WAV file recording everything played (or an open Recorder), or None
    channels : output channels (mono is copied to each)
    realtime : ask for real-time (SCHED_FIFO) priority for the synthesis thread, as audio programs do; it
        is granted to root or to users with an rtprio limit (``/etc/security/limits.d``), else ignored
    """

    def __init__(
        self,
        engine: Engine,
        *,
        output="null",
        device: dict | None = None,
        blocksize: int = 256,
        ahead_blocks: int = 3,
        max_ahead_blocks: int | None = None,
        idle_ahead_blocks: int | None = None,
        onset_blocks: int | None = None,
        record=None,
        channels: int = 1,
        realtime: bool = True,
    ) -> None:
        if isinstance(blocksize, bool) or not isinstance(blocksize, int) or not 16 <= blocksize <= 8192:
            raise ParameterError(f"blocksize must be an integer 16..8192, got {blocksize!r}")
        if isinstance(ahead_blocks, bool) or not isinstance(ahead_blocks, int) or not 1 <= ahead_blocks <= 64:
            raise ParameterError(f"ahead_blocks must be an integer 1..64, got {ahead_blocks!r}")
        max_ahead_blocks = max(8, ahead_blocks) if max_ahead_blocks is None else max_ahead_blocks
        if isinstance(max_ahead_blocks, bool) or not isinstance(max_ahead_blocks, int) or not (
            ahead_blocks <= max_ahead_blocks <= 64
        ):
            raise ParameterError(f"max_ahead_blocks must be an integer {ahead_blocks}..64, got {max_ahead_blocks!r}")
        idle_ahead_blocks = max(IDLE_AHEAD_BLOCKS, max_ahead_blocks) if idle_ahead_blocks is None else idle_ahead_blocks
        if isinstance(idle_ahead_blocks, bool) or not isinstance(idle_ahead_blocks, int) or not (
            1 <= idle_ahead_blocks <= 64
        ):
            raise ParameterError(f"idle_ahead_blocks must be an integer 1..64, got {idle_ahead_blocks!r}")
        self.idle_blocks = idle_ahead_blocks
        onset_blocks = max(1, ahead_blocks - 1) if onset_blocks is None else onset_blocks
        if isinstance(onset_blocks, bool) or not isinstance(onset_blocks, int) or not 1 <= onset_blocks <= ahead_blocks:
            raise ParameterError(f"onset_blocks must be an integer 1..{ahead_blocks} (ahead_blocks), got {onset_blocks!r}")
        self.onset_blocks = onset_blocks
        # True from a take-back to one block until the ring holds the margin again: the callback may take that
        # block before the next one is made, a fill below one block that was chosen, not a near-miss (see _run).
        self._onset_refill = False
        self.engine = engine
        self.rate = engine.output_rate
        self.blocksize = blocksize
        # Start-up decodes widen it only where the margin may grow at all.
        self.margin = MarginPolicy(blocks=ahead_blocks, max_blocks=max_ahead_blocks,
                                   startup_blocks=min(2, max_ahead_blocks - ahead_blocks))
        # Room for the widest lead plus whatever size of callback PortAudio may ask for.
        capacity = max(8 * blocksize, (max(max_ahead_blocks, idle_ahead_blocks) + 4) * blocksize, 16384)
        make_output = output_named(output, device=device) if isinstance(output, str) else output
        self.ring, self.output = make_output(capacity=capacity, channels=channels, rate=self.rate, blocksize=blocksize)
        if record is None or isinstance(record, Recorder):
            self.recorder = record
        else:
            self.recorder = Recorder(record, rate=self.rate)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._block = np.zeros(blocksize, dtype=np.float32)
        self._stop = threading.Event()  # the synthesis thread ends
        self._ended = threading.Event()  # the run is over: failed, stopped, or asked to stop (wait() returns)
        self._thread = threading.Thread(target=self._run, name="melsynth-synthesis", daemon=True)
        self._pending_latency: collections.deque = collections.deque()
        self._pending_exact: collections.deque = collections.deque()
        # Histograms, not lists: status replies read their percentiles while playing (see synth.host.histogram).
        self.control_latency = Histogram(resolution=0.1, limit=2000.0)  # OSC packet -> first sample, ms
        # Latent commands only: packet to the first sample of the exact decode (an estimate may sound first).
        self.exact_latency = Histogram(resolution=0.1, limit=2000.0)
        self.render_time = Histogram(resolution=0.01, limit=200.0)  # wall time of one block's render, ms
        self.render_cpu_s = 0.0  # CPU time the synthesis thread spent rendering
        # Peak and RMS of the block made last, for meters (the web page's): plain floats, read from any thread.
        self.output_peak = 0.0
        self.output_rms = 0.0
        self.stolen_ms_max = 0.0
        self.failure = ""
        self._want_realtime = realtime
        self.realtime = False
        self.priorities = plan_priorities(None)  # replaced from the audio thread's own once it runs
        self._priority_set = threading.Event()
        self.started_at = 0.0
        self.running = False
        self.recorded_path = None
        # Underflows by what the engine was doing when the ring ran dry (see _count_underflows).
        self.underflows_by_phase = {"start-up": 0, "idle": 0, "playing": 0}
        self._underflows_seen = 0
        # Silence at the newest end of the ring, made while the engine was silent: it can be taken back.
        self._silent_tail = 0
        self._record_silence = 0  # silent samples not yet handed to the recorder (they may be taken back)
        self.taken_back = 0  # commands that took back silence rendered ahead
        self.taken_back_samples = 0
        self._last_estimate = 0  # what submit() last said an immediate command's sample would be
        # Until when (time.perf_counter()) control floods in: a float that any thread may raise (under_pressure)
        # and the synthesis thread hands to the margin (see synth.host.margin).
        self._pressure_until = 0.0

    # ------------------------------------------------------------------ control (any thread)
    def submit(
        self,
        command: Command,
        *,
        at_time: float | None = None,
        at_sample: int | None = None,
        received: float | None = None,
        checked: bool = False,
    ) -> int:
        """Queue a checked command: at once, at wall time ``at_time`` (``time.time()`` seconds, e.g. an OSC
        timetag), or at engine sample ``at_sample`` (scripted tests: the same sample times as an offline
        render give the same audio when the engine decodes inline).

        Returns the sample time it is scheduled for (an estimate for immediate commands), in the engine's
        sample clock, which starts at 0 when the engine starts. ``checked``: the caller read ``command`` with
        the vocabulary already (:class:`~synth.control.router.ControlRouter`, the MIDI translator), so it is
        not checked a second time; anything else is checked here, once, before it reaches the engine.
        """
        if not checked:
            check_message(command, spec=self.engine.control_spec)
        if at_sample is not None:
            at_sample = check_sample_time(at_sample)  # refused here: the synthesis thread could only drop it
        elif at_time is not None and (isinstance(at_time, bool) or not isinstance(at_time, (int, float))
                                      or not math.isfinite(at_time)):
            raise ParameterError(f"at_time must be a finite time.time() in seconds, got {at_time!r}")
        received = time.time() if received is None else received
        immediate = at_time is None and at_sample is None
        if at_sample is None and at_time is not None:
            at_sample = max(0, self.output.clock.sample_at(at_time))
        # Control latency is measured on immediate commands only (a timetag asks for a delay).
        self._inbox.put((command, at_sample, received if immediate else None))
        if at_sample is not None:
            return int(at_sample)
        estimate = self.engine.next_frame_sample
        if self._silent_tail:  # the silence rendered ahead is taken back down to the onset margin (see _take_back)
            keep = self._onset_keep_blocks() * self.blocksize
            estimate = min(estimate, self.ring.read + keep + self.engine.max_frame_samples)
        # Never earlier than the previous immediate command's: they apply in the order they came.
        self._last_estimate = max(self._last_estimate, estimate)
        return self._last_estimate

    def under_pressure(self, seconds: float = PRESSURE_SECONDS) -> None:
        """Control floods in (from any thread: the OSC server when a sender goes over its budget or its receive
        thread has spent its share): render at the widest margin for the next ``seconds``. A plain float store:
        no lock, no allocation, so a receive thread under a flood can call it for every datagram."""
        until = time.perf_counter() + seconds
        if until > self._pressure_until:
            self._pressure_until = until

    def sample_now(self) -> int:
        """The sample being handed to the output now."""
        return self.output.clock.sample_at(time.time())

    # ------------------------------------------------------------------ run
    @property
    def ahead(self) -> int:
        """Samples the synthesis thread keeps rendered ahead of the output now (the adaptive margin)."""
        return self.margin.blocks * self.blocksize

    def _startup_running(self) -> bool:
        return not (self.engine.timbres.presets_decoded() and self.engine.timbres.estimates_ready())

    def start(self) -> None:
        """Pre-fill the buffer, start the output and the synthesis thread."""
        self.margin.set_startup(self._startup_running(), now=time.monotonic())
        while self.ring.available() < self.ahead:
            self._render_block()
        # Everything loaded so far (numpy, onnxruntime, librosa: ~10^6 objects) goes out of the garbage
        # collector's sight: a full collection over it holds the GIL for tens of ms, longer than the buffer.
        gc.collect()
        gc.freeze()
        # The audio callback needs the GIL: with the default 5 ms switch interval it can wait most of a
        # 256-sample period (5.3 ms at 48 kHz) for a busy thread to let go. Process-wide, kept after stop.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self.started_at = time.time()
        self.output.start()
        self.running = True
        self._thread.start()
        self._priority_set.wait(2.0)  # so that threads started after this one can follow ``realtime``

    def _render_block(self) -> None:
        t0 = time.perf_counter()
        c0 = time.thread_time()
        block = self._block
        self.engine.render_into(block)
        wall = time.perf_counter() - t0
        cpu = time.thread_time() - c0
        self.render_time.add(wall * 1e3)
        self.render_cpu_s += cpu
        # Wall time beyond this thread's own CPU time: the OS or other threads held us off.
        self.stolen_ms_max = max(self.stolen_ms_max, (wall - cpu) * 1e3)
        # Reductions only (no array is made): the synthesis thread allocates nothing per block.
        self.output_peak = float(max(block.max(), -block.min()))
        self.output_rms = math.sqrt(float(np.dot(block, block)) / len(block))
        silent = self.engine.silent and not block.any()
        self._silent_tail = self._silent_tail + len(block) if silent else 0
        self.ring.write(block)
        if self.recorder is not None:
            if silent:
                self._record_silence += len(block)
            else:
                self._hand_silence_to_recorder(0)
                self.recorder.put(block)

    def _hand_silence_to_recorder(self, keep: int) -> None:
        """Record the deferred silence but the newest ``keep`` samples (which may still be taken back)."""
        n = self._record_silence - keep
        if n > 0 and self.recorder is not None:
            self.recorder.put_silence(n)
            self._record_silence = keep

    def _onset_keep_blocks(self) -> int:
        """Blocks of silence a take-back leaves: ``onset_blocks``, plus the blocks the margin has widened by
        after near-misses (a struggling machine gets the same extra room at an onset as while playing)."""
        return min(self.margin.blocks, self.onset_blocks + self.margin.blocks - self.margin.base)

    def _take_back(self, at_sample: int | None) -> None:
        """Before a command: take back the silence rendered ahead beyond the onset margin (all of it for a
        command due now, as much as makes it on time for one due at ``at_sample``), so that it applies where
        it would have had nothing been rendered ahead (see ``onset_blocks``)."""
        bs = self.blocksize
        keep = self._onset_keep_blocks() * bs
        spare = min(self._silent_tail, self.ring.available() - keep) // bs * bs
        if spare <= 0 or not self.engine.silent:
            return
        if at_sample is None:
            want = spare
        else:
            # Back far enough that the frame holding ``at_sample`` is not made yet: a change other than a note
            # applies at the first frame starting at or after its sample, and one already made would be late.
            need = self.engine.position - int(at_sample) + self.engine.max_frame_samples
            want = min(spare, -(-need // bs) * bs)
        if want <= 0:
            return
        n = self.ring.unwrite(want, keep=keep)
        if n <= 0:
            return
        self.engine.take_back(n)
        self._onset_refill = keep == bs
        self._silent_tail -= n
        if self.recorder is not None:
            self._record_silence -= n
        self.taken_back += 1
        self.taken_back_samples += n

    def _drain_inbox(self) -> None:
        while True:
            try:
                command, at_sample, received = self._inbox.get_nowait()
            except queue.Empty:
                return
            # Any command, not only notes: one that only changes the timbre would otherwise apply (and count
            # its latency) up to the whole idle margin late, and a note may follow it at once.
            if self._silent_tail:
                self._take_back(at_sample)
            try:
                self.engine.schedule(command, at_sample, tag=received, checked=True)
            except ParameterError:
                pass  # checked in submit(); kept so that no command can ever stop the synthesis thread
            if isinstance(command, NoteOn) and command.velocity > 0:
                self._silent_tail = 0  # what is left of it lies before the note

    def resolve_latencies(self) -> None:
        """Turn applied changes whose samples have been played into latency figures (the synthesis thread
        does this every 50 ms; call it to have the figures up to now)."""
        played = self.ring.read
        for applied, pending, figures in (
            (self.engine.applied, self._pending_latency, self.control_latency),
            (self.engine.applied_exact, self._pending_exact, self.exact_latency),
        ):
            while applied:
                pending.append(applied.popleft())
            while pending and pending[0][1] < played:
                received, sample = pending.popleft()
                t = self.output.clock.time_of(sample)
                if t is not None and received is not None:
                    figures.add((t - received) * 1e3)

    def _run(self) -> None:
        if self._want_realtime:
            # Below the audio device's callback thread (see synth.host.priority).
            self.priorities = plan_priorities(self.output.audio_thread_id(timeout=1.0))
            self.realtime = raise_thread_priority(self.priorities.synthesis)
        else:
            self.realtime = False
        if self.realtime:
            worker = self.engine.timbres.decode_thread_id()
            if worker:
                raise_thread_priority(self.priorities.decode, thread_id=worker)
            # The recorder takes the GIL every block too: preempted by another process while holding it, an
            # ordinary thread would hold up the synthesis thread.
            if self.recorder is not None and self.recorder.thread_id:
                raise_thread_priority(self.priorities.record, thread_id=self.recorder.thread_id)
        self._priority_set.set()
        period = self.blocksize / self.rate
        last_check = 0.0
        startup = self.margin.startup
        try:
            while not self._stop.is_set():
                self.output.service()
                self._drain_inbox()
                now = time.perf_counter()
                self._count_underflows(startup)
                if self._pressure_until > now:
                    self.margin.set_pressure(until=self._pressure_until, now=now)
                fill = self.ring.available() / self.blocksize
                if self._onset_refill:  # one block left by choice: only running dry counts (see _onset_refill)
                    self._onset_refill = fill < self.margin.blocks
                    fill += 1.0
                blocks = self.margin.observe(fill_blocks=fill, underflows=self.ring.underflows, now=now)
                # Played silence can no longer be taken back: it goes to the recording.
                self._silent_tail = min(self._silent_tail, self.ring.available())
                if self._record_silence - self._silent_tail >= self.blocksize:
                    self._hand_silence_to_recorder(self._silent_tail)
                if self._silent_tail or self.engine.silent:
                    blocks = max(blocks, self.idle_blocks)
                if self.ring.available() < blocks * self.blocksize and self.ring.space() >= self.blocksize:
                    self._render_block()
                    continue
                if now - last_check > 0.05:
                    last_check = now
                    if startup and not self._startup_running():
                        startup = False
                        self.margin.set_startup(False, now=now)
                    self.resolve_latencies()
                    failure = self.output.failure()
                    if failure:
                        self.failure = failure
                        self._stop.set()
                        self._ended.set()
                        break
                time.sleep(period / 4)
        except Exception as exc:  # an engine bug must end the run with a message, not a silent hang
            self.failure = f"synthesis thread failed: {type(exc).__name__}: {exc}"
            self._stop.set()
            self._ended.set()
        finally:
            self.running = False

    def _count_underflows(self, startup: bool) -> None:
        """File the output's new underflows under what the engine is doing: its start-up decodes, idle (no
        voice sounding: a glitch nobody heard), or playing."""
        seen = self.ring.underflows
        if seen != self._underflows_seen:
            phase = "start-up" if startup else "playing" if self.engine.sounding_voices else "idle"
            self.underflows_by_phase[phase] += seen - self._underflows_seen
            self._underflows_seen = seen

    def request_stop(self) -> None:
        """Ask the run to end (from any thread or a signal handler): :meth:`wait` returns, and the engine goes on
        playing until :meth:`stop` (so nothing runs dry while the caller winds up)."""
        self._ended.set()

    def wait(self, seconds: float | None = None) -> bool:
        """Block until stopped or failed (True) or until ``seconds`` have passed (False)."""
        return self._ended.wait(seconds)

    def stop(self) -> LiveStats:
        """Stop everything, finish the recording, and return :meth:`stats`."""
        self._stop.set()
        self._ended.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.output.stop()
        self.engine.close()
        self._count_underflows(self.margin.startup)
        self.resolve_latencies()
        if self.recorder is not None:
            self._hand_silence_to_recorder(0)
            self.recorded_path = self.recorder.close()
        return self.stats()

    # ------------------------------------------------------------------ figures
    def stats(self) -> LiveStats:
        """Figures of the run so far, built now from the counters (any thread; the real-time threads never
        build one)."""
        lat = self.control_latency
        return LiveStats(
            seconds=(time.time() - self.started_at) if self.started_at else 0.0,
            underflows=int(self.ring.underflows),
            underflows_startup=int(self.underflows_by_phase["start-up"]),
            underflows_idle=int(self.underflows_by_phase["idle"]),
            underflows_playing=int(self.underflows_by_phase["playing"]),
            device_xruns=int(self.output.device_xruns),
            callbacks=int(self.output.callbacks),
            buffer_ms=self.ahead / self.rate * 1e3,
            buffer_ms_base=self.margin.base * self.blocksize / self.rate * 1e3,
            buffer_ms_widest=self.margin.widest * self.blocksize / self.rate * 1e3,
            near_misses=int(self.margin.near_misses),
            buffer_ms_idle=self.idle_blocks * self.blocksize / self.rate * 1e3,
            buffer_ms_onset=self.onset_blocks * self.blocksize / self.rate * 1e3,
            taken_back=int(self.taken_back),
            taken_back_ms=self.taken_back_samples / self.rate * 1e3,
            device_latency_ms=float(self.output.latency) * 1e3,
            latency_ms=lat.percentile(50),
            latency_ms_p99=lat.percentile(99),
            latency_count=int(lat.count),
            exact_latency_ms_p99=self.exact_latency.percentile(99),
            render_ms_p99=self.render_time.percentile(99),
            # CPU load of rendering (1.0 = all of one core) and the longest wait inside one block.
            render_load=self.render_cpu_s / (self.engine.position / self.rate) if self.engine.position else 0.0,
            stolen_ms_max=float(self.stolen_ms_max),
            output_peak=float(self.output_peak),
            output_rms=float(self.output_rms),
            realtime=bool(self.realtime),
            output=str(self.output.device_name),
            failure=self.failure,
            engine=self.engine.stats(),
        )
