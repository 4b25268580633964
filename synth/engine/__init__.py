"""The real-time engine: voices, latent control, decoding and inversion, driven by sample time.

``Engine`` is the deterministic core shared by live playing (:mod:`synth.engine.live`) and offline rendering.
The commands it takes are the control vocabulary's (:mod:`synth.control`).
"""

from synth.engine.engine import Engine

__all__ = ["Engine"]
