"""Rendering notes of presets: pitch, determinism, the end of a note, WAV files (24-bit / float, chosen rate,
never beyond full scale), plots, and the command's bad input (unknown preset, bad preset files, existing
output): clear errors and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import cents, f0_of, midi_hz
from render_fixtures import (
    RATE,
    fresh_bundle,
    leftovers,
    melsynth,
    release_seconds,
    render_bundle,
    render_bundle_path,
    shared_decoder,
)

from synth.errors import ParameterError, PresetError
from synth.render import render_note, write_wav
from synth.render.plot import plot_render
from synth.render.wav import guard_full_scale


def note(**kw):
    kw.setdefault("preset", "bright")
    kw.setdefault("decoder", shared_decoder())
    return render_note(render_bundle(), **kw)


# ---------------------------------------------------------------------------------------------- notes
@pytest.mark.parametrize("method", ["sinusoidal", "griffinlim"])
@pytest.mark.parametrize("offset", [-24, -12, 0, 12, 24])
def test_notes_play_at_their_pitch(method, offset):
    base = render_bundle().base_pitch
    r = note(note=base + offset, hold=0.7, method=method)
    f0 = f0_of(r.audio[RATE // 5 : int(0.7 * RATE)], rate=RATE)
    assert abs(cents(f0, midi_hz(base + offset))) < 10, f0


def test_a_note_is_deterministic_and_rings_out():
    a, b = note(hold=1.0), note(hold=1.0)
    np.testing.assert_array_equal(a.audio, b.audio)
    # Held 1 s, then the audible part of the model's 1 s release and the inverter's tail; the last frames are
    # silent.
    assert 0.5 < release_seconds("bright") < 1.0
    assert 1.0 + release_seconds("bright") < a.seconds < 1.0 + release_seconds("bright") + 0.1
    assert a.figures.released_at_end == () and not a.figures.cut_short
    assert np.abs(a.audio[: RATE // 2]).max() > 0.03  # (every preset at the engine's one loudness)
    assert np.abs(a.audio[-RATE // 50 :]).max() < 1e-4
    assert a.decoded.shape == (render_bundle().params.n_mels, render_bundle().params.frames)


def test_the_hold_sets_where_the_release_starts():
    short, long = note(hold=0.5), note(hold=2.5)
    assert long.seconds - short.seconds == pytest.approx(2.0, abs=0.01)
    rms = lambda y: float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))  # noqa: E731
    # At 1.0-1.4 s the short note is fading in its release while the long one is still held.
    assert rms(short.audio[RATE : int(1.4 * RATE)]) < 0.3 * rms(long.audio[RATE : int(1.4 * RATE)])


def test_velocity_and_presets_shape_the_sound():
    loud, soft = note(velocity=127, hold=0.5), note(velocity=50, hold=0.5)
    assert np.abs(soft.audio).max() / np.abs(loud.audio).max() == pytest.approx(50 / 127, rel=0.03)
    # "soft" decodes 20 dB down: at its own level it is quieter (at the engine's one loudness it is not:
    # tests/test_note_lengths.py).
    raw = {p: note(preset=p, velocity=127, hold=0.5, match_loudness=False).audio for p in ("bright", "soft")}
    assert np.abs(raw["soft"]).max() < 0.5 * np.abs(raw["bright"]).max()


@pytest.mark.parametrize(
    "kw, message",
    [({"preset": "nope"}, "unknown preset 'nope'"), ({"preset": "../x"}, "invalid preset name"),
     ({"note": 100}, "out of range"), ({"velocity": 0}, "velocity"), ({"hold": -1.0}, "hold"),
     ({"method": "wavenet"}, "method"), ({"output_rate": 1000}, "sample rate")],
)
def test_bad_note_arguments(kw, message):
    with pytest.raises((ParameterError, PresetError), match=message):
        note(**kw)


# ---------------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("fmt, subtype, rate", [("pcm24", "PCM_24", 48000), ("float", "FLOAT", 44100)])
def test_files_are_24_bit_or_float_at_the_chosen_rate(tmp_path, fmt, subtype, rate):
    out = tmp_path / "note.wav"
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--preset", "dark", "--hold", "0.5",
                               "--samplerate", rate, "--format", fmt, "--velocity", "127", "--out", out)
    assert rc == 0, err
    info = sf.info(out)
    assert (info.samplerate, info.subtype, info.channels, info.format) == (rate, subtype, 1, "WAV")
    y, _ = sf.read(out, dtype="float64")
    direct = note(preset="dark", hold=0.5, velocity=127, output_rate=rate).audio
    np.testing.assert_allclose(y, direct, rtol=0, atol=2.0**-23 if fmt == "pcm24" else 0.0)
    assert 0.02 < np.abs(y).max() <= 1.0
    assert f"{rate} Hz" in stdout and "faster than real time" in stdout
    assert leftovers(tmp_path) == []


def test_the_last_guard_keeps_files_within_full_scale(tmp_path):
    block = np.array([0.5, 1.5, -3.0, np.nan, np.inf, 1.0], dtype=np.float32)
    assert guard_full_scale(block, fmt="float") == 4
    np.testing.assert_array_equal(block, [0.5, 1.0, -1.0, 0.0, 0.0, 1.0])
    loud = np.sin(np.linspace(0, 200, 4800)).astype(np.float32) * 4.0
    for fmt in ("pcm24", "float"):
        writer = write_wav(tmp_path / f"{fmt}.wav", loud, rate=RATE, fmt=fmt)
        assert writer.guarded > 0
        y, _ = sf.read(tmp_path / f"{fmt}.wav", dtype="float64")
        assert np.abs(y).max() <= 1.0
        # Clipped, not wrapped round (a 24-bit sample of 1.0 would wrap to -1).
        assert y.max() > 0.99 and y.min() < -0.99
        big = np.abs(loud) > 0.1
        np.testing.assert_array_equal(np.sign(y[big]), np.sign(loud[big]))


def test_a_loud_chord_stays_within_full_scale():
    from synth.control.messages import NoteOn
    from synth.engine.limiter import CEILING
    from synth.render.note import make_engine
    from synth.render.timeline import render_timeline

    engine = make_engine(render_bundle(), gain=4.0, decoder=shared_decoder(), initial_preset="dark")
    audio, figures = render_timeline(engine, [(0, NoteOn(n, 127)) for n in range(48, 73, 3)], release_after=0.3)
    assert figures.limited_frames > 0 and figures.released_at_end
    assert np.abs(audio).max() <= CEILING


def test_plot_shows_the_decoded_and_the_rendered_log_mel(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "note.wav"
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--preset", "hollow", "--hold", "0.5",
                               "--plot", "--out", out)
    assert rc == 0, err
    data = (tmp_path / "note.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
    assert f"wrote {tmp_path / 'note.png'}" in stdout
    assert leftovers(tmp_path) == []
    with pytest.raises(ParameterError, match="decoded log-mel must have shape"):
        plot_render(tmp_path / "bad.png", decoded=np.zeros((3, 4)), audio=np.zeros(100), rate=RATE,
                    params=render_bundle().params)
    assert not (tmp_path / "bad.png").exists()


# ---------------------------------------------------------------------------------------------- the command
def test_render_all_presets(tmp_path):
    out = tmp_path / "all"
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--all", "--hold", "0.3", "--out", out,
                               "--raw-levels")
    assert rc == 0, err
    names = sorted(render_bundle().presets)
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.wav" for n in names]
    levels = {p.stem: np.abs(sf.read(p)[0]).max() for p in out.iterdir()}
    assert levels["soft"] < 0.5 * levels["bright"]  # --raw-levels: "soft" at its own, lower level
    assert f"rendered {len(names)} presets" in stdout
    assert "rendering" in err and "preset/s" in err  # the progress bar
    # Running it again refuses to replace the files, and names them.
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--all", "--out", out)
    assert rc == 1 and "already exist" in err and "bright.wav" in err


def test_unknown_preset_writes_nothing(tmp_path):
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--preset", "nope", "--plot",
                               "--out", tmp_path / "x.wav")
    assert rc == 1 and "unknown preset 'nope'" in err and "bright" in err
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "x.wav"
    out.write_bytes(b"keep me")
    args = ("render", "--bundle", render_bundle_path(), "--preset", "soft", "--hold", "0.2", "--out", out)
    rc, stdout, err = melsynth(*args)
    assert rc == 1 and "already exists" in err and out.read_bytes() == b"keep me"
    rc, stdout, err = melsynth(*args, "--force")
    assert rc == 0 and sf.info(out).subtype == "PCM_24"


def _preset_json(**changes) -> str:
    data = json.loads((render_bundle_path() / "presets" / "hollow.json").read_text())
    data.update(changes)
    return json.dumps(data)


BAD_PRESET_FILES = {
    "not JSON": ("{\"name\": \"x\", \"latent\": [1, 2,", "not a readable JSON preset"),
    "wrong latent size": (_preset_json(latent=[0.0] * 100), "latent has 100 values"),
    "another bundle": (_preset_json(bundle_hash="ab" * 32), "made for another bundle"),
}


@pytest.mark.parametrize("kind", list(BAD_PRESET_FILES))
def test_bad_preset_file_is_refused(tmp_path, kind):
    text, message = BAD_PRESET_FILES[kind]
    (tmp_path / "p.json").write_text(text)
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--preset-file", tmp_path / "p.json",
                               "--out", tmp_path / "x.wav")
    assert rc == 1 and message in err and "p.json" in err, err
    assert not (tmp_path / "x.wav").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", list(BAD_PRESET_FILES))
def test_a_bad_preset_file_inside_the_bundle_is_named(tmp_path, kind):
    bundle = fresh_bundle(tmp_path / "bundle", n_presets=2)
    text, message = BAD_PRESET_FILES[kind]
    (bundle / "presets" / "hollow.json").write_text(text)
    # One bad file costs only itself: another preset renders, and the file is named with its fault.
    rc, stdout, err = melsynth("render", "--bundle", bundle, "--preset", "bright", "--out", tmp_path / "x.wav")
    assert rc == 0 and "preset file hollow.json left out" in err and message in err, err
    assert (tmp_path / "x.wav").exists()
    # Asked for by name, it is refused with the same reason, and nothing is written.
    rc, stdout, err = melsynth("render", "--bundle", bundle, "--preset", "hollow", "--out", tmp_path / "y.wav")
    assert rc == 1 and "hollow.json" in err and message in err, err
    assert not (tmp_path / "y.wav").exists()


def test_a_preset_saved_after_loading_renders(tmp_path):
    from synth.bundle import load_bundle
    from synth.render.note import BundleView

    path = fresh_bundle(tmp_path / "bundle", n_presets=2)
    view = BundleView(load_bundle(path))
    (path / "presets" / "late.json").write_text(
        (path / "presets" / "dark.json").read_text().replace('"name": "dark"', '"name": "late"'))
    r = render_note(view, preset="late", hold=0.3)
    assert r.preset == "late" and "late" in view.presets and np.abs(r.audio).max() > 0.01


def test_a_good_preset_file_renders_like_the_bundle_preset(tmp_path):
    (tmp_path / "p.json").write_text(_preset_json(name="elsewhere"))
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--preset-file", tmp_path / "p.json",
                               "--hold", "0.4", "--format", "float", "--out", tmp_path / "x.wav")
    assert rc == 0, err
    np.testing.assert_array_equal(sf.read(tmp_path / "x.wav", dtype="float32")[0], note(preset="hollow", hold=0.4).audio)


@pytest.mark.parametrize(
    "args, message",
    [(["--preset", "bright", "--all"], "--preset goes with"), (["--all", "--score", "s.json"], "choose one of"),
     ([], "say what to render"), (["--score", "s.json", "--plot"], "--plot draws"),
     (["--preset", "bright", "--note", "100"], "out of range"), (["--preset", "bright", "--release-after", "1"],
                                                                 "--release-after applies"),
     (["--preset", "bright", "--voices", "4"], "--voices applies")],
)
def test_contradictory_arguments(tmp_path, args, message):
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), *args, "--out", tmp_path / "x.wav")
    assert rc == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []
