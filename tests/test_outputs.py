"""What ``--out``/``--force``, ``--record`` and ``--log-osc`` may replace (synth/outputs.py), kept by every command.

Each case of issue #30's "data destroyed" is tried the way a careless user would, with real files in a
temporary folder: a command whose ``--out --force`` names its own input, a folder of bundles, a folder that is
no output of that command, or a file that is a symlink, a FIFO or a device. Each must end in one error line
naming the path and why (exit 1), with everything that was there still there, byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.atomic import atomic_directory, atomic_path, atomic_write_text
from synth.errors import OutputError, ParameterError
from synth.outputs import BUNDLE, FEATURES, NSYNTH_DATASET, RUN, check_output_file, check_output_folder

REPO = Path(__file__).resolve().parents[1]


def melsynth(*args, cwd=REPO, timeout=300):
    return subprocess.run([sys.executable, "-m", "synth.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def tree(root: Path) -> dict[str, str | bytes | None]:
    """Every path under ``root`` (itself included): a file's bytes, a link's target, None for a folder."""
    out: dict[str, str | bytes | None] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        if path.is_symlink():
            content = os.readlink(path)
        elif path.is_file():
            content = path.read_bytes()
        else:
            content = None
        out[str(path.relative_to(root.parent))] = content
    return out


def fake_bundle(folder: Path) -> Path:
    """A folder recognised as a bundle (its bundle.json has the bundle format): what --force may replace."""
    folder.mkdir(parents=True)
    (folder / "bundle.json").write_text(json.dumps({"format": BUNDLE.format}))
    (folder / "decoder.onnx").write_bytes(b"weights")
    return folder


def fake_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"format": RUN.format}))
    (folder / "best.weights.h5").write_bytes(b"trained for hours")
    return folder


def recordings(folder: Path) -> Path:
    folder.mkdir(parents=True)
    t = np.arange(16000 * 2) / 16000
    sf.write(folder / "take1.wav", (0.3 * np.sin(2 * np.pi * 261.6 * t)).astype(np.float32), 16000)
    (folder / "notes.txt").write_text("the only copy")
    return folder


def test_the_formats_are_the_ones_melsynth_writes():
    from synth.bundle import BUNDLE_FORMAT
    from training.fit import RUN_FORMAT

    assert (BUNDLE.format, RUN.format) == (BUNDLE_FORMAT, RUN_FORMAT)


# ------------------------------------------------------------------------------------------ the folder rule
def test_force_replaces_only_an_earlier_output_of_the_kind_or_an_empty_folder(tmp_path):
    bundle = fake_bundle(tmp_path / "old")
    assert check_output_folder(bundle, kind=BUNDLE, force=True) == bundle
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty", kind=BUNDLE, force=True)
    check_output_folder(tmp_path / "new", kind=BUNDLE, force=False)  # nothing there: nothing to ask
    with pytest.raises(OutputError, match=r"old already exists \(use --force to replace it\)"):
        check_output_folder(bundle, kind=BUNDLE, force=False)

    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.pdf").write_bytes(b"%PDF")
    (other / "bundle.json").write_text('{"format": "something else"}')
    for force in (False, True):  # never "use --force" as advice for a folder --force may not replace
        with pytest.raises(OutputError, match=r"mine: exists and is not a bundle folder melsynth wrote \(it has "
                                              r"no bundle.json of format 'melsynth.bundle/1'\)") as err:
            check_output_folder(other, kind=BUNDLE, force=force)
        assert "--force" not in str(err.value)
    with pytest.raises(OutputError, match="is not a features folder"):
        check_output_folder(bundle, kind=FEATURES, force=True)  # an output, but of another kind

    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="file: is a file, not a bundle folder"):
        check_output_folder(tmp_path / "file", kind=BUNDLE, force=True)
    (tmp_path / "link").symlink_to(bundle)
    with pytest.raises(OutputError, match="link: is a symbolic link"):
        check_output_folder(tmp_path / "link", kind=BUNDLE, force=True)
    with pytest.raises(ParameterError, match="kind must be an OutputKind"):
        check_output_folder(bundle, kind="bundle", force=True)


def test_an_output_is_never_an_input_or_a_folder_holding_one(tmp_path):
    data = tmp_path / "data"
    run = fake_run(data / "runs" / "r")
    for out, fragment in [(run, "r: is .*r, an input"), (data, "data: holds .*r, an input"),
                          (tmp_path / "data" / "runs" / ".." / "runs" / "r", "is .*, an input")]:
        with pytest.raises(OutputError, match=fragment):
            check_output_folder(out, kind=RUN, force=True, inputs=[None, run])


def test_atomic_directory_checks_the_rule_again_at_the_rename(tmp_path):
    # The work takes minutes; if the bundle it is to replace became something else meanwhile, nothing is
    # replaced and the new output is dropped.
    bundle = fake_bundle(tmp_path / "b")
    with pytest.raises(OutputError, match="is not a bundle folder"), \
            atomic_directory(bundle, kind=BUNDLE, force=True) as tmp:
        (tmp / "bundle.json").write_text("{}")
        (bundle / "bundle.json").unlink()
        (bundle / "recording.wav").write_bytes(b"RIFF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert sorted(p.name for p in bundle.iterdir()) == ["decoder.onnx", "recording.wav"]


# ------------------------------------------------------------------------ the commands of issue #30, item 1
def test_dataset_audio_force_never_replaces_its_own_recordings(tmp_path):
    recs = recordings(tmp_path / "recs")
    before = tree(recs)
    r = melsynth("dataset", "audio", recs, "--out", recs, "--force")
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"melsynth: error: {recs}: is {recs}, an input of this command; name another output"
    assert tree(recs) == before and sorted(p.name for p in tmp_path.iterdir()) == ["recs"]
    # Nor a folder holding them, nor a folder of something else.
    r = melsynth("dataset", "audio", recs, "--out", tmp_path, "--force")
    assert r.returncode == 1 and "holds" in r.stderr and "an input of this command" in r.stderr
    other = recordings(tmp_path / "other")
    r = melsynth("dataset", "audio", recs, "--out", other, "--force")
    assert r.returncode == 1 and "is not an NSynth-format dataset folder melsynth wrote" in r.stderr
    assert tree(recs) == before and (other / "notes.txt").read_text() == "the only copy"


def test_an_output_folder_never_lies_inside_an_input_folder(tmp_path):
    """`dataset audio recs --out recs/data` once wrote its dataset among the recordings, and the next run
    (with --force) read that dataset's notes back as recordings: an output inside an input is refused."""
    recs = recordings(tmp_path / "recs")
    before = tree(recs)
    r = melsynth("dataset", "audio", recs, "--out", recs / "data")
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == (f"melsynth: error: {recs / 'data'}: is inside {recs}, an input of this command; "
                                "name a folder outside it")
    assert tree(recs) == before
    with pytest.raises(OutputError, match="is inside"):  # however it is spelled
        check_output_folder(recs / "x" / ".." / "data" / "deeper", kind=NSYNTH_DATASET, force=True,
                            inputs=[tmp_path / "." / "recs"])


