"""Scores: checking (every bad entry named by index, nothing written), and rendering them: deterministic,
independent of block sizes, and equal to what the live engine plays from the same messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from render_fixtures import (
    RATE,
    busy_score,
    leftovers,
    melsynth,
    notes_score,
    release_seconds,
    render_bundle,
    render_bundle_path,
    shared_decoder,
)

from synth.control.messages import NoteOff, NoteOn, SetPreset
from synth.engine import LiveDecoding
from synth.errors import ScoreError
from synth.render import load_score, parse_score, render_score, score_engine, score_spec
from synth.render.live_replay import replay_live
from synth.render.performance import iter_score


def spec():
    return score_spec(render_bundle())


def busy():
    return parse_score(busy_score(render_bundle().latent_size), spec=spec())


@pytest.fixture(scope="module")
def reference():
    """The busy score rendered once, in the renderer's default blocks."""
    return render_score(render_bundle(), busy(), max_voices=4, decoder=shared_decoder())


# ---------------------------------------------------------------------------------------------- checking
def test_a_score_is_a_list_or_an_object_with_messages():
    messages = busy_score(render_bundle().latent_size)
    a = parse_score(messages, spec=spec())
    b = parse_score({"messages": messages, "title": "ignored"}, spec=spec())
    assert len(a) == len(b) == len(messages)
    assert [e.command for e in a.entries if not hasattr(e.command, "values")] == [
        e.command for e in b.entries if not hasattr(e.command, "values")]
    assert a.duration == pytest.approx(1.3)
    assert isinstance(a.entries[1].command, NoteOn) and a.entries[1].command.note == 60


def test_entries_are_sorted_by_time_stably():
    score = parse_score(
        [
            {"time": 1.0, "address": "/synth/note/on", "args": [60]},
            {"time": 0.5, "address": "/synth/preset", "args": ["dark"]},
            {"time": 0.5, "address": "/synth/preset", "args": ["bright"]},
            {"time": 0.0, "address": "/synth/note/off", "args": [60]},
        ],
        spec=spec(),
    )
    assert [e.index for e in score.entries] == [3, 1, 2, 0]
    assert score.entries[2].command == SetPreset("bright")
    assert score.events(rate=RATE)[-1] == (RATE, NoteOn(60, 100.0))


BAD_ENTRIES = [
    ({"time": 0.1, "address": "/synth/bogus", "args": [1]}, "unknown address"),
    ({"time": 0.1, "address": "/synth/note/on", "args": [60, "loud"]}, "velocity must be a number"),
    ({"time": 0.1, "address": "/synth/note/on", "args": [7]}, "out of range"),
    ({"time": 0.1, "address": "/synth/note/on", "args": []}, "expected 1 to 2 arguments"),
    ({"time": 0.1, "address": "/synth/preset", "args": ["nope"]}, "unknown preset"),
    ({"time": 0.1, "address": "/synth/morph", "args": ["bright", "dark", 2.5]}, "t 2.5 out of range"),
    ({"time": 0.1, "address": "/synth/latent", "args": [0.0, 1.0]}, "expected 2048 arguments"),
    ({"time": 0.1, "address": "/synth/method", "args": ["wavenet"]}, "unknown method"),
    ({"time": 0.1, "address": "/synth/status"}, "query"),
    ({"time": 0.1, "address": "/synth/note/on", "args": 60}, "args must be a list"),
    ({"time": 0.1, "address": 5, "args": []}, "address must be a string"),
    ({"time": -0.5, "address": "/synth/panic"}, "time must be >= 0"),
    ({"time": float("nan"), "address": "/synth/panic"}, "time must be finite"),
    ({"time": float("inf"), "address": "/synth/panic"}, "time must be finite"),
    ({"time": "1.0", "address": "/synth/panic"}, "time must be a number"),
    ({"time": True, "address": "/synth/panic"}, "time must be a number"),
    ({"time": 1e9, "address": "/synth/panic"}, "beyond"),
    ({"address": "/synth/panic"}, "missing 'time'"),
    ([0.1, "/synth/panic"], "expected an object"),
]


@pytest.mark.parametrize("entry, reason", BAD_ENTRIES, ids=[r for _, r in BAD_ENTRIES])
def test_a_bad_entry_is_named_by_its_index(entry, reason):
    messages = notes_score()
    messages.insert(3, entry)
    with pytest.raises(ScoreError) as info:
        parse_score(messages, spec=spec())
    text = str(info.value)
    assert "entry 3:" in text and reason in text, text
    assert "1 bad entry" in text


