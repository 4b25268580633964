"""The soak: `melsynth serve` plays for --minutes (default 60) through the JACK dummy server (null output
when jackd is missing) while random valid control arrives at 200 messages/s: continuous morphing, 16-voice
chords every 2 s, latent values, macros, XY, gain. Reports underflows, device xruns, NaN, peak, and the
server's resident memory at start, after 10 minutes, and at the end; the figures at the 10-minute mark are
the issue's 10-minute soak.

With ``busy_core`` (``--busy-core``) a plain busy loop runs beside it at normal priority, in its own process,
for the whole soak: what a laptop's browser does to a performer's machine.

Usage: .venv/bin/python bench/bench_soak.py [--minutes M] [--output jack|null] [--busy-core] [--json] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synth.benchmarks.common import emit, jack_server, resolve_bundle, serve_port

__all__ = ["run_soak_bench"]


def _status(sock, port) -> dict:
    from pythonosc.osc_message import OscMessage

    from synth.osc.packets import encode_message

    sock.sendto(encode_message("/synth/status", []), ("127.0.0.1", port))
    while True:
        data, _ = sock.recvfrom(65536)
        m = OscMessage(data)
        if m.address == "/synth/status":
            args = list(m.params)
            return dict(zip(args[::2], args[1::2], strict=True))


def _increments(samples: list[dict]) -> list[tuple[int, int]]:
    out, last = [], 0
    for s in samples:
        if s["underflows"] is not None and s["underflows"] > last:
            out.append((round(s["t"]), s["underflows"]))
            last = s["underflows"]
    return out


BUSY_LOOP = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def run_soak_bench(*, minutes: float = 60.0, output: str = "jack", bundle: str | None = None,
                   rate: float = 200.0, busy_core: bool = False, serve_args: tuple[str, ...] = (),
                   beside=None) -> dict:
    """``serve_args``: more flags for serve; ``beside(proc)``: a context manager (given serve's process, its
    stdout read up to the output line) that runs during the soak and yields a dict of figures, returned under
    ``soak_beside`` (the web soak's page, :mod:`synth.benchmarks.suites.web_soak`)."""
    import contextlib
    import socket

    from synth.benchmarks.soak import rss_mb, run_soak, scan_wav
    from synth.bundle import load_bundle
    from synth.control.spec import NOTE_SPAN

    path, which = resolve_bundle(bundle)
    b = load_bundle(path)
    with tempfile.TemporaryDirectory() as tmp, jack_server() as jack:
        take = Path(tmp) / "soak.wav"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        args = [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(path), "--port", "0", "--voices", "16",
                "--record", str(take)]
        used = output
        if output == "jack" and jack is not None:
            env["JACK_DEFAULT_SERVER"] = jack.name
            args += ["--output", "sounddevice", "--device", "system", "--ahead", "4"]
        else:
            used = "null"
            args += ["--output", "null"]
        args += list(serve_args)
        # Bounded by itself too (a soak that dies cannot leave it spinning): the soak plus two minutes.
        busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(seconds=minutes * 60 + 120)]) if busy_core else None
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        companion = contextlib.ExitStack()
        beside_figures = None
        try:
            port = serve_port(proc)
            if beside is not None:
                beside_figures = companion.enter_context(beside(proc))
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(10.0)
            rss_start = rss_mb(proc.pid)
            t0 = time.monotonic()

            def sample():
                try:
                    s = _status(sock, port)
                except (TimeoutError, OSError):  # a starved or dead server: recorded, the soak goes on
                    s = {"underflows": None, "voices": 0, "errors": None}
                try:
                    rss = rss_mb(proc.pid)
                except OSError:
                    rss = None
                return {"t": time.monotonic() - t0, "rss_mb": rss, "underflows": s["underflows"],
                        "voices": s["voices"], "errors": s["errors"]}

            result = run_soak(port, seconds=minutes * 60.0, presets=tuple(b.presets),
                              note_range=(b.base_pitch - NOTE_SPAN, b.base_pitch + NOTE_SPAN),
                              latent_size=b.latent_size, macro_count=len(b.macros.stds), rate=rate, sample=sample,
                              sample_every=10.0, should_stop=lambda: proc.poll() is not None)
            end = sample()
            companion.close()
            # Before serve stops: its client leaving mid-cycle is blamed for one more xrun, not of the soak.
            late_clients = jack.late_clients() if jack is not None and used == "jack" else {}
            sock.close()
            exit_early = proc.poll()
            if exit_early is None:
                proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            companion.close()
            for p in (proc, busy):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
        played = re.search(r"(\d+) underflows \((\d+) at start-up, (\d+) idle, (\d+) playing\), (\d+) device xruns",
                           out or "")
        latency = re.search(r"control latency p50 ([\d.]+) ms, p99 ([\d.]+) ms", out or "")
        exact = re.search(r"exact p99 ([\d.]+) ms", out or "")
        margin = re.search(r"grew from ([\d.]+) ms to at most ([\d.]+) ms after (\d+) near-misses", out or "")
        samples = result["samples"]
        # The status taken at the end counts for a soak of exactly 10 minutes (its last 10 s sample is at 590 s).
        at10 = next((s for s in samples + [end] if s["t"] >= 599.0), None)
        scan = scan_wav(take) if take.exists() else {"samples": 0, "nan": -1, "peak": float("nan")}
    return {
        "soak_bundle": which, "soak_output": used, "soak_minutes": minutes, "soak_messages": result["messages"],
        "soak_rate": result["messages"] / result["seconds"],
        "soak_busy_core": busy_core,
        "soak_underflows": int(played.group(1)) if played else end["underflows"],
        "soak_underflows_by_phase": {k: int(played.group(i)) for i, k in ((2, "start-up"), (3, "idle"), (4, "playing"))}
        if played else None,
        "soak_device_xruns": int(played.group(5)) if played else None,
        # Which client jackd blamed each of its xruns on ("PortAudio" is the engine's; none: the server itself).
        "soak_jack_late_clients": dict(late_clients),
        "soak_latency_ms_p50": float(latency.group(1)) if latency else None,
        "soak_latency_ms_p99": float(latency.group(2)) if latency else None,
        # To the exact decode of a latent change (a keyboard bundle's chord may sound first moved from fewer keys).
        "soak_exact_latency_ms_p99": float(exact.group(1)) if exact else None,
        "soak_margin_ms_widest": float(margin.group(2)) if margin else None,
        "soak_near_misses": int(margin.group(3)) if margin else 0,
        "soak_errors": max((s["errors"] for s in samples + [end] if s["errors"] is not None), default=None), "soak_max_voices": max(s["voices"] for s in samples + [end]),
        "soak_nan": scan["nan"], "soak_peak": scan["peak"], "soak_seconds_played": scan["samples"] / 48000,
        "rss_start_mb": rss_start, "rss_end_mb": end["rss_mb"] if end["rss_mb"] is not None else samples[-1]["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples + [end] if s["rss_mb"] is not None),
        "soak_serve_ended_early": exit_early is not None, "soak_status_timeouts": sum(
            1 for s in samples + [end] if s["errors"] is None),
        "soak_serve_stderr": (err or "").strip().splitlines()[-2:],
        "soak_10min_underflows": at10["underflows"] if at10 else None,
        # When they happened: (seconds into the soak, underflows so far) at each 10 s status that saw more.
        "soak_underflow_timeline": _increments(samples + [end]),
        # Memory every 10 minutes (MiB): flat once the timbre cache has filled, in the first minutes.
        "soak_rss_timeline": [(round(s["t"] / 60), round(s["rss_mb"], 1)) for s in samples
                              if s["rss_mb"] is not None and int(s["t"]) % 600 < 10], "rss_10min_mb": at10["rss_mb"] if at10 else None,
        "serve_summary": (out or "").strip().splitlines()[-3:],
        "soak_beside": beside_figures,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="soak length (default 60)")
    parser.add_argument("--output", choices=("jack", "null"), default="jack")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--busy-core", action="store_true", help="a busy loop in another process beside the soak")
    args = parser.parse_args(argv)
    emit(run_soak_bench(minutes=args.minutes, output=args.output, bundle=args.bundle, busy_core=args.busy_core),
         as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
