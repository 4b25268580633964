"""Mel spectrogram -> audio, frame by frame: sinusoidal resynthesis and streaming Griffin-Lim (RTPGHI).

``make_inverter(method, params=, output_rate=)`` builds a :class:`StreamingInverter`; ``invert`` drives one
over a whole spectrogram offline; ``spectral_convergence`` scores the result against the original audio.
The numba-compiled methods are imported only when built.

Their kernels keep the GIL (no ``nogil=True``): they run on the live engine's synthesis thread, a call per
voice a frame, each a few tens of microseconds. A kernel that lets go of the GIL has to take it back on
return, and while another thread runs Python (the OSC thread, the decode worker, a status reply) that waits
for its switch interval, 0.5 ms live: 16 voices made a 7.8 ms frame wait 8 ms, and the soak's ring ran dry
(``tests/test_engine_gil.py``; docs/BENCHMARKS.md, the soak section).
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
