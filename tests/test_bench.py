"""`melsynth bench --quick --json`: one JSON object with the headline figures, without TensorFlow.

Speed targets are measured by bench/, not asserted here: this only checks the contract (keys, types,
plausible values) and that the quick path never imports TensorFlow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEYS = ("decode_ms_p50", "decode_ms_p99", "sinusoidal_rtf", "griffinlim_rtf", "librosa_griffinlim_rtf",
        "control_latency_ms_p99", "max_voices")

SCRIPT = """
import json, sys
from synth.cli import main
code = main(["bench", "--quick", "--json"])
print("TF_LOADED", "tensorflow" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


def test_quick_bench_prints_the_headline_figures_without_tensorflow():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TF_LOADED False" in proc.stderr
    figures = json.loads(proc.stdout)
    for key in KEYS:
        assert key in figures, key
        assert isinstance(figures[key], (int, float)) and figures[key] == figures[key], (key, figures[key])
    assert 0 < figures["decode_ms_p50"] <= figures["decode_ms_p99"]
    assert figures["sinusoidal_rtf"] > 1 and figures["griffinlim_rtf"] > 0 and figures["librosa_griffinlim_rtf"] > 0
    assert figures["control_latency_ms_p99"] > 0
    assert isinstance(figures["max_voices"], int) and figures["max_voices"] >= 0


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


def test_bench_documents_are_written_from_a_result(tmp_path):
    """run_all's document writer on a hand-made result (no measuring): every section and the machine."""
    sys.path.insert(0, str(REPO / "bench"))
    from run_all import write_markdown

    run = {
        "machine": {"cpu": "Test CPU", "cores": 2, "load_average": [1.0, 1.0, 1.0], "load_average_end": [2.0, 2, 2],
                    "ram_gib": 8.0, "gpu": "none", "python": "3.11", "os": "Linux", "libraries": {"numpy": "2"}},
        "when": "2026-01-01 00:00 UTC",
        "settings": {"quick": True, "soak_minutes": 2.0, "fuzz_packets": 1000},
        "results": {
            "decode": {"decode_bundle": "b", "decode_ms_p50": 1.0, "decode_ms_p99": 2.0},
            "engine": {"engine_bundle": "b", "control_latency_ms_p50": 3.0, "control_latency_ms_p99": 9.0,
                       "max_voices": 16, "buffer_ms": 16.0},
            "training": {"error": "RuntimeError: boom"},
            "soak": soak(busy=False, underflows=0),
            "soak_busy": soak(busy=True, underflows=3),
        },
        "seconds": {"decode": 1.0, "engine": 2.0},
    }
    out = tmp_path / "B.md"
    write_markdown(run, out)
    text = out.read_text()
    assert "Test CPU, 2 cores" in text and "NOT an hour" in text
    assert "| bundle | onnxruntime CPU | 1.00 | 2.00 |" in text
    assert "p99 9.0 ms" in text and "training: RuntimeError: boom" in text
    # The soak quiet and with a busy core, side by side.
    assert "| figure | quiet | busy core | target |" in text
    assert "| underflows (whole soak) | 0 | 3 | 0 |" in text
    assert "| ... at start-up / idle / playing | 0 / 0 / 0 | 1 / 0 / 2 | 0 / 0 / 0 |" in text
    assert "| control latency p50 / p99 (ms, beyond the device buffer) | 20.0 / 30.0 | 20.0 / 30.0 |" in text
