"""The real-time engine: voices, latent control, decoding and inversion, driven by sample time.

``Engine`` is the deterministic core shared by live playing (:mod:`synth.host.live_engine`) and offline
rendering; the threads, rings and outputs of live playing are the host's (:mod:`synth.host`), which this package
never imports. The commands it takes are the control vocabulary's (:mod:`synth.control`).
"""

from synth.engine.decoding import LiveDecoding, OfflineDecoding
from synth.engine.engine import Engine
from synth.engine.options import EngineOptions

__all__ = ["Engine", "EngineOptions", "LiveDecoding", "OfflineDecoding"]