def test_every_bad_entry_is_reported_together():
    messages = notes_score() + [{"time": -1, "address": "/synth/panic"}, {"time": 1, "address": "/synth/x"}]
    with pytest.raises(ScoreError, match=r"2 bad entries of 9: entry 7: time must be >= 0.*; entry 8: /synth/x"):
        parse_score(messages, spec=spec())


@pytest.mark.parametrize(
    "text, reason",
    [("[{\"time\": 0, \"address\": \"/synth/panic\"},\n  oops]", "not valid JSON at line 2 column 3"),
     ("{\"notes\": []}", "needs a 'messages' list"),
     ("{\"messages\": []}", "has no messages"),
     ("42", "a score is a list")],
)
def test_malformed_score_files(tmp_path, text, reason):
    path = tmp_path / "score.json"
    path.write_text(text)
    with pytest.raises(ScoreError, match=reason):
        load_score(path, spec=spec())
    with pytest.raises(ScoreError, match="no such score file"):
        load_score(tmp_path / "missing.json", spec=spec())


@pytest.mark.parametrize("entry, reason", BAD_ENTRIES[:1] + BAD_ENTRIES[5:6] + BAD_ENTRIES[11:12])
def test_the_command_writes_nothing_for_a_bad_score(tmp_path, entry, reason):
    messages = notes_score()
    messages.insert(5, entry)
    (tmp_path / "score.json").write_text(json.dumps(messages))
    out = tmp_path / "take.wav"
    rc, stdout, err = melsynth("render", "--bundle", render_bundle_path(), "--score", tmp_path / "score.json",
                               "--out", out)
    assert rc == 1
    assert "entry 5:" in err and reason in err and err.count("\n") == 1, err
    assert not out.exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------- rendering
