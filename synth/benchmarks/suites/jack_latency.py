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

Changes of a held note's timbre: the note loops its sustain, and each trial switches it between two presets
of the bundle. The engine brings every timbre to one loudness (:mod:`synth.engine.loudness`), so a change
of timbre is no change of overall level: the detector listens to one frequency band instead, the band and
pair of presets where, after the engine's loudness gains, the second is loudest above the first (at least
``MIN_APART_DB``; :func:`_change_pairs`, from the decoded sustain loops). Each trial sends ``/synth/preset``
(answered from the engine's timbre cache) or ``/synth/latent`` with the other preset's latent plus noise of
1e-3 (a latent never decoded before: the engine decodes its tile, or the whole note) from the quiet one to
the loud one, and finds the first 128-sample block at whose end the band's level (a band-pass filter that
keeps its state across JACK periods, RMS over the last 16 ms) is ``CHANGE_DB`` above the highest it was
over the 0.2 s before the send: up-steps only. A trial starts only when that level was steady (within
``STEADY_DB`` over those 0.2 s). The engine crossfades a new timbre over 6 frames in dB, so the first
changed frame already moves the band by a sixth of the two presets' difference there.
:func:`_offline_switch` runs the very same detector on the switch rendered offline.

Usage: .venv/bin/python bench/bench_jack_latency.py [--trials N] [--ahead BLOCKS] [--onset-ahead BLOCKS] [--json]
       [--bundle DIR] [--no-changes] [--method NAME]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

from synth.benchmarks.common import emit, jack_server, resolve_bundle, serve_port
from synth.inversion.base import DEFAULT_METHOD, METHODS

__all__ = ["run_jack_latency_bench"]

RATE, PERIOD = 48000, 256
NONZERO, LOUD = 1e-6, 0.01  # -40 dBFS
BLOCK = 128  # samples per block of the change detector
WINDOW = 6  # blocks of its level (16 ms, four periods of the note)
CHANGE_DB = 6.0  # a change: the band's level this far above the highest of the 0.2 s before
STEADY_DB = 3.0  # a trial starts only when the band's level spread less than this over those 0.2 s
STEADY_BLOCKS = RATE // 5 // BLOCK  # 0.2 s of levels
MIN_APART_DB = 12.0  # the least difference in the band between the two presets (after the loudness gains)
BAND_ORDER = 4  # Butterworth band-pass: 8 poles, 24 dB an octave on each side


@njit(cache=True, nogil=True)
def _band_level(audio, first, count, sos, state, powers, slot, filled):  # pragma: no cover - numba
    """The band's RMS over the last ``filled`` blocks, after ``audio[first : first + count]``: the block
    filtered through the second-order sections ``sos`` (transposed direct form II), carrying ``state``
    ((sections, 2), float64) from one call to the next, its mean power stored at ``powers[slot]``.
    Allocates nothing."""
    total = 0.0
    for n in range(first, first + count):
        x = float(audio[n])
        for k in range(sos.shape[0]):
            y = sos[k, 0] * x + state[k, 0]
            state[k, 0] = sos[k, 1] * x - sos[k, 4] * y + state[k, 1]
            state[k, 1] = sos[k, 2] * x - sos[k, 5] * y
            x = y
        total += x * x
    powers[slot] = total / count
    mean = 0.0
    for k in range(powers.shape[0]):
        mean += powers[k]
    return math.sqrt(mean / filled)


@njit(cache=True, nogil=True)
def _first_above(block, level):  # pragma: no cover - numba
    """Index of the first sample of ``block`` with ``|x| > level``, -1 when none."""
    for n in range(block.shape[0]):
        if abs(block[n]) > level:
            return n
    return -1


class BandLevel:
    """The change detector's level: RMS over the last WINDOW blocks of BLOCK samples of the audio band-passed
    to ``band`` (Hz), one block at a time, the filter's state kept from block to block (the meter's callback
    and :func:`_offline_switch` use the same one). Nothing is allocated per block."""

    def __init__(self, band: tuple[float, float]) -> None:
        from scipy.signal import butter

        self.band = (float(band[0]), float(band[1]))
        self._sos = np.ascontiguousarray(butter(BAND_ORDER, self.band, btype="bandpass", fs=RATE, output="sos"),
                                         dtype=np.float64)
        self._state = np.zeros((self._sos.shape[0], 2), dtype=np.float64)
        self._powers = np.zeros(WINDOW, dtype=np.float64)
        self._count = 0
        _band_level(np.zeros(BLOCK, dtype=np.float32), 0, BLOCK, self._sos, np.zeros_like(self._state),
                    np.zeros_like(self._powers), 0, 1)  # compiled now

    def push(self, audio: np.ndarray, first: int = 0) -> float:
        """The band's level at the end of the block ``audio[first : first + BLOCK]`` (float32)."""
        self._count += 1
        # (entries not yet filled are 0)
        return _band_level(audio, first, BLOCK, self._sos, self._state, self._powers, (self._count - 1) % WINDOW,
                           min(self._count, WINDOW))


