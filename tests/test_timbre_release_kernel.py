"""The release delta is made by one compiled call (synth.engine.timbre._release_delta_kernel), which lets go
of the GIL while a keyboard bundle's worker makes a timbre a key beside the synthesis thread. It must give what
the numpy it replaced gave (kept here as the reference, as it was at 62b079b): on notes whose bands flicker, swell,
fall to silence, or are silent, and on a bundle's decodes."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import synthetic_bundle

from synth.engine.timbre import (
    DEFAULT_RELEASE_FRAMES,
    RELEASE_BAND_RISE_U,
    RELEASE_SILENT_U,
    RELEASE_SMOOTH_BANDS,
    _release_delta,
    make_timbre,
)


def _level_u(frames):
    db = frames.astype(np.float64) * 130.0
    peak = db.max(axis=1)
    return (peak + 10.0 * np.log10(np.sum(10.0 ** ((db - peak[:, None]) / 10.0), axis=1))) / 130.0


def _fall_past_the_floor(delta, release):
    frames, bands = delta.shape
    if frames < 2:
        return delta
    silent = release <= RELEASE_SILENT_U
    reached = silent.any(axis=0)
    first = np.where(reached, silent.argmax(axis=0), frames)
    k = np.arange(frames, dtype=np.float32)[:, None]
    at = delta[np.minimum(first, frames - 1), np.arange(bands)]
    last = delta[np.maximum(first - 1, 0), np.arange(bands)]
    rate = np.minimum(np.minimum(at / (first + 1), last / np.maximum(first, 1)), 0.0)
    beyond = at + rate * (k - first)
    return np.where(k >= first[None, :], np.minimum(delta, beyond), delta).astype(np.float32)


def reference(release, sustain, note_off=None):
    state = sustain if note_off is None else note_off
    delta = (release - state).astype(np.float64)
    audible = sustain > 2.0 * RELEASE_SILENT_U
    if audible.any():
        kernel = np.ones(2 * RELEASE_SMOOTH_BANDS + 1)
        power = np.where(audible, 10.0 ** (13.0 * (state.astype(np.float64) - float(state[audible].max()))), 0.0)
        weight = np.convolve(power, kernel, mode="same")
        summed = np.apply_along_axis(np.convolve, 1, delta * power[None, :], kernel, mode="same")
        delta = np.where(audible[None, :], summed / np.maximum(weight, 1e-300)[None, :], delta)
        swell = np.maximum(_level_u(state[None, audible] + delta[:, audible]) - _level_u(state[None, audible]), 0.0)
        delta -= swell[:, None]
    delta = _fall_past_the_floor(np.minimum(delta, RELEASE_BAND_RISE_U).astype(np.float32), release)
    if audible.sum() >= 3:
        typical = delta[:, audible].mean(axis=1, keepdims=True)
    else:
        typical = -np.arange(release.shape[0], dtype=np.float32)[:, None] / DEFAULT_RELEASE_FRAMES
    return np.where(audible[None, :], delta, np.minimum(typical, 0.0)).astype(np.float32)


def _note(seed: int, *, audible_bands: int = 80, flicker: float = 0.06, fall: float = 0.004, swell: float = 0.0):
    """(release frames x bands, sustain): a note whose audible bands flicker about a falling level."""
    rng = np.random.default_rng(seed)
    frames, bands = 128, 128
    sustain = np.zeros(bands, dtype=np.float32)
    sustain[:audible_bands] = rng.uniform(0.4, 0.8, audible_bands)
    k = np.arange(frames)[:, None]
    release = sustain[None, :] - fall * k + swell * np.exp(-k / 4.0) + flicker * rng.standard_normal((frames, bands))
    release[:, audible_bands:] = rng.uniform(0.0, 0.1, (frames, bands - audible_bands))
    return np.clip(release, 0.0, 1.0).astype(np.float32), sustain


CASES = {
    "flickering": dict(),
    "swelling at key-up": dict(swell=0.08, flicker=0.02),
    "falling to silence": dict(fall=0.02),
    "two audible bands": dict(audible_bands=2),
    "silent": dict(audible_bands=0),
}


@pytest.mark.parametrize("case", CASES)
def test_the_compiled_release_delta_is_the_numpy_one(case):
    for seed in range(3):
        release, sustain = _note(seed, **CASES[case])
        note_off = (sustain - 0.01).astype(np.float32)
        np.testing.assert_allclose(_release_delta(release, sustain), reference(release, sustain), atol=2e-6)
        np.testing.assert_allclose(_release_delta(release, sustain, note_off=note_off),
                                   reference(release, sustain, note_off), atol=2e-6)


def test_a_bundles_decodes_give_the_numpy_release_delta():
    bundle = synthetic_bundle()
    decoder = bundle.decoder()
    for preset in bundle.presets.values():
        t = make_timbre(decoder.decode(preset.latent[None])[0], params=bundle.params)
        np.testing.assert_allclose(t.release_delta, reference(t.release, t.sustain, _note_off(t)), atol=2e-6)


def _note_off(t):
    from synth.engine.timbre import SUSTAIN_GUARD_FRAMES

    start, end = t.loop_span
    ahead = t.window / 2 + min(SUSTAIN_GUARD_FRAMES, t.release_frames)
    return t.sustain + t.loop_drift * np.float32(ahead / (end - start))
