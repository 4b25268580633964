"""Voice allocation: a fixed pool of voice slots, the oldest sounding voice stolen when all are taken.

A stolen voice fades out over a few frames in a spare slot while the new note starts in another, so the pool
has ``2 * max_voices`` slots; ``max_voices`` limits the voices that are not fading out.
"""

from __future__ import annotations

from collections.abc import Callable

from synth.engine.voice import Voice

__all__ = ["VoicePool", "STEAL_FADE_FRAMES"]

# ~16 ms at the default frame rate: short enough to make room at once, long enough not to click.
STEAL_FADE_FRAMES = 2


class VoicePool:
    """``max_voices`` playing voices at most, in ``2 * max_voices`` preallocated slots.

    ``make_voice()`` builds one slot (with its inverters); all are built here, up front, so that playing
    never constructs inverters.
    """

    def __init__(self, *, max_voices: int, make_voice: Callable[[], Voice]) -> None:
        self.max_voices = max_voices
        self.slots = [make_voice() for _ in range(2 * max_voices)]
        self._order = 0
        self.notes_started = 0
        self.voices_stolen = 0

    def playing_count(self) -> int:
        """Voices that are sounding and not being faded out."""
        return sum(1 for v in self.slots if v.active and not v.stealing)

    def note_on(self, *, note: int, velocity: float, pitch_ratio: float, method: str, offset: int = 0,
                key: int | None = None, harmonic_f0: float | None = None) -> Voice:
        """Start a note in a free slot (stealing the oldest beyond ``max_voices``), ``offset`` samples into
        the engine's frame; returns its voice. ``key``/``harmonic_f0``: see :meth:`Voice.start`."""
        for v in self.slots:
            if v.active and v.held and v.note == note and not v.stealing:
                v.release()  # the same key again: let the old one ring out, as a piano would
        playing = [v for v in self.slots if v.active and not v.stealing]
        if len(playing) >= self.max_voices:
            oldest = min(playing, key=lambda v: v.order)
            oldest.fade_out(STEAL_FADE_FRAMES)
            self.voices_stolen += 1
        free = next((v for v in self.slots if not v.active), None)
        if free is None:
            # Every spare slot is still fading: cut the oldest fading voice short.
            free = min((v for v in self.slots if v.stealing), key=lambda v: v.order)
            free.kill()
        self._order += 1
        free.start(note=note, velocity=velocity, pitch_ratio=pitch_ratio, method=method, order=self._order,
                   offset=offset, key=key, harmonic_f0=harmonic_f0)
        self.notes_started += 1
        return free

    def note_off(self, note: int, *, late: int = 0) -> None:
        """Release ``note``'s held voices; ``late``: samples since the key went up (see :meth:`Voice.release`)."""
        for v in self.slots:
            if v.active and v.held and v.note == note:
                v.release(late=late)

    def panic(self) -> None:
        for v in self.slots:
            v.fade_out(STEAL_FADE_FRAMES)

    def switch_method(self, method: str) -> None:
        for v in self.slots:
            # A voice already fading out finishes with the inverter it has.
            if v.active and not v.stealing:
                v.switch_method(method)
