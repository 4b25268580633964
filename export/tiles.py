"""The tile decoder's two numbers, found and proved at export: how far a latent column reaches, and that
every window position then decodes its exact span like the whole note does (see :mod:`synth.bundle.tiles`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from synth.bundle.tiles import TileLayout
from synth.errors import BundleError

__all__ = ["measure_reach", "check_tiles", "TILE_COLUMNS", "TILE_TOLERANCE", "REACH_MARGIN_FRAMES"]

# Latent columns per tile: 3 of the paper's 8 (a window keeps one column of context on each side of the
# one a voice plays; consecutive windows' exact spans overlap, so any 70-odd frames fit one window).
TILE_COLUMNS = 3
# Largest accepted |tile - whole note| on the exact frames (unit scale).
TILE_TOLERANCE = 1e-5
# Frames added to the measured reach: a perturbation can leave a frame at the edge of the receptive field
# unchanged by chance (a saturated unit); the check below is over many latents, this is cheap insurance.
REACH_MARGIN_FRAMES = 4


def _frames_changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Frames (last axis) where two (n_mels, frames) decodes differ beyond float rounding."""
    return np.flatnonzero(np.max(np.abs(a - b), axis=0) > 1e-7)


def measure_reach(decoder, *, latent_shape: tuple[int, ...], frames: int, trials: int = 3, seed: int = 0) -> int:
    """How many frames beyond its own a latent time column changes: each column of random latents is
    perturbed in turn and the frames that move are compared with the column's own.

    decoder : the whole-note decoder (``decode(latents (B, rows, columns, channels)) -> (B, n_mels, frames)``)
    """
    rows, columns, channels = latent_shape
    per_column = frames // columns
    rng = np.random.default_rng(seed)
    reach = 0
    for _ in range(trials):
        z = rng.standard_normal((1, *latent_shape)).astype(np.float32)
        batch = np.repeat(z, columns, axis=0)
        for c in range(columns):
            batch[c, :, c, :] += 2.0 * rng.standard_normal((rows, channels)).astype(np.float32)
        base = decoder.decode(z)[0]
        out = decoder.decode(batch)
        for c in range(columns):
            moved = _frames_changed(out[c], base)
            if moved.size:
                reach = max(reach, c * per_column - int(moved[0]), int(moved[-1]) + 1 - (c + 1) * per_column)
    return reach + REACH_MARGIN_FRAMES


def check_tiles(
    decoder, tile_decoder, *, layout: TileLayout, latents: np.ndarray, tolerance: float = TILE_TOLERANCE,
    log: Callable[[str], None] = print,
) -> dict:
    """Decode ``latents`` (B, rows, columns, channels) whole and tile by tile at every window position;
    raise :class:`BundleError` when a tile's exact span differs from the whole decode by more than
    ``tolerance``. Returns ``{"max_abs", "windows", "latents"}`` for bundle.json."""
    whole = decoder.decode(latents)
    worst = 0.0
    fpc = layout.frames_per_column
    for start in layout.starts:
        window = np.ascontiguousarray(latents[:, :, start : start + layout.columns, :])
        tile = tile_decoder.decode(window)
        first, end = layout.exact_span(start)
        offset = start * fpc
        diff = float(np.max(np.abs(tile[:, :, first - offset : end - offset] - whole[:, :, first:end])))
        worst = max(worst, diff)
        if not diff <= tolerance:
            raise BundleError(
                f"tile decoder: the window at latent column {start} differs from the whole decode by {diff:.2e} "
                f"on frames {first}..{end - 1} (tolerance {tolerance:.0e})"
            )
    log(f"  tiles: {len(layout.starts)} windows of {layout.columns} columns exact on their spans "
        f"(max |diff| {worst:.1e}, reach {layout.reach_frames} frames)")
    return {"max_abs": worst, "windows": len(layout.starts), "latents": int(latents.shape[0]),
            "tolerance": tolerance}
