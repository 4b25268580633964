"""MultiWorkerMirroredStrategy for a checked cluster, with the coordination service's timeouts set.

TensorFlow's defaults let a worker wait for a dead peer for a long time; here a worker that loses another
(killed, its machine gone) stops within ``heartbeat_s`` with TensorFlow's error, so the launcher or the
cluster's scheduler can start the run again with ``--resume``.
"""

from __future__ import annotations

from typing import Any

from training.cluster.rendezvous import CONNECT_TIMEOUT_S, rendezvous
from training.cluster.tf_config import ClusterSpec

__all__ = ["multi_worker_strategy", "HEARTBEAT_S", "lost_worker_errors"]

#: Seconds without a heartbeat after which a worker counts as lost.
HEARTBEAT_S = 30.0


def multi_worker_strategy(spec: ClusterSpec, *, connect_timeout: float = CONNECT_TIMEOUT_S,
                          heartbeat_s: float = HEARTBEAT_S, log=None) -> Any:
    """Meet the other workers (:func:`~training.cluster.rendezvous.rendezvous`), then build the strategy from
    TF_CONFIG. Must run before TensorFlow's context is initialised (before any op or device placement)."""
    import tensorflow as tf
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    rendezvous(spec, timeout=connect_timeout, log=log)
    jobs = {}
    for name in spec.names:
        kind = name.split()[0]
        jobs[kind] = jobs.get(kind, 0) + 1
    leader = "/job:chief/replica:0/task:0" if "chief" in jobs else "/job:worker/replica:0/task:0"
    # Configured here rather than by the strategy, which would leave every timeout at its default.
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=leader,
        cluster_register_timeout_in_ms=int(connect_timeout * 1000), heartbeat_timeout_in_ms=int(heartbeat_s * 1000),
        shutdown_barrier_timeout_in_ms=int(heartbeat_s * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=k, num_tasks=n) for k, n in jobs.items()],
    )
    return tf.distribute.MultiWorkerMirroredStrategy()


def lost_worker_errors() -> tuple[type[BaseException], ...]:
    """The TensorFlow errors a collective raises when a worker is lost (stopped heartbeats, a closed
    connection, a timed-out barrier)."""
    import tensorflow as tf

    return (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError)
