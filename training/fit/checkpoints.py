"""A run's checkpoints: ``checkpoints/epoch-NNNN`` folders of weights, optimizer state and training state, each
written atomically with SHA-256 sums, and the best weights they name.

A checkpoint folder::

    weights.weights.h5   the autoencoder's weights after the epoch
    optimizer.npz        every optimizer variable (Adam moments, step count, learning rate; the loss-scale
                         wrapper's under mixed_float16), v0000, v0001, ... in optimizer order
    state.json           the :class:`TrainingState`: the stopping counters, the history, the best weights' SHA-256
    checksums.json       the SHA-256 of the three files above

The last :data:`KEEP_CHECKPOINTS` are kept while a run trains, the newest once it has stopped.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_directory, atomic_path
from synth.errors import DataError
from synth.json_files import read_json_file
from synth.numpy_files import numpy_file_problem
from synth.outputs import CHECKPOINT
from training.datasets.features import sha256_file
from training.fit.stopping import StoppingState
from training.fit.weights import load_weights_whole

__all__ = ["KEEP_CHECKPOINTS", "TrainingState", "latest_checkpoint", "read_checkpoint_state", "write_checkpoint",
           "keep_newest_checkpoint", "check_best", "restore_checkpoint", "copy_atomic"]

KEEP_CHECKPOINTS = 2
_CKPT_FILES = ("weights.weights.h5", "optimizer.npz", "state.json")
_PATTERN = "epoch-[0-9][0-9][0-9][0-9]"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingState:
    """What a checkpoint carries besides weights and optimizer: the stopping counters, the history (one dict per
    finished epoch: epoch, loss, val_loss, seconds, learning_rate) and the SHA-256 of the best weights."""

    stopping: StoppingState = dataclasses.field(default_factory=StoppingState)
    history: tuple[dict[str, float], ...] = ()
    best_weights_sha256: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any], *, source: str = "checkpoint state") -> TrainingState:
        """The state of a state.json already checked by :func:`read_checkpoint_state`."""
        return cls(stopping=StoppingState.from_doc(doc, source=source), history=tuple(doc["history"]),
                   best_weights_sha256=doc.get("best_weights_sha256"))

    def to_doc(self) -> dict[str, Any]:
        """state.json's fields (the number of optimizer variables is added when it is written)."""
        return {**self.stopping.to_doc(), "history": list(self.history),
                "best_weights_sha256": self.best_weights_sha256}


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` onto ``dst`` so that ``dst`` is always either the old or the complete new file."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def latest_checkpoint(run: str | Path) -> Path | None:
    """The newest ``checkpoints/epoch-NNNN`` folder of a run, or None."""
    folder = Path(run) / "checkpoints"
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.glob(_PATTERN) if p.is_dir())
    return found[-1] if found else None


def read_checkpoint_state(ckpt: Path) -> dict[str, Any]:
    """Verify a checkpoint folder's SHA-256 sums and return its state.json; DataError if corrupt."""
    sums = read_json_file(ckpt / "checksums.json", what="checkpoint checksums", error=DataError)
    if not isinstance(sums, dict):
        raise DataError(f"{ckpt / 'checksums.json'}: expected an object of SHA-256 sums")
    for name in _CKPT_FILES:
        path = ckpt / name
        if not path.is_file():
            raise DataError(f"checkpoint {ckpt}: {name} is missing")
        if sums.get(name) != sha256_file(path):
            raise DataError(f"checkpoint {ckpt}: {name} fails its SHA-256 check (corrupt or changed)")
    state = read_json_file(ckpt / "state.json", what="checkpoint state", error=DataError)
    keys = ("epochs_done", "best_val_loss", "best_epoch", "wait", "history", "n_optimizer_variables")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise DataError(f"{ckpt / 'state.json'}: malformed checkpoint state (needs {list(keys)})")
    return state


def write_checkpoint(run: Path, model: Any, optimizer: Any, state: TrainingState, *, improved: bool) -> TrainingState:
    """Write ``checkpoints/epoch-NNNN`` atomically (pruning older ones) and return the state it records; with
    ``improved`` its weights become ``best.weights.h5`` too. The checkpoint is written first and records the
    best weights' SHA-256, so a kill between the two steps is repaired on resume (:func:`check_best`)."""
    folder = run / "checkpoints"
    folder.mkdir(exist_ok=True)
    target = folder / f"epoch-{state.stopping.epochs_done:04d}"
    with atomic_directory(target, kind=CHECKPOINT, force=True) as tmp:
        model.save_weights(tmp / "weights.weights.h5")
        if improved:
            state = dataclasses.replace(state, best_weights_sha256=sha256_file(tmp / "weights.weights.h5"))
        arrays = {f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
        np.savez(tmp / "optimizer.npz", **arrays)
        doc = dict(state.to_doc(), n_optimizer_variables=len(arrays))
        (tmp / "state.json").write_text(json.dumps(doc, indent=2) + "\n")
        sums = {name: sha256_file(tmp / name) for name in _CKPT_FILES}
        (tmp / "checksums.json").write_text(json.dumps(sums, indent=2) + "\n")
    if improved:
        copy_atomic(target / "weights.weights.h5", run / "best.weights.h5")
    for old in sorted(p for p in folder.glob(_PATTERN) if p.is_dir())[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return state


def keep_newest_checkpoint(run: Path) -> None:
    """Once a run has stopped: only its newest checkpoint, which a resume with a larger --max-epochs continues
    from, and none of the temporary folders a kill left (a paper-size checkpoint is about 680 MB)."""
    folder = run / "checkpoints"
    if not folder.is_dir():
        return
    done = sorted(p for p in folder.glob(_PATTERN) if p.is_dir())
    for old in [*done[:-1], *folder.glob(".epoch-*.tmp")]:
        shutil.rmtree(old, ignore_errors=True)


def check_best(run: Path, ckpt: Path, state: TrainingState) -> None:
    """Make sure best.weights.h5 is the one the checkpoint names; repair the one gap a kill can leave."""
    best = run / "best.weights.h5"
    want = state.best_weights_sha256
    if state.stopping.best_epoch is None or want is None:
        return
    if best.is_file() and sha256_file(best) == want:
        return
    if state.stopping.best_epoch == state.stopping.epochs_done:
        # Killed after writing this checkpoint but before copying its weights to best.weights.h5.
        copy_atomic(ckpt / "weights.weights.h5", best)
        return
    raise DataError(
        f"{best}: missing or not the best weights that checkpoint {ckpt} records (corrupt or changed)"
    )


def restore_checkpoint(ckpt: Path, model: Any, optimizer: Any) -> None:
    """Load a checkpoint already verified by :func:`read_checkpoint_state` into ``model`` and ``optimizer``."""
    load_weights_whole(model, ckpt / "weights.weights.h5", what=f"this model (checkpoint {ckpt})")
    try:
        problem = numpy_file_problem(ckpt / "optimizer.npz", archive=True)
        if problem:
            raise DataError(f"checkpoint {ckpt}: optimizer.npz is {problem}")
        with np.load(ckpt / "optimizer.npz", allow_pickle=False) as data:
            arrays = [data[f"v{i:04d}"] for i in range(len(data.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"checkpoint {ckpt}: optimizer.npz unreadable ({exc})") from None
    variables = list(optimizer.variables)
    if len(arrays) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables, strict=False)):
        raise DataError(f"checkpoint {ckpt}: optimizer state does not fit this model/optimizer")
    for v, a in zip(variables, arrays, strict=True):
        v.assign(a)
