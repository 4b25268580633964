"""The take log (synth/control/take_log.py): entries on disk as they come, a score in time order at the end, and
nothing lost when the end goes wrong."""

from __future__ import annotations

import json
import threading

import pytest

from synth.control.take_log import TakeLog
from synth.errors import ParameterError


def test_entries_from_two_threads_become_one_score_in_time_order(tmp_path):
    log = TakeLog(tmp_path / "take.json", rate=48000)
    assert log.lines_path.parent == tmp_path and log.lines_path.name.startswith(".take.json.")

    def play(first: int):
        for i in range(first, 400, 2):
            log.add(i * 480, "/synth/note/on", [60 + i % 12, 100])

    threads = [threading.Thread(target=play, args=(k,)) for k in (1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.count == 400
    assert log.write() == tmp_path / "take.json"
    score = json.loads((tmp_path / "take.json").read_text())
    assert [e["time"] for e in score] == [i * 480 / 48000 for i in range(400)]
    assert score[7] == {"time": 0.07, "address": "/synth/note/on", "args": [67, 100]}
    assert not log.lines_path.exists()
    log.add(48000 * 9, "/synth/panic", [])  # after the end: not part of the take
    assert log.count == 400


def test_the_lines_are_on_disk_before_the_end(tmp_path):
    log = TakeLog(tmp_path / "take.json", rate=1000)
    log.add(1500, "/synth/latent/set", [3, 0.25])  # on disk at once: a killed take keeps what it played
    assert json.loads(log.lines_path.read_text()) == {"time": 1.5, "address": "/synth/latent/set", "args": [3, 0.25]}
    assert not (tmp_path / "take.json").exists()  # the score appears whole, at the end, or not at all


def test_a_score_that_cannot_be_written_keeps_its_entries_and_says_where(tmp_path):
    log = TakeLog(tmp_path / "take.json", rate=100)
    log.add(50, "/synth/note/on", [60, 100])
    (tmp_path / "take.json").mkdir()  # the name is taken by a folder by the time the take ends
    with pytest.raises(ParameterError, match=r"cannot write the OSC log .*take\.json.*1 entries are kept") as err:
        log.write()
    assert str(log.lines_path) in str(err.value)
    assert json.loads(log.lines_path.read_text())["args"] == [60, 100]


def test_a_log_that_could_never_be_written_is_refused_at_once(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ParameterError, match=r"cannot write the OSC log .*file/take\.json"):
        TakeLog(tmp_path / "file" / "take.json", rate=48000)
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(ParameterError, match="folder.json: it is a folder"):
        TakeLog(tmp_path / "folder.json", rate=48000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.json"]


def test_a_discarded_log_leaves_nothing(tmp_path):
    log = TakeLog(tmp_path / "take.json", rate=48000)
    log.add(0, "/synth/note/on", [60, 100])
    log.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_log_in_a_missing_folder_is_refused_as_a_recording_is(tmp_path):
    """The recording refused a folder that does not exist while the log made it (and its parents): one rule
    now, and nothing is created."""
    from synth.host.recorder import Recorder

    for make, what in ((lambda p: TakeLog(p / "take.json", rate=48000), "the OSC log"),
                       (lambda p: Recorder(p / "take.wav", rate=48000), "the recording")):
        with pytest.raises(ParameterError, match=rf"^cannot write {what} .*/typo/take\.\w+: no such folder .*/typo$"):
            make(tmp_path / "typo")
    assert list(tmp_path.iterdir()) == []


def test_the_score_is_written_without_holding_the_entries_in_memory(tmp_path):
    """Issue 30 item 4: the score was made by parsing every line into a list at the end (2,423 /synth/latent
    messages took serve from 334 MB to 1,088 MB at Ctrl-C); now the lines are streamed into it in time order,
    holding a time and an offset an entry."""
    import tracemalloc

    log = TakeLog(tmp_path / "take.json", rate=1000)
    latent = [round(0.001 * k, 3) for k in range(2048)]
    for i in range(300):  # whole latents, out of order by pairs as two threads would leave them
        log.add((i ^ 1) * 10, "/synth/latent", latent)
    size = log.lines_path.stat().st_size
    tracemalloc.start()
    try:
        log.write()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size > 4_000_000 and peak < 1_000_000, (size, peak)  # 300 entries of 2048 floats: 4.4 MB of text
    score = json.loads((tmp_path / "take.json").read_text())
    assert [e["time"] for e in score] == [i / 100 for i in range(300)] and score[5]["args"] == latent
