"""Fitting: the run folder, exact resume, early stopping, corrupt checkpoints, bad input, the distributed path."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import (
    LEGACY_FLAT_PATCH,
    SMALL_PARAMS,
    flat_form,
    small_config,
    synthetic_notes,
    write_features,
)

from synth.errors import ContractError, DataError, ParameterError
from synth.spectrogram import SpectrogramParams

keras = pytest.importorskip("keras")
from training.fit import FitOptions, fit, latest_checkpoint  # noqa: E402
from training.run import load_run  # noqa: E402

# Eager Keras: tracing a new model costs ~10 s per fit on the busy 2-core machine, the tiny eager steps far
# less. The graph (XLA) path is covered by the train-command and distributed tests.
EAGER = True
N_NOTES = 20  # 12 train / 4 valid / 4 test; batch 8 -> a full and a partial batch per epoch


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    return write_features(tmp_path_factory.mktemp("features") / "feat", synthetic_notes(N_NOTES))


# Dropout makes the resume test check that the dropout RNG resumes too; patience never fires in 2 epochs.
RUN_CONFIG = small_config("dropout_ED", max_epochs=2, patience=50)


@pytest.fixture(scope="module")
def finished_run(features, tmp_path_factory) -> Path:
    """An uninterrupted 2-epoch run (each fit traces a new model, so the tests share this one)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    return fit(features=features, config=RUN_CONFIG, out=out,
               options=FitOptions(verbose=0, run_eagerly=EAGER))


def _weights(path: Path, config) -> list[np.ndarray]:
    from training.model.families import build_models

    autoencoder, _, _ = build_models(config, params=SMALL_PARAMS)
    autoencoder.load_weights(path)
    return autoencoder.get_weights()


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- the run folder
def test_run_folder_contents(finished_run, features):
    files = _tree(finished_run)
    for name in ("config.json", "history.csv", "best.weights.h5", "status.json"):
        assert name in files
    doc = json.loads(files["config.json"])
    assert doc["config"] == RUN_CONFIG.to_dict()
    assert doc["spectrogram"] == SMALL_PARAMS.to_dict()
    assert doc["data"]["notes"] == N_NOTES and doc["fit"]["train_notes"] == 12
    history = files["history.csv"].decode().splitlines()
    assert history[0] == "epoch,loss,val_loss,seconds,learning_rate" and len(history) == 3
    assert [float(row.split(",")[4]) for row in history[1:]] == pytest.approx([RUN_CONFIG.schedule.learning_rate] * 2)
    status = json.loads(files["status.json"])
    assert status["epochs_done"] == 2 and status["stopped"] == "max_epochs"
    assert status["best_epoch"] in (1, 2)
    assert sorted(p.name for p in (finished_run / "checkpoints").iterdir()) == ["epoch-0002"]  # once stopped

    run = load_run(finished_run)
    assert run.config == RUN_CONFIG and run.params == SMALL_PARAMS
    autoencoder, encoder, decoder = run.models()
    # The best weights are exactly the weights the run restored.
    for a, b in zip(autoencoder.get_weights(), _weights(finished_run / "best.weights.h5", run.config), strict=True):
        np.testing.assert_array_equal(a, b)
    x = synthetic_notes(2, seed=5)
    np.testing.assert_array_equal(np.asarray(autoencoder(x)), np.asarray(decoder(encoder(x))))
    try:
        import synth.metrics  # noqa: F401
    except ImportError:
        return
    metrics = json.loads(files["metrics.json"])
    assert {"rmse", "ssim", "precision", "recall", "f1", "notes"} <= set(metrics)
    assert metrics["notes"] == 4


