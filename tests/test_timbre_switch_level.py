"""A timbre change never blasts: the loudness gain a voice applies travels with the frames it scales.

Each inverter's audio lags the frames it is fed by its latency (25 ms for the harmonic method at 48 kHz), and
spreads a frame over its window; a gain applied to the audio that comes out, from the frame the change
reaches the voice, scaled the old sound by the new gain for that long (+16 dB for ~20 ms on the default
bundle's shanai -> nylon guitar). Here a held note of the synthetic bundle switches between presets whose gains
differ by 9.5 dB, through the whole engine, with every method."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import synthetic_bundle

from synth.control.messages import NoteOn, SetPreset
from synth.engine import Engine, EngineOptions
from synth.engine.timbre import make_timbre
from synth.inversion.base import METHODS

RATE = 16000
AT = RATE  # the switch, 1 s into the note (its sustain)
WIN = 80  # 5 ms


def _levels(method: str, first: str, then: str) -> np.ndarray:
    """Level (dB) of the engine's output in 5 ms windows from 20 ms before the switch to 200 ms after."""
    bundle = synthetic_bundle()
    engine = Engine(bundle, EngineOptions(output_rate=RATE, methods=(method,)))
    engine.schedule(SetPreset(first), 0)
    engine.schedule(NoteOn(bundle.base_pitch, 100), 0)
    engine.schedule(SetPreset(then), AT)
    y = engine.render(AT + RATE // 5).astype(np.float64)
    seg = y[AT - 4 * WIN : AT + 40 * WIN].reshape(-1, WIN)
    return 10.0 * np.log10(np.mean(seg**2, axis=1) + 1e-20)


def test_the_two_presets_differ_by_more_than_8_db_as_decoded():
    """What makes the switch a test: the gains bring together levels far apart."""
    bundle = synthetic_bundle()
    decoder = bundle.decoder()
    gains = {name: make_timbre(decoder.decode(bundle.presets[name].latent[None])[0], params=bundle.params).gain
             for name in ("bright", "soft")}
    assert 20 * np.log10(gains["soft"] / gains["bright"]) > 8.0, gains  # 9.5 dB


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("first", "then"), [("bright", "soft"), ("soft", "bright")])
def test_a_preset_switch_never_overshoots_the_louder_steady_level(method, first, then):
    db = _levels(method, first, then)
    before, after = db[:4].mean(), db[24:].mean()
    assert abs(after - before) < 3.0, (before, after)  # matched loudness: the same level either side
    over = db[4:].max() - max(before, after)
    assert over <= 1.0, f"{method} {first}->{then}: {over:+.1f} dB over the steady level: {np.round(db - before)}"