def test_same_score_same_samples(reference):
    again = render_score(render_bundle(), busy(), max_voices=4, decoder=shared_decoder())
    assert np.abs(reference.audio).max() > 0.05
    np.testing.assert_array_equal(again.audio, reference.audio)
    f = reference.figures
    assert f.late_events == 0 and f.released_at_end == () and not f.cut_short
    # It ends when the last voice has rung out: its audible release and a little tail after the last note-off.
    release = release_seconds()  # every preset of the synthetic bundle rings as long
    assert 1.3 + release < reference.audio.size / RATE < 1.3 + release + 0.2
    assert np.abs(reference.audio[-RATE // 20 :]).max() < 1e-3


@pytest.mark.parametrize("block", [1, 64, 65, 256, 4096, 4097])
def test_block_size_does_not_change_the_audio(reference, block):
    score = busy()
    engine = score_engine(render_bundle(), score, max_voices=4, decoder=shared_decoder())
    for sample, command in score.events(rate=RATE):
        engine.schedule(command, sample)
    # One-sample blocks over the whole score would take a while: the first 0.45 s (two latent changes, a
    # method switch and three note-ons) is enough to catch a block-dependent event time.
    n = int(0.45 * RATE) if block == 1 else reference.audio.size
    out = np.empty(n, dtype=np.float32)
    for i in range(0, n, block):
        engine.render_into(out[i : i + block])
    np.testing.assert_array_equal(out, reference.audio[:n])


@pytest.mark.parametrize("block", [64, 4097])
def test_the_renderers_own_blocks_do_not_change_the_audio_or_its_length(reference, block):
    score = busy()
    engine = score_engine(render_bundle(), score, max_voices=4, decoder=shared_decoder())
    blocks = list(iter_score(engine, score, block=block))
    assert all(len(b) == block for b in blocks[:-1]) and 0 < len(blocks[-1]) <= block
    np.testing.assert_array_equal(np.concatenate(blocks), reference.audio)


def test_offline_equals_live_with_the_live_decoder():
    """The live engine as serve builds it (decoding on a worker thread), fed the messages at their sample
    times through its inbox, ring and a stepped null output: the same samples as the offline render."""
    score = parse_score(notes_score(), spec=spec())
    offline = render_score(render_bundle(), score, max_voices=4, decoder=shared_decoder())
    engine = score_engine(render_bundle(), score, max_voices=4, decoding=LiveDecoding())
    live, stats = replay_live(engine, score.events(rate=RATE), n_samples=offline.audio.size, blocksize=256)
    assert stats.callbacks == -(-offline.audio.size // 256) and stats.engine.notes == 2
    assert np.abs(offline.audio).max() > 0.05
    np.testing.assert_allclose(live, offline.audio, rtol=0, atol=1e-6)


def test_offline_equals_live_for_every_kind_of_message(reference):
    """Latent changes too, with the engine decoding inline inside the LiveEngine (with the worker, a latent
    change lands at the first frame after its decode finishes instead of on its own frame)."""
    score = busy()
    engine = score_engine(render_bundle(), score, max_voices=4, decoder=shared_decoder())
    live, stats = replay_live(engine, score.events(rate=RATE), n_samples=reference.audio.size, blocksize=128)
    assert stats.engine.timbres.latent_changes == 7 and stats.engine.late_events == 0
    np.testing.assert_allclose(live, reference.audio, rtol=0, atol=1e-6)


def test_notes_still_held_at_the_end_are_released():
    score = parse_score(
        [{"time": 0.0, "address": "/synth/note/on", "args": [60]},
         {"time": 0.5, "address": "/synth/note/on", "args": [67]},
         {"time": 0.6, "address": "/synth/note/off", "args": [67]}],
        spec=spec(),
    )
    r = render_score(render_bundle(), score, release_after=0.4, decoder=shared_decoder())
    assert r.figures.released_at_end == (60,)
    # Released 0.4 s after the last message (0.6 s), then its audible release and a short tail.
    assert 1.0 + release_seconds() < r.audio.size / RATE < 1.0 + release_seconds() + 0.2
    assert np.sqrt(np.mean(r.audio[int(0.7 * RATE) : int(0.9 * RATE)] ** 2)) > 0.003  # still held


def test_the_command_renders_a_score_to_a_file(tmp_path, reference):
    (tmp_path / "score.json").write_text(json.dumps({"messages": busy_score(render_bundle().latent_size)}))
    files = []
    for name in ("a.wav", "b.wav"):
        rc, out, err = melsynth("render", "--bundle", render_bundle_path(), "--score", tmp_path / "score.json",
                                "--voices", "4", "--format", "float", "--out", tmp_path / name)
        assert rc == 0, err
        assert "20 messages over 1.30 s" in out and "32-bit float" in out
        files.append(sf.read(tmp_path / name, dtype="float32")[0])
    # Deterministic (the bytes differ only in the timestamp of libsndfile's PEAK chunk).
    np.testing.assert_array_equal(files[0], files[1])
    y, rate = sf.read(tmp_path / "a.wav", dtype="float32")
    info = sf.info(tmp_path / "a.wav")
    assert rate == RATE and info.subtype == "FLOAT" and info.channels == 1
    np.testing.assert_array_equal(y, reference.audio)
    # An existing output is kept without --force.
    before = (tmp_path / "b.wav").read_bytes()
    rc, out, err = melsynth("render", "--bundle", render_bundle_path(), "--score", tmp_path / "score.json",
                            "--out", tmp_path / "b.wav")
    assert rc == 1 and "already exists" in err
    assert (tmp_path / "b.wav").read_bytes() == before


def test_a_live_log_renders_as_a_score(tmp_path):
    """``serve --log-osc`` writes times as sample / rate with indent=1, arguments as sent (ints, floats)."""
    log = [{"time": 1125 / RATE, "address": "/synth/note/on", "args": [60, 100]},
           {"time": 48000 / RATE, "address": "/synth/preset", "args": ["dark"]},
           {"time": 72000 / RATE, "address": "/synth/note/off", "args": [60]}]
    path = tmp_path / "take.json"
    path.write_text(json.dumps(log, indent=1) + "\n")
    score = load_score(path, spec=spec())
    assert [s for s, _ in score.events(rate=RATE)] == [1125, 48000, 72000]
    assert score.entries[-1].command == NoteOff(60)
    r = render_score(render_bundle(), score, decoder=shared_decoder())
    assert np.all(r.audio[:1125] == 0.0) and np.abs(r.audio[1125:3000]).max() > 0
    assert math.isclose(r.audio.size / RATE, 1.5 + release_seconds("dark"), abs_tol=0.15)
