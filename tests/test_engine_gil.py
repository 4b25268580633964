"""The synthesis thread keeps the GIL while it renders: no per-voice release that another thread can take.

A numba kernel compiled with ``nogil=True`` lets go of the GIL on entry and has to take it back on exit. While
another Python thread is busy (the OSC thread parsing, the decode worker building a timbre, a status reply),
taking it back waits for that thread's switch interval (0.5 ms in a live run): one wait a voice a frame, 16
voices, 8 ms of waiting per 7.8 ms frame, and the ring runs dry. That was the soak's underflows with the
harmonic method (docs/BENCHMARKS.md, the soak section). These tests check that rendering releases the GIL
nowhere, with no timing: another thread, woken and waiting for the GIL with a switch interval too long to
ever force a switch, can only run if the rendering lets go of it.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from engine_fixtures import synthetic_bundle

from synth.control.messages import NoteOn
from synth.engine import Engine, EngineOptions, OfflineDecoding
from synth.inversion import make_inverter
from synth.inversion.frames import frame_start


def releases_gil(work) -> bool:
    """Whether ``work()`` lets go of the GIL: a thread woken just before it, and waiting for the GIL, runs
    only if it does (the switch interval is set far beyond the work meanwhile)."""
    go = threading.Event()
    ran = []

    def probe():
        go.wait()  # blocks without the GIL; once set, it needs the GIL back to go on
        ran.append(True)

    old = sys.getswitchinterval()
    thread = threading.Thread(target=probe, daemon=True)
    sys.setswitchinterval(100.0)
    try:
        thread.start()
        go.set()
        work()
        released = bool(ran)
    finally:
        sys.setswitchinterval(old)
        thread.join(5.0)
    return released


def test_the_probe_sees_a_release():
    # A sleep lets go of the GIL; a pure-Python loop as long as the renders below does not.
    assert releases_gil(lambda: time.sleep(0.005))
    assert not releases_gil(lambda: sum(i * i for i in range(200_000)))


# Griffin-Lim is left out: its pseudo-inverse (np.matmul, BLAS) lets go of the GIL once a frame.
KEEPING = ("harmonic", "sinusoidal")


@pytest.mark.parametrize("method", KEEPING)
def test_an_inverters_frames_keep_the_gil(method):
    bundle = synthetic_bundle()
    params = bundle.params
    inverter = make_inverter(method, params=params, output_rate=48000)
    frames = np.random.default_rng(0).uniform(0.2, 0.9, (300, params.n_mels)).astype(np.float32)
    lengths = [frame_start(g + 1, params=params, output_rate=48000) - frame_start(g, params=params, output_rate=48000)
               for g in range(2 * len(frames))]
    out = np.zeros(max(lengths), dtype=np.float32)
    for frame, n in zip(frames[:4], lengths, strict=False):  # compiled and warmed before the probe
        inverter.process_frame(frame, pitch_ratio=1.25, out=out[:n])

    def work():
        for frame, n in zip(frames, lengths[4:], strict=False):
            inverter.process_frame(frame, pitch_ratio=1.25, out=out[:n])

    assert not releases_gil(work)


@pytest.mark.parametrize("method", KEEPING)
def test_an_engine_rendering_a_chord_keeps_the_gil(method):
    engine = Engine(synthetic_bundle(), EngineOptions(method=method, max_voices=16), decoding=OfflineDecoding())
    for k in range(16):
        engine.schedule(NoteOn(note=48 + 2 * k, velocity=100))
    block = np.zeros(256, dtype=np.float32)
    for _ in range(20):
        engine.render_into(block)
    assert engine.sounding_voices == 16

    def work():
        for _ in range(40):
            engine.render_into(block)

    assert not releases_gil(work)
