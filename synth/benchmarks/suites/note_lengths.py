"""Notes of any length against the real instrument: held notes that keep moving, releases from where the
note is, presets at one loudness.

For every preset of a bundle whose source is a SoundFont note, the engine renders the preset (offline, the
same engine as live) held 0.12, 0.5, 3 and 8 s, and FluidSynth renders the same font, program, key and
velocity with the same holds. Both are analysed with the contract's log-mel (no crop) and compared:

- **key-up step**: the level over 30-80 ms after key-up minus the level over the 50 ms before it (dB), and
  the **rise**: the loudest 10 ms after key-up (within 300 ms) minus that same level before. A note that
  swells after key-up has a positive rise; the real instrument's is about 0. Beside it the **audible step**:
  the same with every frame's level floored :data:`AUDIBLE_DB` under the level before key-up. Some real notes
  end in digital silence within 30 ms of key-up (the clavinet, the acoustic bass held 8 s), and their step
  is then their level down to the measure's floor, 1e-12 (-120 dB): -60 to -111 dB, which only digital
  silence within 30 ms could match within 2 dB, and errors of 20-60 dB there are about levels no one hears
  under the note just played. Floored, a step to silence is -60 dB, and so is the render's if it falls as far.
- **the frames' own step**: the same step of the frames the voice asked its inverter for (their summed mel
  power, the inverter's gain included), so that an error splits into the frames' (render's frames against
  the real note) and the inversion's (the render analysed again against its frames).
- **held 8 s**: spectral flux (mean |change| in dB a frame over the loud bands) and level spread (standard
  deviation of the frame level, dB) over 3.5-7.5 s, as a ratio to the same figures over the rendered note's
  own 0.1-2.5 s. A note resting on one frame has a flux ratio near 0.
- **loudness**: each preset's render (3 s hold, velocity 100) in LUFS-like dB (BS.1770 K-weighted power,
  ungated, of the held note's first 2.6 s), and their spread across presets.

The real notes come from a renderer the caller hands in (``real_note(font, program=, pitch=, velocity=,
hold=, seconds=)``, :func:`training.datasets.soundfont.render_note`): this module never imports training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from synth.spectrogram import SpectrogramParams, mel_power

__all__ = ["HOLDS", "frame_levels", "flux_and_spread", "keyup_step", "k_weighted_db", "measure_presets",
           "summarise", "format_summary", "morph_loudness", "main"]

HOLDS = (0.12, 0.5, 3.0, 8.0)
AUDIBLE_DB = 60.0  # the audible step's floor, under the level before key-up
LOUDNESS_VELOCITY = 100
LOUDNESS_SECONDS = 2.6  # the held note up to its sustain loop's end, the part the engine's gain is made from
RELEASE_SECONDS = 1.5


def _db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def frame_levels(audio: np.ndarray, *, params: SpectrogramParams) -> tuple[np.ndarray, np.ndarray]:
    """``(mel dB (n_mels, frames), frame level dB (frames,))`` of 16 kHz audio, no crop."""
    power = mel_power(np.asarray(audio, dtype=np.float64), params=params)
    return _db(power), _db(power.sum(axis=0))


def flux_and_spread(mel_db: np.ndarray, levels: np.ndarray, lo: int, hi: int) -> tuple[float, float]:
    """Mean spectral flux (dB a frame over bands within 50 dB of the span's loudest) and the level's
    standard deviation over frames ``[lo, hi)``."""
    span = mel_db[:, lo:hi]
    loud = span.max(axis=1) > span.max() - 50.0
    flux = float(np.mean(np.abs(np.diff(span[loud], axis=1)))) if loud.any() else 0.0
    return flux, float(np.std(levels[lo:hi]))


def keyup_step(levels: np.ndarray, *, keyup: int, params: SpectrogramParams,
               floor_db: float | None = None) -> tuple[float, float]:
    """``(step, rise)`` in dB at key-up frame ``keyup`` (see the module docstring); ``floor_db``: every level
    floored that far under the level before key-up first (the audible step)."""
    f = params.frame_rate
    before = float(np.mean(levels[max(0, keyup - int(0.05 * f)) : keyup]))
    if floor_db is not None:
        levels = np.maximum(levels, before - floor_db)
    after = float(np.mean(levels[keyup + int(0.03 * f) : keyup + int(0.08 * f)]))
    window = max(1, int(0.01 * f))
    tail = levels[keyup : keyup + int(0.3 * f)]
    smooth = np.convolve(tail, np.ones(window) / window, mode="valid") if tail.size >= window else tail
    return after - before, float(smooth.max() - before)


class _FrameTap:
    """An inverter that keeps the level (dB of the summed mel power, its gain included) of every frame it is
    asked to play since its last reset, and passes everything to the inverter it wraps."""

    def __init__(self, inner, *, params: SpectrogramParams) -> None:
        self._inner = inner
        self._db_min, self._db_range = float(params.db_min), float(params.db_max - params.db_min)
        self.levels: list[float] = []

    def reset(self) -> None:
        self.levels = []
        self._inner.reset()

    def process_frame(self, mel_frame, *, pitch_ratio: float, out, gain: float = 1.0) -> None:
        db = self._db_min + np.clip(np.asarray(mel_frame, dtype=np.float64), 0.0, 1.0) * self._db_range
        self.levels.append(float(10.0 * np.log10(max(np.sum(10.0 ** (db / 10.0)) * gain * gain, 1e-12))))
        self._inner.process_frame(mel_frame, pitch_ratio=pitch_ratio, out=out, gain=gain)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def k_weighted_db(audio: np.ndarray, *, rate: int) -> float:
    """Mean K-weighted power of ``audio`` in dB (ITU-R BS.1770's two filters, no gating): the loudness
    measure the presets are matched with, minus BS.1770's constant."""
    from synth.engine.loudness import k_weighting

    y = k_weighting(np.asarray(audio, dtype=np.float64), rate=rate)
    return float(10.0 * np.log10(max(np.mean(y * y), 1e-20)))


@dataclasses.dataclass(frozen=True)
class PresetFigures:
    name: str
    steps: dict  # hold -> (render step, render rise, real step, real rise)
    audible: dict  # hold -> (render audible step, real audible step): floored AUDIBLE_DB under the held level
    frames_steps: dict  # hold -> the step of the frames the voice asked its inverter for
    flux_ratio: float
    spread_ratio: float
    real_flux_ratio: float
    real_spread_ratio: float
    loudness_db: float


def measure_presets(bundle, *, real_note, fonts: dict[str, object], params: SpectrogramParams,
                    presets: list[str] | None = None, method: str | None = None, progress=None) -> list[PresetFigures]:
    """Measure every preset (or ``presets``) whose source is a SoundFont note of one of ``fonts`` (file name
    -> path)."""
    import soxr

    from synth.engine.engine import default_inverter_factory
    from synth.inversion import make_inverter
    from synth.inversion.base import DEFAULT_METHOD
    from synth.render.note import render_note

    method = method or DEFAULT_METHOD
    latency = make_inverter(method, params=params, output_rate=48000).latency_samples
    inner = default_inverter_factory(harmonic_f0=440.0 * 2.0 ** ((bundle.base_pitch - 69) / 12.0))
    taps: list[_FrameTap] = []

    def factory(m: str, *, params: SpectrogramParams, output_rate: int) -> _FrameTap:
        taps.append(_FrameTap(inner(m, params=params, output_rate=output_rate), params=params))
        return taps[-1]
    names = presets if presets is not None else sorted(bundle.presets)
    out = []
    for i, name in enumerate(names):
        source = bundle.presets[name].source or {}
        font = fonts.get(source.get("soundfont", ""))
        if font is None or "program" not in source:
            continue
        pitch, velocity = int(source.get("pitch", 60)), int(source.get("velocity", 100))
        steps, audible, frames_steps, rendered = {}, {}, {}, {}
        for hold in HOLDS:
            taps.clear()
            r = render_note(bundle, preset=name, note=pitch, velocity=velocity, hold=hold, method=method,
                            output_rate=48000, inverter_factory=factory)
            # The method's latency (reported to hosts) delays the whole note alike: compare aligned notes.
            y = soxr.resample(r.audio[latency:], 48000, params.sample_rate, quality="HQ")
            y = np.pad(y, (0, max(0, int((hold + RELEASE_SECONDS) * params.sample_rate) - y.size)))
            real = real_note(font, program=int(source["program"]), pitch=pitch, velocity=velocity, hold=hold,
                             seconds=hold + RELEASE_SECONDS)
            keyup = int(round(hold * params.frame_rate))
            (mel_r, lev_r), (mel_t, lev_t) = frame_levels(y, params=params), frame_levels(real, params=params)
            steps[hold] = keyup_step(lev_r, keyup=keyup, params=params) + keyup_step(lev_t, keyup=keyup, params=params)
            audible[hold] = tuple(keyup_step(lev, keyup=keyup, params=params, floor_db=AUDIBLE_DB)[0]
                                  for lev in (lev_r, lev_t))
            # The one voice's inverter of the method (a fresh engine per note: one tap per method).
            asked = np.array(next(t.levels for t in taps if t.levels))
            asked = np.pad(asked, (0, max(0, lev_r.size - asked.size)), constant_values=-120.0)
            frames_steps[hold] = keyup_step(asked, keyup=keyup, params=params)[0]
            rendered[hold] = (y, mel_r, lev_r, mel_t, lev_t)
        f = params.frame_rate
        early, late = (int(0.1 * f), int(2.5 * f)), (int(3.5 * f), int(7.5 * f))
        _, mel_r, lev_r, mel_t, lev_t = rendered[8.0]
        fe, se = flux_and_spread(mel_r, lev_r, *early)
        fl, sl = flux_and_spread(mel_r, lev_r, *late)
        tfe, tse = flux_and_spread(mel_t, lev_t, *early)
        tfl, tsl = flux_and_spread(mel_t, lev_t, *late)
        # Loudness at one velocity for every preset (the source velocities differ: 50 and 127).
        same = render_note(bundle, preset=name, note=pitch, velocity=LOUDNESS_VELOCITY, hold=3.0, method=method,
                           output_rate=48000)
        loud = k_weighted_db(same.audio[latency : latency + int(LOUDNESS_SECONDS * 48000)], rate=48000)
        out.append(PresetFigures(name=name, steps=steps, audible=audible, frames_steps=frames_steps, flux_ratio=fl / max(fe, 1e-9), spread_ratio=sl / max(se, 1e-9),
                                 real_flux_ratio=tfl / max(tfe, 1e-9), real_spread_ratio=tsl / max(tse, 1e-9),
                                 loudness_db=loud))
        if progress is not None:
            progress(i + 1, len(names))
    return out


def morph_loudness(bundle, *, pairs: int = 16, method: str | None = None, seed: int = 0) -> dict:
    """How far a morph sweep strays from the loudness of its ends: ``pairs`` random preset pairs, each
    rendered (velocity 100, 2.6 s held) at t = 0, 0.25, 0.5, 0.75, 1; the deviation of each point from the
    straight line (in dB) between its ends. Returns the median over pairs of the largest |deviation| and
    the largest over all."""
    from synth.control.messages import Morph, NoteOn
    from synth.inversion.base import DEFAULT_METHOD
    from synth.render.note import make_engine

    method = method or DEFAULT_METHOD
    rng = np.random.default_rng(seed)
    names = sorted(bundle.presets)
    decoder = bundle.decoder()
    worst = []
    for _ in range(pairs):
        a, b = (names[i] for i in rng.choice(len(names), size=2, replace=False))
        levels = []
        for t in (0.0, 0.25, 0.5, 0.75, 1.0):
            engine = make_engine(bundle, method=method, output_rate=48000, max_voices=1, decoder=decoder)
            engine.schedule(Morph(a, b, t), 0)
            engine.schedule(NoteOn(bundle.base_pitch, 100.0), 0)
            y = engine.render(int(LOUDNESS_SECONDS * 48000))
            levels.append(k_weighted_db(y[4800:], rate=48000))
        line = np.linspace(levels[0], levels[-1], len(levels))
        worst.append(float(np.max(np.abs(np.array(levels) - line))))
    return {"pairs": pairs, "deviation_median_db": float(np.median(worst)), "deviation_max_db": float(np.max(worst))}


def summarise(figures: list[PresetFigures]) -> dict:
    """Medians and worst cases over presets, ready for JSON and docs/BENCHMARKS.md."""
    def med(x):
        return float(np.median(x))

    steps = {}
    for hold in HOLDS:
        diff = np.array([f.steps[hold][0] - f.steps[hold][2] for f in figures])
        rise = np.array([f.steps[hold][1] for f in figures])
        real_rise = np.array([f.steps[hold][3] for f in figures])
        heard = np.array([f.audible[hold][0] - f.audible[hold][1] for f in figures])
        asked = np.array([f.frames_steps[hold] - f.steps[hold][2] for f in figures])  # the frames against the note
        inversion = np.array([f.steps[hold][0] - f.frames_steps[hold] for f in figures])  # the render against them
        steps[str(hold)] = {"step_error_median_db": med(np.abs(diff)), "step_error_max_db": float(np.abs(diff).max()),
                            "within_2db": int(np.sum(np.abs(diff) <= 2.0)), "rise_max_db": float(rise.max()),
                            "real_rise_max_db": float(real_rise.max()),
                            "audible_error_median_db": med(np.abs(heard)),
                            "audible_error_max_db": float(np.abs(heard).max()),
                            "audible_within_2db": int(np.sum(np.abs(heard) <= 2.0)),
                            "frames_within_2db": int(np.sum(np.abs(asked) <= 2.0)),
                            "inversion_error_median_db": med(np.abs(inversion)),
                            "inversion_error_max_db": float(np.abs(inversion).max())}
    flux = np.array([f.flux_ratio for f in figures])
    spread = np.array([f.spread_ratio for f in figures])
    loud = np.array([f.loudness_db for f in figures])
    return {
        "presets": len(figures),
        "keyup": steps,
        "held_8s": {"flux_ratio_median": med(flux), "flux_ratio_min": float(flux.min()),
                    "spread_ratio_median": med(spread), "spread_ratio_min": float(spread.min()),
                    "real_flux_ratio_median": med([f.real_flux_ratio for f in figures]),
                    "real_spread_ratio_median": med([f.real_spread_ratio for f in figures]),
                    "flux_within_2x": int(np.sum((flux >= 0.5) & (flux <= 2.0))),
                    "spread_within_2x": int(np.sum((spread >= 0.5) & (spread <= 2.0)))},
        "loudness": {"spread_db": float(loud.max() - loud.min()), "min_db": float(loud.min()),
                     "max_db": float(loud.max())},
    }


def format_summary(summary: dict) -> str:
    """Markdown of :func:`summarise`'s dict: the key-up table by hold, the 8 s hold and the loudness."""
    n = summary["presets"]
    lines = ["| hold (s) | key-up step error, median / max (dB) | presets within 2 dB | audible step (floored "
             f"{AUDIBLE_DB:.0f} dB down): error median / max, within 2 dB | the frames asked for: within 2 dB; "
             "the inversion's error median / max (dB) | largest rise after key-up (dB), render / real |",
             "|---|---|---|---|---|---|"]
    for hold, k in summary["keyup"].items():
        heard = (f"{k['audible_error_median_db']:.1f} / {k['audible_error_max_db']:.1f}, {k['audible_within_2db']} of {n}"
                 if "audible_within_2db" in k else "")
        asked = (f"{k['frames_within_2db']} of {n}; {k['inversion_error_median_db']:.1f} / {k['inversion_error_max_db']:.1f}"
                 if "frames_within_2db" in k else "")
        lines.append(f"| {hold} | {k['step_error_median_db']:.1f} / {k['step_error_max_db']:.1f} | {k['within_2db']} of {n} "
                     f"| {heard} | {asked} | {k['rise_max_db']:.1f} / {k['real_rise_max_db']:.1f} |")
    h, loud = summary["held_8s"], summary["loudness"]
    lines += ["", f"Held 8 s (3.5-7.5 s against the note's own 0.1-2.5 s): spectral flux ratio median "
              f"{h['flux_ratio_median']:.2f} (min {h['flux_ratio_min']:.2f}; the real notes' {h['real_flux_ratio_median']:.2f}), "
              f"{h['flux_within_2x']} of {n} within a factor of 2; level spread ratio median {h['spread_ratio_median']:.2f}, "
              f"{h['spread_within_2x']} of {n} within a factor of 2.", "",
              f"Loudness at velocity 100 (K-weighted, held part): {loud['min_db']:.1f} .. {loud['max_db']:.1f} dB, a spread "
              f"of {loud['spread_db']:.1f} dB across the {n} presets."]
    if "morph" in summary:
        m = summary["morph"]
        lines += ["", f"Morph sweeps ({m['pairs']} random pairs, t = 0 .. 1 in quarters): the largest departure from "
                  f"the line between the ends' loudness is {m['deviation_median_db']:.1f} dB (median over pairs), "
                  f"{m['deviation_max_db']:.1f} dB at most."]
    return "\n".join(lines)


def main(argv=None, *, real_note, fonts) -> int:
    """``bench/bench_note_lengths.py``: ``real_note`` renders a SoundFont note, ``fonts`` are the font paths
    presets may name."""
    from synth.bundle import load_bundle

    parser = argparse.ArgumentParser(description="Notes of any length and preset loudness against FluidSynth")
    parser.add_argument("--bundle", default="presets/default")
    parser.add_argument("--limit", type=int, default=None, help="about this many presets, evenly spread")
    parser.add_argument("--method", default=None, help="inversion method (default: the engine's)")
    parser.add_argument("--json", action="store_true", help="every preset's figures as well as the summary")
    args = parser.parse_args(argv)
    bundle = load_bundle(Path(args.bundle))
    names = sorted(bundle.presets)
    if args.limit:
        names = names[:: max(1, len(names) // args.limit)][: args.limit]
    figures = measure_presets(bundle, real_note=real_note, fonts={Path(f).name: Path(f) for f in fonts},
                              params=bundle.params, presets=names, method=args.method,
                              progress=lambda i, n: print(f"\r{i}/{n} presets", end="", file=sys.stderr))
    print(file=sys.stderr)
    result = {"summary": summarise(figures)}
    result["summary"]["morph"] = morph_loudness(bundle, method=args.method)
    if not args.json:
        print(format_summary(result["summary"]))
        return 0
    result["presets"] = [dataclasses.asdict(f) | {"steps": {str(h): v for h, v in f.steps.items()},
                                                  "audible": {str(h): v for h, v in f.audible.items()},
                                                  "frames_steps": {str(h): v for h, v in f.frames_steps.items()}}
                         for f in figures]
    print(json.dumps(result, indent=1))
    return 0
