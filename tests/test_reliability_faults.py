"""Faults while playing: a model that decodes to NaN, an unwritable recording path, the audio server dying.

tests/test_audio_out.py covers an unwritable recording path under a plain file and a JACK server stopped
with SIGTERM; tests/test_engine.py covers a decode fault on the offline engine. Here: a real ONNX decoder
that outputs NaN, played live over OSC through `melsynth serve`; `--record /proc/.../x.wav` (unwritable
even for root); a JACK server killed outright (SIGKILL) under a running `melsynth serve`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import OscClient, cents, f0_of, midi_hz, synthetic_bundle_path
from jack_fixtures import jack_server
from reliability_fixtures import NAN_THRESHOLD, REPO, nan_bundle, serve_process, status_of

RATE = 48000


def test_nan_from_the_model_keeps_the_previous_sound_and_is_reported(tmp_path):
    bundle = nan_bundle(tmp_path / "nan-bundle", synthetic_bundle_path())
    take = tmp_path / "take.wav"
    with serve_process("--bundle", str(bundle), "--output", "null", "--port", "0", "--record", str(take)) as (
        proc, port, _
    ):
        client = OscClient(port)
        status_of(client)
        client.send("/synth/note/on", 60, 100)
        time.sleep(0.8)
        client.send("/synth/latent/set", 7, NAN_THRESHOLD * 5)  # this latent decodes to NaN
        time.sleep(0.8)
        status = status_of(client)
        client.send("/synth/preset", "dark")  # a good latent after the bad one is still applied
        time.sleep(0.5)
        after = status_of(client)
        client.send("/synth/note/off", 60)
        client.close()
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert status["decode_errors"] == 1 and status["errors"] == 0
    assert after["decode_errors"] == 1 and after["preset"] == "dark"
    assert "1 decodes failed; the previous sound was kept" in out, out
    y, _ = sf.read(take, dtype="float32")
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    first = int(np.flatnonzero(np.abs(y) > 1e-3)[0])
    before = y[first + int(0.3 * RATE) : first + int(0.7 * RATE)]
    during = y[first + int(0.9 * RATE) : first + int(1.3 * RATE)]
    # The same note goes on sounding at the same pitch and level through the failed decode.
    rms = [float(np.sqrt(np.mean(np.square(s, dtype=np.float64)))) for s in (before, during)]
    assert rms[1] > 0.5 * rms[0] > 0.002, rms
    assert abs(cents(f0_of(during, rate=RATE), midi_hz(60))) < 10


def test_unwritable_recording_path_is_refused_before_any_audio():
    target = "/proc/melsynth-nonexistent/dir/x.wav"  # not creatable, even for root
    proc = subprocess.run(
        [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(synthetic_bundle_path()), "--output", "null",
         "--port", "0", "--record", target],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("melsynth: error: cannot write the recording " + target), proc.stderr
    assert "melsynth: output" not in proc.stdout and "listening" not in proc.stdout  # nothing started


@pytest.mark.jack
def test_jack_server_killed_under_serve_ends_it_with_a_message(tmp_path):
    """A real crash of the audio server (SIGKILL, no goodbye to its clients): serve must end, not hang,
    and say why; what was played is kept."""
    with jack_server(rate=48000, period=256, reinit_portaudio=False) as (name, jackd):
        env = dict(os.environ, JACK_DEFAULT_SERVER=name)
        take = tmp_path / "take.wav"
        with serve_process("--bundle", str(synthetic_bundle_path()), "--output", "sounddevice", "--device", "system",
                           "--port", "0", "--record", str(take), env=env) as (proc, port, _):
            client = OscClient(port)
            client.send("/synth/note/on", 60, 100)
            time.sleep(0.5)
            client.close()
            jackd.send_signal(signal.SIGKILL)
            jackd.wait(timeout=10)
            killed_at = time.monotonic()
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"serve still running 30 s after the JACK server died: {out} {err}")
            took = time.monotonic() - killed_at
    print(f"serve ended {took:.1f} s after the JACK server was killed (exit {proc.returncode}): {err.strip()}")
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert "melsynth: error:" in err and "stopped" in err, err
    assert take.exists()
