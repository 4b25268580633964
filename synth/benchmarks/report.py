"""docs/BENCHMARKS.md, written from the result of a run of every benchmark (:func:`synth.commands.bench.run_all`,
what ``melsynth bench``, bench/run_all.py and ``make bench`` run).

:func:`document` is the whole text: the header and the machine (:func:`header_markdown`), then one section per
benchmark that ran without an error, each from its own function (:func:`decode_markdown`,
:func:`inversion_markdown`, :func:`engine_markdown`, :func:`soak_markdown`, :func:`jack_latency_markdown`,
:func:`fuzz_markdown`, :func:`json_markdown` for training and rendering), then the benchmarks that failed
(:func:`failures_markdown`) and the time each took (:func:`timings_markdown`). :func:`write_document` writes
it, or with ``only`` (a partial run, ``--only``) merges its sections into the document already there
(:func:`merge_sections`).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
    "document", "write_markdown", "write_document", "merge_sections", "header_markdown", "decode_markdown",
    "inversion_markdown", "engine_markdown", "soak_markdown", "jack_latency_markdown", "fuzz_markdown",
    "json_markdown", "failures_markdown", "timings_markdown",
]

# Sections a partial run does not carry into the document: its machine and timings are the full run's.
_RUN_SECTIONS = {"Machine", "Time taken", "Benchmarks that failed in this run"}


def _f(value, digits: int = 1) -> str:
    """A figure as the document prints it: n/a for a missing one or NaN, yes/no, ``digits`` decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def header_markdown(run: dict) -> list[str]:
    """The title, which run wrote the document, and the machine and settings it ran with."""
    m, s = run["machine"], run["settings"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    return [
        "# Benchmarks",
        "",
        f"Written by `melsynth bench` (`bench/run_all.py`, `make bench`) on {run['when']}. Each section's figures "
        "come from one run, each beside its baseline measured in the same run: this one, or the later "
        "`melsynth bench --only ...` run named at the section's foot. Rerun it to refresh this file.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gib']} GiB; GPU: {m['gpu']}",
        f"- Load average at start {m['load_average']}, at end {m.get('load_average_end')} "
        "(other jobs on a shared machine slow every figure; compare figures within this run, not across runs)",
        f"- Python {m['python']}, {m['os']}; {libs}",
        f"- Settings: quick={s['quick']}, soak {s['soak_minutes']:g} minutes, fuzz {s['fuzz_packets']} packets"
        + _shortened(s),
        "",
    ]


def _shortened(settings: dict) -> str:
    """What the run shortened against the defaults (a 60-minute soak, 100,000 fuzz packets), or ""."""
    short = []
    if settings["soak_minutes"] < 60:
        short.append(f"the soak ran {settings['soak_minutes']:g} minutes, not the default 60: its figures are NOT an hour's")
    if settings["fuzz_packets"] < 100_000:
        short.append(f"the fuzz sent {settings['fuzz_packets']} packets, not the default 100,000")
    return f" ({'; '.join(short)})" if short else ""


def decode_markdown(d: dict) -> list[str]:
    """The bundle's decode time beside the Keras baseline, and the live engine's estimates against the exact
    decode (morphs, faders, macros)."""
    lines = [
        "## Decode (one latent -> one 4 s log-mel, batch 1)", "",
        f"Bundle: {d.get('decode_bundle')}.", "",
        "| decoder | runtime | p50 ms | p99 ms |", "|---|---|---|---|",
        f"| bundle | onnxruntime {d.get('decode_provider', 'CPU')} | {_f(d.get('decode_ms_p50'), 2)} | "
        f"{_f(d.get('decode_ms_p99'), 2)} |",
    ]
    if "decode_1thread_ms_p50" in d:
        lines.append(f"| bundle, one thread (as the live engine) | onnxruntime CPU | {_f(d['decode_1thread_ms_p50'], 2)} | "
                     f"{_f(d['decode_1thread_ms_p99'], 2)} |")
    if "tile_1thread_ms_p50" in d:
        lines.append(f"| bundle's tile decoder ({d['tile_columns']} of {d['tile_total_columns']} latent columns), one "
                     f"thread | onnxruntime CPU | {_f(d['tile_1thread_ms_p50'], 2)} | {_f(d['tile_1thread_ms_p99'], 2)} |")
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
    return lines + [""]


def inversion_markdown(v: dict) -> list[str]:
    """The streaming inversion methods against librosa.griffinlim: speed, convergence, pitch, the region table;
    all figures."""
    from synth.benchmarks.suites.inversion_regions import format_region_table
    from synth.inversion import METHODS

    names = {"harmonic": "streaming harmonic + noise (default)", "sinusoidal": "streaming sinusoidal",
             "griffinlim": "streaming Griffin-Lim"}
    lines = [
        "## Inversion (mel -> audio), real-time factor per voice", "",
        "| method | x real time | us/frame | spectral convergence dB | max pitch error cents |",
        "|---|---|---|---|---|",
        *[f"| {names.get(m, m)} | {_f(v.get(m + '_rtf'))} | {_f(v.get(m + '_us_per_frame'))} | "
          f"{_f(v.get(m + '_sc_db'))} | {_f(v.get(m + '_pitch_max_cents'))} |" for m in METHODS],
        f"| librosa.griffinlim, 32 iterations (baseline, whole note) | {_f(v.get('librosa_griffinlim_rtf'))} "
        f"| {_f(v.get('librosa_griffinlim_us_per_frame'))} | "
        f"{_f(v.get('librosa_griffinlim_sc_db'))} | |",
        "", f"Streaming Griffin-Lim / librosa speed: {_f(v.get('griffinlim_speedup_vs_librosa'), 2)}x. "
        "Target: the default >= 100x per voice, and no worse than the others in any region below.", "",
    ]
    for key, what in (("regions", "synthetic harmonic notes"), ("real_regions", "real SoundFont notes")):
        if isinstance(v.get(key), dict) and v[key]:
            first = next(iter(v[key].values()))
            lines += [f"Where each method loses a note: {first.get('notes')} {what}, the original log-mel inverted at "
                      "48 kHz, analysed again and compared with the original (bias / mean |error| in dB over its loud "
                      "bins; top band: the highest band holding energy, against the original's).", "",
                      format_region_table(v[key]), ""]
    return lines + [
        "<details><summary>all inversion figures</summary>", "", "```json",
        json.dumps(v, indent=1, default=str), "```", "</details>", "",
    ]


def engine_markdown(e: dict) -> list[str]:
    """The live engine's control latency by kind of change, the most voices held, its memory."""
    return [
        "## Live engine (null output paced like a 48 kHz device, 256-sample blocks)", "",
        f"Bundle: {e.get('engine_bundle')}.", "",
        f"- Control latency, OSC packet received -> first output sample carrying the change: p50 "
        f"{_f(e.get('control_latency_ms_p50'))} ms, p99 {_f(e.get('control_latency_ms_p99'))} ms, max "
        f"{_f(e.get('control_latency_ms_max'))} ms over {e.get('control_events')} changes; this includes the "
        f"engine's {_f(e.get('buffer_ms'))} ms output buffer"
        + (f" (widened to {_f(e['buffer_ms_widest'])} ms after near-misses)"
           if e.get("buffer_ms_widest", 0) > e.get("buffer_ms", 0) else "")
        + " and the frame clock (7.8 ms frames); the null "
        "output adds no device buffer. Target: p99 under 20 ms beyond the device buffer. These are "
        "`/synth/latent/set` changes with a random index and value each: every one needs a decode "
        "(nothing decoded lies near a jump in a random direction). "
        + (f"The bundle's decoder is fast enough to run in the synthesis thread ({e.get('inline_decodes')} "
           "decodes there): each jump sounds exactly at the frame after it. Baselines, the same jumps in the same "
           f"run with every decode on the decode worker: with the bundle's tiles p50 "
           f"{_f(e.get('worker_latency_ms_p50'))} ms, p99 {_f(e.get('worker_latency_ms_p99'))} ms over "
           f"{e.get('worker_latency_events')} changes; decoded whole only p50 {_f(e.get('whole_latency_ms_p50'))} "
           f"ms, p99 {_f(e.get('whole_latency_ms_p99'))} ms over {e.get('whole_latency_events')}."
           if e.get("decodes_inline") and e.get("worker_latency_events") else
           f"The bundle has a tile decoder: the frames the held note reads next are decoded first and sound "
           f"before the whole note; the same jumps decoded whole only, in the same run: p50 "
           f"{_f(e.get('whole_latency_ms_p50'))} ms, p99 {_f(e.get('whole_latency_ms_p99'))} ms over "
           f"{e.get('whole_latency_events')} changes." if e.get("tiles") else
           "The bundle has no tile decoder (its decoder's reach in time leaves no exact frame in a window): "
           "each jump waits for a whole decode; decoded on the worker only (the baseline), in the same run: p50 "
           f"{_f(e.get('whole_latency_ms_p50'))} ms, p99 {_f(e.get('whole_latency_ms_p99'))} ms."),
        *(["- With the decoder in the synthesis thread, the fader, morph and macro changes below are decoded "
            "exactly at the frame after them as well: their estimates are for a decoder on the worker, so the "
            "estimated and exact figures coincide here."] if e.get("decodes_inline") else []),
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
        f"- Most voices held without underflow: {e.get('max_voices_method', 'sinusoidal')} (the default) "
        f"{e.get('max_voices')}, sinusoidal {e.get('max_voices_sinusoidal', 'n/a')}, Griffin-Lim "
        f"{e.get('max_voices_griffinlim', 'n/a')} (target 16 on 2 cores). Tried: {e.get('max_voices_tried')}; "
        f"Griffin-Lim {e.get('max_voices_griffinlim_tried', 'n/a')}.",
        f"- Resident memory of the bench process with the engine started: {_f(e.get('engine_rss_start_mb'))} MiB "
        "(it also holds librosa and numba from the inversion bench; `melsynth serve`'s own figure is in the "
        "soak section).", "",
    ]


def soak_markdown(soaks: list[tuple[str, dict]]) -> list[str]:
    """The soak table: one column per run (quiet, and with a busy loop holding a core)."""
    first = soaks[0][1]
    rows = [
        ("minutes", lambda k: _f(k["soak_minutes"], 0), ""),
        ("underflows (whole soak)", lambda k: k["soak_underflows"], "0"),
        ("... at start-up / idle / playing", lambda k: " / ".join(str(v) for v in (k.get("soak_underflows_by_phase") or {}).values()) or "n/a", "0 / 0 / 0"),
        ("underflows at 10 minutes", lambda k: _f(k.get("soak_10min_underflows")), "0"),
        ("JACK device xruns", lambda k: _f(k.get("soak_device_xruns")), "0"),
        ("... blamed by jackd on (client: xruns)", lambda k: ", ".join(
            f"{c}: {n}" for c, n in (k.get("soak_jack_late_clients") or {}).items()) or "none", "none"),
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


def _unsteady(counts: dict) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.items())


def jack_latency_markdown(j: dict) -> list[str]:
    """Note-on (MIDI and OSC), preset switches and latent jumps (OSC) -> the first sample showing them,
    through JACK, measured by a JACK client outside the engine; at the default margin and the low-latency one."""
    def cell(result: dict, key: str) -> str:
        v = result.get(key) or {}
        return f"{_f(v.get('p50'))} / {_f(v.get('p99'))} / {_f(v.get('max'))} ({v.get('n', 0)})"

    period_ms = j["jack_period"] / j["jack_rate"] * 1e3
    runs = [("default", j)] + [(label, j[key]) for key, label in (("low_latency", "low latency"),
                                                                   ("one_block", "one block ahead")) if key in j]
    lines = [
        f"## Latency through JACK ({j['jack_rate']} Hz, {j['jack_period']}-frame periods)", "",
        f"Bundle: {j.get('jack_latency_bundle')}" + (f", inversion method {j['jack_method']}" if "jack_method" in j else "")
        + ". A JACK client of the benchmark's own records serve's output "
        "port and sends the note: MIDI from its own MIDI port at offset 0 of a JACK cycle, OSC over UDP with "
        "JACK's frame clock read just before. Latency: the frame of the first output sample above the threshold "
        f"minus the frame the note was sent at. One JACK period is {period_ms:.1f} ms; a note starts at the first "
        "sample the engine has not yet handed out, so the rest is the margin it renders ahead (serve --ahead, "
        f"{period_ms:.1f} ms a block; for these notes, each onto silence, --onset-ahead) and delivery. Preset switches and latent jumps: a held note looping its "
        f"sustain, from preset {(j.get('jack_change_presets') or ['?'])[0]} to {(j.get('jack_change_presets') or ['?', '?'])[-1]}, "
        "by `/synth/preset` (cached) or `/synth/latent` with the second preset's latent plus noise of 1e-3 (decoded). "
        "The engine brings every preset to one loudness, so the detector listens to one band, "
        f"{'-'.join(str(x) for x in j.get('jack_change_band_hz') or ['?', '?'])} Hz, where the second preset stands highest above "
        f"the first after the loudness gains ({_f(j.get('jack_change_presets_apart_db'))} dB from the decoded loops"
        + (f", {_f(j['jack_change_offline_step_db'])} dB rendered offline" if "jack_change_offline_step_db" in j else "")
        + "): the first 128-sample block whose level in that band (a band-pass filter, RMS over 16 ms) is "
        f"{_f(j.get('jack_change_threshold_db', 6.0))} dB above the highest it was over the 0.2 s before the send, a trial "
        f"starting only where those 0.2 s spread less than {_f(j.get('jack_change_steady_db', 3.0))} dB"
        + (f" ({_unsteady(j['jack_change_unsteady'])} not started)" if "jack_change_unsteady" in j else "")
        + (f"; on the same switch rendered offline that detector fires {_f(j['jack_change_detector_lag_ms'])} ms "
           "after the first changed sample (the inverter's latency, the crossfade and the level's window), so the change "
           "itself sounds that much sooner than these figures" if "jack_change_detector_lag_ms" in j else "") + ".", "",
        "| setting | what | first non-zero sample p50 / p99 / max ms (n) | first sample above -40 dBFS p50 / p99 / max ms (n) |",
        "|---|---|---|---|",
    ]
    for label, r in runs:
        onset = r.get("jack_onset_blocks", r["jack_ahead_blocks"])
        setting = (f"{label}: --ahead {r['jack_ahead_blocks']} (max {r.get('jack_max_ahead_blocks', r['jack_ahead_blocks'])})"
                   + f" --onset-ahead {onset}")
        lines += [
            f"| {setting} | MIDI note-on (JACK MIDI port) | {cell(r, 'jack_midi_note_nonzero_ms')} | {cell(r, 'jack_midi_note_loud_ms')} |",
            f"| {setting} | OSC note-on (UDP, loopback) | {cell(r, 'jack_osc_note_nonzero_ms')} | {cell(r, 'jack_osc_note_loud_ms')} |",
        ]
        for kind, what in (("preset", "OSC preset switch"), ("latent", "OSC latent jump (decoded)")):
            if f"jack_osc_{kind}_change_ms" in r:
                lines.append(f"| {setting} | {what} | first changed block: {cell(r, f'jack_osc_{kind}_change_ms')} | |")
    lines.append("")
    for label, r in runs:
        lines += [f"serve's own summary ({label}): " + " / ".join(r.get("serve_summary", [])), ""]
        if "jack_xruns_blamed_notes" in r:
            def blame(d: dict) -> str:
                return ", ".join(f"{k}: {v}" for k, v in sorted(d.items())) or "none"
            lines += [f"JACK xruns blamed by jackd ({label}): during the notes {blame(r['jack_xruns_blamed_notes'])}"
                      + (f"; during the change trials {blame(r.get('jack_xruns_blamed_changes', {}))}"
                         if "jack_osc_preset_change_ms" in r else "")
                      + " (serve's clients: PortAudio for audio, melsynth for MIDI; the benchmark's: meter)", ""]
    return lines


def fuzz_markdown(z: dict) -> list[str]:
    """The long OSC fuzz: throughput, the engine alive and in the state the valid messages made."""
    return [
        f"## OSC fuzz ({z['fuzz_packets']} malformed packets over UDP)", "",
        f"- {_f(z['fuzz_packets_per_s'], 0)} packets/s handled; every packet counted: {_f(z['fuzz_all_counted'])}; "
        f"engine alive: {_f(z['fuzz_alive'])}; state as the {z['fuzz_valid_messages']} valid messages made it: "
        f"{_f(z['fuzz_state_as_valid_messages_made_it'])}; messages accepted: {z['fuzz_accepted_messages']} "
        f"(= the valid ones); errors counted: {z['fuzz_errors']}; error replies sent (rate limited): "
        f"{z['fuzz_error_replies']}; underflows during the flood: {z['fuzz_underflows_during_flood']}; a note "
        f"after it: {_f(z.get('fuzz_note_after_cents_from_offline'))} cents from the same note rendered offline "
        f"on the same preset ({_f(z['fuzz_note_after_cents'])} cents from equal temperament as the pitch "
        "tracker reads that timbre).",
        f"- Kinds: {z['fuzz_kinds']}.", "",
    ]


def flood_markdown(f: dict) -> list[str]:
    """The OSC flood table: one column per flood (what, how fast)."""
    floods = [(k, v) for k, v in f.items() if isinstance(v, dict) and "applied" in v]
    unread = [(k.split("_", 1)[1], v) for k, v in f.items() if k.startswith("unread_") and isinstance(v, dict)]
    rows = [
        ("datagrams sent a second (achieved)", lambda v: f"{v['rate_sent']:,.0f}", ""),
        ("underflows during the flood", lambda v: v["underflows"], "0"),
        ("messages taken (commands applied, queries answered)", lambda v: f"{v['applied']:,}",
         "commands <= 2,000 a second"),
        ("dropped over the sender's rate", lambda v: f"{v['throttled']:,}", ""),
        ("synthesis thread CPU a block (ms)", lambda v: _f(v.get("synthesis_cpu_ms_per_block"), 2), ""),
        ("timbres the latent changes became", lambda v: f"{v['timbres']:,}" if "timbres" in v else "", ""),
        ("reply bytes per request byte", lambda v: _f(v["reply_per_request_byte"], 3), "<= 1"),
        ("replies the byte budget withheld", lambda v: f"{v['replies_dropped']:,}", ""),
    ]
    lines = [
        f"## OSC floods ({f['flood_voices']}-voice chord, {_f(f['flood_seconds'], 0)} s each)", "",
        f"Bundle: {f.get('flood_bundle')}. A sender in another process floods the engine (null output) with "
        "`/synth/latent/set` or `/synth/status` (`bench/bench_flood.py`); each sender's budget is "
        "`synth.control.rate.SenderLimits`' default. On a 2-core machine the sender's own loop takes one core at "
        "these rates. Before the budgets, 10,000 `/synth/latent/set` a second gave 1,503 underflows in 10 s and "
        "a 65 KB bundle of `/synth/info` drew 62.8 times its bytes in replies (issue 30).", "",
        "| figure | " + " | ".join(k.replace("_", " at ") + "/s" for k, _ in floods) + " | target |",
        "|---|" + "---|" * len(floods) + "---|",
    ]
    for label, cell, target in rows:
        lines.append(f"| {label} | " + " | ".join(str(cell(v)) for _, v in floods) + f" | {target} |")
    if "quiet" in f:
        cpu = f["quiet"].get("synthesis_cpu_ms_per_block")
        lines += ["", f"Baselines of the same run, {_f(f['flood_seconds'], 0)} s each: {f['quiet']['underflows']} "
                      "underflows with no sender" + (f" ({_f(cpu, 2)} ms of synthesis thread CPU a block)"
                                                     if cpu is not None else "") + "; " + "; ".join(
                          f"{v['underflows']} with the sender at {int(rate):,}/s aimed at a socket nobody reads"
                          for rate, v in unread) + " (what the sender's own core costs the engine)."]
    return lines + [""]


def json_markdown(title: str, result: dict) -> list[str]:
    """A section that shows a benchmark's whole result as JSON (training, rendering)."""
    return [f"## {title}", "", "```json", json.dumps(result, indent=1, default=str), "```", ""]


def failures_markdown(errors: dict[str, str]) -> list[str]:
    """The benchmarks that raised, with their error (the others' sections are still there)."""
    return ["## Benchmarks that failed in this run", "", *(f"- {k}: {v}" for k, v in errors.items()), ""]


def timings_markdown(seconds: dict[str, float]) -> list[str]:
    """How long each benchmark took."""
    return ["## Time taken", "", ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()), ""]


