"""An engine's settings as one frozen record: what :class:`~synth.engine.Engine` is built with besides its
bundle and the collaborators it is handed (how it decodes, the decoder sessions, the inverters)."""

from __future__ import annotations

import dataclasses

from synth.inversion.base import METHODS

__all__ = ["EngineOptions", "DEFAULT_GAIN", "OUTPUT_RATES"]

# The output rates an engine renders at (Hz): what sound cards and DAWs run at, and then some.
OUTPUT_RATES = (8000, 384000)

# Output gain by default: one loud note peaks near -6 dBFS, chords lean on the limiter less.
DEFAULT_GAIN = 0.5


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """The settings of one :class:`~synth.engine.Engine`, checked when the engine is built
    (:class:`~synth.errors.ParameterError` for one it cannot use).

    Attributes
    ----------
    output_rate : int  output sample rate (Hz), e.g. the device's 48000; within :data:`OUTPUT_RATES`
    method : str | None  the inversion method at start, one of ``methods``; None:
        :data:`~synth.inversion.base.DEFAULT_METHOD` if ``methods`` has it, else the first of ``methods``
    methods : tuple[str, ...]  the methods to build inverters for (``/synth/method`` switches among them)
    max_voices : int  polyphony, 1..256 (the oldest voice is stolen beyond it)
    gain : float  output gain before the limiter (:data:`DEFAULT_GAIN`)
    initial_preset : str | None  the preset sounding at start (None: the bundle's first preset)
    tune_partials : bool  with the default inverters: partials within the mel resolution of a harmonic of the
        base pitch are moved onto it (in tune; see ``harmonic_f0`` of both inverters). False keeps every
        partial where the mel peak puts it (inharmonic presets keep their upper partials).
    estimate_timbres : bool  while a live decode runs, sound estimates of morphs, macros and latent sweeps
        (see :mod:`synth.engine.timbre_pipeline`; offline every change is exact at its frame anyway)
    match_loudness : bool  every timbre (preset, morph, XY point, latent) brought to one loudness by its own
        gain (:mod:`synth.engine.loudness`); False plays each at the level the decoder gives it
    """

    output_rate: int = 48000
    method: str | None = None
    methods: tuple[str, ...] = METHODS
    max_voices: int = 16
    gain: float = DEFAULT_GAIN
    initial_preset: str | None = None
    tune_partials: bool = True
    estimate_timbres: bool = True
    match_loudness: bool = True