def test_dataset_features_force_never_replaces_the_dataset_it_reads(tmp_path):
    from training.datasets.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(out=tmp_path / "D", instruments=1)
    before = tree(data)
    r = melsynth("dataset", "features", data, "--out", data, "--force", "--workers", "1")
    assert r.returncode == 1 and f"{data}: is {data}, an input of this command" in r.stderr, r.stderr
    assert tree(data) == before
    # A dataset is an output of `dataset synthetic`: --force replaces it there, and only there.
    r = melsynth("dataset", "synthetic", "--out", data, "--instruments", "1", "--force")
    assert r.returncode == 0, r.stderr
    assert NSYNTH_DATASET.recognises(data)


def test_export_force_never_replaces_its_run_nor_a_folder_of_bundles(tmp_path):
    from export.bundle_writer import export_run

    run = fake_run(tmp_path / "runs" / "r")
    presets = tmp_path / "presets"
    fake_bundle(presets / "default")
    fake_bundle(presets / "strings")
    before = tree(tmp_path)
    with pytest.raises(OutputError, match=r"r: is .*runs/r, an input of this command"):
        export_run(run, run, force=True, log=lambda s: None)
    with pytest.raises(OutputError, match=r"presets: holds 2 bundle folders \(default, strings\) and is not one; "
                                          r"name the bundle folder to write \(e.g. .*presets/default\)"):
        export_run(run, presets, force=True, log=lambda s: None)
    assert tree(tmp_path) == before


