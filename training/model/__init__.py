"""The paper's stacked convolutional autoencoder family: its config (JSON) and the Keras models built from it.

``training.model.config`` is plain Python (no TensorFlow); ``training.model.build`` imports Keras.
"""

from training.model.config import VARIANT_NAMES, ModelConfig, default_config, variant

__all__ = ["ModelConfig", "VARIANT_NAMES", "variant", "default_config"]
