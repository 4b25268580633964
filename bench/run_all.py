"""Every benchmark of the project in one run on this machine; rewrites docs/BENCHMARKS.md (what `make bench`
runs). Each figure sits beside its baseline measured in the same run.

Sub-benchmarks (each its own file, importable, with a --json CLI): bench_decode (onnxruntime vs Keras),
bench_inversion (streaming methods vs librosa.griffinlim), bench_engine (control latency, voices, RSS),
bench_soak (the long soak and the hour's memory, quiet and with a busy core), bench_fuzz (100,000 packets),
bench_jack_latency (MIDI and OSC note -> first sample through JACK, measured outside the engine),
bench_training (training throughput with and without XLA), bench_render (offline render speed). A
sub-benchmark that fails is reported in the document with its error, and the others still run.

With ``--only NAME ...`` only those sections are measured, and the document keeps every other section of
its previous run: the updated ones are replaced in place and say which run they come from.

Usage: .venv/bin/python bench/run_all.py [--quick] [--soak-minutes M] [--fuzz-packets N] [--only NAME ...]
       [--json] [--no-write] [--out docs/BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit  # noqa: E402

__all__ = ["run_all", "quick_figures", "write_markdown"]


def _section(name: str, fn, results: dict, timings: dict) -> None:
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        results[name] = fn()
    except Exception as exc:  # one broken bench must not hide the others' figures
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
    timings[name] = time.monotonic() - t0
    print(f"bench: {name} done in {timings[name]:.0f} s", file=sys.stderr, flush=True)


def run_all(*, quick: bool = False, soak_minutes: float = 60.0, fuzz_packets: int = 100_000,
            keras: bool = True, only: tuple[str, ...] = ()) -> dict:
    """Run the sub-benchmarks; returns {"machine", "when", "settings", "results": {name: dict}, "seconds"}."""
    from synth.benchmarks.machine import describe_machine

    machine = describe_machine()
    results: dict = {}
    timings: dict = {}

    def want(name):
        return not only or name in only

    if want("inversion"):
        from bench_inversion import run_inversion_bench

        _section("inversion", lambda: run_inversion_bench(quick=quick), results, timings)
    if want("engine"):
        from bench_engine import run_engine_bench

        _section("engine", lambda: run_engine_bench(quick=quick), results, timings)
    if want("render"):
        from bench_render import run_render_bench

        _section("render", lambda: run_render_bench(quick=quick), results, timings)
    if want("fuzz"):
        from bench_fuzz import run_fuzz_bench

        _section("fuzz", lambda: run_fuzz_bench(packets=fuzz_packets), results, timings)
    if want("soak"):
        from bench_soak import run_soak_bench

        _section("soak", lambda: run_soak_bench(minutes=soak_minutes), results, timings)
        # The same soak with a busy loop holding one core (10 minutes at most).
        _section("soak_busy", lambda: run_soak_bench(minutes=min(10.0, soak_minutes), busy_core=True), results,
                 timings)
    if want("jack_latency"):
        from bench_jack_latency import run_jack_latency_bench

        _section("jack_latency", lambda: run_jack_latency_bench(trials=10 if quick else 20), results, timings)
    # TensorFlow last: once imported it stays in this process's memory and threads.
    if want("decode"):
        from bench_decode import run_decode_bench

        _section("decode", lambda: run_decode_bench(quick=quick, keras=keras), results, timings)
    if want("training"):
        from bench_training import run_training_bench

        _section("training", lambda: run_training_bench(quick=quick), results, timings)
    machine["load_average_end"] = [round(v, 2) for v in __import__("os").getloadavg()]
    return {
        "machine": machine,
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"quick": quick, "soak_minutes": soak_minutes, "fuzz_packets": fuzz_packets},
        "results": results,
        "seconds": timings,
    }


def quick_figures() -> dict:
    """What `melsynth bench --quick --json` prints: the headline figures in well under a minute, no TF."""
    from bench_decode import bundle_decode
    from bench_engine import run_engine_bench
    from bench_inversion import run_inversion_bench

    out: dict = {}
    out.update(bundle_decode(quick=True))
    inv = run_inversion_bench(quick=True)
    out.update({k: inv[k] for k in ("sinusoidal_rtf", "griffinlim_rtf", "librosa_griffinlim_rtf") if k in inv})
    eng = run_engine_bench(quick=True)
    out.update({k: eng[k] for k in ("control_latency_ms_p50", "control_latency_ms_p99", "preset_latency_ms_p99",
                                    "sweep_latency_ms_p99", "morph_latency_ms_p99", "morph_exact_latency_ms_p99",
                                    "macro_latency_ms_p99",
                                    "note_latency_ms_p99", "buffer_ms", "max_voices", "engine_rss_start_mb")})
    import os

    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    out["cores"] = os.cpu_count()
    return out


# ---------------------------------------------------------------------------------------------- the document
def _f(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def _get(results, section, key, digits=1):
    return _f(results.get(section, {}).get(key), digits)


def _soak_markdown(soaks: list[tuple[str, dict]]) -> list[str]:
    """The soak table: one column per run (quiet, and with a busy loop holding a core)."""
    first = soaks[0][1]
    rows = [
        ("minutes", lambda k: _f(k["soak_minutes"], 0), ""),
        ("underflows (whole soak)", lambda k: k["soak_underflows"], "0"),
        ("... at start-up / idle / playing", lambda k: " / ".join(str(v) for v in (k.get("soak_underflows_by_phase") or {}).values()) or "n/a", "0 / 0 / 0"),
        ("underflows at 10 minutes", lambda k: _f(k.get("soak_10min_underflows")), "0"),
        ("JACK device xruns", lambda k: _f(k.get("soak_device_xruns")), "0"),
        ("control latency p50 / p99 (ms, beyond the device buffer)",
         lambda k: f"{_f(k.get('soak_latency_ms_p50'))} / {_f(k.get('soak_latency_ms_p99'))}", ""),
        ("margin: widest (ms) after near-misses", lambda k: f"{_f(k.get('soak_margin_ms_widest'))} after "
         f"{k.get('soak_near_misses', 0)}", "none needed"),
        ("refused messages", lambda k: k["soak_errors"], "0"),
        ("NaN samples", lambda k: k["soak_nan"], "0"),
        ("peak sample", lambda k: _f(k["soak_peak"], 3), "<= 1.0"),
        ("audio played (s)", lambda k: _f(k["soak_seconds_played"]), "as long as the soak"),
        ("RSS at start (MiB)", lambda k: _f(k["rss_start_mb"]), "< 500"),
        ("RSS at 10 minutes (MiB)", lambda k: _f(k.get("rss_10min_mb")), "flat"),
        ("RSS at the end, max (MiB)", lambda k: f"{_f(k['rss_end_mb'])}, {_f(k['rss_max_mb'])}", "flat, < 500"),
        ("status queries unanswered within 10 s", lambda k: k.get("soak_status_timeouts"), "0"),
        ("underflows over time (s, count so far)", lambda k: k.get("soak_underflow_timeline") or "none", "none"),
        ("RSS every 10 minutes (minute, MiB)", lambda k: k.get("soak_rss_timeline"), "flat"),
        ("serve ended before the soak did", lambda k: _f(k.get("soak_serve_ended_early")), "no"),
    ]
    lines = [
        f"## Soak ({first['soak_output']} output, {_f(first['soak_rate'], 0)} messages/s, morphing, 16-voice chords)",
        "",
        f"Bundle: {first.get('soak_bundle')}. `melsynth serve` in its own process, played over UDP; 'busy core': a "
        "plain busy loop in another process at normal priority for the whole soak.", "",
        "| figure | " + " | ".join(name for name, _ in soaks) + " | target |",
        "|---|" + "---|" * len(soaks) + "---|",
    ]
    for label, cell, target in rows:
        lines.append(f"| {label} | " + " | ".join(str(cell(k)) for _, k in soaks) + f" | {target} |")
    for name, k in soaks:
        lines += ["", f"serve's own summary ({name}): " + " / ".join(k.get("serve_summary", [])),
                  f"serve's stderr ({name}, last lines): " + " / ".join(k.get("soak_serve_stderr", []))]
    return lines + [""]


def _jack_latency_markdown(j: dict) -> list[str]:
    """MIDI beside OSC: note-on -> first sample through JACK, measured by a JACK client outside the engine."""
    def cell(key: str) -> str:
        v = j.get(key) or {}
        return f"{_f(v.get('p50'))} / {_f(v.get('p99'))} / {_f(v.get('max'))} ({v.get('n', 0)})"

    period_ms = j["jack_period"] / j["jack_rate"] * 1e3
    return [
        f"## Note latency through JACK ({j['jack_rate']} Hz, {j['jack_period']}-frame periods, "
        f"serve --ahead {j['jack_ahead_blocks']})", "",
        f"Bundle: {j.get('jack_latency_bundle')}. A JACK client of the benchmark's own records serve's output "
        "port and sends the note: MIDI from its own MIDI port at offset 0 of a JACK cycle, OSC over UDP with "
        "JACK's frame clock read just before. Latency: the frame of the first output sample above the threshold "
        f"minus the frame the note was sent at. One JACK period is {period_ms:.1f} ms; the engine renders "
        f"{j['jack_ahead_blocks']} blocks ahead and waits for its next 7.8 ms frame.", "",
        "| note-on from | first non-zero sample p50 / p99 / max ms (n) | first sample above -40 dBFS p50 / p99 / max ms (n) |",
        "|---|---|---|",
        f"| MIDI (JACK MIDI port) | {cell('jack_midi_note_nonzero_ms')} | {cell('jack_midi_note_loud_ms')} |",
        f"| OSC (UDP, loopback) | {cell('jack_osc_note_nonzero_ms')} | {cell('jack_osc_note_loud_ms')} |",
        "", "serve's own summary: " + " / ".join(j.get("serve_summary", [])), "",
    ]


def _sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(what comes before the first "## " heading, [(title up to its first parenthesis, section text)])."""
    parts = text.split("\n## ")
    return parts[0], [(p.split("\n", 1)[0].split(" (")[0].strip(), "## " + p.rstrip("\n")) for p in parts[1:]]


