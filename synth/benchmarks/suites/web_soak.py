"""The soak with the page open and playing, beside the same soak without it, in one run: `melsynth serve` under
random valid OSC control (synth.benchmarks.suites.soak) for --minutes each, once as it is and once with
``--web`` and a page (:class:`~synth.benchmarks.page_player.PagePlayer`, aiohttp, no browser) playing 16-voice
chords and XY moves over the page's socket and taking its status and pictures. Reports the underflows of each.

Usage: .venv/bin/python bench/bench_web_soak.py [--minutes M] [--output jack|null] [--json] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys

from synth.benchmarks.common import emit, resolve_bundle

__all__ = ["run_web_soak_bench"]

# What the two runs are compared on.
KEYS = ("soak_output", "soak_messages", "soak_underflows", "soak_underflows_by_phase", "soak_device_xruns",
        "soak_near_misses", "soak_max_voices", "soak_errors", "soak_latency_ms_p99", "soak_nan", "rss_max_mb",
        "soak_serve_ended_early")


@contextlib.contextmanager
def _page(proc, *, presets, note_range):
    """The page playing on serve ``proc`` (its address read from serve's next line); yields its figures."""
    from synth.benchmarks.page_player import PagePlayer

    line = proc.stdout.readline()
    m = re.search(r"play it in a browser: (\S+)", line)
    if m is None:
        raise RuntimeError(f"serve printed no page address: {line!r}")
    with PagePlayer(m.group(1), presets=presets, note_range=note_range) as figures:
        yield figures


def run_web_soak_bench(*, minutes: float = 10.0, output: str = "jack", bundle: str | None = None) -> dict:
    from synth.benchmarks.suites.soak import run_soak_bench
    from synth.bundle import load_bundle
    from synth.control.spec import NOTE_SPAN

    path, _ = resolve_bundle(bundle)
    b = load_bundle(path)
    note_range = (b.base_pitch - NOTE_SPAN, b.base_pitch + NOTE_SPAN)
    plain = run_soak_bench(minutes=minutes, output=output, bundle=bundle)
    with_page = run_soak_bench(
        minutes=minutes, output=output, bundle=bundle, serve_args=("--web", "0"),
        beside=lambda proc: _page(proc, presets=tuple(b.presets), note_range=note_range))
    out = {"web_soak_minutes": minutes}
    for key in KEYS:
        out[f"without_page_{key}"] = plain[key]
        out[f"with_page_{key}"] = with_page[key]
    page = with_page["soak_beside"] or {}
    out.update({f"page_{k}": v for k, v in page.items()})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="each soak's length (default 10)")
    parser.add_argument("--output", choices=("jack", "null"), default="jack")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args(argv)
    emit(run_web_soak_bench(minutes=args.minutes, output=args.output, bundle=args.bundle), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