def document(run: dict) -> str:
    """The whole document for :func:`synth.commands.bench.run_all`'s result."""
    r = run["results"]

    def ok(name: str) -> bool:
        return name in r and "error" not in r[name]

    lines = header_markdown(run)
    if ok("decode"):
        lines += decode_markdown(r["decode"])
    if ok("inversion"):
        lines += inversion_markdown(r["inversion"])
    if ok("engine"):
        lines += engine_markdown(r["engine"])
    soaks = [(name, r[key]) for name, key in (("quiet", "soak"), ("busy core", "soak_busy")) if ok(key)]
    if soaks:
        lines += soak_markdown(soaks)
    if ok("jack_latency") and "jack_latency_skipped" not in r["jack_latency"]:
        lines += jack_latency_markdown(r["jack_latency"])
    if ok("fuzz"):
        lines += fuzz_markdown(r["fuzz"])
    if ok("flood"):
        lines += flood_markdown(r["flood"])
    for name, title in (("training", "Training throughput"), ("render", "Offline rendering")):
        if ok(name):
            lines += json_markdown(title, r[name])
    errors = {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}
    if errors:
        lines += failures_markdown(errors)
    lines += timings_markdown(run["seconds"])
    return "\n".join(lines)


def write_markdown(run: dict, path: str | Path) -> None:
    """Write :func:`document` to ``path`` (atomically)."""
    from synth.atomic import atomic_write_text

    atomic_write_text(path, document(run))