# ---------------------------------------------------------------------------------------------- resume
def test_resume_after_a_kill_ends_with_the_same_weights(finished_run, features, tmp_path):
    whole = finished_run
    part = fit(features=features, config=RUN_CONFIG, out=tmp_path / "part",
               options=FitOptions(max_epochs=1, verbose=0, run_eagerly=EAGER))
    # What a kill during epoch 2 leaves behind: a half-written checkpoint folder and a "running" status.
    (part / "checkpoints" / ".epoch-0002.abc.tmp").mkdir()
    (part / "checkpoints" / ".epoch-0002.abc.tmp" / "weights.weights.h5").write_bytes(b"partial")
    status = json.loads((part / "status.json").read_text())
    (part / "status.json").write_text(json.dumps(dict(status, stopped="running")))
    fit(features=features, config=None, out=part,
        options=FitOptions(resume=True, max_epochs=2, verbose=0, run_eagerly=EAGER))

    for name in ("best.weights.h5", "checkpoints/epoch-0002/weights.weights.h5"):
        for a, b in zip(_weights(whole / name, RUN_CONFIG), _weights(part / name, RUN_CONFIG), strict=True):
            np.testing.assert_array_equal(a, b)
    ckpt = "checkpoints/epoch-0002/optimizer.npz"
    with np.load(whole / ckpt) as a, np.load(part / ckpt) as b:
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    assert (whole / "history.csv").read_text().splitlines()[2].split(",")[:3] == \
        (part / "history.csv").read_text().splitlines()[2].split(",")[:3]
    assert json.loads((part / "status.json").read_text())["epochs_done"] == 2
    assert sorted(p.name for p in (part / "checkpoints").iterdir()) == ["epoch-0002"]  # the kill's leftover gone


def test_early_stopping_and_limit(features, tmp_path):
    # A learning rate so small that Adam's steps vanish in float32: the validation loss never improves.
    config = small_config(learning_rate=1e-30, patience=2, max_epochs=10)
    out = fit(features=features, config=config, out=tmp_path / "r",
              options=FitOptions(limit=5, verbose=0, run_eagerly=EAGER))
    assert json.loads((out / "config.json").read_text())["fit"]["train_notes"] == 5
    status = json.loads((out / "status.json").read_text())
    assert (status["stopped"], status["epochs_done"], status["best_epoch"]) == ("early_stopping", 3, 1)
    # Resuming a run that stopped early does not train further.
    fit(features=features, config=None, out=out,
        options=FitOptions(resume=True, verbose=0, run_eagerly=EAGER))
    assert json.loads((out / "status.json").read_text())["epochs_done"] == 3


def _rates(run: Path) -> list[float]:
    return [float(row.split(",")[4]) for row in (run / "history.csv").read_text().splitlines()[1:]]


def test_learning_rate_is_reduced_on_plateau_then_the_run_stops(features, tmp_path):
    # Never improves after epoch 1 (see above): epochs 2 and 3 each halve the rate, epoch 4 stops the run.
    config = small_config(learning_rate=1e-30, lr_patience=1, lr_factor=0.5, patience=3, max_epochs=10)
    out = fit(features=features, config=config, out=tmp_path / "r",
              options=FitOptions(verbose=0, run_eagerly=EAGER))
    status = json.loads((out / "status.json").read_text())
    assert (status["stopped"], status["epochs_done"]) == ("early_stopping", 4)
    assert _rates(out) == pytest.approx([1e-30, 1e-30, 5e-31, 2.5e-31], rel=1e-6)
    # The reduced rate is optimizer state, so the checkpoint carries it (no reduction on the stopping epoch).
    with np.load(latest_checkpoint(out) / "optimizer.npz") as opt:
        assert any(a.shape == () and np.isclose(a, 2.5e-31, rtol=1e-6, atol=0) for a in opt.values())


def test_improvements_below_min_delta_do_not_reset_the_patience(features, tmp_path):
    # Any change a slow rate makes is far below 50 %: the run stops after `patience` epochs, although its best
    # epoch may be a later one (the best weights follow any improvement).
    config = small_config(learning_rate=1e-5, min_delta=0.5, patience=2, max_epochs=10)
    out = fit(features=features, config=config, out=tmp_path / "r",
              options=FitOptions(verbose=0, run_eagerly=EAGER))
    status = json.loads((out / "status.json").read_text())
    assert (status["stopped"], status["epochs_done"]) == ("early_stopping", 3)
    history = [float(row.split(",")[2]) for row in (out / "history.csv").read_text().splitlines()[1:]]
    assert status["best_epoch"] == 1 + int(np.argmin(history))


