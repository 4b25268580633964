"""`melsynth bench --quick --json`: one JSON object with the headline figures, without TensorFlow, from the
checkout and from a wheel installed outside it; the document writer; bench/ holding entry points only.

Speed targets are measured by the benchmarks (bench/, `melsynth bench`), not asserted here: this only checks
the contract (keys, types, plausible values) and that the quick path never imports TensorFlow.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synth.benchmarks.report import merge_sections, write_document, write_markdown

REPO = Path(__file__).resolve().parent.parent
KEYS = ("decode_ms_p50", "decode_ms_p99", "sinusoidal_rtf", "griffinlim_rtf", "librosa_griffinlim_rtf",
        "control_latency_ms_p99", "max_voices")

SCRIPT = """
import json, sys
from synth.cli import main
code = main(["bench", "--quick", "--json"])
import synth
print("TF_LOADED", "tensorflow" in sys.modules, file=sys.stderr)
print("SYNTH_FILE", synth.__file__, file=sys.stderr)
files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
print("MODULE_FILES", json.dumps(sorted(f for f in files if isinstance(f, str))), file=sys.stderr)
sys.exit(code)
"""


def stderr_value(stderr: str, key: str) -> str:
    return next(line.split(" ", 1)[1] for line in stderr.splitlines() if line.startswith(key + " "))


def check_headline_figures(figures: dict) -> None:
    for key in KEYS:
        assert key in figures, key
        assert isinstance(figures[key], (int, float)) and figures[key] == figures[key], (key, figures[key])
    assert 0 < figures["decode_ms_p50"] <= figures["decode_ms_p99"]
    assert figures["sinusoidal_rtf"] > 1 and figures["griffinlim_rtf"] > 0 and figures["librosa_griffinlim_rtf"] > 0
    # A change sounds no sooner than the margin rendered ahead of it allows: a figure below the buffer would mean
    # the latency is measured wrongly (these figures include the buffer by definition). buffer_ms is the margin
    # the engine started with; under load it widens after near-misses, never narrows below it.
    assert figures["control_latency_ms_p50"] >= 0.9 * figures["buffer_ms"] > 0
    assert figures["control_latency_ms_p50"] <= figures["control_latency_ms_p99"]
    # max_voices is the largest of the counts tried (4, 8, 12, ...) that held without an underflow, or 0.
    assert figures["max_voices"] == 0 or figures["max_voices"] % 4 == 0


def test_quick_bench_prints_the_headline_figures_without_tensorflow():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TF_LOADED False" in proc.stderr
    check_headline_figures(json.loads(proc.stdout))


@pytest.mark.slow
def test_quick_bench_runs_from_a_wheel_installed_outside_the_checkout(tmp_path):
    """The measuring code ships with the package: built into a wheel (from a copy of the sources, so the
    checkout gets no build/ folder), installed into a folder of its own and run from another, `melsynth bench
    --quick` imports nothing of the checkout and falls back to the package's synthetic bundle."""
    if importlib.util.find_spec("setuptools") is None or importlib.util.find_spec("wheel") is None:
        pytest.skip("building a wheel offline needs setuptools and wheel in this environment")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("synth", "training", "export"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(src)],
                   check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "wheel").glob("melsynth-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=120)
    shutil.rmtree(src)
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    # The installed copy comes first on the path; the third-party libraries still come from this environment
    # (whose editable install of the checkout stays behind the path: the assertions below would catch it).
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=run_dir,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TF_LOADED False" in proc.stderr
    assert Path(stderr_value(proc.stderr, "SYNTH_FILE")).is_relative_to(site)
    files = json.loads(stderr_value(proc.stderr, "MODULE_FILES"))
    venv = Path(sys.prefix).resolve()
    from_checkout = [f for f in files if Path(f).resolve().is_relative_to(REPO)
                     and not Path(f).resolve().is_relative_to(venv)]
    assert not from_checkout
    figures = json.loads(proc.stdout)
    check_headline_figures(figures)
    assert "synthetic test bundle" in figures["decode_bundle"]


def soak(*, busy: bool, underflows: int) -> dict:
    """A soak result as bench_soak returns it."""
    return {
        "soak_bundle": "b", "soak_output": "jack", "soak_minutes": 10.0, "soak_messages": 120000, "soak_rate": 200.0,
        "soak_busy_core": busy, "soak_underflows": underflows,
        "soak_underflows_by_phase": {"start-up": 1 if underflows else 0, "idle": 0, "playing": max(0, underflows - 1)},
        "soak_device_xruns": 0, "soak_latency_ms_p50": 20.0, "soak_latency_ms_p99": 30.0,
        "soak_margin_ms_widest": 26.7 if underflows else None, "soak_near_misses": underflows, "soak_errors": 0,
        "soak_max_voices": 16, "soak_nan": 0, "soak_peak": 0.9, "soak_seconds_played": 600.0, "rss_start_mb": 300.0,
        "rss_end_mb": 320.0, "rss_max_mb": 321.0, "soak_serve_ended_early": False, "soak_status_timeouts": 0,
        "soak_serve_stderr": [], "soak_10min_underflows": underflows, "soak_underflow_timeline": [],
        "soak_rss_timeline": [(0, 300.0)], "rss_10min_mb": 320.0, "serve_summary": ["melsynth: played 600 s"],
    }


def hand_made_run() -> dict:
    """A run_all result with every section, made by hand (no measuring)."""
    return {
        "machine": {"cpu": "Test CPU", "cores": 2, "load_average": [1.0, 1.0, 1.0], "load_average_end": [2.0, 2, 2],
                    "ram_gib": 8.0, "gpu": "none", "python": "3.11", "os": "Linux", "libraries": {"numpy": "2"}},
        "when": "2026-01-01 00:00 UTC",
        "settings": {"quick": True, "soak_minutes": 2.0, "fuzz_packets": 1000},
        "results": {
            "decode": {"decode_bundle": "b", "decode_ms_p50": 1.0, "decode_ms_p99": 2.0},
            "engine": {"engine_bundle": "b", "control_latency_ms_p50": 3.0, "control_latency_ms_p99": 9.0,
                       "max_voices": 16, "buffer_ms": 16.0, "buffer_ms_widest": 26.7},
            "training": {"error": "RuntimeError: boom"},
            "flood": {"flood_bundle": "b", "flood_seconds": 10.0, "flood_voices": 16,
                      "latent_10000": {"sent": 100000, "rate_sent": 9990.0, "underflows": 0, "applied": 20000,
                                       "throttled": 80000, "reply_bytes": 900, "replies_dropped": 0,
                                       "reply_per_request_byte": 0.0005},
                      "quiet": {"underflows": 1}, "unread_10000": {"sent": 100000, "underflows": 7}},
            "soak": soak(busy=False, underflows=0),
            "soak_busy": soak(busy=True, underflows=3),
            "jack_latency": {"jack_latency_bundle": "b", "jack_rate": 48000, "jack_period": 256, "jack_ahead_blocks": 3,
                             "jack_onset_blocks": 2, "jack_trials": 2, "jack_missed": {"midi": 0, "osc": 0}, "serve_summary": [],
                             "jack_midi_note_nonzero_ms": {"n": 2, "p50": 23.0, "p99": 29.0, "max": 29.1},
                             "jack_midi_note_loud_ms": {"n": 2, "p50": 38.9, "p99": 44.8, "max": 44.9},
                             "jack_osc_note_nonzero_ms": {"n": 2, "p50": 21.5, "p99": 27.0, "max": 27.1},
                             "jack_osc_note_loud_ms": {"n": 2, "p50": 37.2, "p99": 43.0, "max": 43.1},
                             "jack_osc_preset_change_ms": {"n": 2, "p50": 30.0, "p99": 33.0, "max": 33.1},
                             "jack_change_presets": ["quiet", "loud"], "jack_change_presets_apart_db": 26.7,
                             "jack_change_band_hz": [1600, 3200], "jack_change_offline_step_db": 24.1,
                             "jack_change_unsteady": {"preset": 0, "latent": 1},
                             "jack_change_detector_lag_ms": 23.9,
                             "low_latency": {"jack_ahead_blocks": 3, "jack_max_ahead_blocks": 3, "jack_onset_blocks": 1,
                                             "serve_summary": [],
                                             "jack_midi_note_nonzero_ms": {"n": 2, "p50": 5.4, "p99": 10.7, "max": 10.7}}},
        },
        "seconds": {"decode": 1.0, "engine": 2.0},
    }


def test_bench_documents_are_written_from_a_result(tmp_path):
    """The document writer on a hand-made result: every section and the machine."""
    out = tmp_path / "B.md"
    write_markdown(hand_made_run(), out)
    text = out.read_text()
    assert "Test CPU, 2 cores" in text
    assert "the soak ran 2 minutes, not the default 60: its figures are NOT an hour's" in text
    assert "the fuzz sent 1000 packets, not the default 100,000" in text
    assert "## OSC floods (16-voice chord, 10 s each)" in text and "| reply bytes per request byte | 0.001 | <= 1 |" in text
    assert "1 underflows with no sender; 7 with the sender at 10,000/s aimed at a socket nobody reads" in text
    assert "| bundle | onnxruntime CPU | 1.00 | 2.00 |" in text
    assert "p99 9.0 ms" in text and "training: RuntimeError: boom" in text
    assert "16.0 ms output buffer (widened to 26.7 ms after near-misses)" in text
    # The soak quiet and with a busy core, side by side.
    assert "| figure | quiet | busy core | target |" in text
    assert "| underflows (whole soak) | 0 | 3 | 0 |" in text
    assert "| ... at start-up / idle / playing | 0 / 0 / 0 | 1 / 0 / 2 | 0 / 0 / 0 |" in text
    assert "| control latency p50 / p99 (ms, beyond the device buffer) | 20.0 / 30.0 | 20.0 / 30.0 |" in text
    # MIDI beside OSC through JACK.
    assert ("| default: --ahead 3 (max 3) --onset-ahead 2 | MIDI note-on (JACK MIDI port) | 23.0 / 29.0 / 29.1 (2) | "
            "38.9 / 44.8 / 44.9 (2) |") in text
    assert ("| default: --ahead 3 (max 3) --onset-ahead 2 | OSC preset switch | first changed block: 30.0 / 33.0 / "
            "33.1 (2) | |") in text
    assert "that detector fires 23.9 ms after the first changed sample" in text
    assert ("| low latency: --ahead 3 (max 3) --onset-ahead 1 | MIDI note-on (JACK MIDI port) | 5.4 / 10.7 / 10.7 "
            "(2) |") in text
    assert "| OSC note-on (UDP, loopback) | 21.5 / 27.0 / 27.1 (2) |" in text



def test_the_settings_line_names_only_what_a_run_shortened():
    """A 10-minute soak beside the default fuzz names the soak alone (the file once called 100,000 packets
    shorter than 100,000); a run at the defaults names nothing."""
    from synth.benchmarks.report import header_markdown

    run = hand_made_run()
    run["settings"] = {"quick": False, "soak_minutes": 10.0, "fuzz_packets": 100_000}
    line = next(x for x in header_markdown(run) if x.startswith("- Settings"))
    assert "the soak ran 10 minutes" in line and "fuzz sent" not in line
    run["settings"] = {"quick": False, "soak_minutes": 60.0, "fuzz_packets": 100_000}
    line = next(x for x in header_markdown(run) if x.startswith("- Settings"))
    assert line.endswith("fuzz 100000 packets")


def test_a_partial_run_replaces_its_sections_and_keeps_the_rest():
    previous = ("# Benchmarks\n\nWritten on day 1.\n\n## Machine\n\nold machine\n\n## Decode (batch 1)\n\nold decode\n\n"
                "## Soak (jack output)\n\nold soak\n\n## Time taken\n\ndecode 1 s\n")
    update = ("# Benchmarks\n\nWritten on day 2.\n\n## Machine\n\nnew machine\n\n## Soak (null output)\n\nnew soak\n\n"
              "## Note latency through JACK (48000 Hz)\n\nnew latency\n\n## Time taken\n\nsoak 2 s\n")
    merged = merge_sections(previous, update, note="_partial run, day 2_")
    assert "Written on day 1." in merged and "old machine" in merged and "new machine" not in merged
    assert "old decode" in merged and "old soak" not in merged and "new soak\n\n_partial run, day 2_" in merged
    # A section new to the document goes before the timings, which stay the full run's.
    assert merged.index("new latency") < merged.index("## Time taken") and "decode 1 s" in merged
    assert "soak 2 s" not in merged


def test_a_partial_run_is_merged_into_the_document_there(tmp_path):
    out = tmp_path / "B.md"
    full = hand_made_run()
    write_document(full, out)
    part = hand_made_run()
    part["results"] = {"engine": dict(full["results"]["engine"], control_latency_ms_p99=7.0)}
    part["seconds"] = {"engine": 3.0}
    write_document(part, out, only=("engine",))
    text = out.read_text()
    assert "p99 7.0 ms" in text and "p99 9.0 ms" not in text and "`melsynth bench --only engine`" in text
    # The other sections and the timings stay the full run's.
    assert "| bundle | onnxruntime CPU | 1.00 | 2.00 |" in text and "decode 1 s, engine 2 s" in text


def test_melsynth_bench_picks_the_headline_figures_or_the_full_run(tmp_path, monkeypatch):
    """--quick alone is the headline figures; --all or a full-run option (what bench/run_all.py passes) is
    run_all with --quick shortening each benchmark, its document written under the current folder."""
    import synth.benchmarks.run_all as bench
    from synth.cli import main

    calls = []
    monkeypatch.setattr(bench, "quick_figures", lambda: calls.append("quick") or {"decode_ms_p50": 1.0})
    monkeypatch.setattr(bench, "run_all", lambda *, tensorflow, **kw: calls.append(kw) or hand_made_run())
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick", "--json"]) == 0
    assert calls == ["quick"] and not (tmp_path / "docs").exists()
    calls.clear()
    assert main(["bench", "--all", "--quick", "--only", "inversion", "--no-write"]) == 0
    assert calls == [{"quick": True, "soak_minutes": 60.0, "fuzz_packets": 100_000, "keras": True,
                      "only": ("inversion",)}]
    assert not (tmp_path / "docs").exists()
    calls.clear()
    assert main(["bench", "--quick", "--fuzz-packets", "10", "--no-keras"]) == 0
    assert calls[0]["quick"] and calls[0]["fuzz_packets"] == 10 and not calls[0]["keras"]
    assert "# Benchmarks" in (tmp_path / "docs" / "BENCHMARKS.md").read_text()


def test_bench_scripts_are_entry_points_only():
    """bench/*.py hold no measuring code of their own: a docstring, imports and the call of a main()."""
    for path in sorted((REPO / "bench").glob("*.py")):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), path.name
        kinds = {type(node).__name__ for node in tree.body[1:]}
        assert kinds <= {"Import", "ImportFrom", "If"}, (path.name, kinds)
        (guard,) = [node for node in tree.body if isinstance(node, ast.If)]
        assert ast.unparse(guard.test) == "__name__ == '__main__'" and len(guard.body) == 1, path.name


