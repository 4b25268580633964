"""The performer's control state (latent, XY pad, macros, method, gain) and its immutable snapshot.

Only the engine's own thread mutates a :class:`ControlState`; other threads read the
:class:`ControlSnapshot` it publishes (a frozen object swapped by one attribute assignment).

The latent the decoder sees is ``base + sum_k macro[k] * stds[k] * components[k]``: the base comes from the
last ``/synth/latent``, ``/synth/preset``, ``/synth/morph`` or ``/synth/xy`` (``/synth/latent/set`` edits
it), and the macros are offsets on top of it that persist across base changes (0 = the base as it is).

The state also says where the latent lies in terms the engine has decoded timbres for
(:meth:`ControlState.coordinates`): the base as weights over the presets while it is a blend of them (a
preset, a morph, the XY pad), and the macro settings. That lets the live engine estimate a new timbre from
timbres it has already decoded before the decoder answers (see ``Engine`` and docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from synth.control.messages import (
    Command,
    Morph,
    SetCorners,
    SetLatent,
    SetLatentValue,
    SetMacro,
    SetPreset,
    SetXY,
)
from synth.errors import ParameterError

__all__ = ["ControlState", "ControlSnapshot", "Coordinates"]


@dataclasses.dataclass(frozen=True, eq=False)
class Coordinates:
    """Where a latent lies: ``latent = base + sum_k macros[k] * stds[k] * components[k]``, with
    ``base = sum_i weights[i] * preset_i`` while it is a blend of presets.

    weights : np.ndarray [shape=(n_presets,)] in the bundle's preset order (sums to 1), or None when the base
        is an arbitrary vector (``/synth/latent``, ``/synth/latent/set``)
    base_version : counts the arbitrary bases set so far (two coordinates without weights share a base only
        when their versions are equal)
    macros : tuple of float, the macro settings (standard deviations)
    latent : np.ndarray [shape=(latent_size,), float32] the latent itself (what the decoder is given)
    """

    weights: np.ndarray | None
    base_version: int
    macros: tuple[float, ...]
    latent: np.ndarray


@dataclasses.dataclass(frozen=True)
class ControlSnapshot:
    """What the controls are set to (for status replies; never mutated)."""

    preset: str
    corners: tuple[str, str, str, str]
    xy: tuple[float, float]
    macros: tuple[float, ...]
    method: str
    gain: float


class ControlState:
    """Latent controls of one engine.

    Parameters
    ----------
    presets : dict name -> float32 array [shape=latent_shape]
    latent_shape : tuple of int
    components : np.ndarray [shape=(K, *latent_shape)] or None; stds : np.ndarray [shape=(K,)] or None
    initial : str | None  the preset to start from (None: the first preset, or zeros without presets)
    """

    def __init__(
        self,
        *,
        presets: dict[str, np.ndarray],
        latent_shape: tuple[int, ...],
        components: np.ndarray | None,
        stds: np.ndarray | None,
        initial: str | None = None,
    ) -> None:
        self._presets = {name: np.asarray(v, dtype=np.float64).reshape(-1) for name, v in presets.items()}
        self.latent_shape = tuple(latent_shape)
        size = int(np.prod(self.latent_shape))
        if components is not None and stds is not None and len(stds) > 0:
            self._directions = np.asarray(components, dtype=np.float64).reshape(len(stds), size) * np.asarray(
                stds, dtype=np.float64
            ).reshape(-1, 1)
        else:
            self._directions = np.zeros((0, size))
        self.macros = np.zeros(self._directions.shape[0])
        names = list(self._presets)
        self._index = {name: i for i, name in enumerate(names)}
        # The base as weights over the presets, or None once it is an arbitrary vector (/synth/latent...).
        self._weights: np.ndarray | None = None
        self._base_version = 0
        if initial is None:
            initial = names[0] if names else None
        if initial is not None:
            self.base = self._presets[initial].copy()
            self.preset_label = initial
            self._weights = self._one_hot(initial)
        else:
            self.base = np.zeros(size)
            self.preset_label = "zeros"
        corners = (names * 4)[:4] if names else []
        self.corners: tuple[str, ...] = tuple(corners)
        self.xy = (0.5, 0.5)

    @classmethod
    def for_bundle(cls, bundle, *, initial: str | None = None) -> ControlState:
        """The controls a bundle's engine starts with: on preset ``initial`` (None: the first), or on the
        macros' mean latent when the bundle has no presets. Raises ParameterError for an unknown ``initial``."""
        if initial is not None and initial not in bundle.presets:
            raise ParameterError(f"unknown preset {initial!r}")
        macros = getattr(bundle, "macros", None)
        state = cls(
            presets={name: p.latent for name, p in bundle.presets.items()},
            latent_shape=tuple(bundle.latent_shape),
            components=None if macros is None else macros.components,
            stds=None if macros is None else macros.stds,
            initial=initial,
        )
        if not bundle.presets and macros is not None:
            state.base = np.asarray(macros.mean, dtype=np.float64).reshape(-1).copy()
            state.preset_label = "mean"
        return state

    def apply(self, command: Command) -> bool:
        """Apply a latent command (pre-validated); True when the decoded latent changed."""
        effect = self.EFFECTS.get(type(command))
        return False if effect is None else effect(self, command)

    def _set_base(self, values: np.ndarray, label: str, weights: np.ndarray | None) -> None:
        self.base = values
        self.preset_label = label
        self._weights = weights
        if weights is None:  # an arbitrary vector: the weights over the presets no longer describe it
            self._base_version += 1

    def _apply_latent(self, command: SetLatent) -> bool:
        self._set_base(np.asarray(command.values, dtype=np.float64).reshape(-1).copy(), "latent", None)
        return True

    def _apply_latent_value(self, command: SetLatentValue) -> bool:
        # In place: the base is this state's own array (every other effect makes a new one, and readers get
        # copies: latent(), coordinates()). A copy of the whole latent per message was most of what a flood of
        # /synth/latent/set cost the synthesis thread besides its decodes.
        self.base[command.index] = command.value
        self._set_base(self.base, "latent", None)
        return True

    def _apply_preset(self, command: SetPreset) -> bool:
        self._set_base(self._presets[command.name].copy(), command.name, self._one_hot(command.name))
        return True

    def _apply_morph(self, command: Morph) -> bool:
        a, b = self._presets[command.a], self._presets[command.b]
        self._set_base((1.0 - command.t) * a + command.t * b, f"morph:{command.a},{command.b},{command.t:.3f}",
                       self._one_hot(command.a, 1.0 - command.t) + self._one_hot(command.b, command.t))
        return True

    def _apply_corners(self, command: SetCorners) -> bool:
        self.corners = (command.a, command.b, command.c, command.d)
        self._blend_corners()
        return True

    def _apply_xy(self, command: SetXY) -> bool:
        self.xy = (command.x, command.y)
        if len(self.corners) != 4:
            return False
        self._blend_corners()
        return True

    def _apply_macro(self, command: SetMacro) -> bool:
        self.macros = self.macros.copy()
        self.macros[command.k] = command.value
        return True

    #: Latent command type -> its effect (the engine sends every latent control of the vocabulary here).
    EFFECTS = {
        SetLatent: _apply_latent, SetLatentValue: _apply_latent_value, SetPreset: _apply_preset,
        Morph: _apply_morph, SetCorners: _apply_corners, SetXY: _apply_xy, SetMacro: _apply_macro,
    }

    def _blend_corners(self) -> None:
        x, y = self.xy
        a, b, c, d = (self._presets[n] for n in self.corners)
        blend = ((1 - x) * (1 - y), x * (1 - y), (1 - x) * y, x * y)
        self.base = blend[0] * a + blend[1] * b + blend[2] * c + blend[3] * d
        self.preset_label = f"xy:{x:.3f},{y:.3f}"
        self._weights = sum(self._one_hot(name, w) for name, w in zip(self.corners, blend, strict=True))

    def _one_hot(self, name: str, weight: float = 1.0) -> np.ndarray:
        out = np.zeros(len(self._index))
        out[self._index[name]] = weight
        return out

    @property
    def macro_directions(self) -> np.ndarray:
        """Each macro's latent offset per unit setting, ``stds[k] * components[k]`` [shape=(K, latent_size)]."""
        return self._directions

    def coordinates(self, latent: np.ndarray | None = None) -> Coordinates:
        """Where the current latent lies (see :class:`Coordinates`); ``latent``: :meth:`latent`, when the
        caller has it already."""
        weights = None if self._weights is None else self._weights.copy()
        latent = self.latent() if latent is None else latent
        flat = np.array(latent, dtype=np.float32).reshape(-1)
        flat.setflags(write=False)
        return Coordinates(weights=weights, base_version=self._base_version,
                           macros=tuple(float(v) for v in self.macros), latent=flat)

    def latent(self) -> np.ndarray:
        """The latent to decode: base plus macro offsets, float32 [shape=latent_shape]."""
        z = self.base + self.macros @ self._directions if self._directions.shape[0] else self.base
        return z.reshape(self.latent_shape).astype(np.float32)

    def snapshot(self, *, method: str, gain: float) -> ControlSnapshot:
        corners = tuple(self.corners) if len(self.corners) == 4 else ("", "", "", "")
        return ControlSnapshot(
            preset=self.preset_label,
            corners=corners,  # type: ignore[arg-type]
            xy=self.xy,
            macros=tuple(float(v) for v in self.macros),
            method=method,
            gain=gain,
        )
