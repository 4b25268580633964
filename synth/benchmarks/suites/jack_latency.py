"""Latency through JACK, measured from outside the engine: MIDI and OSC note-on -> first sample, and OSC
preset switches and latent jumps -> the first sample whose level shows the change.

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

Changes of a held note's timbre: the note rests on its sustain frame, where the engine's output is steady,
between the bundle's quietest and loudest preset (by their decoded sustain frames). Each trial sends
``/synth/preset`` (answered from the engine's timbre cache) or ``/synth/latent`` with the other preset's
latent plus noise of 1e-3 (a latent never decoded before: the engine decodes its tile, or the whole note)
from the quiet one to the loud one, and finds the first 128-sample block at whose end the level (RMS over
the last 16 ms, a few periods of the note) is 1.5 dB above the steady level before the send: up-steps only,
which such a level shows within a block.
The engine crossfades a new timbre over 6 frames in dB, so the first changed frame already moves the level
by a sixth of the presets' difference (the benchmark picks a pair at least 12 dB apart).

Usage: .venv/bin/python bench/bench_jack_latency.py [--trials N] [--ahead BLOCKS] [--onset-ahead BLOCKS] [--json]
       [--bundle DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from synth.benchmarks.common import emit, jack_server, resolve_bundle, serve_port

__all__ = ["run_jack_latency_bench"]

RATE, PERIOD = 48000, 256
NONZERO, LOUD = 1e-6, 0.01  # -40 dBFS
BLOCK = 128  # samples per block of the change detector
WINDOW = 6  # blocks of its level (16 ms, four periods of the note)
CHANGE_DB = 1.5


class Level:
    """The change detector's level: RMS over the last WINDOW blocks of BLOCK samples, one block at a time (the
    meter's callback and :func:`_detector_lag_ms` use the same one)."""

    def __init__(self) -> None:
        self._powers: list[float] = []

    def push(self, block: np.ndarray) -> float:
        """The level at the end of ``block`` (BLOCK samples)."""
        self._powers.append(float(np.mean(np.square(block, dtype=np.float64))))
        del self._powers[:-WINDOW]
        return float(np.sqrt(np.mean(self._powers)))


def changed(rms: float, reference: float) -> bool:
    """The level differs from the steady ``reference`` by more than CHANGE_DB."""
    return abs(20 * np.log10(max(rms, 1e-9) / reference)) > CHANGE_DB


