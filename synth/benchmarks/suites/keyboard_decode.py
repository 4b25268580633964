"""What a latent change costs a keyboard bundle: decoding it at its trained keys, and the timbres of them.

The live engine decodes a change at the keys its voices sound (``KeyedDecodeWorker``), each key its own
decode; this measures decodes of 1, 6 and every key by the bundle's onnxruntime graph and, in the same run,
by its per-key tables in numpy where the engine uses them (:mod:`synth.bundle.key_tables`), beside the
one-pitch bundle's single decode, on one thread as the live engine runs them, the time to make the timbres
voices read, and from a preset switch to the frame a playing voice sounds it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from synth.benchmarks.decode import time_calls

__all__ = ["measure_keyboard_decode", "main"]


def measure_keyboard_decode(keyboard, *, one_pitch=None, runs: int = 30) -> dict:
    """p50/p99 ms of decoding one latent at 1, 6 and all trained keys, of making the keyed timbre, and of
    ``one_pitch``'s single decode."""
    from synth.engine.decoding import KeyedDecoder, decode_timbre

    decoder = keyboard.decoder(providers=["CPUExecutionProvider"], threads=1)
    z = np.random.default_rng(0).standard_normal((1, *keyboard.latent_shape)).astype(np.float32)
    keys = np.asarray(keyboard.keys, dtype=np.int32)
    out: dict = {"trained_keys": len(keys)}
    for n in sorted({1, min(6, len(keys)), len(keys)}):
        out[f"decode_{n}_keys_ms"] = time_calls(lambda k=keys[:n]: decoder.decode_at_keys(z, k), runs=runs)
    out["latent_fed_once"] = bool(decoder.broadcasts_keys)
    tables = keyboard.keyed_decoder(providers=["CPUExecutionProvider"], threads=1)
    out["engine_decoder"] = type(tables).__name__
    if tables is not decoder:  # the per-key tables in numpy (synth.bundle.key_tables), beside the graph
        for n in sorted({1, min(6, len(keys)), len(keys)}):
            out[f"tables_decode_{n}_keys_ms"] = time_calls(lambda k=keys[:n]: tables.decode_at_keys(z, k), runs=runs)
            out[f"decode_{n}_keys_again_ms"] = time_calls(lambda k=keys[:n]: decoder.decode_at_keys(z, k), runs=runs)
    keyed = KeyedDecoder(tables, keys=keyboard.keys, base=keyboard.base_pitch,
                         latent_shape=tuple(keyboard.latent_shape))
    out["decode_and_timbres_ms"] = time_calls(lambda: decode_timbre(keyed, z[0], params=keyboard.params), runs=runs)
    if one_pitch is not None:
        single = one_pitch.decoder(providers=["CPUExecutionProvider"], threads=1)
        z1 = np.zeros((1, *one_pitch.latent_shape), np.float32)
        out["one_pitch_decode_ms"] = time_calls(lambda: single.decode(z1), runs=runs)
    return out


def measure_latent_change(keyboard, *, notes=(72,), runs: int = 10, keys_first: bool = True) -> dict:
    """p50/p99 ms from a preset switch to the frame where the live engine's voices at ``notes`` read the new
    preset's timbre, the sounding keys decoded (``keys_first``) or every trained key at each change (the
    engine before it decoded only the sounding ones); rendered as fast as the engine can (the null output's
    pace would only add the frame it waits for)."""
    import time

    from synth.control.messages import NoteOn, SetPreset
    from synth.engine import Engine, EngineOptions, LiveDecoding

    names = list(keyboard.presets)
    waits = []
    with Engine(keyboard, EngineOptions(max_voices=max(8, len(notes))), decoding=LiveDecoding()) as engine:
        if not keys_first:  # the baseline: every trained key decoded at each change
            engine._sounding_keys = lambda: tuple(keyboard.keys)  # noqa: SLF001
        for note in notes:
            engine.schedule(NoteOn(note, 100), 0)
        hop = int(np.ceil(engine.hop_samples))
        key = keyboard.nearest_key(notes[0])
        for i in range(runs):
            engine.render(hop * 4)
            before = engine.timbres.current.for_key(key)
            t0 = time.perf_counter()
            engine.schedule(SetPreset(names[(i + 1) % len(names)]))
            while engine.timbres.current.for_key(key) is before and time.perf_counter() - t0 < 5.0:
                engine.render(hop)
            waits.append((time.perf_counter() - t0) * 1e3)
            while not engine.timbres.decoding_idle():  # the rest of the keys, before the next switch
                engine.render(hop)
    return {"p50": float(np.percentile(waits, 50)), "p99": float(np.percentile(waits, 99)), "runs": runs}


def main(argv=None) -> int:
    """``bench/bench_keyboard_decode.py``."""
    from synth.bundle import load_bundle

    parser = argparse.ArgumentParser(description="A keyboard bundle's decode per latent change")
    parser.add_argument("--keyboard", required=True, help="a keyboard bundle")
    parser.add_argument("--bundle", default=None, help="a one-pitch bundle to set beside it (e.g. presets/default)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    keyboard = load_bundle(Path(args.keyboard))
    if keyboard.keys is None:
        parser.error(f"{args.keyboard} is not a keyboard bundle")
    one = load_bundle(Path(args.bundle)) if args.bundle else None
    out = measure_keyboard_decode(keyboard, one_pitch=one, runs=args.runs)
    out["latent_change_one_playing_key_ms"] = measure_latent_change(keyboard)
    out["latent_change_all_keys_at_once_ms"] = measure_latent_change(keyboard, keys_first=False)
    chord = tuple(range(36, 85, 4))  # 13 notes, 13 different trained keys of 36..84 step 3
    out["latent_change_13_key_chord_ms"] = measure_latent_change(keyboard, notes=chord)
    print(json.dumps(out, indent=1))
    return 0
