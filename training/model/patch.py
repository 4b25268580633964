"""The patch layout (``layout="patch"``): one linear stage per latent column, started from PCA, and its
settings (:class:`PatchSettings`).

Shapes (P = ``patch_frames``, C = frames / P, K = ``filters[-1]`` of the settings)::

    encoder   (batch, n_mels, frames) -> (batch, 1, C, K)
    decoder   (batch, 1, C, K)        -> (batch, n_mels, frames)     clipped to the unit scale

A patch is the P frames x n_mels values of one latent column, flattened frame-major. The encoder is one
Dense(K) applied to every patch and the decoder one Dense(P * n_mels) applied to every latent column: the
stride-P convolution and transposed convolution with mel rows as channels, written as Dense layers because
their bias is then per (frame in the patch, mel row), where the mean patch lives. Column ``c`` decodes
frames ``[c P, (c + 1) P)`` and nothing else, so a window of columns decodes exactly what the whole note
does there.

:func:`initialise_from_pca` sets both layers to the PCA of the training patches (streamed a batch of notes at
a time: :func:`patch_pca`): the encoder projects a patch onto the first K principal directions and the
decoder adds them back to the mean patch, the best linear code of K values for those patches.

Why this layout (our variant, not the paper's): a convolutional autoencoder whose one stage is as wide as a
latent column. The encoder maps each ``patch_frames`` x n_mels patch of the note (64 x 128 = 8192 values, half
a second) linearly to ``filters[-1]`` latent values, and the decoder maps them back: a stride-``patch_frames``
convolution and its transpose, with the mel axis as channels, so every mel row has its own weights (the
position a 2-D convolution is blind to). Fitting starts from the PCA of the training notes' patches, the best
linear code of that size for them, and then trains end to end like every other variant. One basis serves all
8 columns of a note, so it is fitted on 8 times as many examples as a PCA of whole notes, which is why it
reconstructs unseen instruments better than a PCA of the same training notes with k = min(2048, notes)
components (results/model/ablation.md). A column decodes its own frames only, so windowed decodes (tiles) are
exact with no reach at all. Its output is always the straight-through clip to the unit scale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from synth.errors import DataError, ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.family import FamilyConfig, ModelFamily
from training.model.settings import ArchitectureSettings, check_int, int_tuple, is_int

__all__ = ["PatchFamily", "PatchSettings", "any_columns_decoder", "columns_to_mel", "initialise_from_pca", "note_patches", "patch_pca",
           "ENCODER_LAYER", "DECODER_LAYER"]

ENCODER_LAYER = "patch_encode"
DECODER_LAYER = "patch_decode"


@dataclasses.dataclass(frozen=True)
class PatchSettings(ArchitectureSettings):
    """Each ``patch_frames`` x n_mels patch maps linearly to ``filters[0]`` latent values and back; the latent is
    (1, frames / patch_frames, filters[0]). ``filters`` has one entry (the name and list form are those of the
    paper's family, kept so every run's config.json reads alike)."""

    layout: ClassVar[str] = "patch"

    filters: tuple[int, ...] = (256,)
    patch_frames: int = 64

    def __post_init__(self) -> None:
        filters = int_tuple(self, "filters")
        if len(filters) != 1 or not is_int(filters[0]) or filters[0] < 1:
            raise ParameterError(f"{self.what}: filters={list(filters)!r} must have one entry: the latent values "
                                 "per column, a positive int")
        check_int(self, "patch_frames", least=1)


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


#: Notes read at once by the PCA start: 64 notes of 128 x 512 values are 32 MB as float64 patches.
START_BATCH_NOTES = 64
#: Power iterations of the PCA start's range finder (scikit-learn's randomized_svd was called with 6).
START_POWER_ITERATIONS = 6


def patch_pca(notes: Any, *, patch_frames: int, k: int, what: str, seed: int = 0, log=None,
              offsets: Callable[[slice], np.ndarray] | None = None,
              batch_notes: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean [shape=(D,)], the first ``k`` principal directions [shape=(k, D)], the fraction of the variance
    they explain) of the patches of ``notes`` (D = ``patch_frames`` x n_mels), streamed.

    ``notes`` [shape=(N, n_mels, frames)] is anything read by slices like an array (an array, a memory map,
    :class:`~training.datasets.features.NoteRows`): ``batch_notes`` (default :data:`START_BATCH_NOTES`) of them
    are read at a time, several times
    (:func:`synth.metrics.pca.fit_pca_streamed`: exact from the Gram matrix up to 4096 patches, else a
    randomized range finder with :data:`START_POWER_ITERATIONS` power iterations), so memory holds a batch,
    not the notes. ``offsets(slice of notes)``, when given, is subtracted from those notes' patches
    [shape=(patches of the slice, D)] before the PCA (the keyboard family's per-key mean patches).

    Raises
    ------
    DataError
        for fewer patches than ``k``, or values that are not finite; ``what`` names the model in the message.
    """
    from synth.metrics.pca import fit_pca_streamed

    shape = tuple(notes.shape)
    if len(shape) != 3 or shape[2] % patch_frames:
        raise ParameterError(f"patches: expected notes (N, n_mels, frames) with frames a multiple of "
                             f"{patch_frames}, got shape {shape}")
    n, n_mels, frames = (int(v) for v in shape)
    batch_notes = START_BATCH_NOTES if batch_notes is None else batch_notes
    columns, dims = frames // patch_frames, patch_frames * n_mels
    count = n * columns
    if count <= k or dims < k:
        raise DataError(f"PCA start of model {what}: {count} patches of {dims} values "
                        f"cannot give {k} principal directions; train on more notes or use fewer latent values")
    if log:
        log(f"  starting from the PCA of {count} training patches ({k} of {dims} dimensions)")

    def patches(part: slice) -> np.ndarray:
        # fit_pca_streamed reads whole batches of batch_notes * columns patches: whole notes.
        first, stop = part.start // columns, -(-part.stop // columns)
        out = note_patches(notes[first:stop], patch_frames=patch_frames)
        if not np.all(np.isfinite(out)):
            raise DataError(f"PCA start of model {what}: the training notes hold NaN or infinite values "
                            f"(notes {first}..{stop - 1})")
        if offsets is not None:
            out -= offsets(slice(first, stop))
        return out.reshape(len(out), patch_frames, n_mels)

    base = fit_pca_streamed(patches, count, shape=(patch_frames, n_mels), components=k,
                            name=f"the training patches of model {what}", batch_notes=max(1, batch_notes) * columns,
                            seed=seed, power_iterations=START_POWER_ITERATIONS)
    return base.mean, base.components, base.explained_variance


