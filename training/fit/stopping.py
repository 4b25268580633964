"""When a run stops, and when its learning rate drops: early stopping and the plateau schedule, as a pure rule.

:class:`StoppingRule` judges one finished epoch's losses against a :class:`StoppingState` and returns the next
state with a :class:`Verdict`: whether the run goes on (:class:`Stop`), whether the epoch is the best so far
(its weights are kept), and the learning rate of the next epoch. No TensorFlow: the epoch loop
(:mod:`training.fit.loop`) applies the rate to the optimizer and writes the state into each checkpoint.

The rule is Keras' EarlyStopping (``patience``, a relative ``min_delta``) and ReduceLROnPlateau
(``lr_patience``, ``lr_factor``) judged together, plus the epoch bound and a non-finite loss:

- any lower validation loss is the best so far (its weights are kept);
- a loss lower by more than ``min_delta`` (a fraction) than the loss that last reset the counters resets
  them, as Keras' EarlyStopping judges: judged against the latest tiny improvement instead, a run improving
  steadily by less than ``min_delta`` an epoch would stop;
- ``patience`` epochs without such a loss stop the run (:attr:`Stop.PATIENCE`);
- every ``lr_patience`` such epochs (0: never) multiply the rate by ``lr_factor``; not on the epoch that
  stops the run;
- a run that goes on stops at ``max_epochs`` (:attr:`Stop.MAX_EPOCHS`), after the rate was judged, so a run
  extended later resumes with the rate an uninterrupted run would have;
- a NaN or infinite loss stops it at once, the counters untouched (:attr:`Stop.NON_FINITE`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from synth.errors import DataError, ParameterError

__all__ = ["Stop", "StoppingState", "Verdict", "StoppingRule"]


class Stop(enum.Enum):
    """Whether a run goes on, or why it stopped; the values are the strings status.json and the checkpoints
    have always held (``"stopped"``), which the experiment sweep and older run folders read back."""

    RUNNING = "running"
    PATIENCE = "early_stopping"
    MAX_EPOCHS = "max_epochs"
    NON_FINITE = "non_finite_loss"

    @property
    def for_good(self) -> bool:
        """A run stopped for good stays stopped on resume; one stopped by its epoch bound may be extended."""
        return self in (Stop.PATIENCE, Stop.NON_FINITE)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoppingState:
    """The counters the rule carries from epoch to epoch (a checkpoint's state.json holds them).

    epochs_done : epochs finished
    best_val_loss, best_epoch : the lowest validation loss so far and its epoch (1-based); None before one
    wait, lr_wait : epochs since the counters were last reset (patience), since the rate last dropped or the
        counters were reset (lr_patience)
    patience_reference : the validation loss that last reset the counters (None before the first epoch)
    stopped : what the last judged epoch decided
    """

    epochs_done: int = 0
    best_val_loss: float | None = None
    best_epoch: int | None = None
    wait: int = 0
    lr_wait: int = 0
    patience_reference: float | None = None
    stopped: Stop = Stop.RUNNING

    @classmethod
    def from_doc(cls, doc: dict[str, Any], *, source: str = "checkpoint state") -> StoppingState:
        """The state of a checkpoint's state.json. Checkpoints written before ``lr_wait``,
        ``patience_reference`` or ``stopped`` were kept load as 0, their best loss and "running"; DataError for
        a stop reason no version wrote."""
        try:
            stopped = Stop(doc.get("stopped") or Stop.RUNNING.value)
        except ValueError:
            raise DataError(f"{source}: unknown stop reason {doc.get('stopped')!r}") from None
        return cls(
            epochs_done=doc["epochs_done"], best_val_loss=doc["best_val_loss"], best_epoch=doc["best_epoch"],
            wait=doc["wait"], lr_wait=doc.get("lr_wait", 0),
            patience_reference=doc.get("patience_reference", doc["best_val_loss"]), stopped=stopped,
        )

    def to_doc(self) -> dict[str, Any]:
        """The state.json fields of this state (``stopped`` as its string)."""
        return {"epochs_done": self.epochs_done, "best_val_loss": self.best_val_loss, "best_epoch": self.best_epoch,
                "wait": self.wait, "lr_wait": self.lr_wait, "patience_reference": self.patience_reference,
                "stopped": self.stopped.value}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    """One judged epoch: the next state, whether the run goes on (``stop``, also ``state.stopped``), whether the
    epoch is the best so far (keep its weights), and the learning rate for the next epoch."""

    state: StoppingState
    stop: Stop
    improved: bool
    learning_rate: float


def _count(name: str, value: Any, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ParameterError(f"stopping rule: {name} must be an int >= {low}, got {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoppingRule:
    """Early stopping with ``patience`` and a relative ``min_delta``, the plateau schedule (``lr_patience``,
    ``lr_factor``) and the epoch bound ``max_epochs``; see the module docstring."""

    patience: int
    max_epochs: int
    min_delta: float = 0.0
    lr_patience: int = 0
    lr_factor: float = 0.5

    def __post_init__(self) -> None:
        _count("patience", self.patience, low=1)
        _count("max_epochs", self.max_epochs, low=1)
        _count("lr_patience", self.lr_patience, low=0)
        if not 0.0 <= self.min_delta < 1.0:
            raise ParameterError(f"stopping rule: min_delta must be in [0, 1), got {self.min_delta!r}")
        if not 0.0 < self.lr_factor < 1.0:
            raise ParameterError(f"stopping rule: lr_factor must be in (0, 1), got {self.lr_factor!r}")

    @classmethod
    def from_schedule(cls, schedule: Any) -> StoppingRule:
        """The rule of a :class:`~training.model.schedule.FitSchedule`."""
        return cls(patience=schedule.patience, max_epochs=schedule.max_epochs, min_delta=schedule.min_delta,
                   lr_patience=schedule.lr_patience, lr_factor=schedule.lr_factor)

    def on_resume(self, state: StoppingState) -> Stop:
        """Whether a run starting (or resuming) at ``state`` trains on: a run stopped for good stays stopped, one
        at or past the epoch bound stops there (a larger bound extends it)."""
        if state.stopped.for_good:
            return state.stopped
        return Stop.MAX_EPOCHS if state.epochs_done >= self.max_epochs else Stop.RUNNING

    def judge(self, state: StoppingState, *, loss: float, val_loss: float, learning_rate: float) -> Verdict:
        """Judge the epoch after ``state`` (epoch ``state.epochs_done + 1``), trained at ``learning_rate`` to a
        training ``loss`` and a validation loss ``val_loss``."""
        epoch = state.epochs_done + 1
        if not (math.isfinite(loss) and math.isfinite(val_loss)):
            done = dataclasses.replace(state, epochs_done=epoch, stopped=Stop.NON_FINITE)
            return Verdict(state=done, stop=Stop.NON_FINITE, improved=False, learning_rate=learning_rate)
        best = state.best_val_loss
        improved = best is None or val_loss < best
        reference = state.patience_reference
        significant = reference is None or val_loss < reference * (1.0 - self.min_delta)
        changes: dict[str, Any] = {"epochs_done": epoch}
        if improved:
            changes.update(best_val_loss=val_loss, best_epoch=epoch)
        stop, rate = Stop.RUNNING, learning_rate
        if significant:
            changes.update(wait=0, lr_wait=0, patience_reference=val_loss)
        else:
            changes.update(wait=state.wait + 1, lr_wait=state.lr_wait + 1)
            if changes["wait"] >= self.patience:
                stop = Stop.PATIENCE
            elif self.lr_patience and changes["lr_wait"] >= self.lr_patience:
                rate = learning_rate * self.lr_factor
                changes["lr_wait"] = 0
        if stop is Stop.RUNNING and epoch >= self.max_epochs:
            stop = Stop.MAX_EPOCHS
        next_state = dataclasses.replace(state, stopped=stop, **changes)
        return Verdict(state=next_state, stop=stop, improved=improved, learning_rate=rate)
