"""``melsynth train --workers N``: N workers of one run on this machine, on loopback ports, for a try-out of
the multi-worker path (on a cluster each machine runs ``melsynth train`` with its own TF_CONFIG; see README).

Worker 0, the chief, writes the run folder and prints as a single ``melsynth train`` does; the others' output
goes to a log each in a temporary folder, shown when that worker fails. When one worker fails or is killed,
the others are stopped too (SIGTERM, then SIGKILL: a worker blocked in a collective does not answer SIGTERM),
and the run can be continued with ``--resume``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synth.errors import ParameterError
from training.cluster.ports import free_ports
from training.cluster.tf_config import tf_config_text

__all__ = ["launch_local_workers", "worker_command"]

_GRACE_S = 5.0


def worker_command(train_args: list[str]) -> list[str]:
    """The command line of one worker: this Python running ``melsynth train`` with ``train_args``."""
    return [sys.executable, "-m", "synth.cli", "train", *train_args]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch_local_workers(workers: int, train_args: list[str], *, log=print) -> int:
    """Run ``melsynth train train_args`` as ``workers`` local workers of one cluster and wait for them: 0 when
    all finish, else the first failure's exit status (the others stopped)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"--workers must be a positive number of processes, got {workers!r}")
    if os.environ.get("TF_CONFIG"):
        raise ParameterError("--workers starts its own local cluster; unset TF_CONFIG (or run without --workers)")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="melsynth-workers-") as logs:
        try:
            for rank in range(workers):
                env = dict(os.environ, TF_CONFIG=tf_config_text(addresses, rank=rank))
                out = None if rank == 0 else open(Path(logs) / f"worker-{rank}.log", "w")  # noqa: SIM115
                args = train_args if rank == 0 else [*train_args, "--quiet"]
                procs.append(subprocess.Popen(worker_command(args), env=env, stdout=out,
                                              stderr=None if out is None else subprocess.STDOUT))
                if out is not None:
                    out.close()  # the child holds its own copy
            log(f"melsynth train: {workers} local workers at {', '.join(addresses)} "
                f"(worker 0 writes the run; pids {', '.join(str(p.pid) for p in procs)})")
            while True:
                codes = [p.poll() for p in procs]
                failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
                if failed:
                    rank = failed[0]
                    _stop(procs)
                    tail = _tail(Path(logs) / f"worker-{rank}.log") if rank else ""
                    log(f"melsynth train: worker {rank} ended with status {codes[rank]}; the others were stopped "
                        f"(continue with --resume){tail}")
                    return int(codes[rank]) or 1
                if all(c == 0 for c in codes):
                    return 0
                time.sleep(0.2)
        except BaseException:
            _stop(procs)
            raise


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n  " + "\n  ".join(text) if text else ""