def steady_reference(recent: np.ndarray) -> float | None:
    """The level a change is measured from: the highest of ``recent`` (the band's levels over the 0.2 s before
    the send), None when they spread more than STEADY_DB (no trial) or hold silence."""
    if recent.size < STEADY_BLOCKS or recent.min() <= 0:
        return None
    if 20 * np.log10(recent.max() / recent.min()) > STEADY_DB:
        return None
    return float(recent.max())


def changed(rms: float, reference: float) -> bool:
    """The band's level is CHANGE_DB above the ``reference`` (up-steps only)."""
    return rms > reference * 10 ** (CHANGE_DB / 20)


@dataclasses.dataclass(frozen=True)
class OfflineSwitch:
    """The detector on the quiet -> loud switch rendered offline (see :func:`_offline_switch`)."""

    lag_ms: float  # from the first changed sample to the block where the detector fires
    step_db: float  # the band's level 0.2-0.4 s after the switch over its level in the 0.2 s before
    steady_db: float  # the band's level spread over the 0.2 s before the switch


def _offline_switch(bundle, *, quiet: str, loud: str, band: tuple[float, float]) -> OfflineSwitch:
    """How long after the first changed sample the detector fires on the quiet -> loud switch of a held note,
    rendered offline (the engine's crossfade and the level's window both take time): what the change-trial
    figures hold beyond the change itself; and how far the band's level steps there. ``bundle``: a loaded
    :class:`~synth.bundle.Bundle`.

    The first changed sample is the new timbre's loudness gain: a voice applies it from the frame the change
    reaches, to audio its inverter made from frames before (the harmonic method's output lags its frames by
    25 ms), so the lag includes the inverter's latency."""
    from synth.control.messages import NoteOn, SetPreset
    from synth.render.note import make_engine

    at = 4 * RATE  # in the sustain loop, as in the trials
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
    level = BandLevel(band)
    levels = np.array([level.push(outs[1], k) for k in range(0, len(outs[1]) - BLOCK + 1, BLOCK)])
    first_after = at // BLOCK  # the first block starting at the switch
    recent = levels[first_after - STEADY_BLOCKS : first_after]
    reference = steady_reference(recent)
    spread = float(20 * np.log10(recent.max() / max(recent.min(), 1e-30)))
    if reference is None:
        raise RuntimeError(f"{quiet}'s level in {band[0]:.0f}-{band[1]:.0f} Hz is not steady offline "
                           f"({spread:.1f} dB over 0.2 s)")
    after = levels[first_after + STEADY_BLOCKS : first_after + 2 * STEADY_BLOCKS]
    step = float(20 * np.log10(np.median(after) / np.median(recent)))
    for b in range(first_after, len(levels)):
        if changed(float(levels[b]), reference):
            return OfflineSwitch(lag_ms=(b * BLOCK - int(differs[0])) / RATE * 1e3, step_db=step, steady_db=spread)
    raise RuntimeError(f"the detector never saw the {quiet} -> {loud} switch offline")


