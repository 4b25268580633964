"""The long OSC fuzz: 100,000 malformed packets (synth/benchmarks/fuzz.py) over real UDP on loopback at a
running engine (null output), with a few valid messages among them; afterwards the engine must be alive, in
the state the valid messages made, and still play a note at its pitch.

Usage: .venv/bin/python bench/bench_fuzz.py [--packets N] [--json] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

from synth.benchmarks.common import emit, resolve_bundle

__all__ = ["run_fuzz_bench"]

VALID = [("/synth/gain", "f", [0.9]), ("/synth/method", "s", ["griffinlim"]), ("/synth/gain", "f", [0.4]),
         ("/synth/method", "s", ["sinusoidal"])]


def run_fuzz_bench(*, packets: int = 100_000, bundle: str | None = None, seed: int = 1) -> dict:
    import math

    import numpy as np
    import soundfile as sf

    from synth.benchmarks.fuzz import UdpFlood, fuzz_packets, osc_message
    from synth.benchmarks.live import engine_session
    from synth.bundle import load_bundle
    from synth.control.messages import NoteOn
    from synth.control.rate import SenderLimits

    path, which = resolve_bundle(bundle)
    b = load_bundle(path)
    presets = tuple(b.presets)
    last_preset = presets[-1]
    valid = [*VALID, ("/synth/preset", "s", [last_preset])]
    kinds: collections.Counter = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        take = Path(tmp) / "fuzz.wav"
        # Every packet read: the fuzzer tests what lies behind the rate limits (bench_flood measures those).
        with engine_session(b, record=take, limits=SenderLimits.unlimited()) as (live, server):
            flood = UdpFlood(("127.0.0.1", server.port), received=lambda: server.packets)
            every = max(1, packets // len(valid))
            sent_valid = 0
            t0 = time.monotonic()
            for i, (kind, data) in enumerate(fuzz_packets(packets, seed=seed, presets=presets,
                                                          latent_size=b.latent_size)):
                if i % every == every // 2 and sent_valid < len(valid):
                    flood.send(osc_message(*valid[sent_valid]))
                    sent_valid += 1
                flood.send(data)
                kinds[kind] += 1
            complete = flood.wait(timeout=60)
            seconds = time.monotonic() - t0
            flood.close()
            alive = live.running and not live.failure
            counters = server.counters()
            state_ok = (live.engine.controls.preset == last_preset and live.engine.method == "sinusoidal"
                        and abs(live.engine.gain - 0.4) < 1e-6)
            # The last valid message switched the preset: the note is measured on that timbre, once decoded.
            deadline = time.monotonic() + 10
            while not live.engine.timbres.decoding_idle() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)  # its crossfade (6 frames)
            start = live.sample_now()
            note = b.base_pitch + 4
            live.submit(NoteOn(note, 100))
            time.sleep(0.8)
            underflows = live.stats().underflows
        y, rate = sf.read(take, dtype="float32")
    from synth.benchmarks.pitch import f0_of
    from synth.control.messages import SetGain, SetPreset
    from synth.engine import Engine, EngineOptions

    def f0_after(y, start):
        loud = np.flatnonzero(np.abs(y[start:]) > 1e-3)
        if not loud.size:
            return float("nan")
        first = start + int(loud[0])
        return f0_of(y[first + rate // 5 : first + rate // 2], rate=rate)

    # The same note offline, on the state the valid messages made: the reference (a timbre whose second
    # partial is the strongest reads an octave up on both, which equal temperament alone would call wrong).
    with Engine(b, EngineOptions(output_rate=rate, max_voices=4, methods=("sinusoidal",))) as reference:
        reference.schedule(SetPreset(last_preset), 0)
        reference.schedule(SetGain(0.4), 0)
        reference.schedule(NoteOn(note, 100), rate // 10)
        f0_reference = f0_after(reference.render(rate), 0)
    f0 = f0_after(y, start)
    cents = 1200 * math.log2(f0 / (440.0 * 2 ** ((note - 69) / 12)))
    cents_offline = 1200 * math.log2(f0 / f0_reference)
    return {
        "fuzz_bundle": which, "fuzz_packets": packets, "fuzz_seconds": seconds,
        "fuzz_packets_per_s": packets / seconds, "fuzz_all_counted": complete, "fuzz_alive": alive,
        "fuzz_state_as_valid_messages_made_it": state_ok, "fuzz_valid_messages": sent_valid,
        "fuzz_accepted_messages": counters["messages"], "fuzz_errors": counters["errors"],
        "fuzz_error_replies": counters["replies"], "fuzz_underflows_during_flood": underflows,
        "fuzz_note_after_cents": cents, "fuzz_note_after_cents_from_offline": cents_offline, "fuzz_kinds": dict(kinds),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--bundle", default=None)
    args = parser.parse_args(argv)
    emit(run_fuzz_bench(packets=args.packets, bundle=args.bundle), as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
