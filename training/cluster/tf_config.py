"""The cluster a ``TF_CONFIG`` environment variable describes, checked before TensorFlow reads it.

``TF_CONFIG`` is TensorFlow's own JSON (``{"cluster": {"chief": [...], "worker": ["host:port", ...]},
"task": {"type": "worker", "index": 0}}``). melsynth trains with the ``chief`` and ``worker`` tasks of
MultiWorkerMirroredStrategy only; the chief (task ``chief``, else ``worker`` 0) writes the run folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from synth.errors import ParameterError

__all__ = ["ClusterSpec", "read_tf_config", "tf_config_text"]

_TASKS = ("chief", "worker")


def _address(text: Any, *, where: str) -> str:
    if not isinstance(text, str) or text.count(":") != 1:
        raise ParameterError(f"TF_CONFIG: {where} must be 'host:port', got {text!r}")
    host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ParameterError(f"TF_CONFIG: {where} must be 'host:port' with a port in 1..65535, got {text!r}")
    return text


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """The workers of a cluster in TensorFlow's order (the chief first when there is one) and this process's
    place among them.

    addresses : every worker's ``host:port``, index = rank (TensorFlow's ``id_in_cluster``)
    task_type, task_index : this process's task in TF_CONFIG
    rank : this process's index in ``addresses``
    """

    addresses: tuple[str, ...]
    task_type: str
    task_index: int
    rank: int
    names: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.addresses)

    @property
    def address(self) -> str:
        return self.addresses[self.rank]

    @property
    def is_chief(self) -> bool:
        """The one worker that writes the run folder: TensorFlow's chief (rank 0)."""
        return self.rank == 0

    def name(self, rank: int) -> str:
        """``worker 1``, ``chief 0``: a task as TF_CONFIG names it."""
        return self.names[rank]

    def fingerprint(self) -> str:
        """A short hash of the cluster (every address in order), equal on workers that agree on it."""
        return hashlib.sha256("\n".join(self.addresses).encode()).hexdigest()[:16]


def read_tf_config(text: str | None) -> ClusterSpec | None:
    """The :class:`ClusterSpec` of a TF_CONFIG value; None when it is unset or empty (one machine).
    ParameterError naming the field for anything TensorFlow would misread or melsynth does not train with."""
    if text is None or not text.strip():
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"TF_CONFIG: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cluster"), dict) or not isinstance(doc.get("task"), dict):
        raise ParameterError('TF_CONFIG: expected {"cluster": {...}, "task": {"type": ..., "index": ...}}')
    cluster, task = doc["cluster"], doc["task"]
    other = sorted(set(cluster) - set(_TASKS))
    if other:
        raise ParameterError(f"TF_CONFIG: melsynth trains with 'chief' and 'worker' tasks only, not {other}")
    addresses, names = [], []
    for kind in _TASKS:
        entries = cluster.get(kind, [])
        if not isinstance(entries, list):
            raise ParameterError(f"TF_CONFIG: cluster.{kind} must be a list of 'host:port'")
        if kind == "chief" and len(entries) > 1:
            raise ParameterError(f"TF_CONFIG: at most one chief, got {len(entries)}")
        for i, entry in enumerate(entries):
            addresses.append(_address(entry, where=f"cluster.{kind}[{i}]"))
            names.append(f"{kind} {i}")
    if not addresses:
        raise ParameterError("TF_CONFIG: the cluster names no 'chief' or 'worker'")
    if len(set(addresses)) != len(addresses):
        raise ParameterError(f"TF_CONFIG: an address is named twice in {addresses}")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in _TASKS:
        raise ParameterError(f"TF_CONFIG: task.type must be one of {_TASKS}, got {kind!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster.get(kind, [])):
        raise ParameterError(f"TF_CONFIG: task.index {index!r} names no {kind} of cluster.{kind}")
    return ClusterSpec(addresses=tuple(addresses), task_type=kind, task_index=index,
                       rank=names.index(f"{kind} {index}"), names=tuple(names))


def tf_config_text(addresses: list[str], *, rank: int) -> str:
    """The TF_CONFIG of worker ``rank`` of a cluster of ``worker`` tasks at ``addresses`` (the launcher's)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": rank}})
