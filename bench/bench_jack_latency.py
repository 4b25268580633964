"""Note latency through JACK, measured from outside the engine: MIDI note-on and OSC note-on -> first sample.

A JACK dummy server at 48 kHz, 256-frame periods runs `melsynth serve --output sounddevice --device system
--midi`. A JACK client of the benchmark's own ("meter") records serve's output port and has a MIDI output
connected to serve's MIDI input. For a MIDI trial, meter's process callback writes the note-on at offset 0
of a cycle, so the note is sent at a known JACK frame; for an OSC trial, the benchmark sends the UDP packet
and reads JACK's frame clock just before. Either way the latency is (the frame of the first output sample
above a threshold) - (the frame the note was sent at), in ms: everything between a key press reaching JACK
and sound leaving it (MIDI or OSC delivery, the wait for the engine's next 7.8 ms frame, the engine's margin,
PortAudio's buffer, JACK's own period). Two thresholds: the first non-zero sample (|x| > 1e-6) and the first
above -40 dBFS (which includes the preset's own attack). Trials alternate MIDI and OSC, with the note
released and silence waited for in between.

Usage: .venv/bin/python bench/bench_jack_latency.py [--trials N] [--ahead BLOCKS] [--json] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, jack_server, resolve_bundle, serve_port  # noqa: E402

__all__ = ["run_jack_latency_bench"]

RATE, PERIOD = 48000, 256
NONZERO, LOUD = 1e-6, 0.01  # -40 dBFS


class Meter:
    """The measuring JACK client: one audio input (serve's output), one MIDI output (serve's input)."""

    def __init__(self) -> None:
        import jack

        self.client = jack.Client("meter", no_start_server=True)
        self.inport = self.client.inports.register("in_1")
        self.midi_out = self.client.midi_outports.register("midi_out")
        self._pending: bytes | None = None
        self.sent_frame: int | None = None
        self.first: dict[str, int | None] = {"nonzero": None, "loud": None}
        self.silent_frames = 0
        self._lock = threading.Lock()
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        start = self.client.last_frame_time
        self.midi_out.clear_buffer()
        if self._pending is not None:
            self.midi_out.write_midi_event(0, self._pending)
            self.sent_frame, self._pending = start, None
        buf = self.inport.get_array()
        loud = np.abs(buf)
        if self.sent_frame is not None:
            for key, level in (("nonzero", NONZERO), ("loud", LOUD)):
                if self.first[key] is None:
                    hits = np.flatnonzero(loud > level)
                    if hits.size:
                        self.first[key] = start + int(hits[0])
        self.silent_frames = self.silent_frames + frames if loud.max() <= NONZERO else 0

    def arm(self, *, midi: bytes | None = None) -> None:
        """Start a trial: a MIDI message to send at the next cycle, or None (the caller sends OSC now)."""
        self.first = {"nonzero": None, "loud": None}
        if midi is None:
            self.sent_frame = self.client.frame_time
        else:
            self.sent_frame = None
            self._pending = midi

    def send_now(self, midi: bytes) -> None:
        self._pending = midi


def _osc(address: str, *args) -> bytes:
    from synth.osc.replies import build_message

    return build_message(address, list(args))


def run_jack_latency_bench(*, trials: int = 20, ahead: int = 3, max_ahead: int | None = None,
                           bundle: str | None = None) -> dict:
    """MIDI and OSC note-on -> first sample through a JACK dummy server; JSON-ready figures (ms)."""
    path, which = resolve_bundle(bundle)
    with jack_server(rate=RATE, period=PERIOD) as name:
        if name is None:
            return {"jack_latency_skipped": "jackd (Debian jackd2) is not installed or did not start"}
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", PYTHONUNBUFFERED="1")
        os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        args = [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(path), "--port", "0", "--output",
                "sounddevice", "--device", "system", "--midi", "--ahead", str(ahead), "--max-ahead", str(max_ahead or ahead)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        meter = None
        try:
            port = serve_port(proc)
            meter = Meter()
            meter.client.activate()
            outs = [p.name for p in meter.client.get_ports(is_audio=True, is_output=True)
                    if not p.name.startswith(("system:", "meter:"))]
            if not outs:
                raise RuntimeError("serve's JACK output port was not found")
            meter.client.connect(outs[0], "meter:in_1")
            meter.client.connect("meter:midi_out", "melsynth:midi_in")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            time.sleep(8.0)  # the start-up decodes (presets, macro slopes) are not what a note costs
            figures: dict[str, dict[str, list[float]]] = {k: {"nonzero": [], "loud": []} for k in ("midi", "osc")}
            missed = {"midi": 0, "osc": 0}
            for i in range(2 * trials):
                kind = "midi" if i % 2 == 0 else "osc"
                deadline = time.monotonic() + 5.0
                while meter.silent_frames < RATE // 10 and time.monotonic() < deadline:
                    time.sleep(0.02)
                if kind == "midi":
                    meter.arm(midi=bytes([0x90, 60, 100]))
                else:
                    meter.arm()
                    sock.sendto(_osc("/synth/note/on", 60, 100), ("127.0.0.1", port))
                deadline = time.monotonic() + 2.0
                while meter.first["loud"] is None and time.monotonic() < deadline:
                    time.sleep(0.005)
                sent = meter.sent_frame
                for key in ("nonzero", "loud"):
                    if meter.first[key] is None or sent is None:
                        missed[kind] += key == "loud"
                        continue
                    figures[kind][key].append((meter.first[key] - sent) / RATE * 1e3)
                time.sleep(0.2)
                if kind == "midi":
                    meter.send_now(bytes([0x80, 60, 0]))
                else:
                    sock.sendto(_osc("/synth/note/off", 60), ("127.0.0.1", port))
            sock.close()
        finally:
            if meter is not None:
                meter.client.deactivate()
                meter.client.close()
            if proc.poll() is None:
                proc.terminate()
            out, err = proc.communicate(timeout=30)

    def stats(values: list[float]) -> dict:
        if not values:
            return {"n": 0}
        v = np.asarray(values)
        return {"n": len(v), "p50": round(float(np.percentile(v, 50)), 2), "p99": round(float(np.percentile(v, 99)), 2),
                "max": round(float(v.max()), 2), "min": round(float(v.min()), 2)}

    result = {"jack_latency_bundle": which, "jack_rate": RATE, "jack_period": PERIOD, "jack_ahead_blocks": ahead,
              "jack_max_ahead_blocks": max_ahead or ahead,
              "jack_trials": trials, "jack_missed": missed,
              "serve_summary": [line for line in (out or "").splitlines() if line.startswith("melsynth: played")]}
    for kind in ("midi", "osc"):
        for key in ("nonzero", "loud"):
            result[f"jack_{kind}_note_{key}_ms"] = stats(figures[kind][key])
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="notes of each kind (default 20)")
    parser.add_argument("--ahead", type=int, default=3, help="serve's --ahead, default 3")
    parser.add_argument("--max-ahead", type=int, default=None, help="serve's --max-ahead (default: --ahead, fixed)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args(argv)
    emit(run_jack_latency_bench(trials=args.trials, ahead=args.ahead, max_ahead=args.max_ahead, bundle=args.bundle),
         as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
