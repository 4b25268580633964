"""The patch layout (ModelConfig ``layout="patch"``): one linear stage per latent column, started from PCA.

Shapes (P = ``config.patch_frames``, C = frames / P, K = ``config.filters[-1]``)::

    encoder   (batch, n_mels, frames) -> (batch, 1, C, K)
    decoder   (batch, 1, C, K)        -> (batch, n_mels, frames)     clipped to the unit scale

A patch is the P frames x n_mels values of one latent column, flattened frame-major. The encoder is one
Dense(K) applied to every patch and the decoder one Dense(P * n_mels) applied to every latent column: the
stride-P convolution and transposed convolution with mel rows as channels, written as Dense layers because
their bias is then per (frame in the patch, mel row), where the mean patch lives. Column ``c`` decodes
frames ``[c P, (c + 1) P)`` and nothing else, so a window of columns decodes exactly what the whole note
does there.

:func:`initialise_from_pca` sets both layers to the PCA of the training patches (scikit-learn's randomized
SVD of the centred patches): the encoder projects a patch onto the first K principal directions and the
decoder adds them back to the mean patch, the best linear code of K values for those patches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import ModelFamily

if TYPE_CHECKING:  # the config imports the families (ModelConfig.family): annotations only here
    from training.model.config import ModelConfig

__all__ = ["PatchFamily", "any_columns_decoder", "columns_to_mel", "initialise_from_pca", "note_patches", "patch_pca",
           "ENCODER_LAYER", "DECODER_LAYER"]

ENCODER_LAYER = "patch_encode"
DECODER_LAYER = "patch_decode"


def note_patches(x: np.ndarray, *, patch_frames: int) -> np.ndarray:
    """The patches of notes ``x`` [shape=(N, n_mels, frames)]: [shape=(N * frames / P, P * n_mels)], each row
    the P frames of one latent column, frame-major (row ``i * C + c`` is note ``i``'s column ``c``)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[2] % patch_frames:
        raise ParameterError(f"patches: expected notes (N, n_mels, frames) with frames a multiple of "
                             f"{patch_frames}, got shape {x.shape}")
    n, n_mels, frames = x.shape
    # Always a new array (a view when x is stored frame-major would let callers centring it in place write
    # into the notes).
    return x.transpose(0, 2, 1).copy(order="C").reshape(n * (frames // patch_frames), patch_frames * n_mels)


def patch_pca(patches: np.ndarray, *, k: int, what: str, seed: int = 0, log=None) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean [shape=(D,)], the first ``k`` principal directions [shape=(k, D)], the fraction of the variance
    they explain) of ``patches`` [shape=(M, D)], by scikit-learn's randomized SVD of the centred patches.

    Raises
    ------
    DataError
        for fewer patches than ``k``, or values that are not finite; ``what`` names the model in the message.
    """
    from sklearn.utils.extmath import randomized_svd

    if len(patches) <= k or patches.shape[1] < k:
        raise DataError(f"PCA start of model {what}: {len(patches)} patches of {patches.shape[1]} values "
                        f"cannot give {k} principal directions; train on more notes or use fewer latent values")
    if not np.all(np.isfinite(patches)):
        raise DataError(f"PCA start of model {what}: the training notes hold NaN or infinite values")
    if log:
        log(f"  starting from the PCA of {len(patches)} training patches ({k} of {patches.shape[1]} dimensions)")
    mean = patches.mean(axis=0)
    centred = patches - mean
    _, singular, vt = randomized_svd(centred, k, n_iter=6, random_state=seed)
    total = float(np.sum(centred.astype(np.float64) ** 2))
    explained = float(np.sum(singular.astype(np.float64) ** 2) / total) if total > 0 else 1.0
    return mean.astype(np.float32), vt.astype(np.float32), explained


def initialise_from_pca(encoder: Any, decoder: Any, x: np.ndarray, *, config: ModelConfig, seed: int = 0,
                        log=None) -> dict[str, float]:
    """Set the patch encoder and decoder of ``config`` to the PCA of the patches of training notes ``x``
    [shape=(N, n_mels, frames)], in place; returns ``{"patches": .., "explained_variance": ..}``.

    Raises
    ------
    DataError
        for fewer patches than the latent values per column, or values that are not finite.
    """
    patches = note_patches(x, patch_frames=config.patch_frames)
    mean, vt, explained = patch_pca(patches, k=config.filters[-1], what=repr(config.name), seed=seed, log=log)
    encoder.get_layer(ENCODER_LAYER).set_weights([vt.T.copy(), (-mean @ vt.T).astype(np.float32)])
    decoder.get_layer(DECODER_LAYER).set_weights([vt.copy(), mean])
    return {"patches": int(len(patches)), "explained_variance": explained}


def _decoder_graph(keras: Any, config: ModelConfig, *, params: SpectrogramParams, columns: int | None) -> tuple[Any, Any]:
    """(input, output) of the decoder over ``columns`` latent columns (None: any number)."""
    from keras import layers

    n_mels, p, k = params.n_mels, config.patch_frames, config.filters[-1]
    z_in = keras.Input(shape=(1, columns, k), name="latent")
    h = layers.Reshape((-1, k), name="columns")(z_in)
    h = layers.Dense(p * n_mels, dtype="float32", name=DECODER_LAYER)(h)
    return z_in, columns_to_mel(keras, h, n_mels=n_mels)


def columns_to_mel(keras: Any, h: Any, *, n_mels: int) -> Any:
    """The patch families' output stage: decoded patches (batch, C, P * n_mels), frame-major, as the unit-scale
    mel (batch, n_mels, C * P), clipped with a straight-through gradient. Its layer names are the ones saved
    runs and exported graphs hold."""
    from keras import layers

    from training.model.layers import straight_through_clip

    h = layers.Reshape((-1, n_mels), dtype="float32", name="frames")(h)
    h = layers.Permute((2, 1), dtype="float32", name="mels_first")(h)
    return straight_through_clip(keras)(dtype="float32", name="clip_unit")(h)


def any_columns_decoder(decoder: Any, config: ModelConfig, *, params: SpectrogramParams) -> Any:
    """The patch ``decoder`` (built by :class:`PatchFamily`) over any number of latent columns, same
    weights: column ``c`` of its input becomes its frames ``[c P, (c + 1) P)``, so one exported graph decodes a
    whole note and any window of it (export writes it as its own tile decoder)."""
    import keras

    z_in, out = _decoder_graph(keras, config, params=params, columns=None)
    model = keras.Model(z_in, out, name="decoder_any_columns")
    model.get_layer(DECODER_LAYER).set_weights(decoder.get_layer(DECODER_LAYER).get_weights())
    return model


def _build(config: ModelConfig, *, params: SpectrogramParams,
                       decoder_columns: int | None = None) -> tuple[Any, Any, Any]:
    """``(autoencoder, encoder, decoder)`` of the patch layout (see the module docstring); with
    ``decoder_columns`` the decoder takes that many latent columns and the autoencoder is None."""
    import keras
    from keras import layers

    n_mels, frames = params.n_mels, params.frames
    p, k = config.patch_frames, config.filters[-1]
    columns = frames // p
    x_in = keras.Input(shape=(n_mels, frames), name="log_mel")
    h = layers.Permute((2, 1), name="frames_first")(x_in)
    h = layers.Reshape((columns, p * n_mels), name="patches")(h)
    h = layers.Dense(k, name=ENCODER_LAYER)(h)
    h = layers.Reshape((1, columns, k), name="latent_columns")(h)
    encoder = keras.Model(x_in, h, name="encoder")

    out_columns = columns
    if decoder_columns is not None:
        if not 1 <= decoder_columns <= columns:
            raise ParameterError(f"decoder window of {decoder_columns} columns: the latent has 1..{columns}")
        out_columns = int(decoder_columns)
    z_in, out = _decoder_graph(keras, config, params=params, columns=out_columns)
    decoder = keras.Model(z_in, out, name="decoder")
    if decoder_columns is not None:
        return None, encoder, decoder
    a_in = keras.Input(shape=(n_mels, frames), name="log_mel")
    autoencoder = keras.Model(a_in, decoder(encoder(a_in)), name=f"autoencoder_{config.name}")
    return autoencoder, encoder, decoder


class PatchFamily(ModelFamily):
    """A linear stage per latent column, started from the PCA of the training patches (module docstring)."""

    layout = "patch"
    decodes_any_columns = True
    fitted_start = True

    def unsupported(self, config: ModelConfig) -> list[str]:
        out = [f"{key}={getattr(config, key)!r}" for key, plain in (
            ("dense", None), ("residual_blocks", 0), ("frequency_bias", False), ("mel_head", 0),
            ("dropout_where", "none"), ("regularizer", "none"), ("output_activation", "clip"), ("hidden", 0),
            ("keys", ()), ("key_rank", 0),
        ) if getattr(config, key) != plain]
        if len(config.filters) != 1:
            out.append(f"filters={list(config.filters)!r} (one entry: the latent values per column)")
        return out

    def downsampling(self, config: ModelConfig) -> int:
        return config.patch_frames

    def downsampled_axes(self, params: SpectrogramParams) -> tuple[tuple[str, int], ...]:
        return (("frames", params.frames),)  # a patch takes the whole mel axis

    def latent_shape(self, config: ModelConfig, *, params: SpectrogramParams) -> tuple[int, ...]:
        self.check_input_shape(config, params=params)
        return (1, params.frames // config.patch_frames, config.filters[-1])

    def build(self, config: ModelConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        self.check_input_shape(config, params=params)
        return _build(config, params=params, decoder_columns=decoder_columns)

    def initialise(self, models: tuple[Any, Any, Any], x: np.ndarray, *, pitch: np.ndarray, config: ModelConfig,
                   log: Any = None) -> None:
        _, encoder, decoder = models
        initialise_from_pca(encoder, decoder, x, config=config, seed=config.schedule.seed, log=log)

    def export_decoder(self, decoder: Any, config: ModelConfig, *, params: SpectrogramParams,
                       columns: int | None = None) -> tuple[Any, tuple[int | None, ...]]:
        # Each latent column maps to its own frames: one graph over any number of columns decodes a whole
        # note and is its own tile decoder.
        rows, _, channels = self.latent_shape(config, params=params)
        return any_columns_decoder(decoder, config, params=params), (rows, None, channels)


FAMILY = PatchFamily()