def _detector_lag_ms(bundle, *, quiet: str, loud: str) -> float:
    """How long after the first changed sample the detector fires on the quiet -> loud switch of a held note,
    rendered offline (the engine's crossfade and the level's window both take time): what the change-trial
    figures hold beyond the change itself. ``bundle``: a loaded :class:`~synth.bundle.Bundle`."""
    from synth.control.messages import NoteOn, SetPreset
    from synth.render.note import make_engine

    at = 4 * RATE  # on the sustain frame, as in the trials
    outs = []
    for switch in (False, True):
        engine = make_engine(bundle, output_rate=RATE, initial_preset=quiet)
        engine.schedule(NoteOn(note=60, velocity=100), 0)
        if switch:
            engine.schedule(SetPreset(name=loud), at)
        outs.append(engine.render(at + RATE // 2))
    differs = np.flatnonzero(np.abs(outs[0] - outs[1]) > NONZERO)
    if differs.size == 0:
        raise RuntimeError(f"switching {quiet} -> {loud} changed nothing offline")
    level, before = Level(), []
    for k in range(0, len(outs[1]) - BLOCK + 1, BLOCK):
        rms = level.push(outs[1][k : k + BLOCK])
        if k < at:
            before.append(rms)
        elif changed(rms, float(np.median(before[-(RATE // 5 // BLOCK) :]))):
            return (k - int(differs[0])) / RATE * 1e3
    raise RuntimeError(f"the detector never saw the {quiet} -> {loud} switch offline")


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
        self.levels: list[tuple[int, float]] = []  # (first frame, RMS) of recent BLOCK-sample blocks
        self.reference: float | None = None  # steady RMS before a change trial
        self.changed: int | None = None
        self._level = Level()
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
        for k in range(0, frames - BLOCK + 1, BLOCK):
            # The level over the trailing WINDOW blocks (a few periods of the note: steady while it rests on
            # its sustain frame), at the end of each block.
            rms = self._level.push(buf[k : k + BLOCK])
            self.levels.append((start + k, rms))
            ref = self.reference
            if (ref is not None and self.changed is None and self.sent_frame is not None
                    and start + k >= self.sent_frame and changed(rms, ref)):
                self.changed = start + k
        del self.levels[:-400]

    def arm_change(self) -> bool:
        """Start a change trial now (the caller sends OSC right after): the reference is the median level of
        the last 0.2 s; False (no trial) when that level is not steady within half of CHANGE_DB.

        Half, not less: a frozen sustain frame still beats by up to 0.55 dB over 0.2 s (the default bundle's
        quiet preset, 2026-12-02), and with a gate of a third (0.5 dB) 30 of 40 trials were skipped. A level
        within 0.75 dB of its minimum is at most 0.75 dB above its median, half of CHANGE_DB short of a
        false trigger."""
        recent = np.array([rms for _, rms in self.levels[-(RATE // 5 // BLOCK) :]])
        if recent.size == 0 or recent.min() <= 0:
            return False
        spread = 20 * np.log10(recent.max() / recent.min())
        if spread > CHANGE_DB / 2:
            return False
        self.reference = float(np.median(recent))
        self.changed = None
        self.sent_frame = self.client.frame_time
        return True

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
    from synth.osc.packets import encode_message

    return encode_message(address, args)


def _level_pair(b) -> tuple[str, str, float]:
    """The loudest preset of the loaded bundle ``b`` by its decoded sustain frame's power and the quietest one
    within 30 dB of it (a quieter one is so close to silence that its level is noise), and their difference
    (dB)."""
    from synth.engine.timbre import make_timbre

    names = list(b.presets)
    mels = b.decoder(providers=["CPUExecutionProvider"]).decode(np.stack([b.presets[n].latent for n in names]))
    params = b.params
    db = [float(10 * np.log10(np.sum(10 ** ((params.db_min + make_timbre(m, params=params).sustain
                                            * (params.db_max - params.db_min)) / 10)))) for m in mels]
    loud = int(np.argmax(db))
    audible = [i for i in range(len(names)) if db[i] >= db[loud] - 30.0]
    quiet = min(audible, key=lambda i: db[i])
    if db[loud] - db[quiet] < 12.0:
        raise RuntimeError(f"no two presets of {b.path} are 12-30 dB apart: the change trials need them")
    return names[quiet], names[loud], db[loud] - db[quiet]


@dataclasses.dataclass(frozen=True)
class ChangePackets:
    """The OSC packets of the change trials, built before the meter starts (see :func:`_change_packets`)."""

    quiet: str
    loud: str
    apart_db: float
    back: bytes  # /synth/preset quiet
    to_loud: bytes  # /synth/preset loud
    jumps: tuple[bytes, ...]  # /synth/latent: the loud preset's latent, a little different each time
    detector_lag_ms: float  # see _detector_lag_ms


def _change_packets(bundle_path: Path, *, trials: int) -> ChangePackets:
    """Every packet of the change trials. Built before the meter's JACK client is active: building them (a
    bundle load, a decode of every preset, 20 packets of 2048 floats) holds this process's GIL for most of a
    second, which the meter's Python callback needs every 5.3 ms. Built between the note and the change
    trials, they cost 55-108 JACK xruns a run (56 in the run then in docs/BENCHMARKS.md), blamed on the meter and
    on serve's MIDI client after it (2026-12-02: all but 3 of 97 xruns of one run fell 0.63-0.73 s after the
    last note trial)."""
    from synth.bundle import load_bundle

    b = load_bundle(bundle_path)
    quiet, loud, apart = _level_pair(b)
    latent = np.asarray(b.presets[loud].latent, dtype=np.float32).reshape(-1)
    rng = np.random.default_rng(0)
    jumps = tuple(_osc("/synth/latent", *[float(v) for v in latent + rng.normal(0.0, 1e-3, latent.size).astype(np.float32)])
                  for _ in range(trials))
    return ChangePackets(quiet=quiet, loud=loud, apart_db=apart, back=_osc("/synth/preset", quiet),
                         to_loud=_osc("/synth/preset", loud), jumps=jumps,
                         detector_lag_ms=_detector_lag_ms(b, quiet=quiet, loud=loud))


def _change_trials(meter: Meter, sock, port: int, packets: ChangePackets, *, trials: int) -> dict:
    """Preset switches and latent jumps of a held note -> the first block whose level shows them (ms)."""
    quiet, loud, apart = packets.quiet, packets.loud, packets.apart_db
    back, to_loud, jumps = packets.back, packets.to_loud, packets.jumps
    target = ("127.0.0.1", port)
    sock.sendto(back, target)
    sock.sendto(_osc("/synth/note/on", 60, 100), target)
    time.sleep(3.6)  # past the hold part: the note rests on its sustain frame
    figures: dict[str, list[float]] = {"preset": [], "latent": []}
    missed = {"preset": 0, "latent": 0}
    for i in range(2 * trials):
        kind = "preset" if i % 2 == 0 else "latent"
        sock.sendto(back, target)  # back to the quiet one (cached: no decode)
        packet = to_loud if kind == "preset" else jumps[i // 2]
        time.sleep(0.35)  # the crossfade is long over: steady again
        if not meter.arm_change():
            missed[kind] += 1
            continue
        sock.sendto(packet, target)
        deadline = time.monotonic() + 1.0
        while meter.changed is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if meter.changed is None or meter.sent_frame is None:
            missed[kind] += 1
        else:
            figures[kind].append((meter.changed - meter.sent_frame) / RATE * 1e3)
        time.sleep(0.1)
    sock.sendto(_osc("/synth/note/off", 60), target)
    meter.reference = None
    return {"figures": figures, "missed": missed, "pair": [quiet, loud], "apart_db": round(apart, 1),
            "detector_lag_ms": round(packets.detector_lag_ms, 1)}


def run_jack_latency_bench(*, trials: int = 20, ahead: int = 3, max_ahead: int | None = None,
                           onset: int | None = None, bundle: str | None = None, change_trials: bool = True) -> dict:
    """MIDI and OSC note-on -> first sample, and (``change_trials``) OSC preset switches and latent jumps ->
    first changed block, through a JACK dummy server; JSON-ready figures (ms)."""
    path, which = resolve_bundle(bundle)
    with jack_server(rate=RATE, period=PERIOD) as server:
        if server is None:
            return {"jack_latency_skipped": "jackd (Debian jackd2) is not installed or did not start"}
        name = server.name
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", PYTHONUNBUFFERED="1")
        os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        args = [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(path), "--port", "0", "--output",
                "sounddevice", "--device", "system", "--midi", "--ahead", str(ahead), "--max-ahead", str(max_ahead or ahead),
                *(["--onset-ahead", str(onset)] if onset is not None else [])]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        meter = None
        changes = None
        blamed_notes: dict[str, int] = {}
        blamed_all: dict[str, int] = {}
        try:
            port = serve_port(proc)
            # Everything the change trials send, built while no Python JACK client of ours is active.
            packets = _change_packets(path, trials=trials) if change_trials else None
            meter = Meter()
            meter.client.activate()
            outs = [p.name for p in meter.client.get_ports(is_audio=True, is_output=True)
                    if not p.name.startswith(("system:", "meter:"))]
            if not outs:
                raise RuntimeError("serve's JACK output port was not found")
            meter.client.connect(outs[0], "meter:in_1")
            meter.client.connect("meter:midi_out", "melsynth:midi_in")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # Made before any trial: building the first packet imported the OSC encoder after the send frame
            # was read, which counted ~40 ms of the benchmark's own import against the engine's first note.
            note_on = _osc("/synth/note/on", 60, 100)
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
                    sock.sendto(note_on, ("127.0.0.1", port))
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
            blamed_notes = dict(server.late_clients())  # jackd's xruns, by the client it blamed, so far
            changes = _change_trials(meter, sock, port, packets, trials=trials) if packets is not None else None
            blamed_all = dict(server.late_clients())
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
                "max": round(float(v.max()), 2), "min": round(float(v.min()), 2),
                "values": [round(float(x), 2) for x in v]}  # in trial order: where an outlier fell

    result = {"jack_latency_bundle": which, "jack_rate": RATE, "jack_period": PERIOD, "jack_ahead_blocks": ahead,
              "jack_max_ahead_blocks": max_ahead or ahead, "jack_onset_blocks": onset if onset is not None else max(1, ahead - 1),  # serve's own default
              "jack_trials": trials, "jack_missed": missed,
              # xruns jackd blamed on each client (serve's is "PortAudio", this bench's "meter"): during the note
              # trials, and during the preset / latent change trials after them
              "jack_xruns_blamed_notes": blamed_notes,
              "jack_xruns_blamed_changes": {k: v - blamed_notes.get(k, 0) for k, v in blamed_all.items()
                                            if v - blamed_notes.get(k, 0)},
              "serve_summary": [line for line in (out or "").splitlines() if line.startswith("melsynth: played")]}
    for kind in ("midi", "osc"):
        for key in ("nonzero", "loud"):
            result[f"jack_{kind}_note_{key}_ms"] = stats(figures[kind][key])
    if changes is not None:
        for kind in ("preset", "latent"):
            result[f"jack_osc_{kind}_change_ms"] = stats(changes["figures"][kind])
        result["jack_change_missed"] = changes["missed"]
        result["jack_change_presets"] = changes["pair"]
        result["jack_change_presets_apart_db"] = changes["apart_db"]
        result["jack_change_detector_lag_ms"] = changes["detector_lag_ms"]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="notes of each kind (default 20)")
    parser.add_argument("--ahead", type=int, default=3, help="serve's --ahead, default 3")
    parser.add_argument("--max-ahead", type=int, default=None, help="serve's --max-ahead (default: --ahead, fixed)")
    parser.add_argument("--onset-ahead", type=int, default=None, help="serve's --onset-ahead (default: serve's, --ahead minus 1)")
    parser.add_argument("--no-changes", action="store_true", help="notes only, no preset/latent change trials")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args(argv)
    emit(run_jack_latency_bench(trials=args.trials, ahead=args.ahead, max_ahead=args.max_ahead,
                                onset=args.onset_ahead, bundle=args.bundle,
                                change_trials=not args.no_changes), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
