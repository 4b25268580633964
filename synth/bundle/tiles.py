"""Windowed decoding: the frames of a note that a window of latent time columns decodes exactly.

A decoder without a dense layer is convolutional along time: latent column ``c`` (of ``total_columns``)
becomes frames ``[c * F, (c + 1) * F)`` (``F = frames_per_column``, 64 for the paper's 512-frame notes)
and reaches at most ``reach_frames`` beyond them on either side. A second graph in the bundle, the *tile
decoder*, runs the same weights over a window of ``columns`` consecutive latent columns. Its output equals
the whole note's decode (to float rounding) wherever neither edge of the window is felt: every frame more
than ``reach_frames`` inside an edge that is not also an edge of the note. So the frames a voice is about
to play can be decoded first, at ``columns / total_columns`` of the cost, and the rest of the note after.

``bundle.json`` describes the tile decoder under ``"tiles"``::

    {"decoder": "decoder_tile.onnx", "columns": 3, "frames_per_column": 64, "reach_frames": 26,
     "parity": {"max_abs": ..., "windows": ...}}

and its file's digest is in ``sha256`` like the other graphs. Export measures ``reach_frames`` and checks
every window position against the whole decode before writing (:mod:`export.bundle_writer`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from synth.errors import BundleError

__all__ = ["TileLayout", "tile_layout_from_metadata", "TILES_KEY"]

TILES_KEY = "tiles"


@dataclasses.dataclass(frozen=True)
class TileLayout:
    """Where a window of latent time columns is exact (see the module docstring).

    columns : latent time columns one tile decode takes
    total_columns : latent time columns of a whole note
    frames_per_column : output frames per latent column
    reach_frames : how far (frames) one latent column's influence reaches past its own frames
    """

    columns: int
    total_columns: int
    frames_per_column: int
    reach_frames: int

    def __post_init__(self) -> None:
        for name in ("columns", "total_columns", "frames_per_column"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BundleError(f"tiles: {name} must be a positive integer, got {value!r}")
        if isinstance(self.reach_frames, bool) or not isinstance(self.reach_frames, int) or self.reach_frames < 0:
            raise BundleError(f"tiles: reach_frames must be a non-negative integer, got {self.reach_frames!r}")
        if self.columns >= self.total_columns:
            raise BundleError(f"tiles: a window of {self.columns} columns is not smaller than the note's "
                              f"{self.total_columns}")
        if self.exact_span(1)[0] >= self.exact_span(1)[1]:
            raise BundleError(f"tiles: {self.columns} columns of {self.frames_per_column} frames leave no exact "
                              f"frame inside a reach of {self.reach_frames}")

    @property
    def frames(self) -> int:
        """Frames of a whole note."""
        return self.total_columns * self.frames_per_column

    @property
    def starts(self) -> range:
        """Every first column a window can have."""
        return range(self.total_columns - self.columns + 1)

    def exact_span(self, start: int) -> tuple[int, int]:
        """Note frames ``[first, end)`` that the window starting at column ``start`` decodes exactly."""
        if start not in self.starts:
            raise BundleError(f"tiles: window start {start} outside 0..{self.starts[-1]}")
        first = 0 if start == 0 else start * self.frames_per_column + self.reach_frames
        end_column = start + self.columns
        end = self.frames if end_column == self.total_columns else end_column * self.frames_per_column - self.reach_frames
        return first, end

    def window_for(self, first: int, end: int) -> int | None:
        """The window start whose exact span holds note frames ``[first, end)`` with the most room on both
        sides, or None when no single window holds them (then the whole note is decoded instead)."""
        best, room = None, -1
        for start in self.starts:
            lo, hi = self.exact_span(start)
            if lo <= first and end <= hi and min(first - lo, hi - end) > room:
                best, room = start, min(first - lo, hi - end)
        return best

    def to_dict(self) -> dict[str, int]:
        return {"columns": self.columns, "frames_per_column": self.frames_per_column,
                "reach_frames": self.reach_frames}


def tile_layout_from_metadata(value: Any, *, latent_shape: tuple[int, ...], frames: int, source: str) -> TileLayout:
    """The :class:`TileLayout` that ``bundle.json``'s ``"tiles"`` object describes, checked against the
    bundle's latent shape (batch-less ``(rows, columns, channels)``) and the contract's frames."""
    if not isinstance(value, dict):
        raise BundleError(f"{source}: 'tiles' must be an object")
    missing = [k for k in ("decoder", "columns", "frames_per_column", "reach_frames") if k not in value]
    if missing:
        raise BundleError(f"{source}: 'tiles' lacks {missing}")
    if len(latent_shape) != 3:
        raise BundleError(f"{source}: tiles need a latent of shape (rows, columns, channels), not {latent_shape}")
    try:
        layout = TileLayout(columns=value["columns"], total_columns=int(latent_shape[1]),
                            frames_per_column=value["frames_per_column"], reach_frames=value["reach_frames"])
    except BundleError as exc:
        raise BundleError(f"{source}: {exc}") from None
    if layout.frames != frames:
        raise BundleError(f"{source}: tiles of {layout.total_columns} x {layout.frames_per_column} frames do not "
                          f"make the contract's {frames}")
    return layout