def merge_sections(previous: str, update: str, *, note: str) -> str:
    """``previous`` with each section of ``update`` in place of the one with the same title (the title up to
    its first parenthesis), sections new to it added before "## Time taken"; each such section ends with
    ``note``. The machine, timing and failure sections of ``update`` are left out."""
    head, old = _sections(previous)
    fresh = {k: f"{body}\n\n{note}" for k, body in _sections(update)[1]
             if k not in {"Machine", "Time taken", "Benchmarks that failed in this run"}}
    titles = [k for k, _ in old]
    added = [fresh[k] for k in fresh if k not in titles]
    out = []
    for k, body in old:
        if k == "Time taken":
            out += added
            added = []
        out.append(fresh.get(k, body))
    out += added
    return head.rstrip("\n") + "\n\n" + "\n\n".join(out) + "\n"


def write_markdown(run: dict, path: Path) -> None:
    """Write docs/BENCHMARKS.md from :func:`run_all`'s result."""
    m, r, s = run["machine"], run["results"], run["settings"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    lines = [
        "# Benchmarks",
        "",
        f"Written by `bench/run_all.py` (`make bench`) on {run['when']}; every figure below comes from that one "
        "run, each beside its baseline measured in the same run. Rerun it to refresh this file.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gib']} GiB; GPU: {m['gpu']}",
        f"- Load average at start {m['load_average']}, at end {m.get('load_average_end')} "
        "(other jobs on a shared machine slow every figure; compare figures within this run, not across runs)",
        f"- Python {m['python']}, {m['os']}; {libs}",
        f"- Settings: quick={s['quick']}, soak {s['soak_minutes']:g} minutes, fuzz {s['fuzz_packets']} packets"
        + (" (shorter than the 60-minute / 100,000-packet defaults: the hour figures below are NOT an hour)"
           if s["soak_minutes"] < 60 or s["fuzz_packets"] < 100_000 else ""),
        "",
    ]
    errors = {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}

    if "decode" in r and "error" not in r["decode"]:
        d = r["decode"]
        lines += [
            "## Decode (one latent -> one 4 s log-mel, batch 1)", "",
            f"Bundle: {d.get('decode_bundle')}.", "",
            "| decoder | runtime | p50 ms | p99 ms |", "|---|---|---|---|",
            f"| bundle | onnxruntime {d.get('decode_provider', 'CPU')} | {_f(d.get('decode_ms_p50'), 2)} | "
            f"{_f(d.get('decode_ms_p99'), 2)} |",
        ]
        if "decode_cuda_ms_p50" in d:
            lines.append(f"| bundle | onnxruntime CUDA | {_f(d['decode_cuda_ms_p50'], 2)} | {_f(d['decode_cuda_ms_p99'], 2)} |")
        if "paper_keras_ms_p50" in d:
            lines += [
                f"| paper-size | Keras (tf.function), the baseline | {_f(d['paper_keras_ms_p50'])} | "
                f"{_f(d['paper_keras_ms_p99'])} |",
                f"| paper-size | Keras predict_on_batch | {_f(d['paper_keras_predict_on_batch_ms_p50'])} | |",
                f"| paper-size | onnxruntime CPU | {_f(d['paper_ort_cpu_ms_p50'])} | {_f(d['paper_ort_cpu_ms_p99'])} |",
            ]
            if "paper_ort_cuda_ms_p50" in d:
                lines.append(f"| paper-size | onnxruntime CUDA | {_f(d['paper_ort_cuda_ms_p50'])} | "
                             f"{_f(d['paper_ort_cuda_ms_p99'])} |")
            lines += ["", f"Paper-size decoder: {d.get('paper_decoder')}. onnxruntime is "
                      f"{_f(d.get('paper_ort_speedup_vs_keras'), 2)}x the speed of Keras on it (p50)."]
        if "morph_step_estimate_error_db" in d:
            lines += ["", f"Morph estimate (what the live engine sounds while a morph decodes): over "
                      f"{d['morph_pairs']} preset pairs in {d['morph_steps']} fader steps, the estimate from the "
                      f"previous step is {_f(d['morph_step_estimate_error_db'], 2)} dB from the exact decode (mean "
                      f"absolute), against {_f(d['morph_step_stale_error_db'], 2)} dB for the previous step's "
                      f"sound kept until the decode lands (the baseline); a jump from a preset to the midpoint: "
                      f"{_f(d['morph_jump_estimate_error_db'], 2)} dB against "
                      f"{_f(d['morph_jump_stale_error_db'], 2)} dB."]
        if "sweep_step_estimate_error_db" in d:
            lines += ["", f"Fader estimate (one latent coordinate, `/synth/latent/set`, extrapolated one step "
                      f"along the previous two decodes; steps of a quarter of the coordinate's spread over the "
                      f"presets): {_f(d['sweep_step_estimate_error_db'], 4)} dB from the exact decode against "
                      f"{_f(d['sweep_step_stale_error_db'], 4)} dB for the old sound."]
        if "macro_step_estimate_error_db" in d:
            lines += ["", f"Macro estimate (a macro's slope at the mean latent): a quarter-standard-deviation "
                      f"move is {_f(d['macro_step_estimate_error_db'], 2)} dB from the exact decode against "
                      f"{_f(d['macro_step_stale_error_db'], 2)} dB for the old sound; a one-deviation move "
                      f"{_f(d['macro_jump_estimate_error_db'], 2)} dB against {_f(d['macro_jump_stale_error_db'], 2)} dB."]
        lines.append("")

    if "inversion" in r and "error" not in r["inversion"]:
        v = r["inversion"]
        lines += [
            "## Inversion (mel -> audio), real-time factor per voice", "",
            "| method | x real time | us/frame | spectral convergence dB | max pitch error cents |",
            "|---|---|---|---|---|",
            f"| streaming sinusoidal | {_get(r, 'inversion', 'sinusoidal_rtf')} | "
            f"{_get(r, 'inversion', 'sinusoidal_us_per_frame')} | {_get(r, 'inversion', 'sinusoidal_sc_db')} | "
            f"{_get(r, 'inversion', 'sinusoidal_pitch_max_cents')} |",
            f"| streaming Griffin-Lim | {_get(r, 'inversion', 'griffinlim_rtf')} | "
            f"{_get(r, 'inversion', 'griffinlim_us_per_frame')} | {_get(r, 'inversion', 'griffinlim_sc_db')} | "
            f"{_get(r, 'inversion', 'griffinlim_pitch_max_cents')} |",
            f"| librosa.griffinlim, 32 iterations (baseline, whole note) | {_get(r, 'inversion', 'librosa_griffinlim_rtf')} "
            f"| {_get(r, 'inversion', 'librosa_griffinlim_us_per_frame')} | "
            f"{_get(r, 'inversion', 'librosa_griffinlim_sc_db')} | |",
            "", f"Streaming Griffin-Lim / librosa speed: {_get(r, 'inversion', 'griffinlim_speedup_vs_librosa', 2)}x. "
            "Targets: sinusoidal >= 200x, streaming Griffin-Lim >= 3x librosa at no worse convergence.", "",
            "<details><summary>all inversion figures</summary>", "", "```json",
            json.dumps(v, indent=1, default=str), "```", "</details>", "",
        ]

    if "engine" in r and "error" not in r["engine"]:
        e = r["engine"]
        lines += [
            "## Live engine (null output paced like a 48 kHz device, 256-sample blocks)", "",
            f"Bundle: {e.get('engine_bundle')}.", "",
            f"- Control latency, OSC packet received -> first output sample carrying the change: p50 "
            f"{_f(e.get('control_latency_ms_p50'))} ms, p99 {_f(e.get('control_latency_ms_p99'))} ms, max "
            f"{_f(e.get('control_latency_ms_max'))} ms over {e.get('control_events')} changes; this includes the "
            f"engine's {_f(e.get('buffer_ms'))} ms output buffer and the frame clock (7.8 ms frames); the null "
            "output adds no device buffer. Target: p99 under 20 ms beyond the device buffer. These are "
            "`/synth/latent/set` changes with a random index and value each: every one needs a decode "
            "(nothing decoded lies near a jump in a random direction).",
            f"- A fader on one latent coordinate (`/synth/latent/set`, 50 messages/s, a new coordinate every "
            f"second): p50 {_f(e.get('sweep_latency_ms_p50'))} ms, p90 {_f(e.get('sweep_latency_ms_p90'))} ms, "
            f"p99 {_f(e.get('sweep_latency_ms_p99'))} ms over {e.get('sweep_latency_events')} changes, "
            f"most of them sounding first as an estimate along the sweep's decoded points ({e.get('sweep_estimated')} "
            f"estimates: a change still waiting when an older decode lands is estimated again from it); the "
            f"first points of each sweep wait for those decodes (exact p50 "
            f"{_f(e.get('sweep_exact_latency_ms_p50'))} ms, p99 {_f(e.get('sweep_exact_latency_ms_p99'))} ms).",
            f"- Morphs between two presets (`/synth/morph`, a new position each time, each needing a decode): "
            f"an estimate from the decoded presets sounds at p50 {_f(e.get('morph_latency_ms_p50'))} ms, p99 "
            f"{_f(e.get('morph_latency_ms_p99'))} ms over {e.get('morph_latency_events')} changes; the exact "
            f"decode follows at p50 {_f(e.get('morph_exact_latency_ms_p50'))} ms, p99 "
            f"{_f(e.get('morph_exact_latency_ms_p99'))} ms (its baseline: what every morph cost before the "
            "estimate).",
            f"- Macro moves (`/synth/macro`, one of the first four, a new setting each time): the estimate "
            f"sounds at p50 {_f(e.get('macro_latency_ms_p50'))} ms, p99 {_f(e.get('macro_latency_ms_p99'))} ms "
            f"over {e.get('macro_latency_events')} changes; the exact decode at p50 "
            f"{_f(e.get('macro_exact_latency_ms_p50'))} ms, p99 {_f(e.get('macro_exact_latency_ms_p99'))} ms.",
            f"- The same path without a decode: preset switches (answered from the timbre cache, every preset "
            f"decoded after start) p50 {_f(e.get('preset_latency_ms_p50'))} ms, p99 "
            f"{_f(e.get('preset_latency_ms_p99'))} ms over {e.get('preset_latency_events')}; notes p50 "
            f"{_f(e.get('note_latency_ms_p50'))} ms, p99 {_f(e.get('note_latency_ms_p99'))} ms over "
            f"{e.get('note_latency_events')}.",
            f"- Most voices held without underflow: sinusoidal {e.get('max_voices')}, Griffin-Lim "
            f"{e.get('max_voices_griffinlim', 'n/a')} (target 16 on 2 cores). Tried: {e.get('max_voices_tried')}; "
            f"Griffin-Lim {e.get('max_voices_griffinlim_tried', 'n/a')}.",
            f"- Resident memory of the bench process with the engine started: {_f(e.get('engine_rss_start_mb'))} MiB "
            "(it also holds librosa and numba from the inversion bench; `melsynth serve`'s own figure is in the "
            "soak section).", "",
        ]

    soaks = [(name, r[key]) for name, key in (("quiet", "soak"), ("busy core", "soak_busy"))
             if key in r and "error" not in r[key]]
    if soaks:
        lines += _soak_markdown(soaks)

    if "jack_latency" in r and "error" not in r["jack_latency"] and "jack_latency_skipped" not in r["jack_latency"]:
        lines += _jack_latency_markdown(r["jack_latency"])

    if "fuzz" in r and "error" not in r["fuzz"]:
        z = r["fuzz"]
        lines += [
            f"## OSC fuzz ({z['fuzz_packets']} malformed packets over UDP)", "",
            f"- {_f(z['fuzz_packets_per_s'], 0)} packets/s handled; every packet counted: {_f(z['fuzz_all_counted'])}; "
            f"engine alive: {_f(z['fuzz_alive'])}; state as the {z['fuzz_valid_messages']} valid messages made it: "
            f"{_f(z['fuzz_state_as_valid_messages_made_it'])}; messages accepted: {z['fuzz_accepted_messages']} "
            f"(= the valid ones); errors counted: {z['fuzz_errors']}; error replies sent (rate limited): "
            f"{z['fuzz_error_replies']}; underflows during the flood: {z['fuzz_underflows_during_flood']}; a note "
            f"after it: {_f(z['fuzz_note_after_cents'])} cents from equal temperament.",
            f"- Kinds: {z['fuzz_kinds']}.", "",
        ]

    for name, title in (("training", "Training throughput"), ("render", "Offline rendering")):
        if name in r and "error" not in r[name]:
            lines += [f"## {title}", "", "```json", json.dumps(r[name], indent=1, default=str), "```", ""]

    if errors:
        lines += ["## Benchmarks that failed in this run", ""]
        lines += [f"- {k}: {v}" for k, v in errors.items()]
        lines.append("")
    lines += ["## Time taken", "", ", ".join(f"{k} {v:.0f} s" for k, v in run["seconds"].items()), ""]
    from synth.atomic import atomic_write_text

    atomic_write_text(path, "\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short versions of every benchmark")
    parser.add_argument("--soak-minutes", type=float, default=60.0, help="soak length (default 60)")
    parser.add_argument("--fuzz-packets", type=int, default=100_000)
    parser.add_argument("--only", nargs="+", default=(), metavar="NAME",
                        help="decode inversion engine render training fuzz soak jack_latency")
    parser.add_argument("--no-keras", action="store_true", help="skip the TensorFlow decode baseline")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON too")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite the document")
    parser.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    run = run_all(quick=args.quick, soak_minutes=args.soak_minutes, fuzz_packets=args.fuzz_packets,
                  keras=not args.no_keras, only=tuple(args.only))
    if not args.no_write:
        out = Path(args.out)
        if args.only and out.is_file():
            # A partial run: its sections replace theirs, the rest of the last full run stays as it was.
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                write_markdown(run, Path(tmp) / "part.md")
                update = (Path(tmp) / "part.md").read_text()
            m = run["machine"]
            note = (f"_This section: `bench/run_all.py --only {' '.join(args.only)}` on {run['when']}, load average "
                    f"{m['load_average']} at its start and {m.get('load_average_end')} at its end; the other "
                    "sections come from the run named at the top._")
            from synth.atomic import atomic_write_text

            atomic_write_text(out, merge_sections(out.read_text(), update, note=note))
        else:
            write_markdown(run, out)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    if args.json:
        emit(run, as_json=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