def test_train_force_never_replaces_its_features_nor_another_folder(tmp_path):
    from training_fixtures import small_config, synthetic_notes, write_features

    from training.fit import FitOptions, fit

    features = write_features(tmp_path / "features", synthetic_notes(10))
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "draft.txt").write_text("keep")
    run = fake_run(tmp_path / "run")
    before = tree(tmp_path)
    with pytest.raises(OutputError, match="features: is .*features, an input of this command"):
        fit(features=features, config=small_config(), out=features,
            options=FitOptions(force=True, verbose=0))
    with pytest.raises(OutputError, match="notes: exists and is not a training run folder melsynth wrote"):
        fit(features=features, config=small_config(), out=notes, options=FitOptions(force=True, verbose=0))
    with pytest.raises(OutputError, match=r"already exists \(resume it \(--resume\) or replace it \(--force\)\)"):
        fit(features=features, config=small_config(), out=run, options=FitOptions(verbose=0))
    assert tree(tmp_path) == before


# ------------------------------------------------------------------------------- the file rule (items 2, 3)
def special_files(folder: Path) -> dict[str, Path]:
    """A symlink to a file, a FIFO and (as root) a character device: what --force never replaces."""
    (folder / "target.json").write_text("precious")
    made = {"link": folder / "link.json", "fifo": folder / "fifo.json"}
    made["link"].symlink_to(folder / "target.json")
    os.mkfifo(made["fifo"])
    try:
        os.mknod(folder / "device.json", 0o600 | 0o020000, os.makedev(1, 3))  # a copy of /dev/null
        made["device"] = folder / "device.json"
    except (PermissionError, OSError):
        pass  # not root, or no CAP_MKNOD: the FIFO stands for every special file
    return made


def test_an_output_file_replaces_only_a_regular_file_and_only_with_force(tmp_path):
    made = special_files(tmp_path)
    for name, path in made.items():
        with pytest.raises(OutputError, match="symbolic link" if name == "link" else "device, FIFO or socket"):
            check_output_file(path, force=True, what="the OSC log")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(OutputError, match="the OSC log .*dir.json: is a folder"):
        check_output_file(tmp_path / "dir.json", force=True, what="the OSC log")
    with pytest.raises(OutputError, match=r"target.json already exists \(use --force to replace it\)"):
        check_output_file(tmp_path / "target.json", force=False)
    assert check_output_file(tmp_path / "target.json", force=True) == tmp_path / "target.json"
    from synth.render.wav import check_output_path  # render --out: the same rule

    (tmp_path / "take.wav").symlink_to(tmp_path / "target.json")
    with pytest.raises(OutputError, match="take.wav: is a symbolic link"):
        check_output_path(tmp_path / "take.wav", force=True)
    with pytest.raises(OutputError, match="already exists"):
        atomic_write_text(tmp_path / "target.json", "new", force=False)
    # Checked again at the rename: what appeared under the name while the file was written is kept.
    with pytest.raises(OutputError, match="late.json already exists"), \
            atomic_path(tmp_path / "late.json", force=False) as tmp:
        tmp.write_text("new")
        (tmp_path / "late.json").write_text("appeared meanwhile")
    with pytest.raises(OutputError, match="late.json: is a symbolic link"), \
            atomic_path(tmp_path / "late.json", force=True) as tmp:
        tmp.write_text("new")
        (tmp_path / "late.json").unlink()
        (tmp_path / "late.json").symlink_to(tmp_path / "target.json")
    assert (tmp_path / "target.json").read_text() == "precious" and made["link"].is_symlink()
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_take_log_never_replaces_a_file_without_force_nor_a_special_file_with_it(tmp_path):
    from synth.control.take_log import TakeLog

    made = special_files(tmp_path)
    (tmp_path / "old.json").write_text("yesterday's take")
    with pytest.raises(OutputError, match=r"old.json already exists \(use --force"):
        TakeLog(tmp_path / "old.json", rate=48000)
    for path in made.values():
        with pytest.raises(OutputError):
            TakeLog(path, rate=48000, force=True)
    assert (tmp_path / "old.json").read_text() == "yesterday's take"
    assert made["link"].is_symlink() and (tmp_path / "target.json").read_text() == "precious"
    assert all(not p.is_file() for k, p in made.items() if k != "link")  # still a FIFO, still a device
    assert not list(tmp_path.glob(".*.tmp"))

    # With --force a regular file is replaced, and at the end of the take the rule is checked again: a link
    # put at the name during the take is left alone, and the entries are kept.
    log = TakeLog(tmp_path / "old.json", rate=100, force=True)
    log.add(50, "/synth/note/on", [60, 100])
    (tmp_path / "old.json").unlink()
    (tmp_path / "old.json").symlink_to(tmp_path / "target.json")
    with pytest.raises(ParameterError, match=r"cannot write the OSC log .*old.json: is a symbolic link.*1 entries "
                                             r"are kept"):
        log.write()
    assert (tmp_path / "target.json").read_text() == "precious" and log.lines_path.exists()


