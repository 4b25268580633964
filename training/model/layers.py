"""Keras layers more than one model layout uses."""

from __future__ import annotations

from typing import Any

__all__ = ["straight_through_clip"]


def straight_through_clip(keras: Any) -> Any:
    """A Keras layer: forward clip(x, 0, 1), backward the identity's gradient (see ModelConfig "clip")."""
    from keras import ops

    class StraightThroughClip(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x + ops.stop_gradient(ops.clip(x, 0.0, 1.0) - x)

    return StraightThroughClip
