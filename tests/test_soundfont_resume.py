"""`dataset soundfont` resumes a render that stopped part-way (training/datasets/partial.py's rule, shared
with `dataset features --shards`): finished notes are kept when intact, silent ones remembered, another plan
refused, and the folder it ends with is the one an uninterrupted run makes. Renders are tiny (each
fluidsynth note costs 0.2-0.5 s)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth.errors import DataError, ExternalToolError, OutputError
from training.datasets import soundfont as sf_module
from training.datasets.partial import PARTIAL_SUFFIX, plan_differences
from training.datasets.soundfont import JOURNAL, render_soundfont_dataset

TIM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
FLUID = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None or not TIM.exists() or not FLUID.exists(),
                                reason="needs fluidsynth, fluid-soundfont-gm and timgm6mb-soundfont "
                                       "(installed by .ci/run)")


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes; the report without its timing."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "render_report.json":
                report = json.loads(data)
                report.pop("seconds")
                data = json.dumps(report).encode()
            out[str(path.relative_to(folder))] = data
    return out


@pytest.fixture
def counted(monkeypatch):
    """render_note counted, and the run stopped at call ``stop_at`` when that is set: SIGTERM to this
    process, with the handler the CLI installs (KeyboardInterrupt in the main thread, as Ctrl-C), while that
    note's fluidsynth fails as Ctrl-C would kill it, and so does every later one a worker may still begin:
    the notes finished are exactly those of calls 1..stop_at-1. ``notes`` lists the notes rendered."""
    from synth.cli import _interrupt

    real = sf_module.render_note
    state = {"n": 0, "stop_at": None, "notes": []}

    def render(font, **kw):
        state["n"] += 1
        if state["stop_at"] is not None and state["n"] >= state["stop_at"]:
            if state["n"] == state["stop_at"]:
                os.kill(os.getpid(), signal.SIGTERM)
            raise ExternalToolError("fluidsynth ended by the stop")
        state["notes"].append((Path(font).name, kw["program"], kw["velocity"]))
        return real(font, **kw)

    monkeypatch.setattr(sf_module, "render_note", render)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stopped_render_resumes_with_only_the_rest_and_gives_the_uninterrupted_folder(tmp_path, counted):
    """FluidR3_GM's contrabass (program 43) is silent at key 60: the stopped run finishes it (silent) and one
    written note; the resumed run renders only the two notes left, and the folder is byte for byte the
    uninterrupted run's (examples.json, every WAV, render_report.json but its timing)."""
    plan = dict(fonts=[FLUID, TIM], programs=[43, 56], velocities=[100], workers=1, progress=False)
    whole = render_soundfont_dataset(out=tmp_path / "whole", **plan)
    assert whole.rendered == 3 and [s["program"] for s in whole.skipped] == [43] and whole.kept == 0

    counted.update(n=0, stop_at=3, notes=[])
    out = tmp_path / "sf"
    with pytest.raises(KeyboardInterrupt):
        render_soundfont_dataset(out=out, **plan)
    work = tmp_path / f"sf{PARTIAL_SUFFIX}"
    assert not out.exists()
    assert sorted(p.name for p in work.iterdir()) == ["audio", "progress.json", JOURNAL]
    kept = work / "audio" / "brass_acoustic_000-060-100.wav"
    assert [p.name for p in (work / "audio").iterdir()] == [kept.name]
    stamp = kept.stat().st_mtime_ns
    with pytest.raises(DataError, match=r"sf.partial: a partial render is there: --resume continues it, "
                                        r"--force starts again"):
        render_soundfont_dataset(out=out, **plan)

    counted.update(n=0, stop_at=None, notes=[])
    report = render_soundfont_dataset(out=out, resume=True, **plan)
    assert counted["notes"] == [("TimGM6mb.sf2", 43, 100), ("TimGM6mb.sf2", 56, 100)]  # only the rest
    assert report.kept == 2 and report.rendered == 3 and report.skipped == whole.skipped
    assert not work.exists()
    assert files(out) == files(tmp_path / "whole")
    assert (out / "audio" / kept.name).stat().st_mtime_ns == stamp  # kept, not written again


