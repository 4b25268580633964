"""What every model family gives training and export: the one interface behind ``ModelConfig.layout``.

A family is one way of building the autoencoder from a :class:`~training.model.config.ModelConfig`: the
paper's convolutional stack (``conv2d``, :mod:`training.model.conv`), the linear patch code (``patch``,
:mod:`training.model.patch`), the pitch-conditioned keyboard and home-key models (``keyboard``,
:mod:`training.model.keyboard`; ``home_key``, :mod:`training.model.home_key`). Each declares its architecture
settings in its own file (:attr:`ModelFamily.settings`, a frozen :class:`~training.model.settings.ArchitectureSettings`)
and reads them as ``config.architecture``. Fitting, evaluation and export ask the family, never the layout's
name; adding a family is one new file and one line in :mod:`training.model.families`.

Shapes (``params`` the spectrogram contract)::

    encoder  mel (batch, n_mels, frames) [, pitch (batch, 1) int32]      -> latent (batch, *latent_shape)
    decoder  latent (batch, *latent_shape) [, pitch (batch, 1) int32]    -> mel (batch, n_mels, frames)
    trainer  what :meth:`ModelFamily.trainer_inputs` gives               -> mel (batch, n_mels, frames)

A pitch-conditioned family's encoder takes the pitch of the note it encodes and its decoder the key to sound;
its trainer takes (mel, source pitch, target pitch), so one instrument's note at one key can be taught to
decode as its note at another.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.schedule import FitSchedule
from training.model.settings import ArchitectureSettings

__all__ = ["ModelFamily", "FamilyConfig"]


class FamilyConfig(Protocol):
    """What a family reads of a :class:`~training.model.config.ModelConfig` (so the families need not import
    the config, which finds them through the registry)."""

    name: str
    layout: str
    architecture: Any
    schedule: FitSchedule


class ModelFamily:
    """One model family (see the module docstring). Subclasses set :attr:`settings` and implement
    :meth:`build`; the rest has defaults that fit a family without pitch input or a fitted start."""

    #: The family's architecture settings (a config's ``architecture``); their ``layout`` names the family.
    settings: type[ArchitectureSettings] = ArchitectureSettings
    #: Whether encoder and decoder take a pitch input (one MIDI key per note) beside the mel or latent.
    pitch_conditioned: bool = False
    #: Whether the exported decoder takes any number of latent columns, so it is its own tile decoder.
    decodes_any_columns: bool = False

    @property
    def layout(self) -> str:
        """The ``ModelConfig.layout`` value naming this family."""
        return self.settings.layout

    # ------------------------------------------------------------------ shapes

    def downsampling(self, config: FamilyConfig) -> int:
        """The factor by which the encoder shrinks the frame axis (and the mel axis, where it has one)."""
        raise NotImplementedError

    def downsampled_axes(self, params: SpectrogramParams) -> tuple[tuple[str, int], ...]:
        """The input axes that must divide by :meth:`downsampling`, as (name, size)."""
        return (("n_mels", params.n_mels), ("frames", params.frames))

    def check_input_shape(self, config: FamilyConfig, *, params: SpectrogramParams) -> None:
        """Raise :class:`ParameterError` unless the input's downsampled axes divide by the family's factor."""
        d = self.downsampling(config)
        bad = [f"{name}={value}" for name, value in self.downsampled_axes(params) if value % d]
        if bad:
            raise ParameterError(
                f"model {config.name!r}: input {params.n_mels} x {params.frames} cannot be divided by the "
                f"architecture's total downsampling {d}; {', '.join(bad)} is not a "
                f"multiple of {d}"
            )

    def latent_shape(self, config: FamilyConfig, *, params: SpectrogramParams) -> tuple[int, ...]:
        """Shape of one latent (no batch axis)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ Keras models
    def build(self, config: FamilyConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        """``(trainer, encoder, decoder)`` Keras models sharing their weights; with ``decoder_columns`` the
        decoder takes a window of that many latent columns and the trainer is None."""
        raise NotImplementedError

    def initialise(self, models: tuple[Any, Any, Any], x: Any, *, pitch: np.ndarray, config: FamilyConfig,
                   log: Any = None) -> None:
        """Set a new run's starting weights from its training notes ``x`` [shape=(N, n_mels, frames)] and their
        MIDI keys ``pitch`` [shape=(N,)], in place; the default keeps Keras's random initialisation. ``x`` is
        read by slices like an array (fit hands it :class:`~training.datasets.features.NoteRows`): read it a
        batch at a time, never whole."""

    #: Whether :meth:`initialise` reads the training notes (so fit hands it a sample of them).
    fitted_start: bool = False
    #: Whether the start is :meth:`start` over the whole features folder instead (a fit that streams every
    #: training note, or needs which notes are one instrument's: the home-key family's key maps).
    starts_from_features: bool = False

    def start(self, models: tuple[Any, Any, Any], feats: Any, train_rows: np.ndarray, *, pitch: np.ndarray,
              config: FamilyConfig, log: Any = None, start_map: Any = None) -> None:
        """Set a new run's starting weights from the training rows ``train_rows`` of the features folder
        ``feats`` (notes of MIDI keys ``pitch`` [shape=(N,)], every row's), in place: the families with
        :attr:`starts_from_features` implement it. ``start_map``: what :meth:`load_start` read, to keep."""
        raise NotImplementedError

    def load_start(self, source: Any, config: FamilyConfig, *, params: SpectrogramParams) -> Any:
        """A trained model's part that a new run's :meth:`start` keeps (``melsynth train --start-from``), read
        and checked before anything is written; a family whose start takes none refuses it."""
        raise ParameterError(f"--start-from {source}: the {config.architecture.layout} layout's start takes no "
                             "trained model (only the home_key layout's does: a one-pitch patch bundle)")

    def export_decoder(self, decoder: Any, config: FamilyConfig, *, params: SpectrogramParams,
                       columns: int | None = None) -> tuple[Any, tuple[int | None, ...]]:
        """(the Keras decoder export converts, its latent input shape): the trained ``decoder`` itself, or an
        exact cheaper or more general graph with its weights; with ``columns``, the decoder of a window of
        that many latent columns."""
        if columns is not None:
            raise ParameterError(f"model {config.name!r}: its family has no windowed decoder")
        return decoder, self.latent_shape(config, params=params)

    def export_notes(self, config: FamilyConfig) -> list[str]:
        """Lines for the export log and bundle record about the graph :meth:`export_decoder` gives."""
        return []

    # ------------------------------------------------------------------ inputs
    def trainer_inputs(self, x: Any, source_pitch: Any, target_pitch: Any) -> Any:
        """What the trainer takes for notes ``x`` at ``source_pitch`` asked to sound at ``target_pitch``."""
        return [x, source_pitch, target_pitch] if self.pitch_conditioned else x

    def encoder_inputs(self, x: Any, pitch: Any) -> Any:
        """What the encoder takes for notes ``x`` at keys ``pitch``."""
        return [x, pitch] if self.pitch_conditioned else x

    def decoder_inputs(self, z: Any, pitch: Any) -> Any:
        """What the decoder takes for latents ``z`` to sound at keys ``pitch``."""
        return [z, pitch] if self.pitch_conditioned else z

    def check_pitches(self, pitch: np.ndarray, *, where: str) -> None:
        """Raise :class:`DataError` unless the MIDI keys ``pitch`` [shape=(N,)] of the notes named by ``where``
        can train this family (a pitch-conditioned family needs keys 0..127, and more than one)."""
        if self.pitch_conditioned and pitch.size and (pitch.min() < 0 or pitch.max() > 127):
            raise DataError(f"{where}: note pitches must be MIDI keys 0..127, found {int(pitch.min())}.."
                            f"{int(pitch.max())}")

    # ------------------------------------------------------------------ training pairs
    def targets(self, rows: np.ndarray, *, notes: list[dict[str, Any]], seed: int, epoch: int) -> np.ndarray:
        """The row each of ``rows`` is trained to reconstruct in ``epoch``: itself, unless the family learns
        across keys (a pure function of seed and epoch, so a resumed run draws the same)."""
        return rows
