"""Rendering one note of a preset offline: the live engine's voice, inverter and limiter, to an array.

A note render is the two-event timeline ``note-on at 0, note-off at hold`` on a fresh
:class:`~synth.engine.Engine` that starts on the preset (so no latent crossfade), rendered until the voice
has rung out (:mod:`synth.render.timeline`). Sample 0 is the note-on: the audio starts there exactly as the
live engine would play it, including the inverter's latency (one hop for sinusoidal, ~33 ms for Griffin-Lim
at 48 kHz).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from synth.control.messages import NoteOff, NoteOn
from synth.engine.decoding import bundle_decoder
from synth.engine.engine import DEFAULT_GAIN
from synth.errors import ParameterError
from synth.inversion.base import DEFAULT_METHOD, METHODS
from synth.render.timeline import TimelineResult, render_timeline, sample_of

__all__ = ["NoteRender", "BundleView", "render_note", "make_engine", "MAX_HOLD_SECONDS"]

MAX_HOLD_SECONDS = 600.0


class BundleView:
    """A bundle with extra presets (e.g. one read from a file outside it), for building an engine.

    ``presets`` and :meth:`preset` are the view's; everything else (``params``, ``decoder()``, a keyboard
    bundle's ``keys`` and ``keyed_decoder()``, ...) is the bundle's, so an engine built on the view plays as
    one built on the bundle.
    """

    def __init__(self, bundle, *, extra_presets=()) -> None:
        self._bundle = bundle
        self.presets = dict(bundle.presets)
        for preset in extra_presets:
            self.presets[preset.name] = preset

    def __getattr__(self, name: str):
        return getattr(self._bundle, name)

    def preset(self, name: str):
        """The named preset (one of this view's, or one saved in the bundle's folder after loading)."""
        found = self.presets.get(name)
        if found is None:
            found = self.presets[name] = self._bundle.preset(name)
        return found


@dataclasses.dataclass(frozen=True)
class NoteRender:
    """One rendered note.

    audio : [shape=(n,), float32] mono at ``rate``, |x| <= the limiter's ceiling
    decoded : [shape=(n_mels, frames), float32] the preset's decoded log-mel (unit scale), the model's note
    """

    audio: np.ndarray
    rate: int
    preset: str
    note: int
    velocity: float
    hold: float
    method: str
    decoded: np.ndarray
    figures: TimelineResult

    @property
    def seconds(self) -> float:
        return self.audio.size / self.rate


def make_engine(
    bundle,
    *,
    method: str = DEFAULT_METHOD,
    methods: tuple[str, ...] | None = None,
    output_rate: int = 48000,
    gain: float = DEFAULT_GAIN,
    max_voices: int = 16,
    initial_preset: str | None = None,
    decoder=None,
    match_loudness: bool = True,
    decoding=None,
    inverter_factory=None,
):
    """An :class:`~synth.engine.Engine` for rendering: offline (inline-decoding, deterministic) unless
    ``decoding`` (a :class:`~synth.engine.decoding.DecodingFactory`) says otherwise; ``inverter_factory``: the
    Engine's (None: its own)."""
    from synth.engine import Engine, EngineOptions

    options = EngineOptions(
        output_rate=output_rate, method=method, methods=methods if methods is not None else (method,),
        max_voices=max_voices, gain=gain, initial_preset=initial_preset, match_loudness=match_loudness,
    )
    return Engine(bundle, options, decoding=decoding, decoder=decoder, inverter_factory=inverter_factory)


def _check_note_args(*, note, velocity, hold, method, output_rate) -> None:
    if isinstance(note, bool) or not isinstance(note, (int, np.integer)):
        raise ParameterError(f"note must be a whole MIDI number, got {note!r}")
    if isinstance(velocity, bool) or not isinstance(velocity, (int, float)) or not 1 <= velocity <= 127:
        raise ParameterError(f"velocity must be a number 1..127, got {velocity!r}")
    if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not math.isfinite(hold):
        raise ParameterError(f"hold must be a number of seconds, got {hold!r}")
    if not 0 <= hold <= MAX_HOLD_SECONDS:
        raise ParameterError(f"hold {hold} s out of range 0..{MAX_HOLD_SECONDS:g} s")
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(output_rate, bool) or not isinstance(output_rate, int) or not 8000 <= output_rate <= 384000:
        raise ParameterError(f"sample rate must be an integer 8000..384000 Hz, got {output_rate!r}")