def test_the_change_detectors_own_lag_is_measured_on_an_offline_switch():
    """The JACK bench's change figures hold the detector's lag; it is measured on the same switch offline: after
    the first changed sample, within the inverter's latency, the timbre crossfade and the level's window. The
    engine brings both presets to one loudness, yet in the chosen band the switch steps by far more than the
    detector's threshold."""
    from synth.benchmarks.suites.jack_latency import (
        BLOCK,
        CHANGE_DB,
        MIN_APART_DB,
        RATE,
        WINDOW,
        _change_pairs,
        _offline_switch,
    )
    from synth.bundle import load_bundle
    from synth.engine.timbre_pipeline import TIMBRE_XFADE_FRAMES
    from synth.inversion.base import DEFAULT_METHOD, make_inverter

    bundle = load_bundle(REPO / "presets" / "default")
    params = bundle.params
    frame_ms = params.hop_length / params.sample_rate * 1e3
    pair = _change_pairs(bundle)[0]
    assert pair.apart_db >= MIN_APART_DB
    switch = _offline_switch(bundle, quiet=pair.quiet, loud=pair.loud, band=pair.band)
    inverter_ms = make_inverter(DEFAULT_METHOD, params=params, output_rate=RATE).latency_samples / RATE * 1e3
    assert 0 < switch.lag_ms < inverter_ms + TIMBRE_XFADE_FRAMES * frame_ms + WINDOW * BLOCK / RATE * 1e3
    assert switch.step_db > 2 * CHANGE_DB
    # The pair was chosen from the decoded loops with the engine's loudness gains: what the engine plays.
    assert abs(switch.step_db - pair.apart_db) < 15.0, (switch.step_db, pair.apart_db)


