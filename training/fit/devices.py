"""Where and how a run computes: the GPUs, the distribution strategy (one device, MirroredStrategy over a
machine's GPUs, MultiWorkerMirroredStrategy over the workers TF_CONFIG names), XLA and the precision policy."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from synth.errors import ParameterError
from training.cluster.tf_config import ClusterSpec

__all__ = ["XLA_CHOICES", "use_xla", "Placement", "place"]

XLA_CHOICES = ("auto", "on", "off")


def use_xla(xla: str, *, gpus: int) -> bool:
    """Whether to compile the train step with XLA: ``"on"``, ``"off"``, or ``"auto"``, which is off on the CPU
    and on with a GPU.

    On this project's 2-core CPU machine, XLA made the paper-size model's epochs 2.6 times slower at batch 16
    (64.8 s against 25.2 s for 1025 notes, 15.8 against 40.7 notes/s; 2.65 times in a second run:
    bench/bench_training.py, real epochs of this loop with and without it, 2026-12-02, docs/BENCHMARKS.md).
    On a GPU,
    XLA's kernel fusion is the usual win for convolutional models; "auto" follows that, and bench_training
    measures it whenever TensorFlow sees a GPU.
    """
    if xla not in XLA_CHOICES:
        raise ParameterError(f"xla must be one of {XLA_CHOICES}, got {xla!r}")
    return xla == "on" or (xla == "auto" and gpus > 0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Placement:
    """The visible GPUs, the tf.distribute strategy, whether the train step is XLA-compiled, the Keras
    precision policy ("float32", "mixed_float16" or "mixed_bfloat16"), and the cluster this process is a worker
    of (None on one machine)."""

    gpus: tuple[Any, ...]
    strategy: Any
    jit: bool
    policy: str
    cluster: ClusterSpec | None = None

    @property
    def chief(self) -> bool:
        """Whether this process writes the run folder (on one machine, always)."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def workers(self) -> int:
        return 1 if self.cluster is None else self.cluster.size


def place(
    *, mixed_precision: bool, strategy: Any, deterministic: bool, run_eagerly: bool, xla: str,
    existing: dict[str, Any] | None, out: Path, cluster: ClusterSpec | None = None, connect_timeout: float = 300.0,
    verbose: int = 0,
) -> Placement:
    """Where the run computes; switches on op determinism if asked, once the precision is known to suit the run
    being resumed (``existing``, its config.json). With ``cluster`` (and no ``strategy``) this process meets the
    cluster's other workers (ClusterError naming any it cannot reach in ``connect_timeout`` seconds) and trains
    under MultiWorkerMirroredStrategy."""
    import tensorflow as tf

    from training.devices import mixed_precision_policy

    if cluster is not None and strategy is None:
        from training.cluster.strategy import multi_worker_strategy

        # Before anything else asks TensorFlow for a device: the coordination service is configured first.
        strategy = multi_worker_strategy(cluster, connect_timeout=connect_timeout, log=print if verbose else None)
    gpus = tf.config.list_physical_devices("GPU")
    # refuses a CPU without native bfloat16 before anything is written
    policy = mixed_precision_policy(gpus=len(gpus)) if mixed_precision else "float32"
    if existing is not None:
        # Runs written before fit.precision was recorded trained in float16 when mixed (GPU only then).
        trained = existing["fit"].get("precision", "mixed_float16" if existing["fit"].get("mixed_precision") else
                                      "float32")
        if trained != policy:
            raise ParameterError(f"{out}: this machine would train in {policy}, the run was trained in {trained}; "
                                 "resume it where that precision is available")
    if strategy is None:
        strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    jit = False if run_eagerly else use_xla(xla, gpus=len(gpus))
    return Placement(gpus=tuple(gpus), strategy=strategy, jit=jit, policy=policy, cluster=cluster)
