"""A toy model family, whole in this one file: what adding a family to melsynth takes.

Its settings (:class:`ToySettings`) and its family (:class:`ToyFamily`: one Dense layer from the whole note to
``latent`` values and one back) are all it declares; registering it is one line,
``FAMILIES[ToyFamily().layout] = ToyFamily()`` (in :mod:`training.model.families` for a real family, by the
test's fixture here). Nothing else in the project is edited: the config, its JSON, fitting, resuming and
loading a run find the family through the registry (tests/test_family_extension.py proves it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import FamilyConfig, ModelFamily
from training.model.settings import ArchitectureSettings, check_choice, check_int


@dataclasses.dataclass(frozen=True)
class ToySettings(ArchitectureSettings):
    """``latent`` values per note, reached by one Dense layer with ``activation``."""

    layout: ClassVar[str] = "toy"

    latent: int = 8
    activation: str = "linear"

    def __post_init__(self) -> None:
        check_int(self, "latent", least=1)
        check_choice(self, "activation", ("linear", "tanh"))


class ToyFamily(ModelFamily):
    """An autoencoder of the whole note: encoder Dense(latent), decoder Dense(n_mels * frames) and a sigmoid."""

    settings = ToySettings

    def downsampling(self, config: FamilyConfig) -> int:
        return 1

    def latent_shape(self, config: FamilyConfig, *, params: SpectrogramParams) -> tuple[int, ...]:
        return (config.architecture.latent,)

    def build(self, config: FamilyConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        import keras
        from keras import layers

        if decoder_columns is not None:
            raise ParameterError(f"model {config.name!r}: the toy family has no latent columns to window")
        n_mels, frames = params.n_mels, params.frames
        x_in = keras.Input(shape=(n_mels, frames), name="log_mel")
        h = layers.Flatten(name="flatten")(x_in)
        z = layers.Dense(config.architecture.latent, activation=config.architecture.activation, name="toy_encode")(h)
        encoder = keras.Model(x_in, z, name="encoder")
        z_in = keras.Input(shape=(config.architecture.latent,), name="latent")
        # A sigmoid keeps the output on the unit scale the metrics of a run's test split expect.
        y = layers.Dense(n_mels * frames, activation="sigmoid", dtype="float32", name="toy_decode")(z_in)
        y = layers.Reshape((n_mels, frames), dtype="float32", name="mel")(y)
        decoder = keras.Model(z_in, y, name="decoder")
        a_in = keras.Input(shape=(n_mels, frames), name="log_mel")
        trainer = keras.Model(a_in, decoder(encoder(a_in)), name=f"autoencoder_{config.name}")
        return trainer, encoder, decoder
