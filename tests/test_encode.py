"""Encoding audio to presets: any rate and channel count, the mean latent of several files, the
render -> encode -> preset -> render round trip, and bad input (unreadable, empty, silent, missing files,
bad names, existing presets): clear errors naming the file, no preset written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from render_fixtures import fresh_bundle, leftovers, melsynth

from synth.bundle import load_bundle
from synth.errors import DataError
from synth.render import encode_audio_files, read_audio_for_model, render_note
from synth.render.note import BundleView
from synth.render.plot import render_log_mel


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    return fresh_bundle(tmp_path_factory.mktemp("encode") / "bundle", n_presets=6)


@pytest.fixture(scope="module")
def bundle(bundle_path):
    return load_bundle(bundle_path)


@pytest.fixture(scope="module")
def decoder(bundle):
    return bundle.decoder()


def faithful_note(bundle, preset, decoder, **kw):
    """A note at the model's own level (velocity 127, gain 1), so that its re-encoding can match the level."""
    return render_note(bundle, preset=preset, velocity=127, gain=1.0, decoder=decoder, match_loudness=False, **kw)


def band_levels(audio, *, rate, params):
    """Mean dB of each mel band over the held part of a note (frames 20..370)."""
    x = render_log_mel(audio, rate=rate, params=params)[:, 20:370]
    return (params.db_max - params.db_min) * x.mean(axis=1)


@pytest.fixture(scope="module")
def round_trip(bundle_path, bundle, decoder, tmp_path_factory):
    """Render "hollow" at 44.1 kHz, save it as a stereo 24-bit file, encode it with the command."""
    folder = tmp_path_factory.mktemp("round_trip")
    original = faithful_note(bundle, "hollow", decoder, output_rate=44100)
    assert original.figures.limited_frames == 0
    path = folder / "hollow.wav"
    sf.write(path, np.stack([original.audio, original.audio], axis=1), 44100, subtype="PCM_24")
    rc, out, err = melsynth("encode", "--bundle", bundle_path, path, "--name", "hollow_again")
    assert rc == 0, err
    return {"original": original, "out": out, "path": path}


def test_round_trip_recovers_the_latent(bundle_path, bundle, round_trip):
    data = json.loads((bundle_path / "presets" / "hollow_again.json").read_text())
    assert data["bundle_hash"] == bundle.bundle_hash and data["name"] == "hollow_again"
    assert data["source"]["files"][0]["sample_rate"] == 44100 and data["source"]["files"][0]["channels"] == 2
    z = np.asarray(data["latent"])
    cos = {name: float(z @ p.latent.ravel() / np.linalg.norm(z) / np.linalg.norm(p.latent)) for name, p in
           bundle.presets.items()}
    # Measured: cosine 0.97, relative error 0.24 (the sinusoidal inversion's own small spectral bias).
    assert cos["hollow"] > 0.93 and max(cos, key=cos.get) == "hollow", cos
    z0 = bundle.presets["hollow"].latent.ravel()
    assert np.linalg.norm(z - z0) / np.linalg.norm(z0) < 0.4
    assert "read " in round_trip["out"] and "44100 Hz stereo" in round_trip["out"]
    assert "wrote preset 'hollow_again'" in round_trip["out"]


def test_round_trip_render_matches_the_original_spectrum(bundle_path, bundle, decoder, round_trip):
    fresh = load_bundle(bundle_path)  # sees the new preset
    again = faithful_note(fresh, "hollow_again", decoder, output_rate=44100)
    params = bundle.params
    want = band_levels(round_trip["original"].audio, rate=44100, params=params)
    got = band_levels(again.audio, rate=44100, params=params)
    err = float(np.abs(got - want).mean())
    # Measured: 1.4 dB mean difference; other presets of this bundle are 5-20 dB away from "hollow".
    others = [float(np.abs(band_levels(faithful_note(bundle, n, decoder, output_rate=44100).audio,
                                        rate=44100, params=params) - want).mean())
              for n in ("nasal", "bright")]
    assert err < 2.5 and err < 0.4 * min(others), (err, others)


def test_any_rate_and_channel_count(tmp_path, bundle, decoder):
    """The same sound as a 16 kHz mono file and as a 22.05 kHz three-channel file encodes the same."""
    r16 = faithful_note(bundle, "bright", decoder, output_rate=16000, hold=1.0)
    sf.write(tmp_path / "mono16k.wav", r16.audio, 16000, subtype="FLOAT")
    r22 = faithful_note(bundle, "bright", decoder, output_rate=22050, hold=1.0)
    # Channels whose mean is the note: the mix to mono recovers it exactly.
    three = np.stack([r22.audio * 0.5, r22.audio * 1.5, r22.audio], axis=1)
    sf.write(tmp_path / "three22k.flac", three, 22050, subtype="PCM_24")
    a = encode_audio_files(bundle, [tmp_path / "mono16k.wav"], decoder=decoder)
    b = encode_audio_files(bundle, [tmp_path / "three22k.flac"], decoder=decoder)
    assert b.files[0].channels == 3 and b.files[0].sample_rate == 22050
    za, zb = a.latent.ravel(), b.latent.ravel()
    assert np.linalg.norm(za - zb) / np.linalg.norm(za) < 0.05  # measured 0.014