class _KeepLast:
    """A decoder that keeps its last output, and a keyboard bundle's last decode of each key (and passes
    everything else through)."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.last: np.ndarray | None = None
        self.by_key: dict[int, np.ndarray] = {}

    def decode(self, latents: np.ndarray) -> np.ndarray:
        self.last = self._inner.decode(latents)
        return self.last

    def decode_at_keys(self, latents: np.ndarray, keys: np.ndarray) -> np.ndarray:
        out = self._inner.decode_at_keys(latents, keys)
        self.by_key.update(zip((int(k) for k in keys), out, strict=True))
        return out

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def render_note(
    bundle,
    *,
    preset: str,
    note: int | None = None,
    velocity: float = 100.0,
    hold: float = 3.0,
    method: str = DEFAULT_METHOD,
    output_rate: int = 48000,
    gain: float = DEFAULT_GAIN,
    decoder=None,
    block: int = 8192,
    match_loudness: bool = True,
    inverter_factory=None,
) -> NoteRender:
    """Render one note of ``preset``: held ``hold`` seconds, then released until it has rung out.

    Parameters
    ----------
    bundle : a loaded :class:`~synth.bundle.Bundle` (or :class:`BundleView`)
    preset : the preset's name (in ``bundle.presets`` or a file under its presets/)
    note : MIDI note (default: the bundle's base pitch); within +-24 semitones of it
    velocity : 1..127, scales the level as in the live engine
    hold : seconds between note-on and note-off (the model's own note is held 3 s)
    method : one of :data:`synth.inversion.METHODS`
    output_rate : sample rate of the result (Hz)
    gain : output gain before the limiter (the live engine's default)
    decoder : an already built decoder session to reuse (rendering many presets); None: a new one
    match_loudness : the preset at the engine's one loudness (as live); False: at the decoder's own level
    inverter_factory : the engine's (:class:`~synth.engine.Engine`); None: its own

    Raises :class:`~synth.errors.PresetError` for an unknown preset, :class:`ParameterError` for the rest.
    """
    note = bundle.base_pitch if note is None else note
    _check_note_args(note=note, velocity=velocity, hold=hold, method=method, output_rate=output_rate)
    if preset not in bundle.presets:
        bundle.preset(preset)  # a preset saved after loading, or PresetError naming the known ones
    keys = getattr(bundle, "keys", None)
    decoder = _KeepLast(decoder if decoder is not None else bundle_decoder(bundle))
    # One voice is all a single note needs (a smaller pool builds faster; the voice itself is the same).
    engine = make_engine(
        bundle, method=method, output_rate=output_rate, gain=gain, max_voices=1, initial_preset=preset,
        decoder=decoder, match_loudness=match_loudness, inverter_factory=inverter_factory,
    )
    events = [(0, NoteOn(int(note), float(velocity))), (sample_of(hold, rate=output_rate), NoteOff(int(note)))]
    audio, figures = render_timeline(engine, events, block=block)
    # The engine decoded the preset once when it was built (nothing else changes the latent here); reusing
    # that output instead of decoding again halves the cost of a one-note render. A keyboard bundle's note
    # sounds the decode of the trained key nearest it.
    decoded = decoder.by_key[bundle.nearest_key(int(note))] if keys is not None else decoder.last[0]
    return NoteRender(
        audio=audio, rate=output_rate, preset=preset, note=int(note), velocity=float(velocity), hold=float(hold),
        method=method, decoded=np.asarray(decoded, dtype=np.float32), figures=figures,
    )
