"""Mel spectrogram -> audio, frame by frame: sinusoidal resynthesis and streaming Griffin-Lim (RTPGHI).

``make_inverter(method, params=, output_rate=)`` builds a :class:`StreamingInverter`; ``invert`` drives one
over a whole spectrogram offline; ``spectral_convergence`` scores the result against the original audio.
The numba-compiled methods are imported only when built.
"""

from synth.inversion.base import (
    METHODS,
    StreamingInverter,
    invert,
    make_inverter,
)
from synth.inversion.frames import frame_lengths
from synth.inversion.mel_inverse import mel_pseudo_inverse, mel_to_magnitude
from synth.inversion.quality import spectral_convergence

__all__ = [
    "METHODS",
    "StreamingInverter",
    "frame_lengths",
    "invert",
    "make_inverter",
    "mel_pseudo_inverse",
    "mel_to_magnitude",
    "spectral_convergence",
]