def initialise_from_pca(encoder: Any, decoder: Any, x: Any, *, config: FamilyConfig, seed: int = 0,
                        log=None) -> dict[str, float]:
    """Set the patch encoder and decoder of ``config`` to the PCA of the patches of training notes ``x``
    [shape=(N, n_mels, frames)], read a batch at a time (see :func:`patch_pca`), in place; returns
    ``{"patches": .., "explained_variance": ..}``.

    Raises
    ------
    DataError
        for fewer patches than the latent values per column, or values that are not finite.
    """
    arch = config.architecture
    mean, vt, explained = patch_pca(x, patch_frames=arch.patch_frames, k=arch.filters[-1],
                                    what=repr(config.name), seed=seed, log=log)
    encoder.get_layer(ENCODER_LAYER).set_weights([vt.T.copy(), (-mean @ vt.T).astype(np.float32)])
    decoder.get_layer(DECODER_LAYER).set_weights([vt.copy(), mean])
    return {"patches": int(len(x) * (x.shape[2] // arch.patch_frames)), "explained_variance": explained}


def _decoder_graph(keras: Any, config: FamilyConfig, *, params: SpectrogramParams, columns: int | None) -> tuple[Any, Any]:
    """(input, output) of the decoder over ``columns`` latent columns (None: any number)."""
    from keras import layers

    arch = config.architecture
    n_mels, p, k = params.n_mels, arch.patch_frames, arch.filters[-1]
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


def any_columns_decoder(decoder: Any, config: FamilyConfig, *, params: SpectrogramParams) -> Any:
    """The patch ``decoder`` (built by :class:`PatchFamily`) over any number of latent columns, same
    weights: column ``c`` of its input becomes its frames ``[c P, (c + 1) P)``, so one exported graph decodes a
    whole note and any window of it (export writes it as its own tile decoder)."""
    import keras

    z_in, out = _decoder_graph(keras, config, params=params, columns=None)
    model = keras.Model(z_in, out, name="decoder_any_columns")
    model.get_layer(DECODER_LAYER).set_weights(decoder.get_layer(DECODER_LAYER).get_weights())
    return model


def _build(config: FamilyConfig, *, params: SpectrogramParams,
                       decoder_columns: int | None = None) -> tuple[Any, Any, Any]:
    """``(autoencoder, encoder, decoder)`` of the patch layout (see the module docstring); with
    ``decoder_columns`` the decoder takes that many latent columns and the autoencoder is None."""
    import keras
    from keras import layers

    arch = config.architecture
    n_mels, frames = params.n_mels, params.frames
    p, k = arch.patch_frames, arch.filters[-1]
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

    settings = PatchSettings
    decodes_any_columns = True
    fitted_start = True

    def downsampling(self, config: FamilyConfig) -> int:
        return config.architecture.patch_frames

    def downsampled_axes(self, params: SpectrogramParams) -> tuple[tuple[str, int], ...]:
        return (("frames", params.frames),)  # a patch takes the whole mel axis

    def latent_shape(self, config: FamilyConfig, *, params: SpectrogramParams) -> tuple[int, ...]:
        arch = config.architecture
        self.check_input_shape(config, params=params)
        return (1, params.frames // arch.patch_frames, arch.filters[-1])

    def build(self, config: FamilyConfig, *, params: SpectrogramParams, decoder_columns: int | None = None,
              fold_upsampling: bool = False) -> tuple[Any, Any, Any]:
        self.check_input_shape(config, params=params)
        return _build(config, params=params, decoder_columns=decoder_columns)

    def initialise(self, models: tuple[Any, Any, Any], x: Any, *, pitch: np.ndarray, config: FamilyConfig,
                   log: Any = None) -> None:
        _, encoder, decoder = models
        initialise_from_pca(encoder, decoder, x, config=config, seed=config.schedule.seed, log=log)

    def export_decoder(self, decoder: Any, config: FamilyConfig, *, params: SpectrogramParams,
                       columns: int | None = None) -> tuple[Any, tuple[int | None, ...]]:
        # Each latent column maps to its own frames: one graph over any number of columns decodes a whole
        # note and is its own tile decoder.
        rows, _, channels = self.latent_shape(config, params=params)
        return any_columns_decoder(decoder, config, params=params), (rows, None, channels)


FAMILY = PatchFamily()