class Meter:
    """The measuring JACK client: one audio input (serve's output), one MIDI output (serve's input).

    ``band``: the change detector's band (Hz; None: note trials only). Its process callback allocates no
    array: the first-sample search and the band's filter are numba calls, the levels go to preallocated rings.
    """

    HISTORY = 400  # blocks of levels kept (1.1 s)

    def __init__(self, band: tuple[float, float] | None = None) -> None:
        import jack

        self.client = jack.Client("meter", no_start_server=True)
        self.inport = self.client.inports.register("in_1")
        self.midi_out = self.client.midi_outports.register("midi_out")
        self._pending: bytes | None = None
        self.sent_frame: int | None = None
        self.first: dict[str, int | None] = {"nonzero": None, "loud": None}
        self.silent_frames = 0
        # The band's level at the end of each recent BLOCK-sample block, and the JACK frame the block began at.
        self._level = BandLevel(band) if band is not None else None
        self._level_values = np.zeros(self.HISTORY, dtype=np.float64)
        self._level_frames = np.zeros(self.HISTORY, dtype=np.int64)
        self._levels = 0  # blocks measured so far
        self.reference: float | None = None  # the band's level a change trial measures from
        self.changed: int | None = None
        _first_above(np.zeros(1, dtype=np.float32), NONZERO)  # compiled before the client is active
        self.client.set_process_callback(self._process)

    def _process(self, frames: int) -> None:
        start = self.client.last_frame_time
        self.midi_out.clear_buffer()
        if self._pending is not None:
            self.midi_out.write_midi_event(0, self._pending)
            self.sent_frame, self._pending = start, None
        buf = self.inport.get_array()
        if self.sent_frame is not None:
            for key, level in (("nonzero", NONZERO), ("loud", LOUD)):
                if self.first[key] is None:
                    hit = _first_above(buf, level)
                    if hit >= 0:
                        self.first[key] = start + hit
        self.silent_frames = self.silent_frames + frames if _first_above(buf, NONZERO) < 0 else 0
        if self._level is None:
            return
        for k in range(0, frames - BLOCK + 1, BLOCK):
            rms = self._level.push(buf, k)
            i = self._levels % self.HISTORY
            self._level_values[i], self._level_frames[i] = rms, start + k
            self._levels += 1
            ref = self.reference
            if (ref is not None and self.changed is None and self.sent_frame is not None
                    and start + k >= self.sent_frame and changed(rms, ref)):
                self.changed = start + k

    def recent_levels(self, blocks: int) -> np.ndarray:
        """The band's levels of the last ``blocks`` blocks, oldest first (a copy; not from the callback)."""
        n = min(blocks, self._levels, self.HISTORY)
        idx = (self._levels - n + np.arange(n)) % self.HISTORY
        return self._level_values[idx].copy()

    def arm_change(self) -> bool:
        """Start a change trial now (the caller sends OSC right after): the reference is the highest level of
        the band over the last 0.2 s; False (no trial) when that level spread more than STEADY_DB (see
        :func:`steady_reference`).

        A held note loops its sustain, which moves: in the band a quiet preset spreads up to 2-3 dB over 0.2 s
        (the default bundle's, from the decoded loops), so the gate is STEADY_DB, and a change must rise
        CHANGE_DB above the highest of those levels, not above their median."""
        reference = steady_reference(self.recent_levels(STEADY_BLOCKS))
        if reference is None:
            return False
        self.reference = reference
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


@dataclasses.dataclass(frozen=True)
class ChangePair:
    """Two presets and the band the change trials switch between and listen to (see :func:`_change_pairs`)."""

    quiet: str
    loud: str
    band: tuple[float, float]  # Hz
    apart_db: float  # the loud preset's level in the band over the quiet one's, after the loudness gains


def _bands(fmax: float) -> list[tuple[float, float]]:
    """The candidate bands: an octave, an octave and a half and two octaves wide, every half octave from
    100 Hz, below ``fmax`` (the contract's top)."""
    return [(lo, lo * width) for lo in 100.0 * 2.0 ** (np.arange(16) / 2) for width in (2.0, 2.0 ** 1.5, 4.0)
            if lo * width <= 0.95 * fmax]