def test_short_files_are_padded_and_long_ones_trimmed(tmp_path, bundle):
    params = bundle.params
    t = np.arange(int(7.0 * 32000)) / 32000
    tone = (0.3 * np.sin(2 * np.pi * 261.63 * t)).astype(np.float32)
    sf.write(tmp_path / "long.wav", tone, 32000)
    sf.write(tmp_path / "short.wav", tone[:16000], 32000)
    long = read_audio_for_model(tmp_path / "long.wav", params=params)
    short = read_audio_for_model(tmp_path / "short.wav", params=params)
    assert long.mel.shape == short.mel.shape == (params.n_mels, params.frames)
    assert long.seconds == pytest.approx(7.0) and short.seconds == pytest.approx(0.5)
    # Sound all the way to 4 s in the long one; silence after 0.5 s in the short one.
    assert long.mel[:, 500].max() > 0.5 and short.mel[:, 100:].max() == 0.0


def test_leading_silence_is_skipped(tmp_path, bundle):
    params = bundle.params
    t = np.arange(16000) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "late.wav", np.concatenate([np.zeros(8000), tone]), 16000)
    late = read_audio_for_model(tmp_path / "late.wav", params=params)
    kept = read_audio_for_model(tmp_path / "late.wav", params=params, trim_onset=False)
    assert late.onset_seconds == pytest.approx(0.5, abs=1e-3) and kept.onset_seconds == 0.0
    assert late.mel[:, 10].max() > 0.5 and kept.mel[:, 10].max() == 0.0


def test_several_files_give_their_mean_latent(tmp_path, bundle_path, bundle, decoder):
    paths = []
    for name in ("bright", "soft"):
        r = faithful_note(bundle, name, decoder, hold=1.0)
        paths.append(tmp_path / f"{name}.wav")
        sf.write(paths[-1], r.audio, r.rate, subtype="FLOAT")
    both = encode_audio_files(bundle, paths, decoder=decoder)
    each = [encode_audio_files(bundle, [p], decoder=False).latent for p in paths]
    np.testing.assert_allclose(both.latent, (each[0] + each[1]) / 2, atol=1e-6)
    assert both.rmse.shape == (2,) and "mean latent of 2 files" in both.source()["description"]
    rc, out, err = melsynth("encode", "--bundle", bundle_path, *paths, "--name", "blend")
    assert rc == 0, err
    assert "the mean latent of 2 files" in out
    saved = json.loads((bundle_path / "presets" / "blend.json").read_text())
    np.testing.assert_allclose(saved["latent"], both.latent.ravel(), atol=1e-6)
    # The new preset is a preset like any other: it renders.
    view = BundleView(load_bundle(bundle_path))
    assert np.abs(render_note(view, preset="blend", hold=0.2, decoder=decoder).audio).max() > 0.01


def test_an_existing_preset_needs_force(tmp_path, bundle_path, bundle, decoder):
    r = faithful_note(bundle, "dark", decoder, hold=0.5)
    sf.write(tmp_path / "dark.wav", r.audio, r.rate)
    target = bundle_path / "presets" / "hollow.json"
    before = target.read_bytes()
    rc, out, err = melsynth("encode", "--bundle", bundle_path, tmp_path / "dark.wav", "--name", "hollow")
    assert rc == 1 and "already exists" in err and target.read_bytes() == before
    rc, out, err = melsynth("encode", "--bundle", bundle_path, tmp_path / "dark.wav", "--name", "dark_copy")
    assert rc == 0, err
    rc, out, err = melsynth("encode", "--bundle", bundle_path, tmp_path / "dark.wav", "--name", "dark_copy", "--force")
    assert rc == 0, err
    assert leftovers(bundle_path / "presets") == []


def _bad_files(folder):
    (folder / "text.wav").write_text("this is not audio\n")
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(folder / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    sf.write(folder / "nan.wav", np.full(1000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    (folder / "folder.wav").mkdir()
    return {
        "text.wav": "not a readable audio file",
        "empty.wav": "the audio is empty",
        "silent.wav": "the audio is silent",
        "nan.wav": "NaN or Inf",
        "folder.wav": "not a file",
        "missing.wav": "no such audio file",
    }


def test_bad_audio_files_are_named_and_nothing_is_written(tmp_path, bundle_path, bundle, decoder):
    good = tmp_path / "good.wav"
    sf.write(good, faithful_note(bundle, "soft", decoder, hold=0.3).audio, 48000)
    for name, message in _bad_files(tmp_path).items():
        with pytest.raises(DataError, match=message) as info:
            read_audio_for_model(tmp_path / name, params=bundle.params)
        assert name in str(info.value)
        # The command: a good file first, the bad one second; no preset appears.
        rc, out, err = melsynth("encode", "--bundle", bundle_path, good, tmp_path / name, "--name", f"bad_{name[:-4]}")
        assert rc == 1 and name in err and message in err, err
        assert not (bundle_path / "presets" / f"bad_{name[:-4]}.json").exists()


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a b", ""])
def test_bad_preset_names_are_refused_before_any_work(tmp_path, bundle_path, name):
    rc, out, err = melsynth("encode", "--bundle", bundle_path, tmp_path / "missing.wav", "--name", name)
    assert rc == 1 and "invalid preset name" in err, err
