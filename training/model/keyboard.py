"""The keyboard family (``layout="keyboard"``): one timbre latent for every key, decoded at the key asked for.

Shapes (of the settings, :class:`KeyboardSettings`: P = ``patch_frames``, C = frames / P, K = ``filters[-1]``,
H = ``hidden``, D = P * n_mels; pitch a MIDI key 0..127 as int32)::

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

import dataclasses
from typing import Any, ClassVar

import numpy as np

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import FamilyConfig
from training.model.patch import START_BATCH_NOTES, PatchSettings, columns_to_mel, note_patches, patch_pca
from training.model.pitched import PitchedPatchFamily
from training.model.settings import check_choice

__all__ = ["KeyboardFamily", "KeyboardSettings", "MIDI_KEYS"]

#: The pitch tables cover every MIDI key; only the keys of the training notes are learnt.
MIDI_KEYS = 128

_ENCODER = "kb_encode"
_ENCODER_MEAN = "kb_encode_key_mean"
_LINEAR = "kb_linear"
_DECODER_MEAN = "kb_decode_key_mean"
_DETAIL_OUT = "kb_detail_out"
_HIDDEN_LAYERS = 2


@dataclasses.dataclass(frozen=True)
class KeyboardSettings(PatchSettings):
    """The patch settings, and the detail path's width ``hidden`` (at least 1) and ``activation``."""

    layout: ClassVar[str] = "keyboard"

    hidden: int = 512
    activation: str = "elu"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 1:
            raise ParameterError(f"{self.what}: hidden={self.hidden!r} must be at least 1 (the detail path's width)")
        check_choice(self, "activation", ("tanh", "relu", "elu", "sigmoid", "linear"))


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


def _decoder_graph(keras: Any, config: FamilyConfig, *, params: SpectrogramParams, columns: int | None) -> Any:
    from keras import layers

    arch = config.architecture
    n_mels, p, k, hidden = params.n_mels, arch.patch_frames, arch.filters[-1], arch.hidden
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
        h = layers.Activation(arch.activation, name=f"kb_act{i}")(h)
    detail = layers.Dense(width, name=_DETAIL_OUT)(h)
    out = layers.Add(name="kb_paths")([out, detail])
    mean = layers.Embedding(MIDI_KEYS, width, embeddings_initializer="zeros", name=_DECODER_MEAN)(pitch)
    out = add_row(name="kb_add_key_mean")(out, mean)
    return keras.Model([z_in, pitch], columns_to_mel(keras, out, n_mels=n_mels), name="decoder")


def _encoder_graph(keras: Any, config: FamilyConfig, *, params: SpectrogramParams) -> Any:
    from keras import layers

    arch = config.architecture
    n_mels, frames, p, k = params.n_mels, params.frames, arch.patch_frames, arch.filters[-1]
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


class KeyboardFamily(PitchedPatchFamily):
    """Pitch-conditioned patch code: encode at one key, decode at any (see the module docstring). Its shapes
    and checks are the patch family's, with a detail path of ``hidden`` units."""

    settings = KeyboardSettings

    def encoder_graph(self, keras: Any, config: FamilyConfig, *, params: SpectrogramParams) -> Any:
        return _encoder_graph(keras, config, params=params)

    def decoder_graph(self, keras: Any, config: FamilyConfig, *, params: SpectrogramParams,
                      columns: int | None) -> Any:
        return _decoder_graph(keras, config, params=params, columns=columns)

    def initialise(self, models: tuple[Any, Any, Any], x: Any, *, pitch: np.ndarray, config: FamilyConfig,
                   log: Any = None) -> None:
        """The start (module docstring) from training notes ``x`` [shape=(N, n_mels, frames)], read by slices
        a batch at a time (an array or :class:`~training.datasets.features.NoteRows`), and their keys."""
        arch = config.architecture
        _, encoder, decoder = models
        p = arch.patch_frames
        columns = x.shape[2] // p
        note_keys = np.asarray(pitch, dtype=np.int64)
        known = np.unique(note_keys)
        sums = np.zeros((MIDI_KEYS, p * x.shape[1]), dtype=np.float64)
        for first in range(0, len(x), START_BATCH_NOTES):
            part = slice(first, min(first + START_BATCH_NOTES, len(x)))
            patches = note_patches(x[part], patch_frames=p).reshape(-1, columns, sums.shape[1])
            np.add.at(sums, note_keys[part], patches.sum(axis=1, dtype=np.float64))
        counts = np.bincount(note_keys, minlength=MIDI_KEYS) * columns
        means = np.zeros(sums.shape, dtype=np.float32)
        means[known] = (sums[known] / counts[known, None]).astype(np.float32)
        del sums
        means = _nearest_filled(means, known)
        if log:
            log(f"  mean patches of keys {', '.join(str(int(k)) for k in known)}")
        residual_mean, vt, _ = patch_pca(x, patch_frames=p, k=arch.filters[-1], what=repr(config.name),
                                         seed=config.schedule.seed, log=log,
                                         offsets=lambda part: np.repeat(means[note_keys[part]], columns, axis=0))
        encoder.get_layer(_ENCODER_MEAN).set_weights([means])
        encoder.get_layer(_ENCODER).set_weights([vt.T.copy(), (-residual_mean @ vt.T).astype(np.float32)])
        decoder.get_layer(_DECODER_MEAN).set_weights([means])
        decoder.get_layer(_LINEAR).set_weights([vt.copy(), residual_mean])
        detail = decoder.get_layer(_DETAIL_OUT)
        detail.set_weights([np.zeros_like(w) for w in detail.get_weights()])  # starts as the PCA, adds to it
