"""The one description of every autoencoder variant of the paper (Tables I-IV), saved as JSON in each run.

A :class:`ModelConfig` holds the architecture (pooling, filters, kernel, dense bottleneck, dropout,
regularizers, output activation) and, as its one ``schedule`` field, how it is fitted
(:class:`~training.model.schedule.FitSchedule`: learning rate, batch, patience, epoch bound, seed). It never
holds the input shape: that comes from the spectrogram contract
(:class:`synth.spectrogram.SpectrogramParams`) the model is trained on, which the run folder records beside it.

Choices the paper does not publish, and what we chose:

- ``filters`` (32, 64, 128): three stride-2 conv + 2x2 pool stages take 128 x 512 to 2 x 8 x 128 = 2048
  values, the paper's "3%" latent of the no-dense model (../shared/REFERENCE.md).
- ``regularizer_weight`` 1e-4, except the kernel L1 rows (``kr_l1_*``: :data:`KERNEL_L1_WEIGHT`, 1e-6): the
  strength of the L1/L2 kernel or activity penalty. Measured on the baseline at initialisation (34.1 M kernel
  weights, mean |w| 0.012, split about evenly between encoder and decoder by the two dense layers): L1 at
  1e-4 gives a penalty of 20.7 on the encoder's kernels (E) and 21.2 on the decoder's (D), L2 0.34 and 0.35,
  against an untrained MSE of 0.136 (16 training notes) and a trained one of ~0.003. L1 at 1e-4 swamped the
  reconstruction: the 30-epoch kr_l1 E / D rows reached test RMSE 0.161 / 0.103 against no_reg's 0.064, their
  loss still 0.21 at epoch 30, most of it the penalty (the paper reports kernel L1 as a mild change). A
  5-epoch screen of kr_l1_D and kr_l2_D on the validation split (2026-12-02; RMSE / F1, no_reg 0.0895 /
  0.515): L1 1e-5 0.106 / 0.470, 1e-6 0.088 / 0.542, 1e-7 0.087 / 0.534, 1e-8 0.092 / 0.501; L2 1e-4 0.089 /
  0.560, 1e-5 0.092 / 0.525, 1e-6 0.089 / 0.521. So L1 takes the strongest weight that did not hurt, 1e-6,
  and L2 keeps 1e-4. Activity penalties are summed
  over each example's activations (Keras divides by the batch only): at 1e-4 they are 2.0 (L1) and 0.20
  (L2) on the encoder, 4.3 and 1.6 on the full-resolution decoder layers, which matches the paper's
  collapsed "AR ... D" rows.
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
- ``layout`` "patch" (our variant, not the paper's): a convolutional autoencoder whose one stage is as wide
  as a latent column. The encoder maps each ``patch_frames`` x n_mels patch of the note (64 x 128 = 8192
  values, half a second) linearly to ``filters[-1]`` latent values, and the decoder maps them back: a
  stride-``patch_frames`` convolution and its transpose, with the mel axis as channels, so every mel row has
  its own weights (the position a 2-D convolution is blind to). Fitting starts from the PCA of the training
  notes' patches (:mod:`training.model.patch`), the best linear code of that size for them, and then trains
  end to end like every other variant. One basis serves all 8 columns of a note, so it is fitted on 8 times
  as many examples as a PCA of whole notes, which is why it reconstructs unseen instruments better than a
  PCA of the same training notes with k = min(2048, notes) components (results/model/ablation.md). A column decodes its own frames only, so
  windowed decodes (tiles) are exact with no reach at all. ``pooling``, ``kernel_size``, ``strides`` and
  ``activation`` are not used by this layout.
- ``layout`` "keyboard" (our variant, issue 28): the patch layout with the pitch as an input to encoder and
  decoder (:mod:`training.model.keyboard`): per-key mean patches, a shared linear basis, and a detail path of
  two ``hidden``-wide layers with a per-key FiLM scale and shift. Trained on notes over the keyboard, on
  pairs of one instrument's notes at two keys.
- ``layout`` "home_key" (our variant, issue 28): the patch code of ``home_key``'s notes, and for every other
  of ``keys`` a linear map of rank ``key_rank`` from that code to the key's patches and back
  (:mod:`training.model.home_key`), fitted in closed form from pairs of one instrument's notes at two keys.
- ``pooling`` "none": each pooling layer is replaced by one more stride-2 convolution with the same
  filters (the paper's "three additional convolutional layers"), so the latent shape matches.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from synth.atomic import atomic_write_text
from synth.errors import ParameterError
from synth.json_files import read_json_file
from training.model.schedule import SCHEDULE_FIELDS, FitSchedule

__all__ = ["ModelConfig", "VARIANT_NAMES", "PAPER_VARIANT_NAMES", "OWN_VARIANT_NAMES", "variant", "default_config"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "pooling": ("max", "avg", "none"),
    "activation": ("tanh", "relu", "elu", "sigmoid", "linear"),
    "dropout_where": ("none", "E", "D", "ED"),
    "regularizer": ("none", "kernel", "activity"),
    "regularizer_norm": ("l1", "l2"),
    "regularizer_where": ("E", "D", "ED"),
    "output_activation": ("sigmoid", "softmax", "clip"),
    "output_layer": ("conv_transpose", "conv"),
}

# Fields added after runs were saved without them; such a run's config loads with these values.
_LEGACY_DEFAULTS: dict[str, Any] = {
    "output_layer": "conv", "residual_blocks": 0, "frequency_bias": False, "mel_head": 0,
    "layout": "conv2d", "patch_frames": 64, "hidden": 0, "keys": (), "home_key": 60, "key_rank": 0,
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One autoencoder variant and how to fit it.

    Architecture: ``len(filters)`` encoder stages of Conv2D(filters[i], kernel_size, strides, same,
    activation) followed by ``pooling`` (2x2) or, with ``pooling="none"``, by a second stride-2 Conv2D;
    optionally a Dense(``dense``, tanh) bottleneck; a mirrored decoder; a final Conv2D(1) with
    ``output_activation``. Dropout (``dropout_rate``) follows each stage of the encoder ("E"), decoder ("D")
    or both ("ED"). ``regularizer`` ("kernel" or "activity", ``regularizer_norm`` l1/l2 with
    ``regularizer_weight``) applies to every conv/dense layer of the encoder, decoder or both
    (``regularizer_where``).

    With ``layout="patch"`` there is one stage instead: each ``patch_frames`` x n_mels patch maps linearly to
    ``filters[-1]`` latent values and back (see the module docstring); the latent is
    (1, frames / patch_frames, filters[-1]).

    Fitting: ``schedule``, a :class:`~training.model.schedule.FitSchedule` (optimizer, batch, stopping rule,
    seed). JSON keeps it as one nested object; a config written before the split, with its fields at the top
    level, still loads (:meth:`from_dict`).
    """

    name: str = "no_dense"
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
    layout: str = "conv2d"
    patch_frames: int = 64
    hidden: int = 0
    keys: tuple[int, ...] = ()
    home_key: int = 60
    key_rank: int = 0
    schedule: FitSchedule = FitSchedule()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(f"model config: name must be a non-empty string, got {self.name!r}")
        for key, choices in _CHOICES.items():
            if getattr(self, key) not in choices:
                raise ParameterError(f"model config: {key}={getattr(self, key)!r} is not one of {choices}")
        filters = self.filters
        if isinstance(filters, list):
            filters = tuple(filters)
            object.__setattr__(self, "filters", filters)
        if (
            not isinstance(filters, tuple)
            or not filters
            or not all(isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters)
        ):
            raise ParameterError(f"model config: filters must be a non-empty list of positive ints, got {filters!r}")
        for key in ("kernel_size", "strides"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ParameterError(f"model config: {key} must be a positive int, got {value!r}")
        if not isinstance(self.residual_blocks, int) or isinstance(self.residual_blocks, bool) or self.residual_blocks < 0:
            raise ParameterError(
                f"model config: residual_blocks must be a non-negative int, got {self.residual_blocks!r}"
            )
        if self.dense is not None and (not isinstance(self.dense, int) or isinstance(self.dense, bool) or self.dense <= 0):
            raise ParameterError(f"model config: dense must be null or a positive int, got {self.dense!r}")
        for key, low, high in (("dropout_rate", 0.0, 1.0), ("regularizer_weight", 0.0, float("inf"))):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value < high:
                raise ParameterError(f"model config: {key} must be a number in [{low}, {high}), got {value!r}")
            object.__setattr__(self, key, float(value))
        if isinstance(self.mel_head, bool) or not isinstance(self.mel_head, int) or self.mel_head < 0:
            raise ParameterError(f"model config: mel_head must be a non-negative int, got {self.mel_head!r}")
        if not isinstance(self.frequency_bias, bool):
            raise ParameterError(f"model config: frequency_bias must be true or false, got {self.frequency_bias!r}")
        if isinstance(self.patch_frames, bool) or not isinstance(self.patch_frames, int) or self.patch_frames < 1:
            raise ParameterError(f"model config: patch_frames must be a positive int, got {self.patch_frames!r}")
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 0:
            raise ParameterError(f"model config: hidden must be a non-negative int, got {self.hidden!r}")
        keys = tuple(self.keys) if isinstance(self.keys, list) else self.keys
        if not isinstance(keys, tuple) or not all(_is_int(k) and 0 <= k <= 127 for k in keys) or \
                list(keys) != sorted(set(keys)):
            raise ParameterError(f"model config: keys must be a rising list of MIDI keys 0..127, got {self.keys!r}")
        object.__setattr__(self, "keys", keys)
        if not _is_int(self.home_key) or not 0 <= self.home_key <= 127:
            raise ParameterError(f"model config: home_key must be a MIDI key 0..127, got {self.home_key!r}")
        if not _is_int(self.key_rank) or self.key_rank < 0:
            raise ParameterError(f"model config: key_rank must be a non-negative int, got {self.key_rank!r}")
        if not isinstance(self.schedule, FitSchedule):
            raise ParameterError(f"model config: schedule must be a FitSchedule, got {type(self.schedule).__name__}")
        unsupported = self.family.unsupported(self)
        if unsupported:
            raise ParameterError(f"model config {self.name!r}: the {self.layout} layout does not take "
                                 f"{', '.join(unsupported)}")

    # ------------------------------------------------------------------ derived
    @property
    def stages(self) -> int:
        """Number of encoder stages (conv + pool, or conv + conv)."""
        return len(self.filters)

    @property
    def family(self) -> Any:
        """The :class:`~training.model.family.ModelFamily` that builds this config (by ``layout``)."""
        from training.model.families import family_of  # the families import this module

        return family_of(self)

    @property
    def downsampling(self) -> int:
        """Total factor by which the encoder shrinks the frame axis (and the mel axis, for the paper's
        family: each stage a stride-``strides`` conv and a 2x2 pool or a second strided conv; the patch
        families take the whole mel axis and shrink the frames to one column per ``patch_frames``)."""
        return self.family.downsampling(self)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` to its own fields applied (validated); a new schedule is a whole
        :class:`FitSchedule` (see :meth:`with_schedule` to change some of its fields)."""
        unknown = [k for k in changes if k not in _FIELD_NAMES]
        if unknown:
            raise ParameterError(f"model config: unknown keys {unknown}")
        return dataclasses.replace(self, **changes)

    def with_schedule(self, **changes: Any) -> ModelConfig:
        """A copy whose schedule has ``changes`` (:data:`~training.model.schedule.SCHEDULE_FIELDS`) applied."""
        return dataclasses.replace(self, schedule=self.schedule.replace(**changes))

    def with_changes(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied, each key a field of the architecture or of the schedule: for flat
        override tables (a sweep's overrides, a test's shrunk variant) that change both."""
        schedule = {k: v for k, v in changes.items() if k in SCHEDULE_FIELDS}
        rest = {k: v for k, v in changes.items() if k not in SCHEDULE_FIELDS}
        return self.replace(**rest).with_schedule(**schedule)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with every field (filters and keys as lists, the schedule as a nested dict)."""
        out = {f: getattr(self, f) for f in _FIELD_NAMES}
        out["filters"] = list(self.filters)
        out["keys"] = list(self.keys)
        out["schedule"] = self.schedule.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "model config") -> ModelConfig:
        """Build from a dict with exactly the fields of :class:`ModelConfig`, the schedule nested as
        ``"schedule"`` or, as configs and run folders written before the split have it, its fields at the top
        level; ``source`` names it in errors."""
        if not isinstance(data, dict):
            raise ParameterError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        if "schedule" in data:
            schedule_data = data.pop("schedule")
        else:
            schedule_data = {k: data.pop(k) for k in SCHEDULE_FIELDS if k in data}
        data = {**{k: v for k, v in _LEGACY_DEFAULTS.items() if k not in data}, **data}
        missing = [k for k in _FIELD_NAMES if k not in data and k != "schedule"]
        unknown = [k for k in data if k not in _FIELD_NAMES]
        if missing or unknown:
            raise ParameterError(f"{source}: missing keys {missing}, unknown keys {unknown}")
        schedule = FitSchedule.from_dict(schedule_data, source=source)
        if isinstance(data["filters"], list):
            data["filters"] = tuple(data["filters"])
        try:
            return cls(**data, schedule=schedule)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the config as JSON, atomically."""
        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        """Read a config written by :meth:`save` (or by hand: every field is required)."""
        path = Path(path)
        data = read_json_file(path, what="model config", error=ParameterError)
        return cls.from_dict(data, source=str(path))


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(ModelConfig))

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The paper's baseline: max pooling and a dense bottleneck of 8192, no regularisation but early stopping.
_BASELINE = ModelConfig(name="no_reg", pooling="max", dense=8192)


#: Our own variants: the paper's no_dense with the changes below (the same 2048 latent values: 2 x 8 x 128,
#: or 1 x 8 x 256 for the patch layout). Each is a row of the ablation table, results/model/ablation.md.
#: Each is (its architecture's changes, its schedule's changes).
_OWN_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # The output can be exactly the floor: a clipped linear output with a straight-through gradient.
    "clip": ({"output_activation": "clip"}, {"batch_size": 16}),
    # ... with ELU instead of tanh in the hidden layers (the latent is ELU-bounded below, not above).
    "clip_elu": ({"output_activation": "clip", "activation": "elu"}, {"batch_size": 16}),
    # ... with two residual blocks on each side of the latent.
    "clip_res": ({"output_activation": "clip", "residual_blocks": 2}, {"batch_size": 16}),
    # ... with a learned bias per mel row in every decoder stage (clip_fb) and with residual blocks too.
    "clip_fb": ({"output_activation": "clip", "frequency_bias": True}, {"batch_size": 16}),
    # ... with a per-frame dense output over the mel axis.
    "clip_mh": ({"output_activation": "clip", "mel_head": 8}, {"batch_size": 16}),
    "clip_res_fb": ({"output_activation": "clip", "residual_blocks": 2, "frequency_bias": True}, {"batch_size": 16}),
    # A linear stage per half-second patch, mel rows as channels, started from the patches' PCA (8 x 256).
    "patch": ({"layout": "patch", "filters": (256,), "patch_frames": 64, "output_activation": "clip"},
              {"batch_size": 16, "learning_rate": 1e-4, "lr_patience": 3, "min_delta": 0.002, "clipnorm": 1.0}),
    # The patch code made pitch-aware (training.model.keyboard): trained on notes over the keyboard.
    "keyboard": ({"layout": "keyboard", "filters": (256,), "patch_frames": 64, "hidden": 512, "activation": "elu",
                  "output_activation": "clip"},
                 {"batch_size": 32, "learning_rate": 3e-4, "lr_patience": 2, "min_delta": 0.002, "clipnorm": 1.0,
                  "patience": 5}),
    # The home key's patch code and a map of rank 64 to every other key (training.model.home_key), for the
    # keyboard set rendered at every third key of 36..84; one epoch: it is fitted in closed form, not trained.
    "home-key": ({"layout": "home_key", "filters": (256,), "patch_frames": 64, "output_activation": "clip",
                  "keys": tuple(range(36, 85, 3)), "home_key": 60, "key_rank": 64},
                 {"batch_size": 32, "learning_rate": 1e-4, "lr_patience": 2, "min_delta": 0.002, "clipnorm": 1.0,
                  "patience": 5, "max_epochs": 1}),
}


#: The kernel L1 rows' penalty weight (see the module docstring: 1e-4 swamped the reconstruction).
KERNEL_L1_WEIGHT = 1e-6


def _variants() -> dict[str, ModelConfig]:
    out: dict[str, ModelConfig] = {"no_reg": _BASELINE}
    # Table I: dropout, kernel and activity regularisers on the baseline.
    for where in ("E", "D", "ED"):
        out[f"dropout_{where}"] = _BASELINE.replace(name=f"dropout_{where}", dropout_where=where)
    for kind, prefix in (("kernel", "kr"), ("activity", "ar")):
        for norm in ("l1", "l2"):
            for where in ("E", "D", "ED"):
                name = f"{prefix}_{norm}_{where}"
                weight = KERNEL_L1_WEIGHT if (kind, norm) == ("kernel", "l1") else _BASELINE.regularizer_weight
                out[name] = _BASELINE.replace(
                    name=name, regularizer=kind, regularizer_norm=norm, regularizer_where=where,
                    regularizer_weight=weight,
                )
    # Table II: pooling (all with the baseline's dense 8192).
    for pooling in ("max", "avg", "none"):
        out[f"pool_{pooling}"] = _BASELINE.replace(name=f"pool_{pooling}", pooling=pooling)
    # Table III: the dense latent size.
    for size in (8192, 4096, 2048):
        out[f"latent_{size}"] = _BASELINE.replace(name=f"latent_{size}", dense=size)
    # Table IV: dense (the baseline) against no dense layer (the paper's best model).
    out["dense"] = _BASELINE.replace(name="dense")
    out["no_dense"] = ModelConfig(name="no_dense", pooling="max", dense=None)
    # Ours (results/model/ablation.md measures each step against no_dense on unseen instruments).
    for name, (architecture, schedule) in _OWN_VARIANTS.items():
        out[name] = out["no_dense"].replace(name=name, **architecture).with_schedule(**schedule)
    return out


_VARIANTS = _variants()
VARIANT_NAMES: tuple[str, ...] = tuple(_VARIANTS)
#: The rows of the paper's Tables I-IV, and ours.
OWN_VARIANT_NAMES: tuple[str, ...] = tuple(_OWN_VARIANTS)
PAPER_VARIANT_NAMES: tuple[str, ...] = tuple(n for n in VARIANT_NAMES if n not in _OWN_VARIANTS)


def variant(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of one row of the paper's Tables I-IV (see :data:`VARIANT_NAMES`)."""
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ParameterError(f"unknown model variant {name!r}; known: {', '.join(VARIANT_NAMES)}") from None


def default_config() -> ModelConfig:
    """The paper's best model: no dense layer, latent = last conv stage (2 x 8 x 128 at 128 x 512)."""
    return _VARIANTS["no_dense"]
