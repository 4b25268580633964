"""The model families by layout name: the one place a new family is registered.

A config's ``architecture`` is one family's settings, whose ``layout`` names one of :data:`FAMILIES`;
everything else asks :func:`family_of` (see :mod:`training.model.family` for the interface). The family
modules import Keras only inside their methods, so this registry is cheap to import.
"""

from __future__ import annotations

from typing import Any

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.conv import ConvFamily
from training.model.family import FamilyConfig, ModelFamily
from training.model.home_key import HomeKeyFamily
from training.model.keyboard import KeyboardFamily
from training.model.patch import PatchFamily

__all__ = ["FAMILIES", "family_of", "build_models", "latent_shape", "check_input_shape"]

FAMILIES: dict[str, ModelFamily] = {family.layout: family for family in (ConvFamily(), PatchFamily(), KeyboardFamily(),
                                                                   HomeKeyFamily())}


def family_of(config: FamilyConfig) -> ModelFamily:
    """The family that builds ``config`` (a :class:`~training.model.config.ModelConfig`)."""
    try:
        return FAMILIES[config.layout]
    except KeyError:
        raise ParameterError(f"model {config.name!r}: layout {config.layout!r} is not one of {tuple(FAMILIES)}") from None


def build_models(config: FamilyConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
                 fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
    """``(trainer, encoder, decoder)`` Keras models of ``config`` (see :meth:`ModelFamily.build`)."""
    return family_of(config).build(config, params=params, decoder_columns=decoder_columns,
                                   fold_upsampling=fold_upsampling)


def latent_shape(config: FamilyConfig, *, params: SpectrogramParams) -> tuple[int, ...]:
    """Shape of one latent of ``config`` (no batch axis)."""
    return family_of(config).latent_shape(config, params=params)


def check_input_shape(config: FamilyConfig, *, params: SpectrogramParams) -> None:
    """Raise ParameterError unless ``config``'s family can take inputs shaped by ``params``."""
    family_of(config).check_input_shape(config, params=params)
