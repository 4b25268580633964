"""Training faults: a `melsynth train` process killed (SIGKILL) in the middle of an epoch resumes with
``--resume`` and ends with exactly the weights of an uninterrupted run; a corrupt features file stops
`melsynth train` with a clear error before anything is written.

tests/test_fit.py covers what a kill leaves behind (a half-written checkpoint, a "running" status) and corrupt
checkpoints; this file kills a real process at a random point of a real epoch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import SMALL_PARAMS, small_config, synthetic_notes, write_features

keras = pytest.importorskip("keras")
from training.fit import FitOptions, fit  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
N_NOTES = 200  # 120 training notes, batch 8: 15 steps an epoch, long enough to be killed inside one
EPOCHS = 2
CONFIG = small_config("dropout_ED", max_epochs=EPOCHS, patience=50)


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    return write_features(tmp_path_factory.mktemp("features") / "feat", synthetic_notes(N_NOTES, seed=11))


def _weights(path: Path) -> list[np.ndarray]:
    from training.model.families import build_models

    autoencoder, _, _ = build_models(CONFIG, params=SMALL_PARAMS)
    autoencoder.load_weights(path)
    return autoencoder.get_weights()


def _epochs_done(run: Path) -> int:
    try:
        return int(json.loads((run / "status.json").read_text())["epochs_done"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(features, tmp_path):
    config = tmp_path / "config.json"
    CONFIG.save(config)
    killed = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth.cli", "train", "--data", str(features), "--config", str(config),
         "--out", str(killed), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
    )
    try:
        # Wait until the first epoch is recorded as done, then kill during the second epoch.
        deadline = time.monotonic() + 240
        while _epochs_done(killed) < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert _epochs_done(killed) == 1, proc.stdout.read() if proc.poll() is not None else "epoch 1 not done in time"
        time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    status = json.loads((killed / "status.json").read_text())
    # Killed inside epoch 2: one epoch finished, the second's checkpoint never made it.
    assert status["epochs_done"] == 1, status
    assert not (killed / "checkpoints" / "epoch-0002").exists()

    # The resume runs in this process (`melsynth train --resume` calls the same fit(resume=True)).
    fit(features=features, config=None, out=killed, options=FitOptions(resume=True, verbose=0))
    whole = fit(features=features, config=CONFIG, out=tmp_path / "whole", options=FitOptions(verbose=0))

    assert json.loads((killed / "status.json").read_text())["epochs_done"] == EPOCHS
    for name in ("best.weights.h5", f"checkpoints/epoch-{EPOCHS:04d}/weights.weights.h5"):
        for a, b in zip(_weights(whole / name), _weights(killed / name), strict=True):
            np.testing.assert_array_equal(a, b)
    h_whole = [ln.split(",")[:3] for ln in (whole / "history.csv").read_text().splitlines()]
    h_killed = [ln.split(",")[:3] for ln in (killed / "history.csv").read_text().splitlines()]
    assert h_whole == h_killed


def test_corrupt_features_file_stops_training_with_a_clear_error(features, tmp_path, capsys):
    from synth.cli import main

    bad = tmp_path / "feat"
    bad.mkdir()
    for f in features.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    data = bytearray((bad / "features.npy").read_bytes())
    data[-100] ^= 0x01  # one bit of one value
    (bad / "features.npy").write_bytes(bytes(data))
    config = tmp_path / "config.json"
    CONFIG.save(config)
    code = main(["train", "--data", str(bad), "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "features.npy: checksum mismatch" in err, err
    assert not (tmp_path / "run").exists()


def test_a_disk_that_fills_under_training_says_so_and_the_run_resumes(features, tmp_path, monkeypatch):
    """A checkpoint that runs out of space: an OutputError naming the full disk and the checkpoint kept; no
    half-written checkpoint; --resume goes on. A new run that fills the disk before its first checkpoint
    leaves nothing."""
    import errno

    from synth.errors import OutputError
    from training.fit import FitOptions, fit
    from training.fit import checkpoints as checkpoints_module

    real = checkpoints_module.np.savez
    calls = {"n": 0, "fail_at": 2}

    def fills(path, **arrays):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            Path(path).write_bytes(b"PK half")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, **arrays)

    monkeypatch.setattr(checkpoints_module.np, "savez", fills)
    config = small_config("no_dense", max_epochs=3, patience=50)
    run = tmp_path / "run"
    with pytest.raises(OutputError, match=r"run: the disk is full .*No space left.* keeps its last checkpoint "
                                          r"\(epoch-0001\): free some space and go on with --resume"):
        fit(features=features, config=config, out=run, options=FitOptions(verbose=0))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0001"]
    monkeypatch.setattr(checkpoints_module.np, "savez", real)
    fit(features=features, config=None, out=run, options=FitOptions(verbose=0, resume=True))
    assert json.loads((run / "status.json").read_text())["epochs_done"] == 3

    calls.update(n=0, fail_at=1)
    monkeypatch.setattr(checkpoints_module.np, "savez", fills)
    with pytest.raises(OutputError, match="new: the disk is full .*nothing of the run is kept"):
        fit(features=features, config=config, out=tmp_path / "new", options=FitOptions(verbose=0))
    assert not (tmp_path / "new").exists()
