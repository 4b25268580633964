"""Training on several workers for real: tf.distribute's MultiWorkerMirroredStrategy from TF_CONFIG, each worker
its own process on 127.0.0.1 (ports picked here, every process bounded by a timeout and killed when a test
fails), and the checks around it: TF_CONFIG, the rendezvous, the run folder's lock, the replicas' pieces.

Worker processes run tests/distributed_worker.py (fit() of a tiny dropout-free model, eager: tracing would cost
each process ~10 s on the loaded 2-core machine; the traced path under the same strategy was checked by hand,
see docs/BENCHMARKS.md). Tolerance of two workers against one: 1e-6 absolute on weights of magnitude ~0.3
(measured 3e-8: only the order of the all-reduce's sums differs) and 1e-6 relative on the losses. A worker
that cannot reach the others and a port in use are checked on fit() in this process: the rendezvous fails
before TensorFlow is asked for anything, so a worker process (and its TensorFlow import) adds nothing there.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import synthetic_notes, write_features

from synth.errors import ClusterError, OutputError, ParameterError
from training.cluster.ports import free_ports
from training.cluster.rendezvous import rendezvous
from training.cluster.tf_config import read_tf_config, tf_config_text
from training.fit.notes import replica_pieces
from training.fit.run_lock import lock_path, run_lock

WORKER = Path(__file__).parent / "distributed_worker.py"
REPO = Path(__file__).parent.parent
EPOCHS = 2
PROCESS_TIMEOUT_S = 120  # one worker's whole life; a hang fails the test instead of the suite


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    return write_features(tmp_path_factory.mktemp("features") / "feat", synthetic_notes(20))


class Workers:
    """Worker processes of one test; every one still running is killed when the test ends, however it ends."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.scratch = tmp / "scratch"
        self.scratch.mkdir(exist_ok=True)

    def start(self, features: Path, out: Path, dump: Path, *, tf_config: str | None, args: tuple[str, ...] = (),
              log: Path) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
        env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", TMPDIR=str(self.scratch),
                   PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
        if tf_config is not None:
            env["TF_CONFIG"] = tf_config
        with open(log, "w") as fh:
            proc = subprocess.Popen([sys.executable, str(WORKER), str(features), str(out), str(dump), "--eager",
                                     "--epochs", str(EPOCHS), *args], env=env, stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def cluster(self, features: Path, out: Path, *, name: str, args: dict[int, tuple[str, ...]] | None = None,
                n: int = 2) -> list[tuple[subprocess.Popen, Path, Path]]:
        addresses = [f"127.0.0.1:{p}" for p in free_ports(n)]
        started = []
        for rank in range(n):
            dump, log = self.tmp / f"{name}-{rank}.npz", self.tmp / f"{name}-{rank}.log"
            proc = self.start(features, out, dump, tf_config=tf_config_text(addresses, rank=rank),
                              args=(args or {}).get(rank, ()), log=log)
            started.append((proc, dump, log))
        return started

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _wait(proc: subprocess.Popen, log: Path, *, code: int | None = 0, timeout: float = PROCESS_TIMEOUT_S) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"worker {proc.args[-1]} still running after {timeout} s:\n{log.read_text()[-3000:]}")
    text = log.read_text()
    if code is not None:
        assert proc.returncode == code, text[-3000:]
    return text


def _weights(dump: Path) -> list[np.ndarray]:
    with np.load(dump) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _history(run: Path) -> list[list[float]]:
    lines = (run / "history.csv").read_text().splitlines()[1:]
    return [[float(v) for i, v in enumerate(line.split(",")) if i in (1, 2)] for line in lines]


