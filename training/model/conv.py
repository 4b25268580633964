"""The paper's family (``layout="conv2d"``): stacked convolutional autoencoders as Keras models, and their
settings (:class:`ConvSettings`, a config's ``architecture`` for this layout).

Shapes (``params`` is the spectrogram contract, S = ``stages``, F = ``filters[-1]`` of the settings)::

    encoder     (batch, n_mels, frames)            -> latent
    decoder     latent                              -> (batch, n_mels, frames)
    autoencoder (batch, n_mels, frames)             -> (batch, n_mels, frames)   = decoder(encoder(x))
    latent      (batch, n_mels/d, frames/d, F)  without a dense layer (d = the family's downsampling; 2 x 8 x 128)
                (batch, dense)                  with one

The autoencoder calls the encoder and decoder models, so the three share their weights: training the
autoencoder trains both halves, and each half can be exported on its own.

Decoder choice: each encoder stage (stride-2 conv, then 2x2 pool) is mirrored by UpSampling2D(2) followed
by a stride-2 Conv2DTranspose, i.e. the pool is undone by an upsampling and the strided conv by a strided
transposed conv. This keeps the decoder the exact mirror of the encoder (same number of layers, same
filters in reverse, same spatial factors), as in the paper's Fig. 1, and it is what the measured prototype
in ../shared/REFERENCE.md used. With ``pooling="none"`` the extra stride-2 conv is mirrored by a second
stride-2 Conv2DTranspose instead of the upsampling.

Choices the paper does not publish, and what we chose:

- ``filters`` (32, 64, 128): three stride-2 conv + 2x2 pool stages take 128 x 512 to 2 x 8 x 128 = 2048
  values, the paper's "3%" latent of the no-dense model (../shared/REFERENCE.md).
- ``regularizer_weight`` 1e-4, except the kernel L1 rows (``kr_l1_*``:
  :data:`~training.model.config.KERNEL_L1_WEIGHT`, 1e-6): the strength of the L1/L2 kernel or activity
  penalty. Measured on the baseline at initialisation (34.1 M kernel weights, mean |w| 0.012, split about
  evenly between encoder and decoder by the two dense layers): L1 at 1e-4 gives a penalty of 20.7 on the
  encoder's kernels (E) and 21.2 on the decoder's (D), L2 0.34 and 0.35, against an untrained MSE of 0.136
  (16 training notes) and a trained one of ~0.003. L1 at 1e-4 swamped the reconstruction: the 30-epoch
  kr_l1 E / D rows reached test RMSE 0.161 / 0.103 against no_reg's 0.064, their loss still 0.21 at epoch
  30, most of it the penalty (the paper reports kernel L1 as a mild change). A 5-epoch screen of kr_l1_D and
  kr_l2_D on the validation split (2026-12-02; RMSE / F1, no_reg 0.0895 / 0.515): L1 1e-5 0.106 / 0.470,
  1e-6 0.088 / 0.542, 1e-7 0.087 / 0.534, 1e-8 0.092 / 0.501; L2 1e-4 0.089 / 0.560, 1e-5 0.092 / 0.525,
  1e-6 0.089 / 0.521. So L1 takes the strongest weight that did not hurt, 1e-6, and L2 keeps 1e-4. Activity
  penalties are summed over each example's activations (Keras divides by the batch only): at 1e-4 they are
  2.0 (L1) and 0.20 (L2) on the encoder, 4.3 and 1.6 on the full-resolution decoder layers, which matches
  the paper's collapsed "AR ... D" rows.
- ``output_activation`` "sigmoid": the paper's "softmax" over a one-channel output is 1.0 everywhere
  (see REFERENCE.md); "softmax" is kept only as an explicit option (a softmax over the mel axis).
- ``output_layer`` "conv_transpose": the final one-filter 4x4 layer is a stride-1 Conv2DTranspose. A stride-1
  transposed conv is a conv with a flipped kernel (same parameters, same function class as Conv2D(1, 4,
  same) up to which side gets the extra padding pixel), but TensorFlow's CPU backprop of a one-filter Conv2D
  with a kernel larger than 3 is pathologically slow: 4.1 s against 0.48 s for a batch of 8 at 128 x 512 x 32
  on the 2-core machine here, which made it the most expensive layer of the whole model. "conv" (Conv2D) is
  kept for runs written before this field existed.
- ``output_activation`` "clip" (our variant, not the paper's): the output is the linear map clipped to the
  unit scale [0, 1], with a straight-through gradient (the gradient of the identity, so a pixel clipped at 0
  whose target is above 0 still learns). A sigmoid reaches 0 only at minus infinity, yet every note's tail
  after the release sits exactly at the floor (0 on the unit scale); a clipped output can be exactly 0 there.
- ``residual_blocks``: residual blocks (two 3x3 convolutions with the stage's filters and a skip
  connection) between the deepest encoder stage's convolution and its pooling, mirrored between the deepest
  decoder stage's unpooling and its transposed convolution: at 1/32 of the input resolution (4 x 16 at
  128 x 512), where they cost few multiply-adds at decode time (the full-resolution stage dominates).
- ``frequency_bias`` (our variant, not the paper's): each decoder stage's output, and the output layer's
  pre-activation, gets a learned bias per (mel row, channel) that is the same in every frame. Convolutions
  are blind to where along the mel axis they are, yet a note of one pitch puts its partials on fixed mel
  rows (PCA, which wins on those rows, is nothing but position-specific patterns); the bias gives every
  stage that position at the cost of n_mels/2^k x filters values per stage. Constant along time, it keeps
  the decoder convolutional in time, so windowed decodes (tiles) stay exact.
- ``mel_head`` (our variant, not the paper's; 0: none): the output layer becomes a per-frame dense map over
  the whole mel axis. A 1x1 convolution takes the last decoder stage to ``mel_head`` channels, and each
  frame's n_mels x mel_head values are mapped by one Dense layer (shared by every frame) to its n_mels
  outputs. A transposed convolution places every output row by the same small kernel, so partials two
  mel rows apart (the upper harmonics) come out smeared; the dense map can put a peak on any row. It
  acts frame by frame, so windowed decodes (tiles) stay exact.
- ``pooling`` "none": each pooling layer is replaced by one more stride-2 convolution with the same
  filters (the paper's "three additional convolutional layers"), so the latent shape matches.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import FamilyConfig, ModelFamily
from training.model.layers import straight_through_clip
from training.model.settings import (
    ArchitectureSettings,
    check_choice,
    check_int,
    check_number,
    int_tuple,
    is_int,
)

__all__ = ["ConvFamily", "ConvSettings", "folded_decoder", "folds"]


@dataclasses.dataclass(frozen=True)
class ConvSettings(ArchitectureSettings):
    """The paper's autoencoder: ``len(filters)`` encoder stages of Conv2D(filters[i], kernel_size, strides,
    same, activation) followed by ``pooling`` (2x2) or, with ``pooling="none"``, by a second stride-2 Conv2D;
    optionally a Dense(``dense``, tanh) bottleneck; a mirrored decoder; a final Conv2D(1) with
    ``output_activation``. Dropout (``dropout_rate``) follows each stage of the encoder ("E"), decoder ("D")
    or both ("ED"). ``regularizer`` ("kernel" or "activity", ``regularizer_norm`` l1/l2 with
    ``regularizer_weight``) applies to every conv/dense layer of the encoder, decoder or both
    (``regularizer_where``). The module docstring says why each default is what it is."""

    layout: ClassVar[str] = "conv2d"
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "pooling": ("max", "avg", "none"),
        "activation": ("tanh", "relu", "elu", "sigmoid", "linear"),
        "dropout_where": ("none", "E", "D", "ED"),
        "regularizer": ("none", "kernel", "activity"),
        "regularizer_norm": ("l1", "l2"),
        "regularizer_where": ("E", "D", "ED"),
        "output_activation": ("sigmoid", "softmax", "clip"),
        "output_layer": ("conv_transpose", "conv"),
    }

    pooling: str = "max"
    filters: tuple[int, ...] = (32, 64, 128)
    kernel_size: int = 4
    strides: int = 2
    activation: str = "tanh"
    dense: int | None = None
    dropout_where: str = "none"
    dropout_rate: float = 0.3
    regularizer: str = "none"
    regularizer_norm: str = "l2"
    regularizer_where: str = "D"
    regularizer_weight: float = 1e-4
    output_activation: str = "sigmoid"
    output_layer: str = "conv_transpose"
    residual_blocks: int = 0
    frequency_bias: bool = False
    mel_head: int = 0

    def __post_init__(self) -> None:
        for key, choices in self.CHOICES.items():
            check_choice(self, key, choices)
        filters = int_tuple(self, "filters")
        if not filters or not all(is_int(f) and f > 0 for f in filters):
            raise ParameterError(f"{self.what}: filters must be a non-empty list of positive ints, got {filters!r}")
        check_int(self, "kernel_size", least=1)
        check_int(self, "strides", least=1)
        check_int(self, "residual_blocks", least=0)
        if self.dense is not None and (not is_int(self.dense) or self.dense <= 0):
            raise ParameterError(f"{self.what}: dense must be null or a positive int, got {self.dense!r}")
        check_number(self, "dropout_rate", 0.0, 1.0)
        check_number(self, "regularizer_weight", 0.0, float("inf"))
        check_int(self, "mel_head", least=0)
        if not isinstance(self.frequency_bias, bool):
            raise ParameterError(f"{self.what}: frequency_bias must be true or false, got {self.frequency_bias!r}")

    @property
    def stages(self) -> int:
        """Number of encoder stages (conv + pool, or conv + conv)."""
        return len(self.filters)


def _regularizer(config: FamilyConfig, part: str) -> Any:
    import keras

    arch = config.architecture
    if arch.regularizer == "none" or part not in arch.regularizer_where:
        return None
    cls = keras.regularizers.L1 if arch.regularizer_norm == "l1" else keras.regularizers.L2
    return cls(arch.regularizer_weight)


def _layer_regularizers(config: FamilyConfig, part: str) -> dict[str, Any]:
    reg = _regularizer(config, part)
    if reg is None:
        return {}
    if config.architecture.regularizer == "kernel":
        return {"kernel_regularizer": reg}
    return {"activity_regularizer": reg}


def _frequency_bias(keras: Any) -> Any:
    """A Keras layer adding a learned bias per (row, channel) of an (batch, rows, frames, channels) tensor,
    the same in every frame (see ``frequency_bias`` in the module docstring); zero at initialisation."""

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


def folds(config: FamilyConfig, stage: int) -> bool:
    """Whether decoder stage ``stage``'s nearest upsampling and stride-s transposed convolution can be one
    transposed convolution (see :func:`folded_decoder`): an upsampling directly followed by the convolution,
    whose "same" padding the folded kernel keeps."""
    arch = config.architecture
    k, s = arch.kernel_size, arch.strides
    residual = arch.residual_blocks and stage == arch.stages - 1
    return config.layout == FAMILY.layout and arch.pooling != "none" and not residual and k >= s and (k - s) % 2 == 0


def folded_decoder(decoder: Any, config: FamilyConfig, *, params: SpectrogramParams, columns: int | None = None) -> Any:
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
    s = config.architecture.strides
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
    config: FamilyConfig, *, params: SpectrogramParams, fold_upsampling: bool = False,
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
        if n_mels or frames is not divisible by the family's downsampling.
    """
    import keras
    from keras import layers

    arch = config.architecture
    FAMILY.check_input_shape(config, params=params)
    n_mels, frames = params.n_mels, params.frames
    k, s, act = arch.kernel_size, arch.strides, arch.activation
    seed = [config.schedule.seed]

    def dropout(part: str) -> list[Any]:
        if part not in arch.dropout_where:
            return []
        seed[0] += 1
        return [layers.Dropout(arch.dropout_rate, seed=seed[0] + 1000)]

    # ---------------------------------------------------------------- encoder
    enc_reg = _layer_regularizers(config, "E")
    x_in = keras.Input(shape=(n_mels, frames), name="log_mel")
    h = layers.Reshape((n_mels, frames, 1), name="add_channel")(x_in)
    last = arch.stages - 1
    for i, f in enumerate(arch.filters):
        h = layers.Conv2D(f, k, strides=s, padding="same", activation=act, name=f"enc_conv{i}", **enc_reg)(h)
        for b in range(arch.residual_blocks if i == last else 0):
            h = _residual_block(h, filters=f, activation=act, name=f"enc_res{b}", regularizers=enc_reg)
        if arch.pooling == "max":
            h = layers.MaxPooling2D(2, name=f"enc_pool{i}")(h)
        elif arch.pooling == "avg":
            h = layers.AveragePooling2D(2, name=f"enc_pool{i}")(h)
        else:
            h = layers.Conv2D(f, k, strides=s, padding="same", activation=act, name=f"enc_down{i}", **enc_reg)(h)
        for layer in dropout("E"):
            h = layer(h)
    conv_shape = tuple(int(v) for v in h.shape[1:])
    if arch.dense is not None:
        h = layers.Flatten(name="flatten")(h)
        h = layers.Dense(arch.dense, activation="tanh", name="bottleneck", **enc_reg)(h)
        for layer in dropout("E"):
            h = layer(h)
    encoder = keras.Model(x_in, h, name="encoder")

    # ---------------------------------------------------------------- decoder
    dec_reg = _layer_regularizers(config, "D")
    frequency_bias = _frequency_bias(keras) if arch.frequency_bias else None

    def stage_bias(h: Any, name: str) -> Any:
        return frequency_bias(name=name)(h) if frequency_bias is not None else h
    z_shape = FAMILY.latent_shape(config, params=params)
    out_frames = frames
    if decoder_columns is not None:
        if arch.dense is not None:
            raise ParameterError(f"model {config.name!r}: a dense bottleneck has no latent time columns to window")
        if not 1 <= decoder_columns <= z_shape[1]:
            raise ParameterError(f"decoder window of {decoder_columns} columns: the latent has 1..{z_shape[1]}")
        z_shape = (z_shape[0], int(decoder_columns), z_shape[2])
        out_frames = int(decoder_columns) * FAMILY.downsampling(config)
    z_in = keras.Input(shape=z_shape, name="latent")
    h = z_in
    if arch.dense is not None:
        units = conv_shape[0] * conv_shape[1] * conv_shape[2]
        h = layers.Dense(units, activation="tanh", name="expand", **dec_reg)(h)
        h = layers.Reshape(conv_shape, name="unflatten")(h)
        for layer in dropout("D"):
            h = layer(h)
    for i in reversed(range(arch.stages)):
        f = arch.filters[i]
        if fold_upsampling and folds(config, i):
            h = layers.Conv2DTranspose(f, k + s, strides=2 * s, padding="same", activation=act, name=f"dec_conv{i}",
                                       **dec_reg)(h)
            h = stage_bias(h, f"dec_fbias{i}")
            for layer in dropout("D"):
                h = layer(h)
            continue
        if arch.pooling == "none":
            h = layers.Conv2DTranspose(f, k, strides=s, padding="same", activation=act, name=f"dec_up{i}",
                                       **dec_reg)(h)
        else:
            h = layers.UpSampling2D(2, name=f"dec_unpool{i}")(h)
        # The mirror of the encoder's conv -> residual blocks -> pool: unpool -> residual blocks -> conv.
        for b in range(arch.residual_blocks if i == last else 0):
            h = _residual_block(h, filters=f, activation=act, name=f"dec_res{b}", regularizers=dec_reg)
        h = layers.Conv2DTranspose(f, k, strides=s, padding="same", activation=act, name=f"dec_conv{i}",
                                   **dec_reg)(h)
        h = stage_bias(h, f"dec_fbias{i}")
        for layer in dropout("D"):
            h = layer(h)
    # See the module docstring: a stride-1 transposed conv is the same 4x4 one-filter layer, ~8x cheaper
    # to train on CPU than Conv2D(1, 4).
    output_cls = layers.Conv2DTranspose if arch.output_layer == "conv_transpose" else layers.Conv2D
    sigmoid = arch.output_activation == "sigmoid"
    if arch.mel_head:
        # (batch, n_mels, frames, C) -> 1x1 conv to mel_head channels -> per frame, Dense over n_mels * mel_head.
        h = layers.Conv2D(arch.mel_head, 1, name="mel_head_mix", **dec_reg)(h)
        h = layers.Permute((2, 1, 3), name="mel_head_frames")(h)
        h = layers.Reshape((out_frames, n_mels * arch.mel_head), name="mel_head_flatten")(h)
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
    if arch.output_activation == "clip":
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
    """The paper's stacked convolutional autoencoders (see the module docstring and :class:`ConvSettings`)."""

    settings = ConvSettings

    def downsampling(self, config: FamilyConfig) -> int:
        arch = config.architecture
        # Each stage is a stride-s conv followed by a 2x2 pool, or (pooling "none") by a second stride-s conv.
        second = arch.strides if arch.pooling == "none" else 2
        return (arch.strides * second) ** arch.stages

    def latent_shape(self, config: FamilyConfig, *, params: SpectrogramParams) -> tuple[int, ...]:
        """(n_mels/d, frames/d, filters[-1]), or (dense,) with a dense bottleneck."""
        arch = config.architecture
        self.check_input_shape(config, params=params)
        if arch.dense is not None:
            return (arch.dense,)
        d = self.downsampling(config)
        return (params.n_mels // d, params.frames // d, arch.filters[-1])

    def build(self, config: FamilyConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        return _build(config, params=params, fold_upsampling=fold_upsampling, decoder_columns=decoder_columns)

    def export_decoder(self, decoder: Any, config: FamilyConfig, *, params: SpectrogramParams,
                       columns: int | None = None) -> tuple[Any, tuple[int | None, ...]]:
        # The decoder every latent change waits for, in its cheaper exact form (about half the decode time).
        shape = self.latent_shape(config, params=params)
        if columns is not None:
            shape = (shape[0], columns, shape[2])
        return folded_decoder(decoder, config, params=params, columns=columns), shape

    def export_notes(self, config: FamilyConfig) -> list[str]:
        folded = [i for i in range(config.architecture.stages) if folds(config, i)]
        stages = ", ".join(map(str, folded))
        return [f"decoder stages {stages}: upsampling folded into the transposed convolution"] if folded else []


FAMILY = ConvFamily()
