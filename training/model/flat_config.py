"""Reading the config.json of runs written before each family owned its settings: one flat object.

Until then a :class:`~training.model.config.ModelConfig` was one flat record of every family's fields (24
beside the name: the paper's conv stack, the patch families' ``patch_frames``, the keyboard's ``hidden``, the
home key's ``keys``, ``home_key`` and ``key_rank``), the schedule first flat beside them and later nested as
``"schedule"``. Every run, sweep row and results table written before carries that form, so it is read here
into today's (layout, settings); nothing writes it any more, and no family added since has a flat form.

A flat config named its family by ``layout`` and held the other families' fields too: the conv family ignored
the patch fields, and the patch families ignored the conv stack's shape but refused a config whose other
fields asked for something they could not build (:data:`REQUIRED`). Both stay so: a flat config that loaded
before loads as the same model, one that was refused is refused.
"""

from __future__ import annotations

from typing import Any

from synth.errors import ParameterError

__all__ = ["FLAT_FIELDS", "REQUIRED", "is_flat", "flat_architecture", "flatten"]

#: The architecture fields of the flat form, in the order it wrote them.
FLAT_FIELDS: tuple[str, ...] = (
    "pooling", "filters", "kernel_size", "strides", "activation", "dense", "dropout_where", "dropout_rate",
    "regularizer", "regularizer_norm", "regularizer_where", "regularizer_weight", "output_activation",
    "output_layer", "residual_blocks", "frequency_bias", "mel_head", "layout", "patch_frames", "hidden", "keys",
    "home_key", "key_rank",
)

# Fields added after runs were saved without them; such a run's config loads with these values.
_DEFAULTS: dict[str, Any] = {
    "output_layer": "conv", "residual_blocks": 0, "frequency_bias": False, "mel_head": 0,
    "layout": "conv2d", "patch_frames": 64, "hidden": 0, "keys": (), "home_key": 60, "key_rank": 0,
}

_PATCH_REQUIRED: dict[str, Any] = {
    "dense": None, "residual_blocks": 0, "frequency_bias": False, "mel_head": 0, "dropout_where": "none",
    "regularizer": "none", "output_activation": "clip",
}
#: Per layout, the flat fields outside its settings that had to hold these values (the rest were ignored).
REQUIRED: dict[str, dict[str, Any]] = {
    "conv2d": {},
    "patch": {**_PATCH_REQUIRED, "hidden": 0, "keys": (), "key_rank": 0},
    "keyboard": {**_PATCH_REQUIRED, "keys": (), "key_rank": 0},
    "home_key": {**_PATCH_REQUIRED, "hidden": 0},
}


def is_flat(data: dict[str, Any]) -> bool:
    """Whether a config dict has the flat form (no ``"architecture"`` object)."""
    return "architecture" not in data


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def flat_architecture(data: dict[str, Any], *, families: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """(layout, that family's settings as a dict) of the flat config ``data`` (its name and schedule already
    taken out); ``families`` maps layouts to families (:data:`training.model.families.FAMILIES`)."""
    data = {**{k: v for k, v in _DEFAULTS.items() if k not in data}, **data}
    missing = [k for k in FLAT_FIELDS if k not in data]
    unknown = [k for k in data if k not in FLAT_FIELDS]
    if missing or unknown:
        raise ParameterError(f"{source}: missing keys {missing}, unknown keys {unknown}")
    layout = data["layout"]
    if layout not in REQUIRED or layout not in families:
        raise ParameterError(f"{source}: layout {layout!r} is not one of {tuple(REQUIRED)} (the layouts of the flat "
                             "form)")
    own = families[layout].settings.field_names()
    refused = [f"{k}={data[k]!r}" for k, v in REQUIRED[layout].items() if _plain(data[k]) != v]
    if refused:
        raise ParameterError(f"{source}: the {layout} layout does not take {', '.join(refused)}")
    return layout, {k: data[k] for k in own}


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """A config dict of either form (a run's or row's ``"config"``) as one flat dict: the architecture's and the
    schedule's fields beside the name and layout, as the flat form had them (for tables and comparisons that
    read fields by name)."""
    out = {k: v for k, v in config.items() if k not in ("architecture", "schedule")}
    for nested in ("architecture", "schedule"):
        if isinstance(config.get(nested), dict):
            out.update(config[nested])
    return out