@pytest.fixture(scope="module")
def one_worker(features, tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """(run folder, final weights) of the tiny model trained on one machine (in this process: no TF_CONFIG)."""
    from distributed_worker import CONFIG
    from training_fixtures import SMALL_PARAMS, small_config

    from training.fit import FitOptions, fit, latest_checkpoint
    from training.model.families import build_models

    config = small_config(**CONFIG, max_epochs=EPOCHS)
    run = fit(features=features, config=config, out=tmp_path_factory.mktemp("one") / "run",
              options=FitOptions(verbose=0, run_eagerly=True))
    autoencoder, _, _ = build_models(config, params=SMALL_PARAMS)
    autoencoder.load_weights(latest_checkpoint(run) / "weights.weights.h5")
    return run, autoencoder.get_weights()


@pytest.fixture(scope="module")
def killed_and_resumed(features, tmp_path_factory) -> dict:
    """Two workers train; worker 1 dies (SIGKILL) right after epoch 1's checkpoint, the chief is stopped as the
    launcher would stop it, and both are started again with --resume to the end. What each worker held after
    epoch 1 and at the end, the run folder, the checkpoints left by the kill and the scratch folder.

    One cluster killed and resumed (not also one run uninterrupted beside it) keeps the file well under a
    minute: each cluster costs each worker a TensorFlow import (~6 s of CPU on the 2-core machine)."""
    tmp = tmp_path_factory.mktemp("two")
    out = tmp / "run"
    w = Workers(tmp)
    (tmp / "resumed").mkdir()
    again = Workers(tmp / "resumed")  # its own scratch: the killed workers leave theirs behind
    try:
        started = w.cluster(features, out, name="k", args={1: ("--kill-after-epoch", "1")})
        (chief, chief_dump, chief_log), (other, other_dump, other_log) = started
        _wait(other, other_log, code=-signal.SIGKILL)
        # The chief would stop by itself once the lost worker's heartbeats are missed (30 s); the launcher, or a
        # cluster's scheduler, stops it at once, as here, after its checkpoint of epoch 1 is on disk.
        deadline = time.monotonic() + 60
        while not (chief_dump.is_file() and (out / "checkpoints" / "epoch-0001").is_dir()) and chief.poll() is None:
            assert time.monotonic() < deadline, chief_log.read_text()[-3000:]
            time.sleep(0.1)
        chief.kill()
        chief.wait()
        epoch_1 = [_weights(chief_dump), _weights(other_dump)]
        after_kill = sorted(p.name for p in (out / "checkpoints").glob("epoch-*"))
        resumed = again.cluster(features, out, name="r", args={0: ("--resume",), 1: ("--resume",)})
        for proc, _, log in resumed:
            _wait(proc, log)
    finally:
        w.kill_all()
        again.kill_all()
    return {"run": out, "epoch_1": epoch_1, "final": [_weights(dump) for _, dump, _ in resumed],
            "after_kill": after_kill, "scratch": again.scratch}


# ------------------------------------------------------------------------------------------- two real workers
def test_two_workers_hold_identical_weights_and_write_one_run_folder(killed_and_resumed):
    run = killed_and_resumed["run"]
    for held in (killed_and_resumed["epoch_1"], killed_and_resumed["final"]):
        for a, b in zip(*held, strict=True):
            np.testing.assert_array_equal(a, b)
    doc = json.loads((run / "config.json").read_text())
    assert doc["fit"]["workers"] == 2 and doc["fit"]["replicas"] == 2 and doc["fit"]["global_batch"] == 8
    assert (run / "metrics.json").is_file()
    # The other worker wrote only its own scratch folder, and removed it; nothing is left beside the run.
    assert list(killed_and_resumed["scratch"].iterdir()) == []
    assert not lock_path(run).exists()


def test_a_run_resumes_after_one_worker_is_killed(killed_and_resumed):
    run = killed_and_resumed["run"]
    assert killed_and_resumed["after_kill"] == ["epoch-0001"]
    assert json.loads((run / "status.json").read_text())["epochs_done"] == EPOCHS
    assert len(_history(run)) == EPOCHS


def test_two_workers_killed_and_resumed_equal_one_worker_of_the_same_global_batch(killed_and_resumed, one_worker):
    """Epoch 1 (before the kill) and the end (after the resume) against one machine's uninterrupted run: the
    losses of both epochs, the weights at the end."""
    run1, single = one_worker
    for a, b in zip(killed_and_resumed["final"][0], single, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(_history(killed_and_resumed["run"]), _history(run1), rtol=1e-6)


# -------------------------------------------------------------------------------------------------- bad input
def _fit_as_worker(features: Path, out: Path, addresses: list[str], monkeypatch, **options) -> Exception:
    """fit() in this process as worker 0 of ``addresses`` (the rendezvous runs before TensorFlow is asked for
    the strategy, so a failing one leaves TensorFlow as it was); the error it raises."""
    from distributed_worker import CONFIG
    from training_fixtures import small_config

    from training.fit import FitOptions, fit

    monkeypatch.setenv("TF_CONFIG", tf_config_text(addresses, rank=0))
    with pytest.raises(ClusterError) as err:
        fit(features=features, config=small_config(**CONFIG, max_epochs=1), out=out,
            options=FitOptions(verbose=0, run_eagerly=True, **options))
    return err.value


def test_a_worker_that_cannot_reach_the_other_names_its_address(features, tmp_path, monkeypatch):
    mine, nobody = free_ports(2)
    addresses = [f"127.0.0.1:{mine}", f"127.0.0.1:{nobody}"]  # nothing will listen at the second
    out = tmp_path / "run"
    t0 = time.monotonic()
    error = str(_fit_as_worker(features, out, addresses, monkeypatch, connect_timeout=3))
    assert time.monotonic() - t0 < 30
    assert f"127.0.0.1:{nobody}" in error and "worker 1" in error, error
    assert not out.exists() and not lock_path(out).exists()


def test_tf_config_naming_a_port_in_use_is_refused_with_the_address(features, tmp_path, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        addresses = [f"127.0.0.1:{port}", f"127.0.0.1:{free_ports(1)[0]}"]
        out = tmp_path / "run"
        error = str(_fit_as_worker(features, out, addresses, monkeypatch))
    assert f"127.0.0.1:{port}" in error and "cannot be bound" in error, error
    assert not out.exists() and not lock_path(out).exists()


def test_two_runs_writing_one_run_folder_are_refused(features, tmp_path):
    from training_fixtures import small_config

    from training.fit import FitOptions, fit

    out = tmp_path / "run"
    with run_lock(out):
        with pytest.raises(OutputError, match=f"{out}: another run is writing this run folder .pid {os.getpid()}"):
            fit(features=features, config=small_config(), out=out, options=FitOptions(verbose=0))
        assert not out.exists()
    assert not lock_path(out).exists()  # released and removed with the run
    with run_lock(out):  # and free again
        pass


def test_the_lock_is_freed_when_its_holder_is_killed(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom training.fit.run_lock import run_lock\n"
         f"with run_lock({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"pid {holder.pid}"), run_lock(out):
            pass
        holder.kill()
        holder.wait(timeout=30)
        with run_lock(out):  # the kernel released it; the stale file is taken over
            pass
    finally:
        holder.kill()
        holder.wait()


# --------------------------------------------------------------------------------- TF_CONFIG and the rendezvous
@pytest.mark.parametrize("text, problem", [
    ("{", "not JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "expected"),
    ('{"cluster": {"ps": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "'ps'"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', r"cluster.worker\[0\]"),
    ('{"cluster": {"worker": ["a:99999"]}, "task": {"type": "worker", "index": 0}}', "1..65535"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "named twice"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "task.index 1"),
])
def test_a_bad_tf_config_is_refused_naming_the_field(text, problem):
    with pytest.raises(ParameterError, match=problem):
        read_tf_config(text)


def test_the_chief_is_rank_zero():
    spec = read_tf_config('{"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]}, "task": {"type": "worker", '
                          '"index": 1}}')
    assert spec.addresses == ("c:1", "w:1", "w:2") and spec.rank == 2 and not spec.is_chief
    assert read_tf_config(tf_config_text(["a:1", "b:2"], rank=0)).is_chief
    assert read_tf_config(None) is None and read_tf_config("") is None


def _meet(texts: list[str], timeout: float) -> list[BaseException | None]:
    errors: list[BaseException | None] = [None] * len(texts)

    def one(i: int) -> None:
        try:
            rendezvous(read_tf_config(texts[i]), timeout=timeout)
        except ClusterError as exc:
            errors[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
        assert not t.is_alive()
    return errors


def test_three_workers_meet_and_free_their_ports():
    addresses = [f"127.0.0.1:{p}" for p in free_ports(3)]
    assert _meet([tf_config_text(addresses, rank=r) for r in range(3)], timeout=20) == [None, None, None]
    for address in addresses:  # handed on to TensorFlow: free again
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(address.split(":")[1])))


def test_workers_of_different_clusters_refuse_each_other():
    a, b, c = (f"127.0.0.1:{p}" for p in free_ports(3))
    errors = _meet([tf_config_text([a, b], rank=0), tf_config_text([a, b, c], rank=1)], timeout=3)
    assert all(isinstance(e, ClusterError) for e in errors)
    assert any("another" in str(e) and "cluster" in str(e) for e in errors)


# ------------------------------------------------------------------------------------------ the replicas' pieces
def test_every_global_batch_is_cut_into_even_pieces_one_per_replica():
    # 11 rows, global batch 4, 3 replicas: batches 4, 4, 3; each cut 1/1/2 (4), 1/1/1 (3).
    starts, sizes, totals = replica_pieces(11, global_batch=4, replicas=3, local=range(3))
    assert sizes == [1, 1, 2, 1, 1, 2, 1, 1, 1] and totals == [4] * 6 + [3] * 3
    assert starts == [0, 1, 2, 4, 5, 6, 8, 9, 10]
    # A worker holding replica 2 only gets its own pieces; pieces may be empty on a short last batch.
    assert replica_pieces(11, global_batch=4, replicas=3, local=range(2, 3))[1] == [2, 2, 1]
    assert replica_pieces(9, global_batch=4, replicas=3, local=range(3))[1][-3:] == [0, 0, 1]
    # One replica: the global batches themselves.
    assert replica_pieces(11, global_batch=4, replicas=1, local=range(1)) == ([0, 4, 8], [4, 4, 3], [4, 4, 3])


def test_one_replicas_pieces_are_the_batches_of_one_machine(features):
    from training.datasets.features import load_features
    from training.fit import NoteSource, epoch_order

    feats = load_features(features)
    rows = epoch_order(feats.subset("train"), seed=1, epoch=0)
    source = NoteSource(feats.x, params=feats.params)
    whole = [(a.numpy(), b.numpy()) for a, b in source.dataset(rows, batch_size=5)]
    pieces = [(a.numpy(), b.numpy(), float(n)) for a, b, n in
              source.replica_dataset(rows, global_batch=5, replicas=1, local=range(1))]
    assert len(whole) == len(pieces) == 3
    for (a, b), (c, d, n) in zip(whole, pieces, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
        assert n == len(a)
