"""Keeping a sound found while playing: a take's latent at a moment (synth.render.capture) is exactly what
the engine decoded then, and ``melsynth presets save`` writes it as a preset, checking everything first."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from render_fixtures import busy_score, fresh_bundle, leftovers, melsynth, render_bundle, shared_decoder

from synth.bundle import load_bundle
from synth.errors import ParameterError
from synth.render import capture_latent, parse_score, render_score, score_spec


class RecordingDecoder:
    """The bundle's decoder, keeping a copy of every latent the engine gives it."""

    def __init__(self, decoder) -> None:
        self._decoder = decoder
        self.seen: list[np.ndarray] = []

    def decode(self, latents: np.ndarray) -> np.ndarray:
        self.seen.extend(np.array(row, copy=True) for row in latents)
        return self._decoder.decode(latents)

    def __getattr__(self, name: str):
        return getattr(self._decoder, name)


def busy():
    bundle = render_bundle()
    return parse_score(busy_score(bundle.latent_size), spec=score_spec(bundle))


def test_the_latent_at_each_message_is_what_the_engine_decoded_then():
    """Every kind of latent control (preset, morph, macro, latent/set, corners, XY, a whole latent) in the
    busy score: the captures at each message's time, in order, are exactly the engine's decodes."""
    bundle, score = render_bundle(), busy()
    recorder = RecordingDecoder(shared_decoder())
    render_score(bundle, score, max_voices=4, decoder=recorder)
    captured: list[np.ndarray] = []
    for entry in score.entries:
        latent = capture_latent(bundle, score, at=entry.time).latent
        if not captured or not np.array_equal(captured[-1], latent):
            captured.append(latent)
    assert len(captured) == len(recorder.seen) == 7
    for ours, decoded in zip(captured, recorder.seen, strict=True):
        np.testing.assert_array_equal(ours, decoded)


def test_a_moment_between_messages_keeps_the_state_of_the_last_one_before_it():
    bundle, score = render_bundle(), busy()
    morph = capture_latent(bundle, score, at=0.1042)
    assert morph.label == "morph:bright,hollow,0.400" and morph.messages == 4
    assert morph.macros == (0.0,) * len(bundle.macros.stds)
    just_before_macro = capture_latent(bundle, score, at=0.2 - 1e-6)
    np.testing.assert_array_equal(just_before_macro.latent, morph.latent)
    after_macro = capture_latent(bundle, score, at=0.2)
    assert after_macro.macros[0] == 1.5 and "macro 0 +1.50" in after_macro.describe()
    assert not np.array_equal(after_macro.latent, morph.latent)
    # None: after the last message, the whole latent /synth/latent set at 0.6 s.
    end = capture_latent(bundle, score)
    assert end.seconds == score.duration and end.label == "latent" and end.messages == len(score)
    expected = np.array([0.01 * ((i % 7) - 3) for i in range(bundle.latent_size)], dtype=np.float64)
    expected = expected + 1.5 * bundle.macros.stds[0] * np.asarray(bundle.macros.components[0], np.float64).reshape(-1)
    np.testing.assert_allclose(end.latent.reshape(-1), expected.astype(np.float32), rtol=0, atol=1e-6)
    # No latent message: the preset the engine started on.
    notes = parse_score([{"time": 0.0, "address": "/synth/note/on", "args": [60]}], spec=score_spec(bundle))
    start = capture_latent(bundle, notes, initial_preset="dark")
    np.testing.assert_array_equal(start.latent, bundle.presets["dark"].latent)


@pytest.mark.parametrize("at", [-0.5, math.nan, math.inf, True, "1"])
def test_a_bad_moment_is_refused(at):
    with pytest.raises(ParameterError, match="at \\(the moment to capture\\) must be a finite number of seconds"):
        capture_latent(render_bundle(), busy(), at=at)
    with pytest.raises(ParameterError, match="unknown preset 'nope'"):
        capture_latent(render_bundle(), busy(), initial_preset="nope")


def _take(tmp_path, entries, name: str = "take") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(entries))
    return str(path)


def test_presets_save_writes_the_sound_at_the_moment_and_it_plays_back(tmp_path):
    bundle_path = fresh_bundle(tmp_path / "b", n_presets=4)
    take = _take(tmp_path, [
        {"time": 0.5, "address": "/synth/note/on", "args": [60, 100]},
        {"time": 1.0, "address": "/synth/morph", "args": ["bright", "soft", 0.25]},
        {"time": 2.0, "address": "/synth/macro", "args": [1, -2.0]},
        {"time": 3.0, "address": "/synth/preset", "args": ["dark"]},
    ])
    rc, out, err = melsynth("presets", "save", "found", "--bundle", bundle_path, "--score", take, "--at", "2.5")
    assert rc == 0, err
    assert f"wrote preset 'found' ({take} at 2.500 s: morph:bright,soft,0.250, macro 1 -2.00; 3 of its 4 " in out
    bundle = load_bundle(bundle_path)
    saved = bundle.presets["found"]
    b = bundle.presets
    expected = 0.75 * b["bright"].latent.astype(np.float64) + 0.25 * b["soft"].latent
    expected = expected.reshape(-1) - 2.0 * bundle.macros.stds[1] * np.asarray(
        bundle.macros.components[1], np.float64).reshape(-1)
    np.testing.assert_allclose(saved.latent.reshape(-1), expected.astype(np.float32), rtol=0, atol=1e-6)
    assert saved.source["at_seconds"] == 2.5 and saved.source["state"] == "morph:bright,soft,0.250"
    # The new preset is an ordinary one: it renders.
    rc, _, err = melsynth("render", "--bundle", bundle_path, "--preset", "found", "--out", tmp_path / "f.wav")
    assert rc == 0, err


def test_presets_save_checks_everything_before_it_writes(tmp_path):
    bundle_path = fresh_bundle(tmp_path / "b", n_presets=4)
    presets = bundle_path / "presets"
    before = sorted(p.name for p in presets.iterdir())
    good = _take(tmp_path, [{"time": 1.0, "address": "/synth/morph", "args": ["bright", "soft", 0.5]}])
    cases = [
        (("bright", "--score", good), "preset 'bright' already exists"),
        (("../x", "--score", good), "invalid preset name"),
        (("new", "--score", good, "--at", "-1"), "at (the moment to capture) must be a finite number"),
        (("new", "--score", good, "--preset", "nope"), "unknown preset 'nope'"),
        (("new", "--score", str(tmp_path / "missing.json")), "missing.json"),
        (("new", "--score", _take(tmp_path, [{"time": 0, "address": "/synth/preset", "args": ["gone"]}], "bad")),
         "entry 0"),
    ]
    for argv, reason in cases:
        rc, _, err = melsynth("presets", "save", argv[0], "--bundle", bundle_path, *argv[1:])
        assert rc == 1 and reason in err and "Traceback" not in err, (argv, err)
    assert sorted(p.name for p in presets.iterdir()) == before and leftovers(presets) == []
    # --force replaces an existing preset, with the take's sound.
    rc, _, err = melsynth("presets", "save", "bright", "--bundle", bundle_path, "--score", good, "--force")
    assert rc == 0, err
    assert load_bundle(bundle_path).presets["bright"].source["state"] == "morph:bright,soft,0.500"
