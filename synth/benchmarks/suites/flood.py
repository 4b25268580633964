"""OSC floods beside a 16-voice chord (issue 30, items 6 and 7): valid ``/synth/latent/set`` messages from
another process at 10,000 and 100,000 a second, and ``/synth/status`` requests at the same rates, at a live
engine on the null output. Reported: underflows during each flood (target 0), the commands the engine took
and the ones dropped over the sender's rate, the synthesis thread's CPU time per block and the timbres the
latent changes became, and reply bytes per request byte (target <= 1); beside them, from the same run, the
underflows (and CPU per block) with no sender and with each sender aimed at a socket nobody reads.

Usage: .venv/bin/python bench/bench_flood.py [--seconds S] [--json] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time

from synth.benchmarks.common import emit, resolve_bundle

__all__ = ["run_flood_bench", "main"]

RATES = (10_000, 100_000)
CHORD = (-12, -8, -5, 0, 4, 7, 12, 16, 19, 24, -17, -10, 2, 9, 14, 21)


def _send(port: int, *, rate: float, seconds: float, kind: str, latent_size: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "synth.benchmarks.udp_sender", "--port", str(port), "--rate", str(rate),
         "--seconds", str(seconds), "--kind", kind, "--latent-size", str(latent_size)],
        capture_output=True, text=True, timeout=seconds + 60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _work(live) -> tuple[float, int, int]:
    """What the synthesis thread has done so far: (its CPU seconds rendering, samples made, timbres sounded)."""
    return live.render_cpu_s, live.engine.position, live.engine.timbres.latent_changes


def _work_since(live, before: tuple[float, int, int]) -> dict:
    """The synthesis thread's CPU per block (ms) and the timbres sounded since ``before`` (:func:`_work`): what
    a flood costs the thread that fills the ring, beside the underflows that cost shows as."""
    cpu, samples, timbres = (a - b for a, b in zip(_work(live), before, strict=True))
    return {"synthesis_cpu_ms_per_block": cpu * 1e3 / max(samples / live.blocksize, 1), "timbres": timbres}


def run_flood_bench(*, seconds: float = 10.0, bundle: str | None = None, rates: tuple[int, ...] = RATES) -> dict:
    from synth.benchmarks.live import engine_session
    from synth.bundle import load_bundle
    from synth.control.messages import NoteOn

    path, which = resolve_bundle(bundle)
    b = load_bundle(path)
    lo, hi = max(0, b.base_pitch - 24), min(127, b.base_pitch + 24)
    notes = [min(hi, max(lo, b.base_pitch + d)) for d in CHORD]
    result: dict = {"flood_bundle": which, "flood_seconds": seconds, "flood_voices": len(notes)}
    with engine_session(b, max_voices=16) as (live, server):
        for note in notes:
            live.submit(NoteOn(note, 100.0))
        time.sleep(3.0)  # start-up decodes and the chord's onset out of the way
        router = server.router
        # Baselines from the same run: the chord with no sender, and each sender aimed at a socket of this
        # process that nobody reads (the kernel drops what overflows it). On a 2-core machine the sender
        # itself takes a core; what these count is the machine's share, not the engine's handling.
        before, work = live.stats().underflows, _work(live)
        time.sleep(seconds)
        result["quiet"] = {"underflows": live.stats().underflows - before, **_work_since(live, work)}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
            dead.bind(("127.0.0.1", 0))
            for rate in rates:
                before = live.stats().underflows
                sent = _send(dead.getsockname()[1], rate=rate, seconds=seconds, kind="latent",
                             latent_size=b.latent_size)
                time.sleep(0.5)
                result[f"unread_{rate}"] = {"sent": sent["sent"], "underflows": live.stats().underflows - before}
        for rate in rates:
            for kind in ("latent", "status"):
                before = (live.stats().underflows, router.messages, router.throttled, server.reply_bytes,
                          server.replies_dropped)
                work = _work(live)
                sent = _send(server.port, rate=rate, seconds=seconds, kind=kind, latent_size=b.latent_size)
                time.sleep(0.5)
                after = (live.stats().underflows, router.messages, router.throttled, server.reply_bytes,
                         server.replies_dropped)
                delta = [a - b0 for a, b0 in zip(after, before, strict=True)]
                result[f"{kind}_{rate}"] = {
                    "sent": sent["sent"], "rate_sent": sent["sent"] / max(sent["seconds"], 1e-9),
                    "underflows": delta[0], "applied": delta[1], "throttled": delta[2],
                    "reply_bytes": delta[3], "replies_dropped": delta[4],
                    "reply_per_request_byte": delta[3] / max(sent["sent_bytes"], 1),
                    **_work_since(live, work),
                }
        result["flood_sounding_at_end"] = int(live.engine.sounding_voices)
        result["flood_failure"] = live.failure
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    emit(run_flood_bench(seconds=args.seconds, bundle=args.bundle), as_json=args.json)
    return 0
