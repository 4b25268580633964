"""A trained one-pitch patch model's maps, read from its bundle, for a home-key model to keep at its home key.

The home-key family (training/model/home_key.py) decodes its home key through one linear map per latent
column, the patch code, and maps that code to every other key. Fitted from scratch that code is the PCA of
the home key's training notes; a one-pitch patch bundle holds the same maps after training (the shipped
default trained them for 11 epochs past its PCA start). Started from such a bundle (``melsynth train
--start-from BUNDLE``), a home-key model plays its home key exactly as that bundle does, so the bundle's
presets keep their latents and their sound there, and the key maps are fitted to its codes.

The maps are the two Dense layers of the patch family (``patch_encode`` and ``patch_decode``), read from the
ONNX initializers of the bundle's hash-checked graphs by name and shape, then checked by running both graphs
on a probe note: what is read must give what the bundle's own sessions give, or the bundle is refused.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from synth.errors import BundleError, DataError
from synth.spectrogram import SpectrogramParams
from training.model.patch import DECODER_LAYER, ENCODER_LAYER, note_patches

__all__ = ["HomeMap", "home_map_from_bundle"]

# The bundle's own sessions against the maps read from its graphs, on a probe note (unit scale).
_PARITY_ATOL = 1e-4


@dataclasses.dataclass(frozen=True)
class HomeMap:
    """One latent column's linear maps, D = patch_frames * n_mels values of a patch, K latent values::

        encoder_w (D, K)   encoder_b (K,)     latent column = patch @ encoder_w + encoder_b
        decoder_w (K, D)   decoder_b (D,)     patch = column @ decoder_w + decoder_b   (clipped to [0, 1])

    ``source``: the bundle folder they were read from."""

    encoder_w: np.ndarray
    encoder_b: np.ndarray
    decoder_w: np.ndarray
    decoder_b: np.ndarray
    source: str

    def encode_patches(self, patches: np.ndarray) -> np.ndarray:
        """[shape=(M, K)] the latent columns of ``patches`` [shape=(M, D)]."""
        return np.asarray(patches, np.float32) @ self.encoder_w + self.encoder_b


def _initializer(model, *, layer: str, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The one float32 initializer of ``shape`` whose name holds ``layer`` in a parsed ONNX ``model``."""
    import onnx
    from onnx import numpy_helper

    found = [numpy_helper.to_array(t) for t in model.graph.initializer
             if f"/{layer}" in t.name and tuple(t.dims) == shape and t.data_type == onnx.TensorProto.FLOAT]
    if len(found) != 1:
        raise DataError(f"{what}: expected one float32 {list(shape)} weight of layer {layer!r}, found {len(found)}: "
                        "not a patch-layout bundle")
    return np.array(found[0], dtype=np.float32)


def home_map_from_bundle(path: str | Path, *, params: SpectrogramParams, patch_frames: int, latent: int,
                         home_key: int) -> HomeMap:
    """The patch maps of the one-pitch bundle at ``path``, checked to fit a home-key model of these settings
    (the same spectrogram contract, ``frames / patch_frames`` columns of ``latent`` values, base pitch
    ``home_key``) and to reproduce the bundle's own encoder and decoder on a probe note; DataError naming the
    bundle and what does not fit otherwise."""
    from synth.bundle import load_bundle

    what = f"--start-from {path}"
    try:
        bundle = load_bundle(path)
    except BundleError as exc:
        raise DataError(f"{what}: {exc}") from None
    if bundle.keys is not None:
        raise DataError(f"{what}: a keyboard bundle (keys {list(bundle.keys)}); the start takes a one-pitch "
                        "patch bundle")
    if bundle.base_pitch != home_key:
        raise DataError(f"{what}: its base pitch is {bundle.base_pitch}, the model's home key {home_key}")
    if bundle.params != params:
        raise DataError(f"{what}: its spectrogram contract differs from the features' ({bundle.params} against "
                        f"{params})")
    if params.frames % patch_frames:
        raise DataError(f"{what}: {params.frames} frames do not split into patches of {patch_frames}")
    columns, width = params.frames // patch_frames, patch_frames * params.n_mels
    if tuple(bundle.latent_shape) != (1, columns, latent):
        raise DataError(f"{what}: its latent is {list(bundle.latent_shape)}, the model's [1, {columns}, {latent}]")
    import onnx

    # Each graph parsed once, both of its weights read from it.
    encoder, decoder = (onnx.load_from_string(bundle.graph_bytes(role)) for role in ("encoder", "decoder"))
    encoder_w = _initializer(encoder, layer=ENCODER_LAYER, shape=(width, latent), what=what)
    encoder_b = _initializer(encoder, layer=ENCODER_LAYER, shape=(latent,), what=what)
    decoder_w = _initializer(decoder, layer=DECODER_LAYER, shape=(latent, width), what=what)
    decoder_b = _initializer(decoder, layer=DECODER_LAYER, shape=(width,), what=what)
    home = HomeMap(encoder_w=encoder_w, encoder_b=encoder_b, decoder_w=decoder_w, decoder_b=decoder_b,
                   source=str(path))
    _check_parity(bundle, home, params=params, patch_frames=patch_frames, what=what)
    return home


def _check_parity(bundle, home: HomeMap, *, params: SpectrogramParams, patch_frames: int, what: str) -> None:
    """DataError unless ``home`` encodes and decodes a probe note as the bundle's own sessions do."""
    rng = np.random.default_rng(0)
    probe = rng.uniform(0.0, 1.0, (1, params.n_mels, params.frames)).astype(np.float32)
    z = bundle.encoder(providers=["CPUExecutionProvider"], threads=1).encode(probe)
    columns = home.encode_patches(note_patches(probe, patch_frames=patch_frames))
    encoder_error = float(np.max(np.abs(z.reshape(columns.shape) - columns)))
    mel = bundle.decoder(providers=["CPUExecutionProvider"], threads=1).decode(z)
    patches = np.clip(z.reshape(columns.shape) @ home.decoder_w + home.decoder_b, 0.0, 1.0)
    ours = patches.reshape(params.frames, params.n_mels).T
    decoder_error = float(np.max(np.abs(mel[0] - ours)))
    if encoder_error > _PARITY_ATOL or decoder_error > _PARITY_ATOL:
        raise DataError(f"{what}: the maps read from its graphs differ from its own sessions (encoder "
                        f"{encoder_error:.2g}, decoder {decoder_error:.2g}, tolerance {_PARITY_ATOL}): not the "
                        "patch family's linear layout")
