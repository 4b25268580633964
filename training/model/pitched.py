"""What the pitch-conditioned patch families share: the trainer of (mel, source key, target key), the check
that the notes span several keys, the pairs they train on, and the exported decoder over any number of latent
columns. The keyboard family (:mod:`training.model.keyboard`) and the home-key family
(:mod:`training.model.home_key`) each give only their encoder and decoder graphs.

Shapes (C = frames / ``patch_frames``, K = ``filters[-1]`` of the settings, pitch a MIDI key 0..127 as int32)::

    encoder  mel (batch, n_mels, frames), pitch (batch, 1)  -> latent (batch, 1, C, K)
    decoder  latent (batch, 1, C', K), pitch (batch, 1)     -> mel (batch, n_mels, C' * patch_frames)   any C'
    trainer  mel, source pitch, target pitch                -> mel at the target pitch
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import FamilyConfig
from training.model.patch import PatchFamily

__all__ = ["PitchedPatchFamily", "partner_rows", "CROSS_KEY_SHARE"]

#: The share of each epoch's training notes asked to reconstruct a note at another key (the rest: themselves).
CROSS_KEY_SHARE = 0.5


def partner_rows(rows: np.ndarray, *, notes: list[dict[str, Any]], seed: int, epoch: int,
                 cross_share: float = CROSS_KEY_SHARE) -> np.ndarray:
    """For each of ``rows`` [shape=(N,)], the row it learns to reconstruct in ``epoch`` [shape=(N,)]: itself, or
    (for a seeded ``cross_share`` of them) a row of ``rows`` with the same instrument and velocity drawn at
    random, usually at another key. A pure function of (rows, seed, epoch), so a resumed run draws the same."""
    rows = np.asarray(rows, dtype=np.int64)
    groups: dict[tuple[str, int], list[int]] = {}
    for position, row in enumerate(rows):
        note = notes[int(row)]
        groups.setdefault((str(note.get("instrument_str")), int(note.get("velocity", -1))), []).append(position)
    rng = np.random.default_rng([seed, epoch + 1, 104729])  # epoch -1: the validation pairs
    cross = rng.random(len(rows)) < cross_share
    draw = rng.random(len(rows))
    out = rows.copy()
    for members in groups.values():
        members_arr = np.asarray(members)
        picked = members_arr[(draw[members_arr] * len(members_arr)).astype(np.int64)]
        chosen = cross[members_arr]
        out[members_arr[chosen]] = rows[picked[chosen]]
    return out


class PitchedPatchFamily(PatchFamily):
    """A patch family with the pitch as an input to encoder and decoder (see the module docstring); subclasses
    give :meth:`encoder_graph` and :meth:`decoder_graph`."""

    pitch_conditioned = True

    def encoder_graph(self, keras: Any, config: FamilyConfig, *, params: SpectrogramParams) -> Any:
        """The Keras encoder ([mel, pitch] -> latent)."""
        raise NotImplementedError

    def decoder_graph(self, keras: Any, config: FamilyConfig, *, params: SpectrogramParams,
                      columns: int | None) -> Any:
        """The Keras decoder ([latent of ``columns`` columns (None: any number), pitch] -> mel)."""
        raise NotImplementedError

    def build(self, config: FamilyConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        import keras

        self.check_input_shape(config, params=params)
        columns = params.frames // config.architecture.patch_frames
        if decoder_columns is not None and not 1 <= decoder_columns <= columns:
            raise ParameterError(f"decoder window of {decoder_columns} columns: the latent has 1..{columns}")
        encoder = self.encoder_graph(keras, config, params=params)
        decoder = self.decoder_graph(keras, config, params=params,
                                     columns=columns if decoder_columns is None else int(decoder_columns))
        if decoder_columns is not None:
            return None, encoder, decoder
        x_in = keras.Input(shape=(params.n_mels, params.frames), name="log_mel")
        source = keras.Input(shape=(1,), dtype="int32", name="source_pitch")
        target = keras.Input(shape=(1,), dtype="int32", name="target_pitch")
        trainer = keras.Model([x_in, source, target], decoder([encoder([x_in, source]), target]),
                              name=f"autoencoder_{config.name}")
        return trainer, encoder, decoder

    def check_pitches(self, pitch: np.ndarray, *, where: str) -> None:
        keys = np.unique(pitch)
        if keys.size < 2:
            raise DataError(f"{where}: a pitch-conditioned model learns across keys, and these notes are all at "
                            f"key {', '.join(str(int(k)) for k in keys) or '(none)'}; render the notes at several "
                            "keys (melsynth dataset soundfont --pitch 36,48,60,72,84)")
        super().check_pitches(pitch, where=where)

    def export_decoder(self, decoder: Any, config: FamilyConfig, *, params: SpectrogramParams,
                       columns: int | None = None) -> tuple[Any, tuple[int | None, ...]]:
        # Every path acts on one latent column at a time: the graph over any number of columns is the decoder
        # of a whole note and its own tile decoder, with the trained weights layer by layer.
        import keras

        graph = self.decoder_graph(keras, config, params=params, columns=None)
        for layer in graph.layers:
            for mine, trained in zip(layer.weights, decoder.get_layer(layer.name).weights, strict=True):
                mine.assign(trained)
        rows, _, channels = self.latent_shape(config, params=params)
        return graph, (rows, None, channels)

    def targets(self, rows: np.ndarray, *, notes: list[dict[str, Any]], seed: int, epoch: int) -> np.ndarray:
        return partner_rows(rows, notes=notes, seed=seed, epoch=epoch)
