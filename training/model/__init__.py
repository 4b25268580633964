"""The model families: their config (JSON) and the Keras models built from it.

``training.model.config`` and the fitting schedule it holds (``training.model.schedule``) are plain Python (no
TensorFlow); each family's module (``conv``, ``patch``, ``keyboard``, ``home_key``, registered in
``families``) imports Keras inside its methods.
"""

from training.model.config import VARIANT_NAMES, ModelConfig, default_config, variant
from training.model.schedule import FitSchedule

__all__ = ["ModelConfig", "FitSchedule", "VARIANT_NAMES", "variant", "default_config"]