def _kept_take(error: str, why: str) -> Path:
    """The temporary file a refused take was kept in, from the recorder's error (which must say ``why``)."""
    import re

    m = re.search(rf"{why}[^\n]*; the take is kept in ([^\n]+)", error)
    assert m, error
    return Path(m.group(1))


def test_the_recording_is_checked_again_when_the_take_ends_and_kept_when_refused(tmp_path):
    """The recording's rename at the end of a take follows the rule of every published output: a file, a link,
    a FIFO or a device put at its name while it played is left alone, and the take is kept under its
    temporary name, which the error gives (the rename once replaced whatever held the name by then)."""
    from synth.host.recorder import Recorder
    from synth.render.wav import open_wav

    made = special_files(tmp_path)
    block = np.linspace(-0.5, 0.5, 4800, dtype=np.float32)
    rec = Recorder(tmp_path / "take.wav", rate=48000)
    rec.put(block)
    (tmp_path / "take.wav").write_bytes(b"appeared meanwhile")
    assert rec.close() is None
    assert (tmp_path / "take.wav").read_bytes() == b"appeared meanwhile"
    kept = _kept_take(rec.error, r"take\.wav already exists \(use --force to replace it\)")
    audio, rate = sf.read(kept, dtype="float32")
    assert rate == 48000 and np.array_equal(audio, block)  # the whole take, not a byte lost
    for name, special in made.items():  # with --force, still only a regular file
        path = tmp_path / f"{name}.wav"
        rec = Recorder(path, rate=48000, force=True)
        rec.put(block)
        os.replace(special, path)  # the link (FIFO, device) moved to the take's name while it played
        assert rec.close() is None
        kept = _kept_take(rec.error, "symbolic link" if name == "link" else "device, FIFO or socket")
        assert np.array_equal(sf.read(kept, dtype="float32")[0], block)
        assert path.is_symlink() if name == "link" else not path.is_file()
    assert (tmp_path / "target.json").read_text() == "precious"
    # What --force may replace it still replaces, at the end as at the start.
    (tmp_path / "old.wav").write_bytes(b"yesterday's take")
    rec = Recorder(tmp_path / "old.wav", rate=48000, force=True)
    rec.put(block)
    assert rec.close() == tmp_path / "old.wav" and rec.error == ""
    assert np.array_equal(sf.read(tmp_path / "old.wav", dtype="float32")[0], block)
    # render --out: the same rule at its rename (a score render takes minutes).
    with pytest.raises(OutputError, match="late.wav already exists"), \
            open_wav(tmp_path / "late.wav", rate=48000, force=False) as writer:
        writer.write(block)
        (tmp_path / "late.wav").write_bytes(b"appeared meanwhile")
    assert (tmp_path / "late.wav").read_bytes() == b"appeared meanwhile"


