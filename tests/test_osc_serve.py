"""``melsynth serve`` end to end: headless fallback to the null output with a recording, OSC in, the OSC log,
and Ctrl-C stopping cleanly with the figures of the run."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import OscClient, synthetic_bundle_path

REPO = Path(__file__).resolve().parents[1]


def test_serve_headless_plays_records_logs_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(synthetic_bundle_path()), "--port", "0",
         "--log-osc", "take.json", "--voices", "4", "--onset-ahead", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        lines = []
        port = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening for OSC on 127\.0\.0\.1:(\d+)", line)
            port = int(m.group(1)) if m else port
            if line.startswith("melsynth: output"):
                break
        assert port, lines
        # The start line names each margin, the onset one as asked (one block).
        m = re.search(r"at (\d+) Hz, (\d+)-sample blocks, .* ([\d.]+) ms for a note onto silence", lines[-1])
        assert m and float(m.group(3)) == pytest.approx(int(m.group(2)) / int(m.group(1)) * 1e3, abs=0.06), lines
        headless = "no audio output device" in lines[0]
        client = OscClient(port)
        client.send("/synth/note/on", 60, 100)
        client.send("/synth/preset", "dark")
        time.sleep(0.5)
        client.send("/synth/note/off", 60)
        client.send("/synth/note/on", 500)
        assert client.receive()[0] == "/synth/error"
        time.sleep(0.3)
        client.close()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # serve prints every thread's stack (faulthandler)
            time.sleep(2)
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"serve did not stop within 30 s of SIGINT; its threads:\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    figures = "".join(lines) + out
    assert re.search(r"played [\d.]+ s: 1 notes, \d+ underflows", figures), figures
    assert "3 messages, 1 errors, 0 dropped" in figures
    log = json.loads((tmp_path / "take.json").read_text())
    assert [e["address"] for e in log] == ["/synth/note/on", "/synth/preset", "/synth/note/off"]
    if headless:
        # A new name each run (tests/test_outputs.py::test_a_headless_serve_records_to_a_new_file_each_run).
        m = re.search(r"playing to the null output and recording to (melsynth-take-\d{8}-\d{6}(-\d+)?\.wav)$",
                      lines[0].strip())
        assert m, lines[0]
        y, rate = sf.read(tmp_path / m.group(1), dtype="float32")
        assert rate == 48000 and np.abs(y).max() > 0.01


def test_ctrl_c_stops_serve_even_when_started_with_sigint_ignored():
    # A background job of a script starts with SIGINT ignored, and Python then installs no Ctrl-C handler;
    # serve installs its own (the suite's own process came to ignore SIGINT, and serve once never stopped).
    from reliability_fixtures import serve_process

    with serve_process("--bundle", str(synthetic_bundle_path()), "--port", "0", "--voices", "2", "--output", "null",
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) as (proc, _, _):
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "melsynth: played" in out


def test_a_take_log_that_cannot_be_written_costs_neither_the_recording_nor_the_exit(tmp_path):
    # The log is written once the engine has stopped and the take is finished: a log whose name a folder has
    # taken meanwhile is an error (exit 1) naming where its entries are kept, and the recording is whole.
    from reliability_fixtures import serve_process

    take, log = tmp_path / "take.wav", tmp_path / "take.json"
    with serve_process("--bundle", str(synthetic_bundle_path()), "--port", "0", "--voices", "2", "--output", "null",
                       "--record", str(take), "--log-osc", str(log)) as (proc, port, _):
        client = OscClient(port)
        client.send("/synth/note/on", 60, 100)
        time.sleep(0.5)
        client.close()
        log.mkdir()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert f"recorded {take}" in out and "played" in out
    y, rate = sf.read(take, dtype="float32")
    assert rate == 48000 and np.abs(y).max() > 0.01
    kept = re.search(r"its 1 entries are kept, one JSON object a line, in (\S+)", err)
    assert kept, err
    assert json.loads(Path(kept.group(1)).read_text())["address"] == "/synth/note/on"


@pytest.mark.parametrize("flags, message", [
    (["--ahead", "0"], "--ahead must be an integer 1..64, got 0"),
    (["--onset-ahead", "9"], "--onset-ahead must be an integer 1..3 \\(--ahead\\), got 9"),
    (["--max-ahead", "99"], "--max-ahead must be an integer 3..64, got 99"),
    (["--idle-ahead", "0"], "--idle-ahead must be an integer 1..64, got 0"),
    (["--voices", "0"], "--voices must be an integer 1..256, got 0"),
    (["--samplerate", "0"], "--samplerate must be 8000..384000 Hz, got 0"),
    (["--blocksize", "8"], "--blocksize must be 16..8192, got 8"),
    (["--gain", "9"], "--gain 9.0 out of range 0..4"),
])
def test_a_bad_setting_is_named_by_the_flag_that_set_it(tmp_path, capsys, flags, message):
    from synth.cli import main

    take = tmp_path / "take.wav"
    code = main(["serve", "--bundle", str(synthetic_bundle_path()), "--port", "0", "--output", "null",
                 "--record", str(take), *flags])
    assert code == 1
    assert re.fullmatch(f"melsynth: error: {message}\n", capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # the recording opened before the engine is gone again
