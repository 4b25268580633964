"""What one engine accepts: its bundle's notes, latent size, presets, macros and the methods it built."""

from __future__ import annotations

import dataclasses
import functools
import math

from synth.inversion.base import METHODS  # the inverters' names have one home: the inverters

__all__ = ["ControlSpec", "NOTE_SPAN"]

NOTE_SPAN = 24  # semitones either side of the bundle's base pitch (or its trained keys)


@dataclasses.dataclass(frozen=True)
class ControlSpec:
    """The bounds the vocabulary's arguments are checked against (:mod:`synth.control.arguments` reads the
    ranges below by name). What the engine is; checking a message against it is the vocabulary's
    (:func:`synth.control.vocabulary.check_message`), which knows each message's arguments."""

    base_pitch: int
    latent_shape: tuple[int, ...]
    presets: tuple[str, ...]
    macro_count: int
    methods: tuple[str, ...] = METHODS
    #: A keyboard bundle's trained keys (None: one pitch, ``base_pitch``).
    keys: tuple[int, ...] | None = None

    @classmethod
    def for_bundle(cls, bundle, *, methods: tuple[str, ...] = METHODS) -> ControlSpec:
        """What ``bundle`` accepts: its notes, latent size, presets and macros, and ``methods``."""
        macros = getattr(bundle, "macros", None)
        return cls(
            base_pitch=int(bundle.base_pitch),
            latent_shape=tuple(bundle.latent_shape),
            presets=tuple(bundle.presets),
            macro_count=int(len(macros.stds)) if macros is not None else 0,
            methods=tuple(methods),
            keys=getattr(bundle, "keys", None),
        )

    @functools.cached_property
    def latent_size(self) -> int:
        # Cached: every /synth/latent/set reads it twice in the OSC receive thread, and np.prod took a third
        # of the validation's time there (a flood of 2,500 datagrams a second holds the GIL that long).
        return math.prod(self.latent_shape)

    @property
    def note_range(self) -> tuple[int, int]:
        """The notes the engine plays: NOTE_SPAN semitones either side of the base pitch, or of a keyboard
        bundle's trained keys (within MIDI's 0..127)."""
        lo, hi = (self.base_pitch, self.base_pitch) if self.keys is None else (self.keys[0], self.keys[-1])
        return max(0, lo - NOTE_SPAN), min(127, hi + NOTE_SPAN)

    @property
    def latent_indices(self) -> tuple[int, int]:
        return 0, self.latent_size - 1

    @property
    def macro_indices(self) -> tuple[int, int]:
        return 0, self.macro_count - 1

    def explain(self, bounds: str) -> str:
        """Why a range is what it is, for an error message (" (base pitch 60 +- 24)"), or ""."""
        if bounds != "note_range":
            return ""
        known = f"base pitch {self.base_pitch}" if self.keys is None else f"trained keys {self.keys[0]}..{self.keys[-1]}"
        return f" ({known} +- {NOTE_SPAN})"