def test_the_change_detector_hears_a_band_not_the_overall_level():
    """A tone outside the detector's band leaves its level where it was, a quieter one inside raises it; the
    filter carries its state across blocks, so the levels are those of the whole signal filtered at once."""
    import numpy as np

    from synth.benchmarks.suites.jack_latency import BLOCK, RATE, BandLevel, changed

    t = np.arange(40 * BLOCK) / RATE
    low = (0.5 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    high = (0.05 * np.sin(2 * np.pi * 2400.0 * t)).astype(np.float32)
    quiet = (0.01 * np.sin(2 * np.pi * 2000.0 * t)).astype(np.float32)

    def levels(x):
        meter = BandLevel((1600.0, 3200.0))
        return np.array([meter.push(x, k) for k in range(0, len(x) - BLOCK + 1, BLOCK)])

    before = levels(quiet)[-1]
    assert not changed(levels(quiet + low)[-1], before)  # 34 dB louder overall, none of it in the band
    assert changed(levels(quiet + high)[-1], before)  # 14 dB more in the band
    whole = levels(quiet + high)
    assert whole[-1] == pytest.approx(np.sqrt((0.05**2 + 0.01**2) / 2), rel=0.1)  # the tones' RMS: in the passband
    # Block by block as the whole signal filtered at once: the state went on from one block to the next.
    from scipy.signal import butter, sosfilt

    from synth.benchmarks.suites.jack_latency import BAND_ORDER, WINDOW

    y = sosfilt(butter(BAND_ORDER, (1600.0, 3200.0), btype="bandpass", fs=RATE, output="sos"), (quiet + high).astype(np.float64))
    powers = np.square(y).reshape(-1, BLOCK).mean(axis=1)
    expected = np.sqrt([powers[max(0, k - WINDOW + 1) : k + 1].mean() for k in range(len(powers))])
    np.testing.assert_allclose(whole, expected, rtol=1e-4)


def test_the_change_detectors_level_allocates_nothing_per_block():
    """The meter's JACK callback measures the band on every period: no array is made per block (a float
    is all a block leaves behind)."""
    import numpy as np
    from engine_fixtures import least_peak_bytes

    from synth.benchmarks.suites.jack_latency import BLOCK, BandLevel

    audio = (0.1 * np.sin(np.arange(2 * BLOCK) * 0.3)).astype(np.float32)

    def setup():
        meter = BandLevel((1600.0, 3200.0))
        meter.push(audio, 0)
        return meter

    def work(meter):
        for _ in range(200):
            meter.push(audio, 0)
            meter.push(audio, BLOCK)

    peak = least_peak_bytes(setup, work)
    assert peak < 512, f"{peak} bytes held at once by 400 blocks"
