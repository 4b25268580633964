"""melsynth training: datasets, features, the paper's autoencoder family, fitting, metrics and experiments.

TensorFlow is imported only by the modules that build or fit models (``training.model``, ``training.fit``),
never by the dataset code, so datasets can be made with the base install plus ``mido``.
"""
