"""MIDI through a real MIDI path: a JACK dummy server's MIDI ports, a sender client of the test's own, and
`melsynth serve --midi` recording what it plays; the take is checked for pitch (bend included), sustain,
release and a macro's effect, and bad MIDI and a lost port change nothing else."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import OscClient, cents, f0_of, midi_hz, synthetic_bundle_path
from jack_fixtures import jack_server
from reliability_fixtures import serve_process, status_of

from synth.benchmarks.pitch import harmonic_error_cents

pytest.importorskip("rtmidi")
RATE = 48000


SENDER = r"""
import json, sys, rtmidi
name = sys.argv[1]
out = None
def open_port():
    global out
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name)
    out.open_virtual_port("out")
open_port()
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "unplug":
        out.close_port(); out.delete(); out = None
    elif line.strip() == "plug":
        open_port()
    else:
        out.send_message(json.loads(line))
    print("ok", flush=True)
"""


class Sender:
    """A MIDI sender client in its own process (libjack keeps per-process state that one JACK server per
    test would otherwise trip over): ``send(bytes)``, ``unplug()``, ``plug()``, ``close()``."""

    def __init__(self, name: str = "sender") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SENDER, name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def _say(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "ok"

    def send_message(self, message: list[int]) -> None:
        self._say(json.dumps(message))

    def unplug(self) -> None:
        self._say("unplug")

    def plug(self) -> None:
        self._say("plug")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def connect(src: str, dst: str, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while subprocess.run(["jack_connect", src, dst], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, f"jack_connect {src} {dst} failed"
        time.sleep(0.1)


def wait_line(proc, pattern: str, *, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if re.search(pattern, line):
            return line
    raise AssertionError(f"serve never printed {pattern!r}")


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0


@pytest.mark.jack
def test_a_midi_performance_sounds_as_played_and_renders_again(tmp_path):
    take, log = tmp_path / "take.wav", tmp_path / "take.json"
    with jack_server(rate=RATE, period=256, reinit_portaudio=False) as (name, _):
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        args = ["--bundle", str(synthetic_bundle_path()), "--port", "0", "--output", "null", "--record", str(take),
                "--midi", "--log-osc", str(log)]
        with serve_process(*args, env=env) as (proc, port, lines):
            assert any("MIDI in on melsynth:midi_in (JACK)" in line for line in lines), lines
            out = Sender()
            connect("sender:out", "melsynth:midi_in")
            client = OscClient(port)
            status_of(client)
            marks = {}

            def at(label):
                marks[label] = status_of(client)["notes"], time.monotonic()

            out.send_message([0x90, 60, 100])  # 0.0 s: C4
            time.sleep(1.0)
            out.send_message([0xE0, 0x7F, 0x7F])  # 1.0 s: bend up a whole tone (+2, the default range)
            time.sleep(1.0)
            out.send_message([0xE0, 0, 0x40])  # 2.0 s: back to the centre
            out.send_message([0xB0, 64, 127])  # sustain down
            out.send_message([0x80, 60, 0])  # key up, but the pedal holds it
            time.sleep(1.0)
            # Bad MIDI in the middle of it: sysex, a clock, an unmapped CC, a note far out of range.
            for bad in ([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], [0xF8], [0xB0, 90, 1], [0x90, 10, 100]):
                out.send_message(bad)
            time.sleep(0.5)
            out.send_message([0xB0, 64, 0])  # 3.5 s: pedal up: the note releases
            time.sleep(2.5)
            at("released")
            out.send_message([0xB0, 1, 64])  # macro 0 at the middle, then a held note
            out.send_message([0x90, 60, 100])
            time.sleep(1.2)
            out.send_message([0xB0, 1, 127])  # macro 0 to +3 standard deviations while it sounds
            time.sleep(1.2)
            out.send_message([0x80, 60, 0])
            # The sender's "ok" says only that rtmidi queued the message: it reaches JACK in the sender's
            # next process cycle and serve in one of its own, which a loaded machine can hold off for longer
            # than any fixed wait (this key-up, sent 0.3 s before serve was stopped, once never arrived:
            # 12 messages, 7 applied). Messages of one port arrive in order, so once the note it releases has
            # gone silent every message has been handled; a key-up that never arrives still fails here.
            deadline = time.monotonic() + 20
            while (status := status_of(client))["voices"]:
                assert time.monotonic() < deadline, ("the last key-up never arrived", status)
                time.sleep(0.1)
            client.close()
            out.close()
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=30)
    summary = [line for line in stdout.splitlines() if "MIDI melsynth:midi_in" in line]
    assert summary, stdout
    counts = re.search(r"(\d+) messages, (\d+) applied, (\d+) ignored, (\d+) bad", summary[0])
    messages, applied, ignored, bad = (int(g) for g in counts.groups())
    # 14 sent; the clock never reaches us (the port filters timing messages). Ignored: the pedal going down,
    # the key released under it, sysex, CC 90. Bad: note 10 (out of range). The rest applied.
    assert (messages, applied, ignored, bad) == (13, 8, 4, 1), summary
    # Failed once in a full suite (notes 1: the second note-on, applied by the MIDI port, never started a
    # voice; 2026-12-02, not reproduced in 8 runs alone, 4 of them beside a busy loop): say what serve said.
    assert status["notes"] == 2 and marks["released"][0] == 1, (status, marks, stderr[-3000:])

    y, rate = sf.read(take, dtype="float32")
    onset = int(np.argmax(np.abs(y) > 1e-4))
    sec = lambda t: onset + int(t * rate)  # noqa: E731

    def pitch(a, b):
        return f0_of(y[sec(a) : sec(b)], rate=rate)

    assert abs(cents(pitch(0.3, 0.9), midi_hz(60))) < 15
    assert abs(cents(pitch(1.3, 1.9), midi_hz(62))) < 15  # bent up a whole tone
    assert abs(cents(pitch(2.3, 2.9), midi_hz(60))) < 15  # back at the centre
    # Key up at 2.0 s, pedal up at 3.5 s: still sounding in between, silent a while after.
    assert rms(y[sec(2.6) : sec(3.3)]) > 0.2 * rms(y[sec(0.3) : sec(0.9)])
    assert rms(y[sec(5.3) : sec(5.9)]) < 1e-3
    # The macro changed the sound of the held note (its spectrum), not its pitch.
    second = int(np.argmax(np.abs(y[sec(5.9) :]) > 1e-4)) + sec(5.9)
    a, b = y[second + int(0.4 * rate) : second + int(1.1 * rate)], y[second + int(1.6 * rate) : second + int(2.3 * rate)]
    sa, sb = (np.abs(np.fft.rfft(v[: 16384] * np.hanning(16384))) for v in (a, b))
    assert np.abs(sa / sa.sum() - sb / sb.sum()).sum() > 0.1
    # (+3 deviations of this synthetic bundle's first macro make the 7th harmonic the loudest: the tuning of
    # the harmonics is checked, not which one is the strongest.)
    assert abs(harmonic_error_cents(b, rate=rate, f0=midi_hz(60))) < 15

    # The take's log is a score in the engine's vocabulary, MIDI included: it renders again offline.
    score = json.loads(log.read_text())
    addresses = {e["address"] for e in score}
    assert {"/synth/note/on", "/synth/note/off", "/synth/bend", "/synth/macro"} <= addresses
    times = [e["time"] for e in score]
    assert times == sorted(times)
    rendered = subprocess.run([sys.executable, "-m", "synth.cli", "render", "--bundle", str(synthetic_bundle_path()),
                               "--score", str(log), "--out", str(tmp_path / "again.wav")],
                              capture_output=True, text=True, timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    again, _ = sf.read(tmp_path / "again.wav", dtype="float32")
    start = int(np.argmax(np.abs(again) > 1e-4))
    assert abs(cents(f0_of(again[start + int(1.3 * RATE) : start + int(1.9 * RATE)], rate=RATE), midi_hz(62))) < 15


@pytest.mark.jack
def test_an_opened_port_that_goes_away_is_reported_and_reopened(tmp_path):
    with jack_server(rate=RATE, period=256, reinit_portaudio=False) as (name, _):
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        keyboard = Sender("keyboard")
        args = ["--bundle", str(synthetic_bundle_path()), "--port", "0", "--output", "null", "--midi", "keyboard"]
        with serve_process(*args, env=env) as (proc, port, lines):
            assert any("MIDI in on keyboard:out" in line for line in lines), lines
            keyboard.send_message([0x90, 60, 100])
            client = OscClient(port)
            deadline = time.monotonic() + 10
            while status_of(client)["notes"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            keyboard.unplug()
            wait_line(proc, "MIDI port keyboard:out went away")
            keyboard.plug()
            wait_line(proc, "MIDI port keyboard:out is back")
            keyboard.send_message([0x90, 64, 100])
            deadline = time.monotonic() + 10
            while status_of(client)["notes"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            client.close()
            keyboard.close()
            proc.terminate()
            stdout, _ = proc.communicate(timeout=30)
    assert re.search(r"port lost 1 times, reopened 1", stdout), stdout


@pytest.mark.jack
def test_messages_arrive_whole_however_long_their_handling_takes():
    """The cause of a flake of the performance test (the note out of range counted as ignored, not bad): the
    messages were handled in JACK's process callback, which waits for the GIL; when that ran past the JACK
    cycle, the sender's next cycle rewrote the port buffer rtmidi was reading, and the note arrived as a copy
    of the unmapped CC before it. Here each message takes 10 ms to handle (two JACK cycles of 5.3 ms), as
    when the GIL is held that long elsewhere: every message still arrives as it was sent."""
    from synth.control.spec import ControlSpec
    from synth.midi.port import MidiInput
    from synth.midi.translate import MidiTranslator

    seen = []

    class SlowTranslator(MidiTranslator):
        def translate(self, message):
            seen.append(list(message))
            time.sleep(0.010)
            return super().translate(message)

    burst = [[0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7], [0xF8], [0xB0, 90, 1], [0x90, 10, 100], [0x90, 60, 100]]
    spec = ControlSpec(base_pitch=60, latent_shape=(4,), presets=("a", "b"), macro_count=1)
    with jack_server(rate=RATE, period=256, reinit_portaudio=False):
        midi = MidiInput(lambda command, **kw: 0, SlowTranslator(spec))
        midi.start()
        try:
            out = Sender()
            connect("sender:out", "melsynth:midi_in")
            for _ in range(5):
                for message in burst:
                    out.send_message(message)
            deadline = time.monotonic() + 10
            while len(seen) < 20 and time.monotonic() < deadline:
                time.sleep(0.05)
            out.close()
        finally:
            midi.stop()
    # The clock never reaches us (the port filters timing messages).
    assert seen == [m for m in burst if m != [0xF8]] * 5
    c = midi.counters()
    assert (c["midi_messages"], c["midi_applied"], c["midi_ignored"], c["midi_errors"]) == (20, 5, 10, 5)