def _change_pairs(b, *, count: int = 8, steady_db: float = STEADY_DB) -> list[ChangePair]:
    """Up to ``count`` pairs of presets of the loaded bundle ``b``, each with its band, best first: where the
    second preset's level in the band, after the engine's loudness gains, stands highest above the first's
    (at least MIN_APART_DB), among first presets whose level in that band is steady (each 0.2 s of the
    sustain loop a held note plays spreading at most ``steady_db``, the trial's gate; the inversion adds its
    own movement, so :func:`_change_packets` tries each on the switch rendered offline). Both presets' loops are steady too (no :attr:`~synth.engine.timbre.Timbre.loop_drift`):
    the trials hold one note for 20 s, and a decaying loop keeps decaying on every pass. Levels from the
    decoded loops (16 ms means, as the meter's), each band's power the sum over its FFT bins (least-squares
    weights on the mel bands, as :func:`~synth.engine.loudness.loudness_basis` weighs them). One pair per
    first preset."""
    from synth.benchmarks.decode import at_home_key
    from synth.engine.timbre import make_timbre
    from synth.spectrogram import mel_basis

    names = list(b.presets)
    # The trial plays key 60, the home key of every bundle here: a keyboard bundle's decode there.
    mels = at_home_key(b, b.decoder(providers=["CPUExecutionProvider"])).decode(
        np.stack([b.presets[n].latent for n in names]))
    params = b.params
    timbres = [make_timbre(m, params=params) for m in mels]
    power = []  # (frames of the loop, n_mels) mel power of each preset, times its loudness gain squared
    for t in timbres:
        start, end = t.loop_span
        db = params.db_min + t.held[start:end].astype(np.float64) * (params.db_max - params.db_min)
        power.append(10.0 ** (db / 10.0) * t.gain ** 2)
    basis = mel_basis(params=params).astype(np.float64)
    bins_hz = np.arange(params.n_bins) * params.sample_rate / params.n_fft
    frame_s = params.hop_length / params.sample_rate
    mean_frames = max(1, round(WINDOW * BLOCK / RATE / frame_s))
    gate_frames = max(2, round(STEADY_BLOCKS * BLOCK / RATE / frame_s))
    best: dict[str, ChangePair] = {}
    for band in _bands(float(params.fmax or params.sample_rate / 2)):
        inside = ((bins_hz >= band[0]) & (bins_hz < band[1])).astype(np.float64)
        weights = np.linalg.lstsq(basis.T, inside, rcond=None)[0]
        levels = []
        for p in power:
            frames = np.maximum(p @ weights, 1e-30)
            meter = np.convolve(frames, np.ones(mean_frames) / mean_frames, mode="valid")
            levels.append(10.0 * np.log10(meter))
        median = np.array([np.median(lv) if not np.any(timbres[k].loop_drift) else -np.inf for k, lv in enumerate(levels)])
        j = int(np.argmax(median))
        for i, lv in enumerate(levels):
            windows = np.lib.stride_tricks.sliding_window_view(lv, gate_frames)
            if np.any(timbres[i].loop_drift) or np.max(windows.max(axis=1) - windows.min(axis=1)) > steady_db:
                continue
            apart = float(median[j] - median[i])
            if apart >= MIN_APART_DB and (names[i] not in best or apart > best[names[i]].apart_db):
                best[names[i]] = ChangePair(quiet=names[i], loud=names[j], band=band, apart_db=apart)
    if not best:
        raise RuntimeError(f"no two presets of {b.path} differ by {MIN_APART_DB:.0f} dB in any band after the "
                           "loudness gains, with the first steady there: the change trials need them")
    return sorted(best.values(), key=lambda c: -c.apart_db)[:count]


@dataclasses.dataclass(frozen=True)
class ChangePackets:
    """The OSC packets of the change trials, built before the meter starts (see :func:`_change_packets`)."""

    pair: ChangePair
    back: bytes  # /synth/preset quiet
    to_loud: bytes  # /synth/preset loud
    jumps: tuple[bytes, ...]  # /synth/latent: the loud preset's latent, a little different each time
    offline: OfflineSwitch  # see _offline_switch


def _change_packets(bundle_path: Path, *, trials: int) -> ChangePackets:
    """Every packet of the change trials, and the pair they switch between: the best of :func:`_change_pairs`
    whose switch, rendered offline, is steady before it and seen by the detector. Built before the meter's
    JACK client is active: building them (a bundle load, a decode of every preset, offline renders, 20
    packets of 2048 floats) holds this process's GIL for seconds, which the meter's Python callback needs
    every 5.3 ms. Built between the note and the change trials, they cost 55-108 JACK xruns a run (56 in the
    run then in docs/BENCHMARKS.md), blamed on the meter and on serve's MIDI client after it (2026-12-02: all
    but 3 of 97 xruns of one run fell 0.63-0.73 s after the last note trial)."""
    from synth.bundle import load_bundle

    b = load_bundle(bundle_path)
    tried = []
    for pair in _change_pairs(b):
        try:
            offline = _offline_switch(b, quiet=pair.quiet, loud=pair.loud, band=pair.band)
        except RuntimeError as exc:
            tried.append(str(exc))
            continue
        break
    else:
        raise RuntimeError("no pair of presets gives the change detector a switch it sees offline: "
                           + "; ".join(tried))
    latent = np.asarray(b.presets[pair.loud].latent, dtype=np.float32).reshape(-1)
    rng = np.random.default_rng(0)
    jumps = tuple(_osc("/synth/latent", *[float(v) for v in latent + rng.normal(0.0, 1e-3, latent.size).astype(np.float32)])
                  for _ in range(trials))
    return ChangePackets(pair=pair, back=_osc("/synth/preset", pair.quiet), to_loud=_osc("/synth/preset", pair.loud),
                         jumps=jumps, offline=offline)