def _sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(what comes before the first "## " heading, [(title up to its first parenthesis, section text)])."""
    parts = text.split("\n## ")
    return parts[0], [(p.split("\n", 1)[0].split(" (")[0].strip(), "## " + p.rstrip("\n")) for p in parts[1:]]


def merge_sections(previous: str, update: str, *, note: str) -> str:
    """``previous`` with each section of ``update`` in place of the one with the same title (the title up to
    its first parenthesis), sections new to it added before "## Time taken"; each such section ends with
    ``note``. The machine, timing and failure sections of ``update`` are left out."""
    head, old = _sections(previous)
    fresh = {k: f"{body}\n\n{note}" for k, body in _sections(update)[1] if k not in _RUN_SECTIONS}
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


def write_document(run: dict, path: str | Path, *, only: tuple[str, ...] = ()) -> None:
    """Write the document of ``run`` to ``path``; a partial run (``only``: the sections it measured) into the
    document already there, whose other sections (from the last full run) stay as they were."""
    from synth.atomic import atomic_write_text

    path = Path(path)
    if not only or not path.is_file():
        write_markdown(run, path)
        return
    m = run["machine"]
    note = (f"_This section: `melsynth bench --only {' '.join(only)}` on {run['when']}, load average "
            f"{m['load_average']} at its start and {m.get('load_average_end')} at its end; the other "
            "sections come from the run named at the top._")
    atomic_write_text(path, merge_sections(path.read_text(), document(run), note=note))
