"""What every model family's architecture settings share: a frozen object, its JSON and its checks.

Each family declares its own settings in its own file (:class:`~training.model.conv.ConvSettings`,
:class:`~training.model.patch.PatchSettings`, ...) as a frozen dataclass subclassing
:class:`ArchitectureSettings`, and names it as its :attr:`~training.model.family.ModelFamily.settings`; a
:class:`~training.model.config.ModelConfig` holds one such object beside the family's name and the schedule.
So a family's settings are written once, where the family reads them, and adding a family touches no shared
config. The settings are plain Python (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

from synth.errors import ParameterError
from synth.json_files import exact_keys

T = TypeVar("T")

__all__ = ["ArchitectureSettings", "is_int", "check_int", "check_choice", "check_number", "int_tuple", "exact_record"]


def exact_record(cls: type[T], data: Any, *, fields: tuple[str, ...], what: str, source: str) -> T:
    """``cls(**data)`` for a JSON object ``data`` with exactly ``fields``; ParameterError naming ``source``
    and ``what`` (the object's name inside it) for anything else, or for what ``cls`` refuses."""
    exact_keys(data, keys=fields, where=f"{source}: {what}", error=ParameterError)
    try:
        return cls(**data)
    except ParameterError as exc:
        raise ParameterError(f"{source}: {exc}") from None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(settings: Any, key: str, *, least: int) -> None:
    """ParameterError unless ``settings.key`` is an int of at least ``least``."""
    value = getattr(settings, key)
    if not is_int(value) or value < least:
        kind = "a positive" if least == 1 else "a non-negative" if least == 0 else f"an (>= {least})"
        raise ParameterError(f"{settings.what}: {key} must be {kind} int, got {value!r}")


def check_choice(settings: Any, key: str, choices: tuple[Any, ...]) -> None:
    """ParameterError unless ``settings.key`` is one of ``choices``."""
    if getattr(settings, key) not in choices:
        raise ParameterError(f"{settings.what}: {key}={getattr(settings, key)!r} is not one of {choices}")


def check_number(settings: Any, key: str, low: float, high: float) -> None:
    """ParameterError unless ``settings.key`` is a number in [low, high); stores it as a float."""
    value = getattr(settings, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value < high:
        raise ParameterError(f"{settings.what}: {key} must be a number in [{low}, {high}), got {value!r}")
    object.__setattr__(settings, key, float(value))


def int_tuple(settings: Any, key: str) -> tuple[Any, ...]:
    """``settings.key`` as a tuple (JSON gives lists), stored back; its entries are the caller's to check."""
    value = getattr(settings, key)
    if isinstance(value, list):
        value = tuple(value)
        object.__setattr__(settings, key, value)
    if not isinstance(value, tuple):
        raise ParameterError(f"{settings.what}: {key} must be a list, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class ArchitectureSettings:
    """Base of every family's settings: subclasses are frozen dataclasses whose fields all have defaults and
    whose ``__post_init__`` checks them (raising :class:`ParameterError`)."""

    #: How errors name these settings ("conv2d architecture").
    layout: ClassVar[str] = ""

    @property
    def what(self) -> str:
        return f"{self.layout} architecture"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> ArchitectureSettings:
        """A copy with ``changes`` applied (validated); a key it does not hold is refused by name and value."""
        unknown = [f"{k}={v!r}" for k, v in changes.items() if k not in self.field_names()]
        if unknown:
            raise ParameterError(f"the {self.layout} layout does not take {', '.join(unknown)}; its architecture "
                                 f"fields are {list(self.field_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with every field (tuples as lists)."""
        return {f: list(v) if isinstance(v, tuple) else v for f in self.field_names() for v in (getattr(self, f),)}

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> ArchitectureSettings:
        """Build from a dict with exactly this class's fields; ``source`` names where it was read in errors."""
        what = f"{cls.layout} architecture" if isinstance(data, dict) else "architecture"
        return exact_record(cls, data, fields=cls.field_names(), what=what, source=source)
