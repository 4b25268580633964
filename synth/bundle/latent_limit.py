"""How large a latent value may be: one bound for every latent melsynth takes in, whether a message sets it
(OSC, MIDI, the page, a score) or a file of the bundle holds it (a preset, the macros). A preset of +-1e30
once loaded from a file, though OSC refused the same values, and rendered silence."""

from __future__ import annotations

import numpy as np

__all__ = ["LATENT_LIMIT", "beyond_latent_limit"]

LATENT_LIMIT = 1000.0  # far beyond any encoder's output; larger values can only be mistakes or attacks


def beyond_latent_limit(values: np.ndarray) -> str:
    """Why ``values`` (finite, any shape) are not latent values, or "" when every one lies within
    +-:data:`LATENT_LIMIT`: ``"holds 1e+30; latent values lie within +-1000"`` (the value furthest out)."""
    flat = np.asarray(values).reshape(-1)
    if not flat.size:
        return ""
    worst = float(flat[int(np.argmax(np.abs(flat)))])
    if abs(worst) <= LATENT_LIMIT:
        return ""
    return f"holds {worst:g}; latent values lie within +-{LATENT_LIMIT:g}"
