"""The model families: their config (JSON) and the Keras models built from it.

``training.model.config`` is plain Python (no TensorFlow); each family's module (``conv``, ``patch``,
``keyboard``, registered in ``families``) imports Keras inside its methods.
"""

from training.model.config import VARIANT_NAMES, ModelConfig, default_config, variant

__all__ = ["ModelConfig", "VARIANT_NAMES", "variant", "default_config"]