def test_a_corrupt_note_file_a_cut_journal_line_and_leftovers_are_dealt_with(tmp_path, counted):
    """What a kill leaves: a WAV cut short (or changed), a journal line cut short, a temporary file. The
    note is rendered again, the rest kept, and nothing stray reaches the folder."""
    plan = dict(fonts=[TIM], programs=[0, 56, 73], velocities=[100], workers=1, progress=False)
    counted.update(stop_at=3)
    out = tmp_path / "sf"
    with pytest.raises(KeyboardInterrupt):
        render_soundfont_dataset(out=out, **plan)
    work = tmp_path / f"sf{PARTIAL_SUFFIX}"
    piano, brass = (work / "audio" / f"{n}-060-100.wav" for n in ("keyboard_acoustic_000", "brass_acoustic_000"))
    good = piano.read_bytes()
    piano.write_bytes(good[: len(good) // 2])  # cut short
    with open(work / JOURNAL, "a") as fh:
        fh.write('{"note_str": "flute_acoustic_000-060-1')  # a line cut short by a kill
    (work / "audio" / ".flute_acoustic_000-060-100.wav.x1y2.wav.tmp").write_bytes(b"RIFF half")
    (work / ".rendered.jsonl.a1b2.tmp").write_bytes(b"{")

    counted.update(n=0, stop_at=None, notes=[])
    report = render_soundfont_dataset(out=out, resume=True, **plan)
    assert counted["notes"] == [("TimGM6mb.sf2", 0, 100), ("TimGM6mb.sf2", 73, 100)]
    assert report.kept == 1 and report.rendered == 3
    assert (out / "audio" / piano.name).read_bytes() == good
    assert sorted(p.name for p in out.rglob("*")) == sorted(
        ["audio", "examples.json", "render_report.json", piano.name, brass.name, "flute_acoustic_000-060-100.wav"])

    # A WAV changed in place (same length, other bytes) is caught by its hash, not only a short one.
    counted.update(n=0, stop_at=2, notes=[])
    with pytest.raises(KeyboardInterrupt):
        render_soundfont_dataset(out=tmp_path / "again", **plan)
    changed = tmp_path / f"again{PARTIAL_SUFFIX}" / "audio" / piano.name
    data = bytearray(changed.read_bytes())
    data[-2] ^= 0x01
    changed.write_bytes(bytes(data))
    counted.update(n=0, stop_at=None, notes=[])
    render_soundfont_dataset(out=tmp_path / "again", resume=True, **plan)
    assert [note[1] for note in counted["notes"]] == [0, 56, 73]
    assert files(tmp_path / "again") == files(out)


def test_another_plan_is_refused_naming_what_differs_and_force_starts_again(tmp_path, counted):
    font = tmp_path / "font.sf2"
    shutil.copyfile(TIM, font)
    plan = dict(fonts=[font], programs=[0], velocities=[100], workers=1, progress=False)
    counted.update(stop_at=1)  # stopped before its first note: the plan is recorded all the same
    out = tmp_path / "sf"
    with pytest.raises(KeyboardInterrupt):
        render_soundfont_dataset(out=out, **plan)
    work = tmp_path / f"sf{PARTIAL_SUFFIX}"
    recorded = (work / "progress.json").read_bytes()

    with pytest.raises(DataError, match=r"sf.partial: a partial render of another plan is there \(velocities: "
                                        r"\[100\] then, \[100, 50\] now\); --resume continues only the same plan, "
                                        r"--force starts again"):
        render_soundfont_dataset(out=out, resume=True, **{**plan, "velocities": [100, 50]})
    with pytest.raises(DataError, match=r"pitches: \[60\] then, \[61\] now"):
        render_soundfont_dataset(out=out, resume=True, pitch=61, **plan)
    with pytest.raises(DataError, match=r"programs: \[0\] then, \[1\] now"):
        render_soundfont_dataset(out=out, resume=True, **{**plan, "programs": [1]})
    with open(font, "ab") as fh:  # the font changed under its name: other samples, other notes
        fh.write(b"\0")
    with pytest.raises(DataError, match=r"fonts\[0\]\.bytes: \d+ then, \d+ now; fonts\[0\]\.sha256: "):
        render_soundfont_dataset(out=out, resume=True, **plan)
    assert (work / "progress.json").read_bytes() == recorded and not out.exists()  # refusals touch nothing

    counted.update(n=0, stop_at=None, notes=[])
    report = render_soundfont_dataset(out=out, force=True, **plan)
    assert report.kept == 0 and counted["n"] == 1 and not work.exists()
    assert json.loads((out / "render_report.json").read_text())["rendered"] == 1


def test_a_partial_name_that_melsynth_did_not_make_is_never_removed(tmp_path):
    """--force and --resume remove an unusable partial folder: never one of the user's that bears the name,
    nor a link or a file there."""
    plan = dict(fonts=[TIM], programs=[0], velocities=[100], workers=1, progress=False)
    mine = tmp_path / f"sf{PARTIAL_SUFFIX}"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for flags in ({"force": True}, {"resume": True}, {}):
        with pytest.raises(OutputError, match=r"sf.partial: exists and is not a partial run melsynth made \(it "
                                              r"has no progress.json\); melsynth does not replace it"):
            render_soundfont_dataset(out=tmp_path / "sf", **plan, **flags)
    assert (mine / "notes.txt").read_text() == "mine"
    shutil.rmtree(mine)
    mine.symlink_to(tmp_path)
    with pytest.raises(OutputError, match=r"sf.partial: is a symbolic link, not a partial run melsynth made"):
        render_soundfont_dataset(out=tmp_path / "sf", force=True, **plan)
    assert mine.is_symlink() and not (tmp_path / "sf").exists()


def test_plan_differences_names_each_difference():
    then = {"fonts": [{"name": "a", "sha256": "x"}], "programs": [0, 1], "hold": 3.0}
    assert plan_differences(then, then) == []
    now = {"fonts": [{"name": "a", "sha256": "y"}], "programs": [0, 2], "hold": 2.0}
    assert plan_differences(then, now) == ['fonts[0].sha256: "x" then, "y" now', "programs: [0, 1] then, [0, 2] now",
                                           "hold: 3.0 then, 2.0 now"]
    assert plan_differences({"p": [0]}, {"p": [0, 1]}) == ["p: [0] then, [0, 1] now"]
    assert plan_differences(then, now, limit=1) == ['fonts[0].sha256: "x" then, "y" now', "..."]


def test_a_disk_that_fills_while_notes_are_written_says_so_and_resumes(tmp_path, monkeypatch):
    real = sf_module.atomic_write_bytes
    calls = {"n": 0}

    def fills(path, data, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, **kw)

    monkeypatch.setattr(sf_module, "atomic_write_bytes", fills)
    plan = dict(fonts=[TIM], programs=[0, 56], velocities=[100], workers=1, progress=False)
    out = tmp_path / "full"
    with pytest.raises(OutputError, match=r"full.partial: the disk is full while writing a note .*No space left"
                                          r".*; the notes rendered before are kept: free some space and run "
                                          r"again with --resume"):
        render_soundfont_dataset(out=out, **plan)
    assert not out.exists() and len(list((tmp_path / f"full{PARTIAL_SUFFIX}" / "audio").iterdir())) == 1
    monkeypatch.setattr(sf_module, "atomic_write_bytes", real)
    report = render_soundfont_dataset(out=out, resume=True, **plan)
    assert report.kept == 1 and report.rendered == 2


def test_a_stuck_fluidsynth_is_a_typed_error_and_the_render_resumes(tmp_path, monkeypatch):
    """fluidsynth past its timeout (seen when another job's quiet window stopped it for minutes) once ended
    the command in a traceback and threw the render away: now it is tried once more, then an
    ExternalToolError says where the notes are kept."""
    plan = dict(fonts=[TIM], programs=[0, 56], velocities=[100], workers=1, progress=False)
    out = tmp_path / "stuck"
    real = subprocess.run
    runs = []

    def stopped_once(cmd, **kw):  # the first note's first attempt "stopped" past its timeout (or every one)
        if "--version" in cmd:
            return real(cmd, **kw)
        runs.append(cmd)
        if len(runs) == 1 or fail_all:
            raise subprocess.TimeoutExpired(cmd, kw["timeout"])
        return real(cmd, **kw)

    monkeypatch.setattr(sf_module.subprocess, "run", stopped_once)
    fail_all = False
    report = render_soundfont_dataset(out=tmp_path / "once", **{**plan, "programs": [0]})
    assert report.rendered == 1 and len(runs) == 2  # tried again, and rendered

    fail_all = True
    with pytest.raises(ExternalToolError, match=r"fluidsynth took more than 60 s on TimGM6mb.sf2 program 0 "
                                                r"pitch 60 velocity 100, twice; the notes rendered before are kept "
                                                r"in .*stuck.partial: run again with --resume to continue"):
        render_soundfont_dataset(out=out, **plan)
    assert not out.exists() and (tmp_path / f"stuck{PARTIAL_SUFFIX}").is_dir()
    monkeypatch.undo()
    assert render_soundfont_dataset(out=out, resume=True, **plan).rendered == 2


def test_sigterm_leaves_the_partial_render_and_no_process_and_resume_finishes_it(tmp_path):
    """`melsynth dataset soundfont` ended by SIGTERM (kill, timeout, systemd): 'interrupted', exit 130, its
    fluidsynth processes gone, OUT.partial kept with the notes finished; --resume renders the rest."""
    out = tmp_path / "sf"
    args = [sys.executable, "-m", "synth.cli", "dataset", "soundfont", "--out", str(out), "--font", str(TIM),
            "--programs", ",".join(map(str, range(16))), "--velocities", "100", "--workers", "2"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / f"sf{PARTIAL_SUFFIX}" / JOURNAL
    deadline = time.monotonic() + 120
    children: set[str] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        children |= set(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split())
        if journal.is_file() and len(journal.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    children |= set(subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "melsynth: interrupted" in err and "Traceback" not in err
    assert children, "the command ran no fluidsynth to check"
    time.sleep(0.5)
    assert [pid for pid in children if os.path.exists(f"/proc/{pid}")] == []
    assert not out.exists()
    done = [json.loads(line)["note_str"] for line in journal.read_text().splitlines()]
    assert 2 <= len(done) < 16
    stamps = {n: (journal.parent / "audio" / f"{n}.wav").stat().st_mtime_ns for n in done}

    resumed = subprocess.run([*args, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({len(done)} of the 16 notes finished by the run it resumed)" in resumed.stdout
    assert len(json.loads((out / "examples.json").read_text())) == 16
    assert {n: (out / "audio" / f"{n}.wav").stat().st_mtime_ns for n in done} == stamps
    assert not journal.parent.exists()
