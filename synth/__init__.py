"""melsynth: a real-time neural timbre synthesizer backend.

``synth`` holds everything the engine needs (the spectrogram contract, bundle loading, inversion, the
real-time engine) and never imports TensorFlow.
"""

__version__ = "0.1.0"
