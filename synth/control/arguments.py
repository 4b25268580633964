"""The kinds of argument a control message takes, each reading a wire value and checking it against a bundle.

An argument kind does two things, kept apart because they happen at different places: :meth:`read` turns
what arrived on the wire (OSC ints and floats, JSON numbers, strings) into the command's field value,
checking only its type; :meth:`check` checks a field value against what this engine accepts
(:class:`~synth.control.spec.ControlSpec`: the note range, the presets, the latent size). A message read from
the wire is checked once, at the boundary; a command built in code is checked by the same :meth:`check`.

Numbers may come as ints or floats (Pure Data sends only floats); a whole-number argument takes a float
only when it is whole. Booleans are not numbers.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from synth.bundle.latent_limit import LATENT_LIMIT
from synth.errors import ParameterError

if TYPE_CHECKING:
    from synth.control.spec import ControlSpec

__all__ = ["Argument", "Number", "Whole", "Choice", "Vector", "Target"]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def read_number(x: Any, label: str) -> float:
    """``x`` as a finite float, or ParameterError naming ``label``."""
    if not _is_number(x):
        raise ParameterError(f"{label} must be a number, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ParameterError(f"{label} must be finite, got {x}")
    return x


def read_text(x: Any, label: str) -> str:
    """``x`` when it is a string, or ParameterError naming ``label``."""
    if not isinstance(x, str):
        raise ParameterError(f"{label} must be a string, got {type(x).__name__}")
    return x


@dataclasses.dataclass(frozen=True)
class Argument:
    """One argument: the command ``field`` it fills, its ``label`` in errors and docs, its ``help``, and its
    ``default`` when it may be left out (None: required; only trailing arguments have one)."""

    field: str
    label: str
    help: str
    default: Any = None

    def arity(self, spec: ControlSpec) -> int:
        """How many wire values it takes."""
        return 1

    def read(self, values: list, spec: ControlSpec) -> Any:
        """The field value from its ``arity`` wire values (type checks only)."""
        raise NotImplementedError

    def check(self, value: Any, spec: ControlSpec) -> None:
        """ParameterError when ``value`` is not one this engine accepts."""
        raise NotImplementedError

    def write(self, value: Any) -> list:
        """The wire values that :meth:`read` turns back into ``value``."""
        return [value]

    def describe(self) -> str:
        """The argument for the docs: label and what it takes."""
        return self.label


@dataclasses.dataclass(frozen=True)
class Number(Argument):
    """A finite number in ``lo..hi``."""

    lo: float = 0.0
    hi: float = 1.0

    def read(self, values: list, spec: ControlSpec) -> float:
        return read_number(values[0], self.label)

    def check(self, value: Any, spec: ControlSpec) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{self.label} must be a number, got {type(value).__name__}")
        if not math.isfinite(float(value)):
            raise ParameterError(f"{self.label} must be finite, got {value}")
        if not self.lo <= value <= self.hi:
            raise ParameterError(f"{self.label} {value} out of range {self.lo:g}..{self.hi:g}")

    def describe(self) -> str:
        default = "" if self.default is None else f", default {self.default:g}"
        return f"{self.label} ({self.lo:g}..{self.hi:g}{default})"


@dataclasses.dataclass(frozen=True)
class Whole(Argument):
    """A whole number in the range the spec's ``bounds`` property gives (``(lo, hi)``; ``hi < lo``: none is
    accepted, and ``empty`` says why)."""

    bounds: str = ""
    empty: str = ""

    def read(self, values: list, spec: ControlSpec) -> int:
        x = read_number(values[0], self.label)
        if x != int(x):
            raise ParameterError(f"{self.label} must be a whole number, got {x}")
        return int(x)

    def check(self, value: Any, spec: ControlSpec) -> None:
        lo, hi = getattr(spec, self.bounds)
        if hi < lo:
            raise ParameterError(self.empty or f"no {self.label} is accepted")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParameterError(f"{self.label} must be a whole number, got {value!r}")
        if not lo <= value <= hi:
            raise ParameterError(f"{self.label} {value} out of range {lo}..{hi}{spec.explain(self.bounds)}")

    def describe(self) -> str:
        return f"{self.label} (whole)"


@dataclasses.dataclass(frozen=True)
class Choice(Argument):
    """A name among the spec's ``among`` (its presets, its methods); ``hint``: list them in the error."""

    among: str = ""
    hint: bool = False

    def read(self, values: list, spec: ControlSpec) -> str:
        return read_text(values[0], self.label)

    def check(self, value: Any, spec: ControlSpec) -> None:
        names = getattr(spec, self.among)
        if not isinstance(value, str) or value not in names:
            use = f" (use {' or '.join(names)})" if self.hint else ""
            raise ParameterError(f"unknown {self.label} {str(value)[:100]!r}{use}")


@dataclasses.dataclass(frozen=True)
class Vector(Argument):
    """The whole latent: the spec's latent size of numbers within +-``limit``, as a read-only float32 array
    of the latent's shape."""

    limit: float = LATENT_LIMIT

    def arity(self, spec: ControlSpec) -> int:
        return spec.latent_size

    def read(self, values: list, spec: ControlSpec) -> np.ndarray:
        if not all(_is_number(a) for a in values):
            raise ParameterError(f"{self.label} values must all be numbers")
        out = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(out)):
            raise ParameterError(f"{self.label} contains NaN or Inf")
        out = out.astype(np.float32).reshape(spec.latent_shape)
        out.setflags(write=False)
        return out

    def check(self, value: Any, spec: ControlSpec) -> None:
        if not isinstance(value, np.ndarray) or value.size != spec.latent_size:
            raise ParameterError(f"{self.label} needs {spec.latent_size} values")
        if not np.all(np.isfinite(value)):
            raise ParameterError(f"{self.label} contains NaN or Inf")
        if np.any(np.abs(value) > self.limit):
            raise ParameterError(f"{self.label} values must lie within +-{self.limit:g}")

    def write(self, value: Any) -> list:
        return [float(v) for v in np.asarray(value).reshape(-1)]

    def describe(self) -> str:
        return f"{self.label}: N numbers (N = latent size)"


@dataclasses.dataclass(frozen=True)
class Target(Argument):
    """What a MIDI controller can move (:mod:`synth.control.targets`)."""

    def read(self, values: list, spec: ControlSpec) -> str:
        return read_text(values[0], self.label)

    def check(self, value: Any, spec: ControlSpec) -> None:
        from synth.control.targets import parse_target

        parse_target(value)
