"""The keyboard family (``layout="keyboard"``): one timbre latent for every key, decoded at the key asked for.

Shapes (P = ``config.patch_frames``, C = frames / P, K = ``config.filters[-1]``, H = ``config.hidden``,
D = P * n_mels, pitch a MIDI key 0..127 as int32)::

    encoder  mel (batch, n_mels, frames), pitch (batch, 1)  -> latent (batch, 1, C, K)
    decoder  latent (batch, 1, C', K), pitch (batch, 1)     -> mel (batch, n_mels, C' * P)   any C'
    trainer  mel, source pitch, target pitch                -> mel at the target pitch

The patch family's code per half-second column, made pitch-aware where a key changes the spectrum:

- The encoder subtracts its key's mean patch (a learned table over the 128 MIDI keys) before the shared
  linear map to K values, so the latent holds how this instrument differs from the average note *at its
  key*: the same timbre gives about the same latent at every key.
- The decoder adds back the mean patch of the key it is asked for and two paths from the latent: the linear
  basis every key shares, and a detail path, Dense(H) -> FiLM(key) -> act -> Dense(H) -> FiLM(key) -> act
  -> Dense(D), whose per-key scale and shift (a learned table, FiLM: Perez et al. 2018) let the same timbre
  place its formants, brightness and attack differently at each key.
- Every path acts on one column at a time, so a window of columns decodes exactly what the whole note does
  there (the exported decoder is its own tile decoder), as for the patch family.

Start (:meth:`KeyboardFamily.initialise`): the mean patches per key of the training notes, the PCA of the
patches with their key's mean removed, and a detail path whose output layer is zero, so training starts
from the per-key-centred patch PCA and can only add to it. Trained on pairs of one instrument's notes at
two keys (:meth:`KeyboardFamily.targets`: half of each epoch's notes reconstruct themselves, half a note of
the same instrument and velocity at another key), so a latent encoded at one key decodes at the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.patch import PatchFamily, note_patches, patch_pca

if TYPE_CHECKING:  # the config imports the families (ModelConfig.family): annotations only here
    from training.model.config import ModelConfig

__all__ = ["KeyboardFamily", "partner_rows", "MIDI_KEYS", "CROSS_KEY_SHARE"]

#: The pitch tables cover every MIDI key; only the keys of the training notes are learnt.
MIDI_KEYS = 128
#: The share of each epoch's training notes asked to reconstruct a note at another key (the rest: themselves).
CROSS_KEY_SHARE = 0.5

_ENCODER = "kb_encode"
_ENCODER_MEAN = "kb_encode_key_mean"
_LINEAR = "kb_linear"
_DECODER_MEAN = "kb_decode_key_mean"
_DETAIL_OUT = "kb_detail_out"
_HIDDEN_LAYERS = 2


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


def _film(keras: Any) -> Any:
    """A Keras layer: ``h * (1 + scale) + shift`` with (scale, shift) the two halves of a per-key row."""

    class FiLM(keras.layers.Layer):
        def call(self, h: Any, table_row: Any) -> Any:
            scale, shift = keras.ops.split(table_row, 2, axis=-1)
            return h * (1.0 + scale) + shift

    return FiLM


def _add_rows(keras: Any) -> Any:
    """A Keras layer: (batch, C, D) plus or minus a per-note row (batch, 1, D), broadcast over the columns."""

    class AddRow(keras.layers.Layer):
        def __init__(self, sign: float = 1.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.sign = float(sign)

        def call(self, h: Any, row: Any) -> Any:
            return h + self.sign * row

    return AddRow


def _decoder_graph(keras: Any, config: ModelConfig, *, params: SpectrogramParams, columns: int | None) -> Any:
    from keras import layers

    from training.model.layers import straight_through_clip

    n_mels, p, k, hidden = params.n_mels, config.patch_frames, config.filters[-1], config.hidden
    width = p * n_mels
    film, add_row = _film(keras), _add_rows(keras)
    z_in = keras.Input(shape=(1, columns, k), name="latent")
    pitch = keras.Input(shape=(1,), dtype="int32", name="pitch")
    cols = layers.Reshape((-1, k), name="columns")(z_in)
    out = layers.Dense(width, name=_LINEAR)(cols)
    h = cols
    for i in range(_HIDDEN_LAYERS):
        h = layers.Dense(hidden, name=f"kb_hidden{i}")(h)
        row = layers.Embedding(MIDI_KEYS, 2 * hidden, embeddings_initializer="zeros", name=f"kb_film{i}")(pitch)
        h = film(name=f"kb_film_apply{i}")(h, row)
        h = layers.Activation(config.activation, name=f"kb_act{i}")(h)
    detail = layers.Dense(width, name=_DETAIL_OUT)(h)
    out = layers.Add(name="kb_paths")([out, detail])
    mean = layers.Embedding(MIDI_KEYS, width, embeddings_initializer="zeros", name=_DECODER_MEAN)(pitch)
    out = add_row(name="kb_add_key_mean")(out, mean)
    out = layers.Reshape((-1, n_mels), dtype="float32", name="frames")(out)
    out = layers.Permute((2, 1), dtype="float32", name="mels_first")(out)
    out = straight_through_clip(keras)(dtype="float32", name="clip_unit")(out)
    return keras.Model([z_in, pitch], out, name="decoder")


def _encoder_graph(keras: Any, config: ModelConfig, *, params: SpectrogramParams) -> Any:
    from keras import layers

    n_mels, frames, p, k = params.n_mels, params.frames, config.patch_frames, config.filters[-1]
    columns = frames // p
    x_in = keras.Input(shape=(n_mels, frames), name="log_mel")
    pitch = keras.Input(shape=(1,), dtype="int32", name="pitch")
    h = layers.Permute((2, 1), name="frames_first")(x_in)
    h = layers.Reshape((columns, p * n_mels), name="patches")(h)
    mean = layers.Embedding(MIDI_KEYS, p * n_mels, embeddings_initializer="zeros", name=_ENCODER_MEAN)(pitch)
    h = _add_rows(keras)(sign=-1.0, name="kb_remove_key_mean")(h, mean)
    h = layers.Dense(k, name=_ENCODER)(h)
    h = layers.Reshape((1, columns, k), name="latent_columns")(h)
    return keras.Model([x_in, pitch], h, name="encoder")


def _nearest_filled(table: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``table`` [shape=(MIDI_KEYS, D)] with each row not in ``known`` (sorted keys) copied from the nearest."""
    out = table.copy()
    for key in range(MIDI_KEYS):
        if key not in known:
            out[key] = table[known[int(np.argmin(np.abs(known - key)))]]
    return out


