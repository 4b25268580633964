"""A soak: random *valid* control over real UDP at a steady message rate against a running engine.

The player sends ``rate`` messages a second: every ``chord_seconds`` it releases the sounding chord and plays
a new ``chord``-note one (random notes within the bundle's range), and in between it morphs continuously
between two presets (a slow sine sweep of ``t``), with latent values, macros, XY moves and gain changes
mixed in. Every message is valid, so the server must count zero errors. Afterwards :func:`scan_wav` checks
what was recorded for NaN and for samples above full scale, and :func:`rss_mb` gives resident memory.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path

import numpy as np

from synth.osc.packets import encode_message

__all__ = ["run_soak", "soak_messages", "scan_wav", "rss_mb"]


def rss_mb(pid: int | None = None) -> float:
    """Resident set size of process ``pid`` (default this one) in MiB, from /proc (Linux)."""
    path = Path(f"/proc/{pid or os.getpid()}/status")
    for line in path.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise OSError(f"no VmRSS in {path}")


def scan_wav(path: str | Path, *, block: int = 1 << 18) -> dict:
    """``{"samples", "nan", "peak"}`` of a WAV file, read in blocks (a long take does not fit in memory)."""
    import soundfile as sf

    samples = nan = 0
    peak = 0.0
    with sf.SoundFile(path) as f:
        for y in f.blocks(blocksize=block, dtype="float32", always_2d=True):
            samples += len(y)
            bad = ~np.isfinite(y)
            nan += int(bad.sum())
            if bad.any():
                y = np.where(bad, 0.0, y)
            if y.size:
                peak = max(peak, float(np.abs(y).max()))
    return {"samples": samples, "nan": nan, "peak": peak}


def soak_messages(*, presets, note_range, latent_size: int, macro_count: int, rate: float, chord: int = 16,
                  chord_seconds: float = 2.0, seed: int = 0):
    """Yield an endless stream of valid OSC datagrams, one per ``1/rate`` seconds of the soak."""
    rng = np.random.default_rng(seed)
    presets = [str(p) for p in presets]
    lo, hi = note_range
    held: list[int] = []
    pending: list[bytes] = []
    k = 0
    per_chord = max(1, int(round(chord_seconds * rate)))
    pair = list(rng.choice(presets, 2, replace=len(presets) < 2))
    while True:
        if k % per_chord == 0:
            pending += [encode_message("/synth/note/off", [n]) for n in held]
            held = [int(n) for n in rng.choice(np.arange(lo, hi + 1), size=min(chord, hi - lo + 1), replace=False)]
            pending += [encode_message("/synth/note/on", [n, int(rng.integers(40, 128))]) for n in held]
            pair = list(rng.choice(presets, 2, replace=len(presets) < 2))
        t_soak = k / rate
        if pending:
            yield pending.pop(0)
        else:
            r = rng.random()
            if r < 0.5:  # continuous morph: t sweeps 0..1 and back every 5 s
                t = 0.5 - 0.5 * math.cos(2 * math.pi * t_soak / 5.0)
                yield encode_message("/synth/morph", [str(pair[0]), str(pair[1]), t])
            elif r < 0.65:
                yield encode_message("/synth/latent/set", [int(rng.integers(0, latent_size)),
                                                             float(rng.normal(0, 0.5))])
            elif r < 0.8 and macro_count:
                yield encode_message("/synth/macro", [int(rng.integers(0, macro_count)), float(rng.uniform(-2, 2))])
            elif r < 0.9:
                yield encode_message("/synth/gain", [float(rng.uniform(0.3, 1.0))])
            elif r < 0.95 and len(presets) >= 4:
                corners = [str(p) for p in rng.choice(presets, 4, replace=False)]
                yield encode_message("/synth/corners", corners)
            else:
                yield encode_message("/synth/xy", [float(rng.random()), float(rng.random())])
        k += 1


def run_soak(port: int, *, seconds: float, presets, note_range, latent_size: int, macro_count: int,
             rate: float = 200.0, chord: int = 16, chord_seconds: float = 2.0, seed: int = 0,
             host: str = "127.0.0.1", sample=None, sample_every: float = 1.0, should_stop=None) -> dict:
    """Play the soak at ``host:port`` for ``seconds``; returns ``{"messages", "seconds", "samples"}``.

    ``sample()`` (optional) is called about every ``sample_every`` seconds and its results are returned in
    order under ``"samples"`` (e.g. RSS, voices, underflows over time); ``should_stop()`` (optional, checked
    with each sample) ends the soak early, e.g. when the engine's process has died. The sender keeps its own clock
    (messages due by now are sent at once), so a slow moment does not lower the average rate.
    """
    messages = soak_messages(presets=presets, note_range=note_range, latent_size=latent_size,
                             macro_count=macro_count, rate=rate, chord=chord, chord_seconds=chord_seconds, seed=seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sent = 0
    samples = []
    start = time.monotonic()
    next_sample = start
    try:
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            due = int((now - start) * rate) + 1
            while sent < due:
                sock.sendto(next(messages), (host, port))
                sent += 1
            if now >= next_sample:
                if should_stop is not None and should_stop():
                    break
                if sample is not None:
                    samples.append(sample())
                next_sample += sample_every
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
        sock.sendto(encode_message("/synth/panic", []), (host, port))
        sent += 1
    finally:
        sock.close()
    return {"messages": sent, "seconds": time.monotonic() - start, "samples": samples}