def _change_trials(meter: Meter, sock, port: int, packets: ChangePackets, *, trials: int) -> dict:
    """Preset switches and latent jumps of a held note -> the first block whose band level shows them (ms)."""
    pair, offline = packets.pair, packets.offline
    back, to_loud, jumps = packets.back, packets.to_loud, packets.jumps
    target = ("127.0.0.1", port)
    sock.sendto(back, target)
    sock.sendto(_osc("/synth/note/on", 60, 100), target)
    time.sleep(3.6)  # past the hold part: the note loops its sustain
    figures: dict[str, list[float]] = {"preset": [], "latent": []}
    missed = {"preset": 0, "latent": 0}  # sent, and not seen within 1 s
    unsteady = {"preset": 0, "latent": 0}  # not sent: the band's level was not steady (see Meter.arm_change)
    for i in range(2 * trials):
        kind = "preset" if i % 2 == 0 else "latent"
        sock.sendto(back, target)  # back to the quiet one (cached: no decode)
        packet = to_loud if kind == "preset" else jumps[i // 2]
        time.sleep(0.35)  # the crossfade is long over: steady again
        if not meter.arm_change():
            unsteady[kind] += 1
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
    return {"figures": figures, "missed": missed, "unsteady": unsteady, "pair": [pair.quiet, pair.loud],
            "band_hz": [round(pair.band[0]), round(pair.band[1])], "apart_db": round(pair.apart_db, 1),
            "offline_step_db": round(offline.step_db, 1), "offline_steady_db": round(offline.steady_db, 1),
            "detector_lag_ms": round(offline.lag_ms, 1)}


def run_jack_latency_bench(*, trials: int = 20, ahead: int = 3, max_ahead: int | None = None,
                           onset: int | None = None, bundle: str | None = None, change_trials: bool = True,
                           method: str | None = None) -> dict:
    """MIDI and OSC note-on -> first sample, and (``change_trials``) OSC preset switches and latent jumps ->
    first changed block, through a JACK dummy server; JSON-ready figures (ms). ``method``: serve's inversion
    method (None: its default)."""
    path, which = resolve_bundle(bundle)
    with jack_server(rate=RATE, period=PERIOD) as server:
        if server is None:
            return {"jack_latency_skipped": "jackd (Debian jackd2) is not installed or did not start"}
        name = server.name
        env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", PYTHONUNBUFFERED="1")
        os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
        args = [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(path), "--port", "0", "--output",
                "sounddevice", "--device", "system", "--midi", "--ahead", str(ahead), "--max-ahead", str(max_ahead or ahead),
                *(["--onset-ahead", str(onset)] if onset is not None else []),
                *(["--method", method] if method is not None else [])]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        meter = None
        changes = None
        blamed_notes: dict[str, int] = {}
        blamed_all: dict[str, int] = {}
        try:
            port = serve_port(proc)
            # Everything the change trials send, built while no Python JACK client of ours is active.
            packets = _change_packets(path, trials=trials) if change_trials else None
            meter = Meter(packets.pair.band if packets is not None else None)
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

    result = {"jack_latency_bundle": which, "jack_method": method or DEFAULT_METHOD, "jack_rate": RATE, "jack_period": PERIOD, "jack_ahead_blocks": ahead,
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
        result["jack_change_unsteady"] = changes["unsteady"]
        result["jack_change_presets"] = changes["pair"]
        result["jack_change_band_hz"] = changes["band_hz"]
        # In the band, after the engine's loudness gains: predicted from the decoded loops, and as rendered offline
        result["jack_change_presets_apart_db"] = changes["apart_db"]
        result["jack_change_offline_step_db"] = changes["offline_step_db"]
        result["jack_change_offline_steady_db"] = changes["offline_steady_db"]
        result["jack_change_detector_lag_ms"] = changes["detector_lag_ms"]
        result["jack_change_threshold_db"] = CHANGE_DB
        result["jack_change_steady_db"] = STEADY_DB
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="notes of each kind (default 20)")
    parser.add_argument("--ahead", type=int, default=3, help="serve's --ahead, default 3")
    parser.add_argument("--max-ahead", type=int, default=None, help="serve's --max-ahead (default: --ahead, fixed)")
    parser.add_argument("--onset-ahead", type=int, default=None, help="serve's --onset-ahead (default: serve's, --ahead minus 1)")
    parser.add_argument("--no-changes", action="store_true", help="notes only, no preset/latent change trials")
    parser.add_argument("--method", choices=METHODS, default=None, help="serve's inversion method (default: serve's)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args(argv)
    emit(run_jack_latency_bench(trials=args.trials, ahead=args.ahead, max_ahead=args.max_ahead,
                                onset=args.onset_ahead, bundle=args.bundle,
                                change_trials=not args.no_changes, method=args.method), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
