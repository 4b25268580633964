"""A timbre change never blasts: the loudness gain a voice applies travels with the frames it scales.

Each inverter's audio lags the frames it is fed by its latency (25 ms for the harmonic method at 48 kHz), and
spreads a frame over its window; a gain applied to the audio that comes out, from the frame the change
reaches the voice, scaled the old sound by the new gain for that long (+16 dB for ~20 ms on the default
bundle's shanai -> nylon guitar). Here a held note of the synthetic bundle switches between two timbres whose gains
differ by 24.6 dB, through the whole engine, with every method."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import synthetic_bundle

from synth.control.messages import NoteOn, SetLatent
from synth.engine import Engine, EngineOptions
from synth.engine.timbre import make_timbre
from synth.inversion.base import METHODS

RATE = 16000
AT = RATE  # the switch, 1 s into the note (its sustain)
WIN = 80  # 5 ms


def _latents() -> dict[str, np.ndarray]:
    """Two timbres of the synthetic bundle far apart in level as decoded: its ``bright`` preset, and its
    ``soft`` one (-20 dB) three times over (-59 dB, darker)."""
    presets = synthetic_bundle().presets
    quiet = (3.0 * presets["soft"].latent).astype(np.float32)
    quiet.setflags(write=False)
    return {"loud": presets["bright"].latent, "quiet": quiet}


def _levels(method: str, first: str, then: str) -> np.ndarray:
    """Level (dB) of the engine's output in 5 ms windows from 20 ms before the switch to 200 ms after."""
    bundle = synthetic_bundle()
    latents = _latents()
    engine = Engine(bundle, EngineOptions(output_rate=RATE, methods=(method,)))
    engine.schedule(SetLatent(latents[first]), 0)
    engine.schedule(NoteOn(bundle.base_pitch, 100), 0)
    engine.schedule(SetLatent(latents[then]), AT)
    y = engine.render(AT + RATE // 5).astype(np.float64)
    seg = y[AT - 4 * WIN : AT + 40 * WIN].reshape(-1, WIN)
    return 10.0 * np.log10(np.mean(seg**2, axis=1) + 1e-20)


def test_the_two_timbres_differ_by_more_than_20_db_as_decoded():
    """What makes the switch a test: the gains bring together levels far apart."""
    bundle = synthetic_bundle()
    decoder = bundle.decoder()
    gains = {name: make_timbre(decoder.decode(z[None])[0], params=bundle.params).gain
             for name, z in _latents().items()}
    assert 20 * np.log10(gains["quiet"] / gains["loud"]) > 20.0, gains  # 24.6 dB


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("first", "then"), [("loud", "quiet"), ("quiet", "loud")])
def test_a_preset_switch_never_overshoots_the_louder_steady_level(method, first, then):
    db = _levels(method, first, then)
    # The louder steady level: the loudest 5 ms window of either preset held (20 ms before the switch,
    # 80..200 ms after it), so a steady note's own flutter from window to window is not counted.
    steady = max(db[:4].max(), db[20:].max())
    over = db[4:20].max() - steady
    assert over <= 1.0, f"{method} {first}->{then}: {over:+.1f} dB over the steady level: {np.round(db - steady)}"


@pytest.mark.parametrize("look_ahead", [0, 1])
@pytest.mark.parametrize("method", METHODS)
def test_an_inverters_gain_scales_its_frames_audio_and_nothing_else(method, look_ahead):
    """Frames played at gain 1 then 0.1: the audio is the gain-1 audio up to the change's frame (plus the
    method's latency and window), then a tenth of it: the same partials, noise and phases, only scaled."""
    if look_ahead and method != "griffinlim":
        pytest.skip("look-ahead is Griffin-Lim's")
    from synth.inversion.base import make_inverter
    from synth.inversion.frames import frame_lengths

    bundle = synthetic_bundle()
    params = bundle.params
    mel = bundle.decoder().decode(bundle.presets["bright"].latent[None])[0][:, :120]
    kw = {"look_ahead": look_ahead} if method == "griffinlim" else {}
    lengths = frame_lengths(mel.shape[1], params=params, output_rate=RATE)
    outs = []
    for change in (False, True):
        inv = make_inverter(method, params=params, output_rate=RATE, **kw)
        y = np.zeros(int(lengths.sum()), dtype=np.float32)
        pos = 0
        for k in range(mel.shape[1]):
            n = int(lengths[k])
            gain = 0.1 if change and k >= 60 else 1.0
            inv.process_frame(np.ascontiguousarray(mel[:, k]), pitch_ratio=1.0, out=y[pos : pos + n], gain=gain)
            pos += n
        outs.append(y)
    full, changed = outs
    at = int(lengths[:60].sum()) + inv.latency_samples
    early, late = slice(0, at - 400), slice(at + 400, None)  # away from the change's window
    np.testing.assert_allclose(changed[early], full[early], atol=1e-6)
    np.testing.assert_allclose(changed[late], 0.1 * full[late], atol=1e-6)