class KeyboardFamily(PatchFamily):
    """Pitch-conditioned patch code: encode at one key, decode at any (see the module docstring). Its shapes
    and checks are the patch family's, with a detail path of ``hidden`` units."""

    layout = "keyboard"
    pitch_conditioned = True

    def unsupported(self, config: ModelConfig) -> list[str]:
        out = [item for item in super().unsupported(config) if not item.startswith("hidden=")]
        if config.hidden < 1:
            out.append(f"hidden={config.hidden!r} (the detail path's width: at least 1)")
        return out

    def build(self, config: ModelConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        import keras

        self.check_input_shape(config, params=params)
        columns = params.frames // config.patch_frames
        if decoder_columns is not None and not 1 <= decoder_columns <= columns:
            raise ParameterError(f"decoder window of {decoder_columns} columns: the latent has 1..{columns}")
        encoder = _encoder_graph(keras, config, params=params)
        decoder = _decoder_graph(keras, config, params=params,
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

    def initialise(self, models: tuple[Any, Any, Any], x: np.ndarray, *, pitch: np.ndarray, config: ModelConfig,
                   log: Any = None) -> None:
        _, encoder, decoder = models
        patches = note_patches(x, patch_frames=config.patch_frames)
        columns = patches.shape[0] // max(len(x), 1)
        patch_keys = np.repeat(np.asarray(pitch, dtype=np.int64), columns)
        known = np.unique(patch_keys)
        means = np.zeros((MIDI_KEYS, patches.shape[1]), dtype=np.float32)
        for key in known:
            means[key] = patches[patch_keys == key].mean(axis=0)
        means = _nearest_filled(means, known)
        patches -= means[patch_keys]
        if log:
            log(f"  mean patches of keys {', '.join(str(int(k)) for k in known)}")
        residual_mean, vt, _ = patch_pca(patches, k=config.filters[-1], what=repr(config.name),
                                         seed=config.schedule.seed, log=log)
        encoder.get_layer(_ENCODER_MEAN).set_weights([means])
        encoder.get_layer(_ENCODER).set_weights([vt.T.copy(), (-residual_mean @ vt.T).astype(np.float32)])
        decoder.get_layer(_DECODER_MEAN).set_weights([means])
        decoder.get_layer(_LINEAR).set_weights([vt.copy(), residual_mean])
        detail = decoder.get_layer(_DETAIL_OUT)
        detail.set_weights([np.zeros_like(w) for w in detail.get_weights()])  # starts as the PCA, adds to it

    def export_decoder(self, decoder: Any, config: ModelConfig, *, params: SpectrogramParams,
                       columns: int | None = None) -> tuple[Any, tuple[int | None, ...]]:
        import keras

        graph = _decoder_graph(keras, config, params=params, columns=None)
        for layer in graph.layers:
            if layer.get_weights():
                layer.set_weights(decoder.get_layer(layer.name).get_weights())
        rows, _, channels = self.latent_shape(config, params=params)
        return graph, (rows, None, channels)

    def targets(self, rows: np.ndarray, *, notes: list[dict[str, Any]], seed: int, epoch: int) -> np.ndarray:
        return partner_rows(rows, notes=notes, seed=seed, epoch=epoch)
