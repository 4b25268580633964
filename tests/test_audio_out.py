"""Audio output: the sample ring, the recorder, and real playing through PortAudio into a JACK dummy
server (real-time paced callbacks), including the server dying mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import least_peak_bytes, synthetic_bundle, synthetic_bundle_path
from jack_fixtures import jack_device, jack_server

from synth.control.messages import Morph, NoteOff, NoteOn, SetMacro, SetPreset
from synth.errors import ParameterError
from synth.host.priority import thread_priority
from synth.host.recorder import Recorder
from synth.host.ring import SampleRing

REPO = Path(__file__).resolve().parents[1]


def test_ring_wraps_and_zero_fills_a_shortfall():
    ring = SampleRing(capacity=10, channels=2)
    out = np.full((4, 2), 9.0, dtype=np.float32)
    ring.read_into(out)
    assert np.all(out == 0) and ring.underflows == 1
    data = np.arange(1, 25, dtype=np.float32)
    got = []
    for i in range(0, 24, 6):
        ring.write(data[i : i + 6])
        out = np.empty((6, 2), dtype=np.float32)
        ring.read_into(out)
        got.append(out.copy())
    got = np.concatenate(got)
    np.testing.assert_array_equal(got[:, 0], data)
    np.testing.assert_array_equal(got[:, 1], data)
    ring.write(data[:3])
    out = np.full((5, 2), 9.0, dtype=np.float32)
    ring.read_into(out)
    np.testing.assert_array_equal(out[:3, 0], data[:3])
    assert np.all(out[3:] == 0) and ring.underflows == 2


@pytest.mark.parametrize("kind", ["sample", "portaudio"])
def test_a_ring_takes_back_its_newest_frames_but_never_what_the_reader_may_be_reading(kind):
    """Both rings, many times round (PortAudio's counts its indices modulo twice its size): taken-back frames
    are replaced by the next ones written, the reader gets everything else in order, and ``keep`` frames
    always stay."""
    from synth.host.ring import PortAudioRing

    ring = SampleRing(capacity=64, channels=1) if kind == "sample" else PortAudioRing(capacity=64, channels=1)

    def read(n):
        out = np.zeros((n, 1), dtype=np.float32)
        if kind == "sample":
            ring.read_into(out)
        else:
            assert ring.ringbuffer.readinto(out) == n
        return out[:, 0]

    expected, got, value = [], [], 1.0
    for _ in range(40):
        block = np.arange(value, value + 16, dtype=np.float32)
        value += 16
        ring.write(block)
        ring.write(block + 1000)
        assert ring.unwrite(16, keep=8) == 16  # the second block goes
        assert ring.unwrite(100, keep=8) == 8  # as much as may go: 8 stay
        expected.append(block[:8])
        got.append(read(8))
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))
    assert ring.available() == 0 and ring.unwrite(1, keep=0) == 0 and ring.read == ring.written


def test_recorder_writes_atomically_and_refuses_an_unwritable_path(tmp_path):
    rec = Recorder(tmp_path / "take.wav", rate=48000)
    assert not (tmp_path / "take.wav").exists()  # only the temporary file while recording
    for _ in range(10):
        rec.put(np.full(256, 0.25, dtype=np.float32))
    assert rec.close() == tmp_path / "take.wav"
    y, rate = sf.read(tmp_path / "take.wav", dtype="float32")
    assert rate == 48000 and y.shape == (2560,) and np.all(y == 0.25)
    assert [p.name for p in tmp_path.iterdir()] == ["take.wav"]
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(ParameterError, match="cannot write the recording"):
        Recorder(not_a_folder / "take.wav", rate=48000)
    with pytest.raises(ParameterError, match=r"\.wav"):
        Recorder(tmp_path / "take.mp3", rate=48000)


class _StalledDisk:
    """The recording's file, its writes held until ``go`` is set (a disk that stalls cannot be made here);
    after ``fail_after`` writes every write raises, as on a full disk."""

    def __init__(self, file, *, fail_after: int | None = None):
        self.file, self.fail_after, self.writes = file, fail_after, 0
        self.go = threading.Event()

    def write(self, data):
        self.go.wait()
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise RuntimeError("Error : No space left on device")
        self.writes += 1
        self.file.write(data)

    def close(self):
        self.file.close()


def test_a_stalled_disk_leaves_a_gap_of_silence_not_a_growing_queue(tmp_path, monkeypatch):
    import synth.host.recorder as recorder_module

    monkeypatch.setattr(recorder_module, "POOL_SECONDS", 0.2)  # 9 buffers of 1024 samples at 48 kHz
    rec = Recorder(tmp_path / "take.wav", rate=48000)
    rec._file = disk = _StalledDisk(rec._file)  # noqa: SLF001
    blocks = [np.full(1024, (k + 1) / 64, dtype=np.float32) for k in range(40)]
    for block in blocks:
        rec.put(block)
    pool = len(rec._pool)  # noqa: SLF001
    # The writer holds one buffer waiting on the disk; the rest filled, then every block found none.
    assert rec.gap_frames == (40 - pool) * 1024
    disk.go.set()
    assert rec.close() == tmp_path / "take.wav" and rec.error == ""
    y, _ = sf.read(tmp_path / "take.wav", dtype="float32")
    assert len(y) == 40 * 1024  # the take keeps its timing
    np.testing.assert_array_equal(y[: pool * 1024], np.concatenate(blocks[:pool]))
    assert not y[pool * 1024 :].any()


def test_a_full_disk_keeps_what_was_recorded_and_says_where_it_stopped(tmp_path):
    rec = Recorder(tmp_path / "take.wav", rate=1024 * 4)
    rec._file = disk = _StalledDisk(rec._file, fail_after=6)  # noqa: SLF001
    disk.go.set()
    for _ in range(10):
        rec.put(np.full(1024, 0.5, dtype=np.float32))
    assert rec.close() == tmp_path / "take.wav"
    assert rec.error == "stopped at 1.5 s (Error : No space left on device); what came before is kept"
    y, _ = sf.read(tmp_path / "take.wav", dtype="float32")
    assert len(y) == 6 * 1024 and np.all(y == 0.5)


def test_recording_a_block_allocates_no_array(tmp_path):
    # The writing thread is held at the disk meanwhile: this is about put(), on the synthesis thread.
    block = np.full(8192, 0.25, dtype=np.float32)
    recorders = []

    def setup():
        rec = Recorder(tmp_path / f"take{len(recorders)}.wav", rate=48000)
        rec._file = _StalledDisk(rec._file)  # noqa: SLF001
        rec.put(block)
        recorders.append(rec)
        return rec

    def work(rec):
        for _ in range(3):
            rec.put(block)  # 32 KiB each: a copy would show
            rec.put_silence(4096)

    peak = least_peak_bytes(setup, work)
    for rec in recorders:
        rec._file.go.set()  # noqa: SLF001
        rec.close()
    assert peak < 8192, f"{peak} bytes allocated at once by three 8192-sample blocks"
    assert len(sf.read(tmp_path / "take0.wav")[0]) == 4 * 8192 + 3 * 4096


def test_serve_reports_an_unwritable_recording_at_start(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(synthetic_bundle_path()), "--output", "null",
         "--port", "0", "--record", str(target / "take.wav"), "--duration", "1"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 1
    assert "cannot write the recording" in proc.stderr and "take.wav" in proc.stderr


def test_serve_exits_1_when_the_disk_fills_under_its_recording(tmp_path):
    """A full disk under the recording printed an error and exited 0. The disk is filled without root: the
    file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) fails the writes past 100 kB as a full disk would."""
    import resource
    import signal

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    take = tmp_path / "take.wav"
    command = [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(synthetic_bundle_path()), "--output",
               "null", "--port", "0", "--samplerate", "22050"]
    # numba writes its compiled inversion kernels to its cache on first use (files of over 100 kB): a fresh
    # clone's first serve would hit the limit there, not in the recording. One run without the limit first.
    warm = subprocess.run([*command, "--duration", "0.5"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert warm.returncode == 0, warm.stderr
    proc = subprocess.run(
        [*command, "--record", str(take), "--duration", "2"],
        capture_output=True, text=True, timeout=120, cwd=REPO, preexec_fn=small_disk,
    )
    assert proc.returncode == 1, proc.stderr
    assert "melsynth: error: the recording stopped at " in proc.stderr and "Traceback" not in proc.stderr
    kept = sf.info(take)  # what came before is kept, a readable WAV
    assert 0 < kept.frames < 2 * 22050


@pytest.mark.jack
def test_plays_through_jack_paced_by_its_callback_and_widens_after_an_underflow(tmp_path):
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.host.live_engine import LiveEngine

    with jack_server(rate=48000, period=256):
        device = jack_device()
        engine = Engine(synthetic_bundle(), EngineOptions(output_rate=48000), decoding=LiveDecoding())
        live = LiveEngine(engine, output="sounddevice", device=device, blocksize=256, ahead_blocks=8,
                          max_ahead_blocks=12, record=tmp_path / "jack.wav", channels=2)
        live.start()
        try:
            chord = (55, 60, 64, 67)
            for step in range(16):  # ~4 s of notes, presets, morphs and macros
                note = chord[step % 4] + 12 * (step % 2)
                live.submit(NoteOn(note, 90))
                change = (SetPreset("dark"), Morph("bright", "hollow", (step % 5) / 4), SetMacro(step % 3, 1.0))
                live.submit(change[step % 3])
                time.sleep(0.25)
                live.submit(NoteOff(note))
            time.sleep(0.3)
            stats = live.stats()
            failure = live.output.failure()
            if live.realtime:  # the engine found JACK's callback thread and went under it
                audio = thread_priority(live.output.audio_thread_id())
                assert audio is not None and audio > thread_priority(live._thread.native_id)  # noqa: SLF001
        finally:
            stats_end = live.stop()
    assert failure == ""
    assert stats.callbacks > 3.5 * 48000 / 256  # real-time paced by the JACK server
    assert stats_end.engine.timbres.latent_changes >= 10 and stats_end.engine.notes == 16
    y, _ = sf.read(tmp_path / "jack.wav", dtype="float32")
    assert np.abs(y).max() > 0.05 and np.abs(y).max() <= 1.0
    # Any underflow is answered by a wider margin; whether there are none depends on what else holds the
    # cores (bench_soak counts them and the JACK xruns, quiet and with a busy core).
    if stats_end.underflows:
        assert stats_end.near_misses > 0 and stats_end.buffer_ms_widest > stats_end.buffer_ms_base
    print(f"jack: {stats_end.underflows} underflows, {stats_end.device_xruns} JACK xruns")


def _stop_jack_under_serve(tmp_path, *, and_serve: bool) -> tuple[int, str, str]:
    """Start serve on a JACK dummy server, SIGTERM the server (and serve at once with ``and_serve``); returns
    serve's exit code, stdout and stderr (serve is killed if it is still there after 20 s)."""
    with jack_server(rate=48000, period=256, reinit_portaudio=False) as (name, jackd):
        env = dict(os.environ, JACK_DEFAULT_SERVER=name)
        serve = subprocess.Popen(
            [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(synthetic_bundle_path()), "--output",
             "sounddevice", "--device", "system", "--port", "0", "--voices", "2",
             "--record", str(tmp_path / "take.wav")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 90
            lines = []
            while time.monotonic() < deadline:
                line = serve.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if line.startswith("melsynth: output"):
                    break
            assert any("output 0: system" in x or "JACK" in x for x in lines), lines
            time.sleep(0.5)
            jackd.send_signal(signal.SIGTERM)
            if and_serve:
                serve.send_signal(signal.SIGTERM)
            jackd.wait(timeout=10)
            out, err = serve.communicate(timeout=20)
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()
    return serve.returncode, out, err


@pytest.mark.jack
def test_stopping_serve_right_after_its_jack_server_stopped_does_not_hang(tmp_path):
    # PortAudio hung forever in its exit handler, or aborted closing the stream, when serve was stopped
    # before it noticed that its JACK server had gone.
    code, out, err = _stop_jack_under_serve(tmp_path, and_serve=True)
    assert code in (0, 1), err
    assert "played" in out
    assert (tmp_path / "take.wav").exists()


@pytest.mark.jack
def test_jack_server_dying_mid_stream_ends_serve_cleanly(tmp_path):
    code, out, err = _stop_jack_under_serve(tmp_path, and_serve=False)
    assert code == 1
    assert "stopped" in err, err
    assert (tmp_path / "take.wav").exists()  # what was played is kept
    assert "played" in out
