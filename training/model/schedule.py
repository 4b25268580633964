"""How a model is fitted, apart from what it is: the fitting schedule a :class:`~training.model.config.ModelConfig`
holds as its ``schedule`` (``config.schedule.learning_rate``).

The schedule is every setting that changes how the weights are reached but not the function class they live in:
the optimizer's rate and gradient clipping, the stopping rule's counters and bound, the batch and the seed. Two
of them are fixed for the life of a run and the rest may change when it resumes (:data:`RESUMABLE_FIELDS`):
``seed`` draws the initial weights and every epoch's order, ``batch_size`` cuts that order into steps, so a run
resumed with either changed would continue another run's trajectory; the others only act from the next epoch on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from synth.errors import ParameterError
from training.model.settings import exact_record

__all__ = ["FitSchedule", "SCHEDULE_FIELDS", "RESUMABLE_FIELDS"]


@dataclasses.dataclass(frozen=True)
class FitSchedule:
    """How to fit one model: Adam on the MSE, in batches, until the stopping rule says stop (best weights
    restored). Each field's meaning is under it."""

    # The optimizer.
    learning_rate: float = 1e-3
    """Adam's starting rate."""
    clipnorm: float | None = None
    """Adam's gradients are rescaled so that each variable's gradient norm is at most this (None: no clipping);
    a long run of clip_res at 1e-3 without it collapsed after epoch 20 (training loss 0.0014 -> 0.054 in one
    epoch)."""
    # The stopping rule and the plateau schedule (training.fit.stopping).
    patience: int = 10
    """Early stopping after this many epochs without a better validation loss."""
    max_epochs: int = 300
    """At most this many epochs."""
    min_delta: float = 0.0
    """How much lower (relative) a validation loss must be to count as better for the patience counters
    (Keras's EarlyStopping ``min_delta``, here a fraction of the loss that last reset them, as Keras judges); the
    best weights are kept on any improvement."""
    lr_patience: int = 0
    """With ``lr_patience`` > 0 the learning rate is multiplied by ``lr_factor`` after that many epochs without a
    better validation loss (Keras's ReduceLROnPlateau), so a run converges and stops early within a smaller
    epoch budget; 0 keeps it constant, as in the paper."""
    lr_factor: float = 0.5
    """See ``lr_patience``."""
    # Fixed for a run's life: its start and its data order.
    seed: int = 0
    """Seeds the initialisation (and a fitted start's sample), every epoch's shuffle and dropout."""
    batch_size: int = 64
    """Notes a step, over every replica of every worker."""

    def __post_init__(self) -> None:
        for key, least in (("batch_size", 1), ("patience", 1), ("max_epochs", 1), ("seed", 0), ("lr_patience", 0)):
            value = getattr(self, key)
            if not _is_int(value) or value < least:
                kind = "a positive" if least else "a non-negative"
                raise ParameterError(f"schedule: {key} must be {kind} int, got {value!r}")
        for key, low, high in (("learning_rate", 0.0, float("inf")), ("lr_factor", 0.0, 1.0),
                               ("min_delta", 0.0, 1.0)):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value < high:
                raise ParameterError(f"schedule: {key} must be a number in [{low}, {high}), got {value!r}")
            object.__setattr__(self, key, float(value))
        if self.learning_rate <= 0:
            raise ParameterError(f"schedule: learning_rate must be positive, got {self.learning_rate}")
        if self.lr_factor <= 0:
            raise ParameterError(f"schedule: lr_factor must be in (0, 1), got {self.lr_factor}")
        if self.clipnorm is not None:
            if isinstance(self.clipnorm, bool) or not isinstance(self.clipnorm, (int, float)) or not (
                0 < self.clipnorm < float("inf")
            ):
                raise ParameterError(f"schedule: clipnorm must be null or a positive number, got {self.clipnorm!r}")
            object.__setattr__(self, "clipnorm", float(self.clipnorm))

    def replace(self, **changes: Any) -> FitSchedule:
        """A copy with ``changes`` applied (validated)."""
        unknown = [k for k in changes if k not in SCHEDULE_FIELDS]
        if unknown:
            raise ParameterError(f"schedule: unknown keys {unknown}; the schedule fields are {list(SCHEDULE_FIELDS)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with every field."""
        return {f: getattr(self, f) for f in SCHEDULE_FIELDS}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "config") -> FitSchedule:
        """Build from a dict with exactly the fields of :class:`FitSchedule` (those added since the first runs
        default to the values those runs had); ``source`` names the config it is read from in errors."""
        if isinstance(data, dict):
            data = {**{k: v for k, v in _LEGACY_DEFAULTS.items() if k not in data}, **data}
        return exact_record(cls, data, fields=SCHEDULE_FIELDS, what="schedule", source=source)


#: Every field of the schedule, in order.
SCHEDULE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FitSchedule))
#: The fields a resumed run may change (see the module docstring for why seed and batch_size may not).
RESUMABLE_FIELDS: tuple[str, ...] = tuple(f for f in SCHEDULE_FIELDS if f not in ("seed", "batch_size"))

# Fields added after runs were saved without them; such a run's schedule loads with these values.
_LEGACY_DEFAULTS: dict[str, Any] = {"lr_patience": 0, "lr_factor": 0.5, "min_delta": 0.0, "clipnorm": None}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