def test_patience_counts_from_the_last_significant_improvement_not_the_latest_tiny_one():
    # A validation loss falling 0.15 % an epoch under min_delta 0.2 %: every second epoch is 0.3 % below the
    # loss that last reset the patience, so the run goes on, and every epoch is the best one so far.
    from training.fit.stopping import Stop, StoppingRule, StoppingState

    rule = StoppingRule.from_schedule(small_config(min_delta=0.002, patience=3, lr_patience=0, max_epochs=100).schedule)
    state = StoppingState()
    for epoch in range(1, 41):
        verdict = rule.judge(state, loss=1.0, val_loss=0.9985**epoch, learning_rate=1e-3)
        state = verdict.state
        assert verdict.stop is Stop.RUNNING and verdict.improved, (epoch, state)
    assert state.best_epoch == 40 and state.wait <= 1
    # A checkpoint from before the reference was kept resumes against its best loss.
    old = StoppingState.from_doc({"epochs_done": 5, "best_val_loss": 1.0, "best_epoch": 5, "wait": 0})
    verdict = rule.judge(old, loss=1.0, val_loss=0.9999, learning_rate=1e-3)
    assert (verdict.stop, verdict.improved, verdict.state.wait) == (Stop.RUNNING, True, 1)


def test_resume_may_change_the_schedule_but_not_the_model(features, tmp_path):
    config = small_config(learning_rate=1e-30, max_epochs=1, patience=50)
    out = fit(features=features, config=config, out=tmp_path / "r",
              options=FitOptions(verbose=0, run_eagerly=EAGER))
    fit(features=features, config=None, out=out,
        options=FitOptions(resume=True, verbose=0, run_eagerly=EAGER, max_epochs=2,
                           schedule={"learning_rate": 1e-3, "lr_patience": 2}))
    assert _rates(out) == pytest.approx([1e-30, 1e-3], rel=1e-6)
    saved = json.loads((out / "config.json").read_text())["config"]["schedule"]
    assert (saved["learning_rate"], saved["lr_patience"], saved["max_epochs"]) == (1e-3, 2, 2)
    before = _tree(out)
    with pytest.raises(ParameterError, match="unknown keys \\['filters'\\]"):
        fit(features=features, config=None, out=out,
            options=FitOptions(resume=True, schedule={"filters": [4]}, verbose=0))
    with pytest.raises(ParameterError, match="lr_factor must be a number in"):
        fit(features=features, config=None, out=out,
            options=FitOptions(resume=True, schedule={"lr_factor": 1.5}, verbose=0))
    assert _tree(out) == before


@pytest.mark.parametrize("nested_schedule", [True, False], ids=["flat-architecture", "all-flat"])
def test_a_run_folder_written_before_the_nesting_loads_and_resumes(finished_run, features, tmp_path,
                                                                   nested_schedule):
    """config.json as runs before each family owned its settings wrote it (one flat object of every family's
    fields, the schedule nested), and as runs before the schedule split wrote it (all flat): the run loads as
    its config and resumes to the uninterrupted run's weights, bit for bit."""
    part = fit(features=features, config=RUN_CONFIG, out=tmp_path / "part",
               options=FitOptions(max_epochs=1, verbose=0, run_eagerly=EAGER))
    doc = json.loads((part / "config.json").read_text())
    flat = flat_form(RUN_CONFIG.with_schedule(max_epochs=1), nested_schedule=nested_schedule)
    assert nested_schedule or set(flat) == set(LEGACY_FLAT_PATCH)
    (part / "config.json").write_text(json.dumps(dict(doc, config=flat), indent=2))
    assert load_run(part).config == RUN_CONFIG.with_schedule(max_epochs=1)
    fit(features=features, config=None, out=part,
        options=FitOptions(resume=True, max_epochs=2, verbose=0, run_eagerly=EAGER))
    # The same weights as the uninterrupted run; config.json now records today's form.
    for a, b in zip(_weights(finished_run / "best.weights.h5", RUN_CONFIG),
                    _weights(part / "best.weights.h5", RUN_CONFIG), strict=True):
        np.testing.assert_array_equal(a, b)
    assert json.loads((part / "config.json").read_text())["config"] == RUN_CONFIG.to_dict()


