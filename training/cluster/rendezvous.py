"""Every worker reaches every other before TensorFlow is asked to.

MultiWorkerMirroredStrategy, built while a worker of its cluster is missing, blocks inside TensorFlow's C++
holding the GIL: no timeout, no Ctrl-C, and SIGTERM waits (measured here with TensorFlow 2.21: a worker
alone was still waiting after ten minutes). So each worker first takes part in this rendezvous, on the very
port TF_CONFIG gives it, with plain sockets:

1. it binds its own address: a port in use is a :class:`~synth.errors.ClusterError` naming it, at once;
2. it accepts the others' greetings on it (each says its rank and the cluster's fingerprint) while it greets
   every other worker in turn, retrying refused connections until ``timeout`` seconds have passed;
3. it is done once it has greeted every worker and been greeted by every worker; then it closes the port,
   which TensorFlow's server binds next.

Every greeting that worker A needs from B is B's greeting of A, which B sends before it can finish, so no
worker greets a port already handed to TensorFlow. A worker that names another cluster (a wrong port, a
different list) is refused by fingerprint. Whatever is missing at the deadline is named in the error: which
worker could not be reached at which address, which never greeted this one.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from synth.errors import ClusterError
from training.cluster.tf_config import ClusterSpec

__all__ = ["rendezvous", "CONNECT_TIMEOUT_S"]

#: How long a worker waits for the others by default: workers of a cluster may start minutes apart.
CONNECT_TIMEOUT_S = 300.0

_RETRY_S = 0.2


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _bind(spec: ClusterSpec) -> socket.socket:
    host, port = _split(spec.address)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR: a port left in TIME_WAIT by an earlier run is free; one another process listens on is not.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ClusterError(f"TF_CONFIG gives this worker ({spec.name(spec.rank)}) the address {spec.address}, "
                           f"which cannot be bound: {exc.strerror or exc} (another process uses the port?)") from None
    sock.listen(max(8, spec.size))
    return sock


class _Greeted:
    """The ranks that greeted this worker, filled by the listening thread."""

    def __init__(self) -> None:
        self.ranks: set[int] = set()
        self.mismatch: list[str] = []
        self.lock = threading.Lock()


def _serve(listener: socket.socket, spec: ClusterSpec, greeted: _Greeted, stop: threading.Event) -> None:
    # (The listener's timeout is set before this thread starts: the caller may close it before the thread's
    # first line runs, and a settimeout here then raised EBADF in the thread.)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return  # the listener was closed
        with conn:
            conn.settimeout(5.0)
            try:
                hello = json.loads(conn.makefile("r").readline())
                rank, fingerprint = int(hello["rank"]), str(hello["cluster"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not a melsynth worker (a port scanner, a stray client): ignored
            same = fingerprint == spec.fingerprint()
            try:
                conn.sendall(b"ok\n" if same else b"other cluster\n")
            except OSError:
                continue
            with greeted.lock:
                if same:
                    greeted.ranks.add(rank)
                else:
                    greeted.mismatch.append(f"a worker calling itself rank {rank} has another TF_CONFIG cluster")


def _greet(spec: ClusterSpec, rank: int) -> str:
    """'' once worker ``rank`` took this worker's greeting, else why not (the connection was refused, ...)."""
    try:
        with socket.create_connection(_split(spec.addresses[rank]), timeout=5.0) as conn:
            conn.sendall((json.dumps({"rank": spec.rank, "cluster": spec.fingerprint()}) + "\n").encode())
            reply = conn.makefile("r").readline().strip()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if reply == "ok":
        return ""
    if reply == "other cluster":
        raise ClusterError(f"{spec.name(rank)} at {spec.addresses[rank]} has another cluster in its TF_CONFIG than "
                           f"this worker ({spec.name(spec.rank)}): every worker needs the same cluster list")
    return f"no melsynth worker answers there (got {reply[:40]!r})"


def rendezvous(spec: ClusterSpec, *, timeout: float = CONNECT_TIMEOUT_S, log=None) -> None:
    """Return once every worker of ``spec`` has greeted this one and taken its greeting (see the module
    docstring); ClusterError naming the address at fault when this worker's port is taken, a worker names
    another cluster, or the others are not all there after ``timeout`` seconds."""
    if spec.size == 1:
        _bind(spec).close()
        return
    listener = _bind(spec)
    listener.settimeout(_RETRY_S)
    greeted, stop = _Greeted(), threading.Event()
    thread = threading.Thread(target=_serve, args=(listener, spec, greeted, stop), daemon=True,
                              name="melsynth-rendezvous")
    thread.start()
    try:
        todo = {rank: "not tried" for rank in range(spec.size) if rank != spec.rank}
        deadline = time.monotonic() + timeout
        if log:
            log(f"melsynth train: {spec.name(spec.rank)} of {spec.size} at {spec.address}, waiting for the others")
        while True:
            for rank in list(todo):
                why = _greet(spec, rank)
                if why:
                    todo[rank] = why
                else:
                    del todo[rank]
            with greeted.lock:
                if greeted.mismatch:
                    raise ClusterError(f"{spec.address}: {greeted.mismatch[0]}: every worker needs the same cluster")
                silent = [r for r in range(spec.size) if r != spec.rank and r not in greeted.ranks]
            if not todo and not silent:
                return
            if time.monotonic() > deadline:
                raise ClusterError(_missing(spec, todo, silent, timeout))
            time.sleep(_RETRY_S)
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=2.0)


def _missing(spec: ClusterSpec, todo: dict[int, str], silent: list[int], timeout: float) -> str:
    parts = [f"could not reach {spec.name(r)} at {spec.addresses[r]} ({why})" for r, why in sorted(todo.items())]
    parts += [f"{spec.name(r)} ({spec.addresses[r]}) never reached this worker" for r in silent if r not in todo]
    return (f"{spec.name(spec.rank)} at {spec.address}: after {timeout:g} s, " + "; ".join(parts)
            + ". Is every worker running, with the same TF_CONFIG cluster and a reachable address?")