def test_render_keeps_its_file_when_the_rename_is_refused_and_says_where(tmp_path):
    """render --out at its rename, as the recording at the end of a take: what holds the name by then is left
    alone, and the rendered file is kept under its temporary name, which the error gives (it was deleted: a
    score render of minutes lost, where docs/RELIABILITY.md promises nothing lost)."""
    import re

    from synth.render.wav import open_wav

    def kept(error: OutputError, why: str) -> Path:
        m = re.search(rf"{why}[^\n]*; what was written is kept in ([^\n]+)$", str(error))
        assert m, str(error)
        return Path(m.group(1))

    block = np.linspace(-0.5, 0.5, 4800, dtype=np.float32)
    with pytest.raises(OutputError) as refused, \
            open_wav(tmp_path / "late.wav", rate=48000, fmt="float", force=False) as w:
        w.write(block)
        (tmp_path / "late.wav").write_bytes(b"appeared meanwhile")
    assert (tmp_path / "late.wav").read_bytes() == b"appeared meanwhile"
    audio, rate = sf.read(kept(refused.value, r"late\.wav already exists \(use --force to replace it\)"),
                          dtype="float32")
    assert rate == 48000 and np.array_equal(audio, block)
    # With --force, a link put at the name meanwhile: still never replaced, and the render still kept.
    (tmp_path / "target.wav").write_bytes(b"precious")
    with pytest.raises(OutputError) as refused, \
            open_wav(tmp_path / "linked.wav", rate=48000, fmt="float", force=True) as w:
        w.write(block)
        (tmp_path / "linked.wav").symlink_to(tmp_path / "target.wav")
    assert np.array_equal(sf.read(kept(refused.value, "symbolic link"), dtype="float32")[0], block)
    assert (tmp_path / "target.wav").read_bytes() == b"precious"
    # What fails while rendering leaves nothing behind: there is no finished file to keep.
    before = set(tmp_path.iterdir())
    with pytest.raises(RuntimeError), open_wav(tmp_path / "broken.wav", rate=48000, force=False) as w:
        w.write(block)
        raise RuntimeError("the score failed halfway")
    assert set(tmp_path.iterdir()) == before


# ----------------------------------------------------------------------------------------- serve (item 3)
@pytest.fixture(scope="module")
def bundle_path():
    from engine_fixtures import synthetic_bundle_path

    return synthetic_bundle_path()


def serve(bundle_path, *args, cwd=REPO):
    return melsynth("serve", "--bundle", bundle_path, "--output", "null", "--port", "0", "--voices", "1",
                    "--duration", "0.5", *args, cwd=cwd, timeout=120)


def test_serve_refuses_a_take_file_it_may_not_replace_before_the_engine_starts(tmp_path, bundle_path):
    take = tmp_path / "take.wav"
    take.write_bytes(b"RIFF yesterday's take")
    (tmp_path / "dir.wav").mkdir()
    cases = [
        (["--record", take], f"the recording {take} already exists (use --force to replace it)"),
        (["--log-osc", take], f"the OSC log {take} already exists (use --force to replace it)"),
        (["--record", tmp_path / "new.wav", "--log-osc", tmp_path / "new.wav"],
         f"--record {tmp_path / 'new.wav'} and --log-osc {tmp_path / 'new.wav'} are the same file"),
        (["--record", take, "--log-osc", tmp_path / "." / "take.wav", "--force"], "are the same file"),
        (["--record", tmp_path / "dir.wav", "--force"], f"the recording {tmp_path / 'dir.wav'}: is a folder"),
        (["--log-osc", Path(bundle_path) / "bundle.json", "--force"], "bundle.json: is a file of"),
        # Neither take file is given a folder that does not exist (the log once made it, the recording refused).
        (["--log-osc", tmp_path / "typo" / "x.json"],
         f"cannot write the OSC log {tmp_path / 'typo' / 'x.json'}: no such folder {tmp_path / 'typo'}"),
        (["--record", tmp_path / "typo" / "x.wav"],
         f"cannot write the recording {tmp_path / 'typo' / 'x.wav'}: no such folder {tmp_path / 'typo'}"),
    ]
    for args, message in cases:
        r = serve(bundle_path, *args)
        assert r.returncode == 1 and message in r.stderr, (args, r.stderr)
        assert "melsynth: played" not in r.stdout and "listening" not in r.stdout, (args, r.stdout)
    assert take.read_bytes() == b"RIFF yesterday's take"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.wav", "take.wav"]
    # --force replaces a take that is a regular file.
    r = serve(bundle_path, "--record", take, "--force")
    assert r.returncode == 0, r.stderr
    assert sf.info(take).samplerate == 48000


