"""Model bundles: ONNX decoder/encoder, spectrogram contract, macros and presets, loaded without TensorFlow.

See :mod:`synth.bundle.bundle` for the folder layout and the checks :func:`load_bundle` makes;
:mod:`synth.bundle.manifest` types bundle.json and :mod:`synth.bundle.writer` is the one writer of the folder.
"""

from synth.bundle.bundle import BUNDLE_FORMAT, BUNDLE_JSON, Bundle, load_bundle
from synth.bundle.hashing import bundle_hash_of, sha256_bytes
from synth.bundle.macros import Macros, load_macros, macros_from_latents, save_macros
from synth.bundle.manifest import BundleManifest
from synth.bundle.presets import (
    PRESETS_DIR,
    Preset,
    load_preset_file,
    preset_from_dict,
    save_preset,
    validate_preset_name,
)
from synth.bundle.runtime import Decoder, Encoder, default_providers
from synth.bundle.writer import PresetSeed, write_bundle

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_JSON",
    "PRESETS_DIR",
    "Bundle",
    "BundleManifest",
    "PresetSeed",
    "Decoder",
    "Encoder",
    "Macros",
    "Preset",
    "bundle_hash_of",
    "default_providers",
    "load_bundle",
    "load_macros",
    "macros_from_latents",
    "load_preset_file",
    "preset_from_dict",
    "save_macros",
    "save_preset",
    "sha256_bytes",
    "validate_preset_name",
    "write_bundle",
]
