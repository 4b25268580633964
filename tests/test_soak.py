"""Load: a 20-second soak (random valid control at 200 messages/s, continuous morphing, 16-voice chords).

Against `melsynth serve` as a subprocess (so the controller does not share the engine's interpreter, as in
real use), with the null output (paced by the clock like a device) and, when jackd is installed, through a
JACK dummy server. What the engine guarantees whatever else the machine runs: no NaN, nothing above full
scale, zero refused messages, every voice of the chords, resident memory within a generous bound, and every
underflow answered by a wider margin (which phase each is filed under: tests/test_engine_margin.py). Whether a
run has zero underflows depends on what else holds the cores (on these virtual machines, the host too): that
target is measured by bench/bench_soak.py, quiet and with a busy core, and docs/BENCHMARKS.md has its figures.
"""

from __future__ import annotations

import os
import re

import pytest
from engine_fixtures import OscClient, synthetic_bundle, synthetic_bundle_path
from jack_fixtures import jack_server
from reliability_fixtures import serve_process, status_of

from synth.benchmarks.soak import rss_mb, run_soak, scan_wav

SECONDS = 20.0
RATE = 200.0
RSS_GROWTH_MB = 60.0  # generous: allocator noise and caches; a leak per message would be ~4000 x bigger


def soak_serve(tmp_path, *extra, env=None, label="null"):
    """Run the soak against a serve subprocess; returns (figures dict, status dict, stdout, stderr)."""
    bundle = synthetic_bundle()
    take = tmp_path / "soak.wav"
    args = ["--bundle", str(synthetic_bundle_path()), "--port", "0", "--voices", "16", "--record", str(take), *extra]
    with serve_process(*args, env=env) as (proc, port, _):
        client = OscClient(port)
        status_of(client)
        rss_start = rss_mb(proc.pid)
        voices = []

        def sample():
            voices.append(status_of(client)["voices"])
            return rss_mb(proc.pid)

        from synth.control.spec import NOTE_SPAN

        result = run_soak(port, seconds=SECONDS, presets=bundle.presets,
                          note_range=(bundle.base_pitch - NOTE_SPAN, bundle.base_pitch + NOTE_SPAN),
                          latent_size=bundle.latent_size, macro_count=len(bundle.macros.stds), rate=RATE, seed=3,
                          sample=sample)
        status = status_of(client)
        rss_end = rss_mb(proc.pid)
        client.close()
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    played = re.search(r"(\d+) underflows \((\d+) at start-up, (\d+) idle, (\d+) playing\), (\d+) device xruns", out)
    assert played, (out, err)
    underflows, _startup, _idle, _playing, xruns = (int(g) for g in played.groups())
    figures = {"messages": result["messages"], "rss_start_mb": rss_start, "rss_end_mb": rss_end,
               "rss_max_mb": max(result["samples"]), "underflows": underflows, "device_xruns": xruns,
               "max_voices": max(voices), **scan_wav(take)}
    print(f"soak {label}: {figures}\n{out.strip()}")
    assert result["messages"] >= 0.95 * RATE * SECONDS
    # Every message was valid: none refused (the status queries count as messages too).
    assert status["errors"] == 0 and status["messages"] >= result["messages"]
    assert figures["max_voices"] >= 16
    assert figures["nan"] == 0 and 0.05 < figures["peak"] <= 1.0
    assert rss_end - rss_start < RSS_GROWTH_MB, figures
    assert figures["samples"] > 0.9 * SECONDS * 48000
    # The margin widened after any underflow (which phase each is filed under: tests/test_engine_margin.py).
    if underflows:
        assert "the margin ahead of the output grew" in out, out
    return figures


def test_soak_null_output(tmp_path):
    soak_serve(tmp_path, "--output", "null")


@pytest.mark.jack
def test_soak_through_jack(tmp_path):
    with jack_server(rate=48000, period=256, reinit_portaudio=False) as (name, _):
        env = dict(os.environ, JACK_DEFAULT_SERVER=name)
        # JACK's xruns are the dummy server's own late cycles (the callback is C and never waits for Python):
        # printed, and measured in bench_soak, not asserted.
        soak_serve(tmp_path, "--output", "sounddevice", "--device", "system", "--ahead", "4", env=env, label="jack")