# ---------------------------------------------------------------------------------------------- corruption
def test_corrupt_checkpoint_is_detected(finished_run, features, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    weights = latest_checkpoint(run) / "weights.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    before = _tree(run)
    with pytest.raises(DataError, match="weights.weights.h5 fails its SHA-256 check"):
        fit(features=features, config=None, out=run,
            options=FitOptions(resume=True, max_epochs=3, verbose=0, run_eagerly=EAGER))
    assert _tree(run) == before


def test_corrupt_or_missing_run_is_detected(finished_run, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    best = run / "best.weights.h5"
    # Killed after a new best was copied but before status.json named it: the newest checkpoint names it,
    # and the run opens (for evaluate and export) without a resume.
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps(dict(status, best_weights_sha256="0" * 64)))
    load_run(run).models()
    best.write_bytes(best.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DataError, match="SHA-256"):
        load_run(run).models()
    with pytest.raises(DataError, match="no such run folder"):
        load_run(tmp_path / "nothing")
    (run / "config.json").write_text("{")
    with pytest.raises(DataError, match="not a readable JSON"):
        load_run(run)


# ---------------------------------------------------------------------------------------------- bad input
def test_existing_run_folder_is_not_overwritten(finished_run, features, tmp_path):
    before = _tree(finished_run)
    with pytest.raises(ParameterError, match="already exists"):
        fit(features=features, config=small_config(), out=finished_run,
            options=FitOptions(verbose=0, run_eagerly=EAGER))
    with pytest.raises(ParameterError, match="exclude each other"):
        fit(features=features, config=small_config(), out=finished_run,
            options=FitOptions(resume=True, force=True, verbose=0, run_eagerly=EAGER))
    with pytest.raises(ParameterError, match="differs from the run's own config"):
        fit(features=features, config=small_config(seed=3), out=finished_run,
            options=FitOptions(resume=True, verbose=0, run_eagerly=EAGER))
    assert _tree(finished_run) == before


def test_features_of_another_contract_are_refused_on_resume(finished_run, tmp_path):
    other = SpectrogramParams(n_mels=64, frames=64, db_min=-90.0)
    feats = write_features(tmp_path / "other", synthetic_notes(N_NOTES), params=other)
    before = _tree(finished_run)
    with pytest.raises(ContractError, match="db_min"):
        fit(features=feats, config=None, out=finished_run,
            options=FitOptions(resume=True, max_epochs=3, verbose=0, run_eagerly=EAGER))
    assert _tree(finished_run) == before


@pytest.mark.parametrize("problem", ["nan", "indivisible", "empty_split", "mixed_precision_on_cpu"])
def test_bad_input_is_refused_before_anything_is_written(problem, tmp_path, monkeypatch):
    x = synthetic_notes(N_NOTES)
    kwargs: dict = {}
    if problem == "nan":
        x[3, 5, 7] = np.nan
        feats, error, match = write_features(tmp_path / "f", x), DataError, "NaN"
    elif problem == "indivisible":
        params = SpectrogramParams(n_mels=64, frames=96)
        feats = write_features(tmp_path / "f", synthetic_notes(N_NOTES, params=params), params=params)
        error, match = ParameterError, "frames=96 is not a multiple of 64"
    elif problem == "empty_split":
        splits = {"train": list(range(16)), "valid": [], "test": list(range(16, 20))}
        feats, error, match = write_features(tmp_path / "f", x, splits=splits), DataError, "'valid' split is empty"
    else:
        import tensorflow as tf

        import training.devices

        if tf.config.list_physical_devices("GPU"):
            pytest.skip("a GPU is visible")
        # a CPU without native bfloat16 cannot exist on a machine that has it: its flags are stood in
        monkeypatch.setattr(training.devices, "cpu_flags", lambda: frozenset({"fpu", "avx2"}))
        feats, error, match = write_features(tmp_path / "f", x), ParameterError, "needs native bfloat16"
        kwargs["mixed_precision"] = True
    with pytest.raises(error, match=match):
        fit(features=feats, config=small_config(), out=tmp_path / "run",
            options=FitOptions(verbose=0, run_eagerly=EAGER, **kwargs))
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(__import__("training.devices", fromlist=["x"]).why_no_bfloat16() != "",
                    reason="this CPU has no native bfloat16")
def test_mixed_precision_on_a_bfloat16_cpu_trains_records_its_policy_and_stays_on_resume(finished_run, features,
                                                                                        tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: mixed precision is float16 there")
    runs = {mixed: fit(features=features, config=small_config(max_epochs=1), out=tmp_path / f"mixed-{mixed}",
                       options=FitOptions(verbose=0, run_eagerly=EAGER, mixed_precision=mixed))
            for mixed in (False, True)}
    out = runs[True]
    doc = json.loads((out / "config.json").read_text())["fit"]
    assert (doc["mixed_precision"], doc["precision"]) == (True, "mixed_bfloat16")
    # the same seeded run computed in bfloat16: close to float32's loss, and not bitwise equal to it
    loss = {m: json.loads((r / "status.json").read_text())["best_val_loss"] for m, r in runs.items()}
    assert math.isfinite(loss[True]) and loss[True] != loss[False]
    assert loss[True] == pytest.approx(loss[False], rel=0.1)
    before = _tree(finished_run)  # a float32 run is not resumed in bfloat16, nor the other way round
    with pytest.raises(ParameterError, match="mixed_precision must match"):
        fit(features=features, config=None, out=finished_run,
            options=FitOptions(resume=True, max_epochs=3, verbose=0, run_eagerly=EAGER, mixed_precision=True))
    assert _tree(finished_run) == before
    # A run trained in float16 (on a GPU) does not resume in bfloat16 here.
    doc = json.loads((out / "config.json").read_text())
    doc["fit"]["precision"] = "mixed_float16"
    (out / "config.json").write_text(json.dumps(doc))
    before = _tree(out)
    with pytest.raises(ParameterError, match="would train in mixed_bfloat16, the run was trained in mixed_float16"):
        fit(features=features, config=None, out=out,
            options=FitOptions(resume=True, max_epochs=2, verbose=0, run_eagerly=EAGER, mixed_precision=True))
    assert _tree(out) == before


def test_train_command(features, tmp_path):
    from synth.cli import main

    config = tmp_path / "c.json"
    small_config(max_epochs=1).save(config)
    out = tmp_path / "run"
    args = ["train", "--data", str(features), "--config", str(config), "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert json.loads((out / "status.json").read_text())["epochs_done"] == 1
    assert main(args) == 1  # exists: needs --resume or --force
    resume = ["train", "--data", str(features), "--out", str(out), "--resume", "--quiet", "--max-epochs", "2"]
    assert main([*resume, "--learning-rate", "2e-4", "--lr-patience", "3", "--patience", "7"]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]["schedule"]
    assert (saved["learning_rate"], saved["lr_patience"], saved["patience"], saved["max_epochs"]) == (2e-4, 3, 7, 2)
    assert _rates(out)[1] == pytest.approx(2e-4, rel=1e-6)
    assert main(["train", "--data", str(features), "--variant", "nope", "--out", str(tmp_path / "x")]) == 1


# ---------------------------------------------------------------------------------------------- distributed
DISTRIBUTED = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[3])
    from training_fixtures import small_config
    from training.fit import FitOptions, fit
    from training.run import load_run
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = fit(features=sys.argv[1], config=small_config(max_epochs=2), out=sys.argv[2], strategy=strategy,
              options=FitOptions(verbose=0))
    doc = json.loads((out / "config.json").read_text())
    status = json.loads((out / "status.json").read_text())
    autoencoder, encoder, decoder = load_run(out).models()
    print("RESULT", json.dumps({"replicas": doc["fit"]["replicas"], "status": status}))
    """
)


def test_distributed_fit_on_two_logical_cpus(features, tmp_path):
    # Logical devices must be configured before TensorFlow initialises: a fresh process.
    script = tmp_path / "distributed.py"
    script.write_text(DISTRIBUTED)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, str(script), str(features), str(tmp_path / "run"), str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["replicas"] == 2
    assert result["status"]["epochs_done"] == 2 and np.isfinite(result["status"]["best_val_loss"])


def test_both_note_sources_give_the_same_batches(tmp_path):
    """In memory (the default for sets that fit) and from the memory map: the same rows, in the same order."""
    from training.datasets.features import load_features
    from training.fit import NoteSource, epoch_order

    feats = load_features(write_features(tmp_path / "f", synthetic_notes(10)))
    rows = epoch_order(feats.subset("train"), seed=3, epoch=2)
    batches = {}
    for in_memory in (True, False):
        source = NoteSource(feats.x, params=feats.params, in_memory=in_memory)
        batches[in_memory] = [(a.numpy(), b.numpy()) for a, b in source.dataset(rows, batch_size=4)]
    assert len(batches[True]) == len(batches[False]) == -(-len(rows) // 4)
    for (a1, b1), (a0, _) in zip(batches[True], batches[False], strict=True):
        np.testing.assert_array_equal(a1, b1)
        # The memory-mapped reader sorts the rows of a batch (sequential reads); the mean loss is the same.
        np.testing.assert_array_equal(np.sort(a1.reshape(len(a1), -1), axis=0), np.sort(a0.reshape(len(a0), -1), axis=0))
    first = batches[True][0][0]
    np.testing.assert_array_equal(first, np.asarray(feats.x[rows[:4]]))


def test_a_new_run_can_start_from_another_runs_best_weights(finished_run, features, tmp_path):
    # A rate of 1e-30 leaves the weights where they start: exactly where the other run ended.
    config = RUN_CONFIG.with_schedule(learning_rate=1e-30, max_epochs=1, clipnorm=1.0)
    out = fit(features=features, config=config, out=tmp_path / "tuned",
              options=FitOptions(verbose=0, run_eagerly=EAGER, init_from=finished_run))
    for a, b in zip(_weights(out / "best.weights.h5", config), _weights(finished_run / "best.weights.h5", config),
                    strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    doc = json.loads((out / "config.json").read_text())
    assert doc["fit"]["init_from"] == str(finished_run) and doc["config"]["schedule"]["clipnorm"] == 1.0


def test_a_run_started_from_another_keeps_that_through_a_resume(finished_run, features, tmp_path):
    # Killed before its first checkpoint (only config.json written): resumed, it starts from the weights it was
    # started from again, not from fresh ones, and its record still names them.
    config = RUN_CONFIG.with_schedule(learning_rate=1e-30, max_epochs=1)
    out = fit(features=features, config=config, out=tmp_path / "tuned",
              options=FitOptions(verbose=0, run_eagerly=EAGER, init_from=finished_run))
    for path in out.iterdir():
        if path.name != "config.json":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    fit(features=features, config=None, out=out,
        options=FitOptions(resume=True, verbose=0, run_eagerly=EAGER))
    for a, b in zip(_weights(out / "best.weights.h5", config), _weights(finished_run / "best.weights.h5", config),
                    strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert json.loads((out / "config.json").read_text())["fit"]["init_from"] == str(finished_run)


def test_starting_from_a_missing_or_different_run_writes_nothing(finished_run, features, tmp_path):
    with pytest.raises(DataError, match="no run folder to start from"):
        fit(features=features, config=RUN_CONFIG, out=tmp_path / "a",
            options=FitOptions(verbose=0, init_from=tmp_path / "nope"))
    assert not (tmp_path / "a").exists()
    other = small_config(filters=(4, 8, 32), max_epochs=1)  # another architecture
    with pytest.raises(DataError, match="does not fit this model"):
        fit(features=features, config=other, out=tmp_path / "b",
            options=FitOptions(verbose=0, run_eagerly=EAGER, init_from=finished_run))
    assert not (tmp_path / "b").exists()
    with pytest.raises(ParameterError, match="init_from starts a new run"):
        fit(features=features, config=None, out=finished_run,
            options=FitOptions(resume=True, verbose=0, init_from=finished_run))
    # Restarting a diverged run over itself would delete the weights it is to start from.
    before = sorted(p.name for p in finished_run.iterdir())
    with pytest.raises(ParameterError, match="is the run folder .* name another --out"):
        fit(features=features, config=RUN_CONFIG, out=finished_run,
            options=FitOptions(force=True, verbose=0, init_from=finished_run))
    assert sorted(p.name for p in finished_run.iterdir()) == before
    with pytest.raises(ParameterError, match="clipnorm must be null or a positive number"):
        RUN_CONFIG.with_schedule(clipnorm=0)
