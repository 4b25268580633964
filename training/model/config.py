"""The one description of every autoencoder variant of the paper (Tables I-IV), and ours, saved as JSON in each
run.

A :class:`ModelConfig` is three things: a name, the family's own architecture settings (``architecture``,
the frozen settings object its family declares in its own file: :class:`~training.model.conv.ConvSettings`
for the paper's conv stack, :class:`~training.model.patch.PatchSettings`,
:class:`~training.model.keyboard.KeyboardSettings`, :class:`~training.model.home_key.HomeKeySettings`), and
how it is fitted (``schedule``, a :class:`~training.model.schedule.FitSchedule`: learning rate, batch,
patience, epoch bound, seed). The settings' class names the family (``layout``, looked up in
:data:`training.model.families.FAMILIES`), so a new family with settings of its own touches one new file and
one registration, never this one. A config never holds the input shape: that comes from the spectrogram
contract (:class:`synth.spectrogram.SpectrogramParams`) the model is trained on, which the run folder
records beside it.

JSON (``to_dict``)::

    {"name": "patch", "layout": "patch", "architecture": {"filters": [256], "patch_frames": 64},
     "schedule": {"learning_rate": 0.0001, ...}}

Runs written before each family owned its settings hold one flat object of every family's fields (and before
that, the schedule's fields flat beside them too): :meth:`ModelConfig.from_dict` reads both through
:mod:`training.model.flat_config`, as the same model.

The variants below are the paper's rows and ours; why each default is what it is stands beside the settings
(the conv family's choices in :mod:`training.model.conv`, the patch layout's in :mod:`training.model.patch`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from synth.atomic import atomic_write_text
from synth.errors import ParameterError
from synth.json_files import read_json_file
from training.model.conv import ConvSettings
from training.model.families import FAMILIES, family_of
from training.model.family import ModelFamily
from training.model.flat_config import flat_architecture, is_flat
from training.model.home_key import HomeKeySettings
from training.model.keyboard import KeyboardSettings
from training.model.patch import PatchSettings
from training.model.schedule import SCHEDULE_FIELDS, FitSchedule
from training.model.settings import ArchitectureSettings

__all__ = ["ModelConfig", "VARIANT_NAMES", "PAPER_VARIANT_NAMES", "OWN_VARIANT_NAMES", "variant", "default_config"]

_JSON_KEYS = ("name", "layout", "architecture", "schedule")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One autoencoder variant and how to fit it: ``name``, ``architecture`` (the settings of its family,
    whose ``layout`` names the family: see the module docstring) and ``schedule`` (a
    :class:`~training.model.schedule.FitSchedule`: optimizer, batch, stopping rule, seed)."""

    name: str = "no_dense"
    architecture: ArchitectureSettings = ConvSettings()
    schedule: FitSchedule = FitSchedule()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParameterError(f"model config: name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.architecture, ArchitectureSettings):
            raise ParameterError(f"model config {self.name!r}: architecture must be a family's settings, got "
                                 f"{type(self.architecture).__name__}")
        if type(self.architecture) is not self.family.settings:
            raise ParameterError(f"model config {self.name!r}: {type(self.architecture).__name__} is not the "
                                 f"settings of the {self.layout} family ({self.family.settings.__name__})")
        if not isinstance(self.schedule, FitSchedule):
            raise ParameterError(f"model config: schedule must be a FitSchedule, got {type(self.schedule).__name__}")

    # ------------------------------------------------------------------ derived
    @property
    def layout(self) -> str:
        """The family's name (its settings' ``layout``)."""
        return self.architecture.layout

    @property
    def family(self) -> ModelFamily:
        """The :class:`~training.model.family.ModelFamily` that builds this config (by ``layout``)."""
        return family_of(self)

    # ------------------------------------------------------------------ copies
    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` to its own fields (name, architecture, schedule) applied (validated); see
        :meth:`with_architecture` and :meth:`with_schedule` to change some fields of either."""
        unknown = [k for k in changes if k not in _FIELD_NAMES]
        if unknown:
            raise ParameterError(f"model config: unknown keys {unknown}")
        return dataclasses.replace(self, **changes)

    def with_architecture(self, **changes: Any) -> ModelConfig:
        """A copy whose architecture settings have ``changes`` applied (fields of this family's settings)."""
        try:
            architecture = self.architecture.replace(**changes)
        except ParameterError as exc:
            raise ParameterError(f"model config {self.name!r}: {exc}") from None
        return dataclasses.replace(self, architecture=architecture)

    def with_schedule(self, **changes: Any) -> ModelConfig:
        """A copy whose schedule has ``changes`` (:data:`~training.model.schedule.SCHEDULE_FIELDS`) applied."""
        return dataclasses.replace(self, schedule=self.schedule.replace(**changes))

    def with_changes(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied, each key the name, a field of the architecture or of the schedule:
        for flat override tables (a sweep's overrides, a test's shrunk variant) that change several."""
        schedule = {k: v for k, v in changes.items() if k in SCHEDULE_FIELDS}
        own = {k: v for k, v in changes.items() if k == "name"}
        rest = {k: v for k, v in changes.items() if k not in schedule and k not in own}
        return self.replace(**own).with_architecture(**rest).with_schedule(**schedule)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: name, layout, the architecture and the schedule as nested dicts."""
        return {"name": self.name, "layout": self.layout, "architecture": self.architecture.to_dict(),
                "schedule": self.schedule.to_dict()}

    def settings_dict(self) -> dict[str, Any]:
        """The layout and the architecture's fields in one flat dict (what makes the model, for comparisons
        and tables)."""
        return {"layout": self.layout, **self.architecture.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "model config") -> ModelConfig:
        """Build from a dict as :meth:`to_dict` writes it, or in the flat form of the runs written before
        (:mod:`training.model.flat_config`: every family's fields in one object, the schedule nested as
        ``"schedule"`` or flat beside them); ``source`` names it in errors."""
        if not isinstance(data, dict):
            raise ParameterError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        if "schedule" in data:
            schedule_data = data.pop("schedule")
        elif is_flat(data):
            schedule_data = {k: data.pop(k) for k in SCHEDULE_FIELDS if k in data}
        else:
            schedule_data = None
        name = data.pop("name", None)
        if name is None:
            raise ParameterError(f"{source}: missing keys ['name']")
        if is_flat(data):
            layout, architecture_data = flat_architecture(data, families=FAMILIES, source=source)
        else:
            missing = [k for k in _JSON_KEYS if k not in data and k not in ("name", "schedule")]
            missing += ["schedule"] if schedule_data is None else []
            unknown = [k for k in data if k not in _JSON_KEYS]
            if missing or unknown:
                raise ParameterError(f"{source}: missing keys {missing}, unknown keys {unknown}")
            layout, architecture_data = data["layout"], data["architecture"]
        if layout not in FAMILIES:
            raise ParameterError(f"{source}: layout {layout!r} is not one of {tuple(FAMILIES)}")
        architecture = FAMILIES[layout].settings.from_dict(architecture_data, source=source)
        schedule = FitSchedule.from_dict(schedule_data, source=source)
        try:
            return cls(name=name, architecture=architecture, schedule=schedule)
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

#: The kernel L1 rows' penalty weight (see training.model.conv: 1e-4 swamped the reconstruction).
KERNEL_L1_WEIGHT = 1e-6

# The paper's baseline: max pooling and a dense bottleneck of 8192, no regularisation but early stopping.
_BASELINE = ModelConfig(name="no_reg", architecture=ConvSettings(pooling="max", dense=8192))


#: Our own variants: the paper's no_dense with the changes below (the same 2048 latent values: 2 x 8 x 128,
#: or 1 x 8 x 256 for the patch families). Each is a row of the ablation table, results/model/ablation.md.
#: Each is (its architecture, its schedule's changes).
_PATCH = PatchSettings(filters=(256,), patch_frames=64)
_OWN_VARIANTS: dict[str, tuple[ArchitectureSettings, dict[str, Any]]] = {
    # The output can be exactly the floor: a clipped linear output with a straight-through gradient.
    "clip": (ConvSettings(output_activation="clip"), {"batch_size": 16}),
    # ... with ELU instead of tanh in the hidden layers (the latent is ELU-bounded below, not above).
    "clip_elu": (ConvSettings(output_activation="clip", activation="elu"), {"batch_size": 16}),
    # ... with two residual blocks on each side of the latent.
    "clip_res": (ConvSettings(output_activation="clip", residual_blocks=2), {"batch_size": 16}),
    # ... with a learned bias per mel row in every decoder stage (clip_fb) and with residual blocks too.
    "clip_fb": (ConvSettings(output_activation="clip", frequency_bias=True), {"batch_size": 16}),
    # ... with a per-frame dense output over the mel axis.
    "clip_mh": (ConvSettings(output_activation="clip", mel_head=8), {"batch_size": 16}),
    "clip_res_fb": (ConvSettings(output_activation="clip", residual_blocks=2, frequency_bias=True), {"batch_size": 16}),
    # A linear stage per half-second patch, mel rows as channels, started from the patches' PCA (8 x 256).
    "patch": (_PATCH, {"batch_size": 16, "learning_rate": 1e-4, "lr_patience": 3, "min_delta": 0.002, "clipnorm": 1.0}),
    # The patch code made pitch-aware (training.model.keyboard): trained on notes over the keyboard.
    "keyboard": (KeyboardSettings(filters=(256,), patch_frames=64, hidden=512, activation="elu"),
                 {"batch_size": 32, "learning_rate": 3e-4, "lr_patience": 2, "min_delta": 0.002, "clipnorm": 1.0,
                  "patience": 5}),
    # The home key's patch code and a map of rank 64 to every other key (training.model.home_key), for the
    # keyboard set rendered at every third key of 36..84; one epoch: it is fitted in closed form, not trained.
    "home-key": (HomeKeySettings(filters=(256,), patch_frames=64, keys=tuple(range(36, 85, 3)), home_key=60,
                                 key_rank=64),
                 {"batch_size": 32, "learning_rate": 1e-4, "lr_patience": 2, "min_delta": 0.002, "clipnorm": 1.0,
                  "patience": 5, "max_epochs": 1}),
}


def _variants() -> dict[str, ModelConfig]:
    out: dict[str, ModelConfig] = {"no_reg": _BASELINE}
    # Table I: dropout, kernel and activity regularisers on the baseline.
    for where in ("E", "D", "ED"):
        out[f"dropout_{where}"] = _BASELINE.replace(name=f"dropout_{where}").with_architecture(dropout_where=where)
    for kind, prefix in (("kernel", "kr"), ("activity", "ar")):
        for norm in ("l1", "l2"):
            for where in ("E", "D", "ED"):
                name = f"{prefix}_{norm}_{where}"
                weight = KERNEL_L1_WEIGHT if (kind, norm) == ("kernel", "l1") else \
                    _BASELINE.architecture.regularizer_weight
                out[name] = _BASELINE.replace(name=name).with_architecture(
                    regularizer=kind, regularizer_norm=norm, regularizer_where=where, regularizer_weight=weight,
                )
    # Table II: pooling (all with the baseline's dense 8192).
    for pooling in ("max", "avg", "none"):
        out[f"pool_{pooling}"] = _BASELINE.replace(name=f"pool_{pooling}").with_architecture(pooling=pooling)
    # Table III: the dense latent size.
    for size in (8192, 4096, 2048):
        out[f"latent_{size}"] = _BASELINE.replace(name=f"latent_{size}").with_architecture(dense=size)
    # Table IV: dense (the baseline) against no dense layer (the paper's best model).
    out["dense"] = _BASELINE.replace(name="dense")
    out["no_dense"] = ModelConfig(name="no_dense", architecture=ConvSettings(pooling="max", dense=None))
    # Ours (results/model/ablation.md measures each step against no_dense on unseen instruments).
    for name, (architecture, schedule) in _OWN_VARIANTS.items():
        out[name] = out["no_dense"].replace(name=name, architecture=architecture).with_schedule(**schedule)
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
