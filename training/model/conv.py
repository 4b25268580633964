"""The paper's family (``layout="conv2d"``): stacked convolutional autoencoders as Keras models.

Shapes (``params`` is the spectrogram contract, S = ``config.stages``, F = ``config.filters[-1]``)::

    encoder     (batch, n_mels, frames)            -> latent
    decoder     latent                              -> (batch, n_mels, frames)
    autoencoder (batch, n_mels, frames)             -> (batch, n_mels, frames)   = decoder(encoder(x))
    latent      (batch, n_mels/d, frames/d, F)  without a dense layer (d = config.downsampling; 2 x 8 x 128)
                (batch, config.dense)           with one

The autoencoder calls the encoder and decoder models, so the three share their weights: training the
autoencoder trains both halves, and each half can be exported on its own.

Decoder choice: each encoder stage (stride-2 conv, then 2x2 pool) is mirrored by UpSampling2D(2) followed
by a stride-2 Conv2DTranspose, i.e. the pool is undone by an upsampling and the strided conv by a strided
transposed conv. This keeps the decoder the exact mirror of the encoder (same number of layers, same
filters in reverse, same spatial factors), as in the paper's Fig. 1, and it is what the measured prototype
in ../shared/REFERENCE.md used. With ``pooling="none"`` the extra stride-2 conv is mirrored by a second
stride-2 Conv2DTranspose instead of the upsampling.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import ModelFamily
from training.model.layers import straight_through_clip

if TYPE_CHECKING:  # the config imports the families (ModelConfig.family): annotations only here
    from training.model.config import ModelConfig

__all__ = ["ConvFamily", "folded_decoder", "folds"]


def _regularizer(config: ModelConfig, part: str) -> Any:
    import keras

    if config.regularizer == "none" or part not in config.regularizer_where:
        return None
    cls = keras.regularizers.L1 if config.regularizer_norm == "l1" else keras.regularizers.L2
    return cls(config.regularizer_weight)


def _layer_regularizers(config: ModelConfig, part: str) -> dict[str, Any]:
    reg = _regularizer(config, part)
    if reg is None:
        return {}
    if config.regularizer == "kernel":
        return {"kernel_regularizer": reg}
    return {"activity_regularizer": reg}


def _frequency_bias(keras: Any) -> Any:
    """A Keras layer adding a learned bias per (row, channel) of an (batch, rows, frames, channels) tensor,
    the same in every frame (see ModelConfig ``frequency_bias``); zero at initialisation."""

    class FrequencyBias(keras.layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.bias = self.add_weight(name="bias", shape=(int(input_shape[1]), 1, int(input_shape[-1])),
                                        initializer="zeros")

        def call(self, x: Any) -> Any:
            return x + keras.ops.cast(self.bias, x.dtype)

    return FrequencyBias


def _residual_block(h: Any, *, filters: int, activation: str, name: str, regularizers: dict[str, Any]) -> Any:
    """h + conv3x3(act(conv3x3(h))), then the activation: the shape of ``h`` is kept."""
    from keras import layers

    skip = h
    h = layers.Conv2D(filters, 3, padding="same", activation=activation, name=f"{name}_a", **regularizers)(h)
    h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_b", **regularizers)(h)
    h = layers.Add(name=f"{name}_add")([skip, h])
    return layers.Activation(activation, name=f"{name}_act")(h)


def folds(config: ModelConfig, stage: int) -> bool:
    """Whether decoder stage ``stage``'s nearest upsampling and stride-s transposed convolution can be one
    transposed convolution (see :func:`folded_decoder`): an upsampling directly followed by the convolution,
    whose "same" padding the folded kernel keeps."""
    k, s = config.kernel_size, config.strides
    residual = config.residual_blocks and stage == config.stages - 1
    return config.layout == FAMILY.layout and config.pooling != "none" and not residual and k >= s and (k - s) % 2 == 0


def folded_decoder(decoder: Any, config: ModelConfig, *, params: SpectrogramParams, columns: int | None = None) -> Any:
    """The same map as ``decoder`` (built by :func:`_build` for ``config``), cheaper: each
    UpSampling2D(2) followed by Conv2DTranspose(f, k, strides=s, same) becomes one
    Conv2DTranspose(f, k + s, strides=2s, same) with the kernel ``w'[a, b] = sum of w shifted by 0 and s
    along each axis``.

    Why it is exact, along one axis: with nearest upsampling ``u[m] = x[m // 2]`` and TensorFlow's "same"
    transposed convolution ``y[n] = sum_m u[m] w[n - s m + p]`` (``p = (k - s) // 2``), the terms with
    ``m = 2i`` and ``m = 2i + 1`` give ``y[n] = sum_i x[i] (w[n - 2s i + p] + w[n - 2s i - s + p])``: a
    stride-2s transposed convolution with kernel ``w'[t] = w[t] + w[t - s]`` of size k + s, whose "same"
    padding is again ``((k + s) - 2s) // 2 = p``. It runs on the grid before upsampling: about
    ``((k + s) / 2s)^2 / (k / s)^2`` of the multiply-adds (9/16 at k = 4, s = 2). Export checks it against
    the Keras decoder like any other graph.

    ``columns``: the folded decoder of a window of that many latent time columns (see :func:`_build`).
    """
    import numpy as np

    _, _, folded = _build(config, params=params, fold_upsampling=True, decoder_columns=columns)
    s = config.strides
    for layer in folded.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        source = decoder.get_layer(layer.name).get_weights()
        if layer.name.startswith("dec_conv") and folds(config, int(layer.name[len("dec_conv"):])):
            w, bias = source
            k = w.shape[0]
            kernel = np.zeros((k + s, k + s, *w.shape[2:]), dtype=w.dtype)
            for da in (0, s):
                for db in (0, s):
                    kernel[da : da + k, db : db + k] += w
            source = [kernel, bias]
        layer.set_weights(source)
    return folded


def _build(
    config: ModelConfig, *, params: SpectrogramParams, fold_upsampling: bool = False,
    decoder_columns: int | None = None,
) -> tuple[Any, Any, Any]:
    """Build ``(autoencoder, encoder, decoder)`` Keras models for ``config`` on inputs shaped by ``params``.

    ``fold_upsampling``: the decoder's upsampling + transposed convolution pairs are built as one transposed
    convolution each (weights to be set by :func:`folded_decoder`; for inference only).

    ``decoder_columns``: the decoder takes a window of that many latent time columns instead of all
    ``frames / d`` and returns ``decoder_columns * d`` frames (a model without a dense layer is convolutional
    along time, so the same weights apply; frames near the window's edges differ from the whole note's
    decode, see :mod:`synth.bundle.tiles`). For inference only.

    Layers are created under the current Keras dtype policy (``mixed_float16`` when fitting with mixed
    precision), except the output layer, which is always float32. Call after
    ``keras.utils.set_random_seed`` for reproducible initial weights.

    Raises
    ------
    ParameterError
        if n_mels or frames is not divisible by ``config.downsampling``.
    """
    import keras
    from keras import layers

    FAMILY.check_input_shape(config, params=params)
    n_mels, frames = params.n_mels, params.frames
    k, s, act = config.kernel_size, config.strides, config.activation
    seed = [config.schedule.seed]

    def dropout(part: str) -> list[Any]:
        if part not in config.dropout_where:
            return []
        seed[0] += 1
        return [layers.Dropout(config.dropout_rate, seed=seed[0] + 1000)]

    # ---------------------------------------------------------------- encoder
    enc_reg = _layer_regularizers(config, "E")
    x_in = keras.Input(shape=(n_mels, frames), name="log_mel")
    h = layers.Reshape((n_mels, frames, 1), name="add_channel")(x_in)
    last = config.stages - 1
    for i, f in enumerate(config.filters):
        h = layers.Conv2D(f, k, strides=s, padding="same", activation=act, name=f"enc_conv{i}", **enc_reg)(h)
        for b in range(config.residual_blocks if i == last else 0):
            h = _residual_block(h, filters=f, activation=act, name=f"enc_res{b}", regularizers=enc_reg)
        if config.pooling == "max":
            h = layers.MaxPooling2D(2, name=f"enc_pool{i}")(h)
        elif config.pooling == "avg":
            h = layers.AveragePooling2D(2, name=f"enc_pool{i}")(h)
        else:
            h = layers.Conv2D(f, k, strides=s, padding="same", activation=act, name=f"enc_down{i}", **enc_reg)(h)
        for layer in dropout("E"):
            h = layer(h)
    conv_shape = tuple(int(v) for v in h.shape[1:])
    if config.dense is not None:
        h = layers.Flatten(name="flatten")(h)
        h = layers.Dense(config.dense, activation="tanh", name="bottleneck", **enc_reg)(h)
        for layer in dropout("E"):
            h = layer(h)
    encoder = keras.Model(x_in, h, name="encoder")

    # ---------------------------------------------------------------- decoder
    dec_reg = _layer_regularizers(config, "D")
    frequency_bias = _frequency_bias(keras) if config.frequency_bias else None

    def stage_bias(h: Any, name: str) -> Any:
        return frequency_bias(name=name)(h) if frequency_bias is not None else h
    z_shape = FAMILY.latent_shape(config, params=params)
    out_frames = frames
    if decoder_columns is not None:
        if config.dense is not None:
            raise ParameterError(f"model {config.name!r}: a dense bottleneck has no latent time columns to window")
        if not 1 <= decoder_columns <= z_shape[1]:
            raise ParameterError(f"decoder window of {decoder_columns} columns: the latent has 1..{z_shape[1]}")
        z_shape = (z_shape[0], int(decoder_columns), z_shape[2])
        out_frames = int(decoder_columns) * config.downsampling
    z_in = keras.Input(shape=z_shape, name="latent")
    h = z_in
    if config.dense is not None:
        units = conv_shape[0] * conv_shape[1] * conv_shape[2]
        h = layers.Dense(units, activation="tanh", name="expand", **dec_reg)(h)
        h = layers.Reshape(conv_shape, name="unflatten")(h)
        for layer in dropout("D"):
            h = layer(h)
    for i in reversed(range(config.stages)):
        f = config.filters[i]
        if fold_upsampling and folds(config, i):
            h = layers.Conv2DTranspose(f, k + s, strides=2 * s, padding="same", activation=act, name=f"dec_conv{i}",
                                       **dec_reg)(h)
            h = stage_bias(h, f"dec_fbias{i}")
            for layer in dropout("D"):
                h = layer(h)
            continue
        if config.pooling == "none":
            h = layers.Conv2DTranspose(f, k, strides=s, padding="same", activation=act, name=f"dec_up{i}",
                                       **dec_reg)(h)
        else:
            h = layers.UpSampling2D(2, name=f"dec_unpool{i}")(h)
        # The mirror of the encoder's conv -> residual blocks -> pool: unpool -> residual blocks -> conv.
        for b in range(config.residual_blocks if i == last else 0):
            h = _residual_block(h, filters=f, activation=act, name=f"dec_res{b}", regularizers=dec_reg)
        h = layers.Conv2DTranspose(f, k, strides=s, padding="same", activation=act, name=f"dec_conv{i}",
                                   **dec_reg)(h)
        h = stage_bias(h, f"dec_fbias{i}")
        for layer in dropout("D"):
            h = layer(h)
    # See ModelConfig's docstring: a stride-1 transposed conv is the same 4x4 one-filter layer, ~8x cheaper
    # to train on CPU than Conv2D(1, 4).
    output_cls = layers.Conv2DTranspose if config.output_layer == "conv_transpose" else layers.Conv2D
    sigmoid = config.output_activation == "sigmoid"
    if config.mel_head:
        # (batch, n_mels, frames, C) -> 1x1 conv to mel_head channels -> per frame, Dense over n_mels * mel_head.
        h = layers.Conv2D(config.mel_head, 1, name="mel_head_mix", **dec_reg)(h)
        h = layers.Permute((2, 1, 3), name="mel_head_frames")(h)
        h = layers.Reshape((out_frames, n_mels * config.mel_head), name="mel_head_flatten")(h)
        h = layers.Dense(n_mels, activation="sigmoid" if sigmoid else None, dtype="float32", name="output",
                         **dec_reg)(h)
        out = layers.Permute((2, 1), dtype="float32", name="drop_channel")(h)
    else:
        # With a frequency bias the sigmoid follows the bias; without one it stays inside the output layer,
        # as in the runs saved before the bias existed.
        inner = "sigmoid" if sigmoid and frequency_bias is None else None
        h = output_cls(1, k, padding="same", activation=inner, dtype="float32", name="output", **dec_reg)(h)
        if frequency_bias is not None:
            h = frequency_bias(dtype="float32", name="output_fbias")(h)
            if sigmoid:
                h = layers.Activation("sigmoid", dtype="float32", name="output_sigmoid")(h)
        out = layers.Reshape((n_mels, out_frames), dtype="float32", name="drop_channel")(h)
    if config.output_activation == "clip":
        out = straight_through_clip(keras)(dtype="float32", name="clip_unit")(out)
    elif not sigmoid:
        # The paper's "softmax": over a single channel it is 1.0 everywhere, so it is taken over the mel axis
        # (each frame sums to 1). Kept only so the paper's text can be reproduced; see REFERENCE.md.
        out = layers.Softmax(axis=1, dtype="float32", name="softmax_mel")(out)
    decoder = keras.Model(z_in, out, name="decoder")

    # ---------------------------------------------------------------- both, sharing weights
    if out_frames != frames:  # a windowed decoder does not fit the encoder's output
        return None, encoder, decoder
    a_in = keras.Input(shape=(n_mels, frames), name="log_mel")
    autoencoder = keras.Model(a_in, decoder(encoder(a_in)), name=f"autoencoder_{config.name}")
    return autoencoder, encoder, decoder


class ConvFamily(ModelFamily):
    """The paper's stacked convolutional autoencoders (see the module docstring and :class:`ModelConfig`)."""

    layout = "conv2d"

    def downsampling(self, config: ModelConfig) -> int:
        # Each stage is a stride-s conv followed by a 2x2 pool, or (pooling "none") by a second stride-s conv.
        second = config.strides if config.pooling == "none" else 2
        return (config.strides * second) ** config.stages

    def latent_shape(self, config: ModelConfig, *, params: SpectrogramParams) -> tuple[int, ...]:
        """(n_mels/d, frames/d, filters[-1]), or (dense,) with a dense bottleneck."""
        self.check_input_shape(config, params=params)
        if config.dense is not None:
            return (config.dense,)
        d = self.downsampling(config)
        return (params.n_mels // d, params.frames // d, config.filters[-1])

    def build(self, config: ModelConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        return _build(config, params=params, fold_upsampling=fold_upsampling, decoder_columns=decoder_columns)

    def export_decoder(self, decoder: Any, config: ModelConfig, *, params: SpectrogramParams,
                       columns: int | None = None) -> tuple[Any, tuple[int | None, ...]]:
        # The decoder every latent change waits for, in its cheaper exact form (about half the decode time).
        shape = self.latent_shape(config, params=params)
        if columns is not None:
            shape = (shape[0], columns, shape[2])
        return folded_decoder(decoder, config, params=params, columns=columns), shape

    def export_notes(self, config: ModelConfig) -> list[str]:
        folded = [i for i in range(config.stages) if folds(config, i)]
        stages = ", ".join(map(str, folded))
        return [f"decoder stages {stages}: upsampling folded into the transposed convolution"] if folded else []


FAMILY = ConvFamily()
