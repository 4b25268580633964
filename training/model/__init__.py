"""The model families: their config (JSON) and the Keras models built from it.

``training.model.config`` holds a family's name, its architecture settings and the fitting schedule
(``training.model.schedule``); each family's module (``conv``, ``patch``, ``keyboard``, ``home_key``, registered
in ``families``) declares its own settings (a frozen ``training.model.settings.ArchitectureSettings``) and
imports Keras inside its methods only, so configs are plain Python (no TensorFlow).
"""

from training.model.config import VARIANT_NAMES, ModelConfig, default_config, variant
from training.model.schedule import FitSchedule

__all__ = ["ModelConfig", "FitSchedule", "VARIANT_NAMES", "variant", "default_config"]