def test_serve_leaves_a_link_put_at_its_recording_alone_and_says_where_the_take_is(tmp_path, bundle_path):
    """A symlink made at --record's name while serve played: the take ends in exit 1 naming the link and the
    file the take is kept in; the link and what it points at are as they were."""
    take, victim = tmp_path / "take.wav", tmp_path / "victim.txt"
    victim.write_text("precious")
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(bundle_path), "--output", "null", "--port",
         "0", "--voices", "1", "--duration", "2", "--record", str(take)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        for line in proc.stdout:  # the start line: the engine plays and the recording is open
            if line.startswith("melsynth: output"):
                break
        take.symlink_to(victim)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    kept = _kept_take(err, f"the recording {take}: is a symbolic link")
    assert "Traceback" not in err and f"recorded {take}" not in out
    assert take.is_symlink() and victim.read_text() == "precious"
    assert sf.info(kept).duration > 1.0  # the take, whole


def test_a_headless_serve_records_to_a_new_file_each_run(tmp_path, monkeypatch):
    # `make run` on a machine without a sound card once replaced the previous run's take every time.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "20261202-153000")
    old = tmp_path / "melsynth-take-20261202-153000.wav"
    old.write_bytes(b"the previous take")
    from synth.host import output

    def no_device(device):
        from synth.errors import AudioDeviceError

        raise AudioDeviceError("no audio output device")

    monkeypatch.setattr(output, "resolve_device", no_device)
    choice = output.choose_output("auto", device=None, record=None)
    assert (choice.kind, choice.record) == ("null", "melsynth-take-20261202-153000-2.wav")
    assert choice.fallback == "no audio output device"
    Path(choice.record).write_bytes(b"b")
    assert output.choose_output("auto", device=None, record=None).record == "melsynth-take-20261202-153000-3.wav"
    assert old.read_bytes() == b"the previous take"


@pytest.mark.parametrize("argv, message", [
    (["serve", "--bundle", "presets/default", "--duration", "1e10", "--output", "null", "--port", "0"],
     "--duration: must be at most"),
    (["dataset", "features", "{tmp}/x", "--out", "{tmp}/y", "--workers", "-1"], "--workers: must be at least 1"),
    (["dataset", "soundfont", "--out", "{tmp}/y", "--workers", "0", "--programs", "0"],
     "--workers: must be at least 1"),
])
def test_out_of_range_settings_are_named_before_anything_runs(tmp_path, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "synth.cli", *argv], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "y").exists()


def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path):
    """An unwritable --out once ended dataset features and train in an OSError traceback, and export after
    37 s of work; now every folder output is probed first, and a writable one is left untouched."""
    from synth.outputs import BUNDLE, check_output_folder

    with pytest.raises(OutputError, match="/proc/melsynth-nonexistent/out: cannot be written: /proc"):
        check_output_folder("/proc/melsynth-nonexistent/out", kind=BUNDLE, force=False)
    assert check_output_folder(tmp_path / "a" / "b", kind=BUNDLE, force=False) == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    r = melsynth("export", "--run", str(tmp_path / "no-run"), "--out", "/proc/melsynth-nonexistent/b")
    assert r.returncode == 1 and "cannot be written" in r.stderr and "Traceback" not in r.stderr


def test_sigterm_ends_a_command_as_ctrl_c_does(tmp_path):
    """kill / timeout / systemd / docker stop: once left dataset features' workers running under PID 1 and
    hidden partial outputs behind. Now: 'interrupted', exit 130, no worker left, no partial output."""
    import signal
    import time

    data = tmp_path / "data"
    assert melsynth("dataset", "synthetic", "--out", data, "--instruments", "40").returncode == 0
    out = tmp_path / "features"
    proc = subprocess.Popen([sys.executable, "-m", "synth.cli", "dataset", "features", str(data), "--out", str(out),
                             "--workers", "2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name.startswith(".features.") for p in tmp_path.iterdir()):
        time.sleep(0.1)  # until the work has begun (its hidden folder exists)
    time.sleep(1.0)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "melsynth: interrupted" in err and "Traceback" not in err
    assert children, "the command had no worker processes to check"
    time.sleep(0.5)
    alive = [pid for pid in children if os.path.exists(f"/proc/{pid}")]
    assert alive == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
