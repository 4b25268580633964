"""What every page is told while it is open: the status ten times a second, the timbre when it changes.

Read from the web server's thread, never the synthesis thread's: the router's status (the figures of
``/synth/status``, histograms that cost tens of microseconds to read), the live engine's level of the block
it made last (two floats), the engine's control snapshot (immutable) and the timbre the voices play (an
immutable object, compared by identity: a new one is a new sound). A picture is made only when that timbre
changed, so the page's canvas costs nothing while the sound stays.
"""

from __future__ import annotations

from synth.web.messages import HELLO, message_text, status_text
from synth.web.picture import timbre_picture

__all__ = ["Feed"]


class Feed:
    """The page's view of ``router`` (a :class:`~synth.control.router.ControlRouter`) and its live engine.

    ``write``: the page may keep presets and learn MIDI (``serve --web-write``).
    """

    def __init__(self, router, *, write: bool = False) -> None:
        self.router = router
        self.live = router.live
        self.write = bool(write)
        self._timbre = None
        self._picture_text: str | None = None
        self.pictures = 0

    def hello_text(self) -> str:
        """The first message a page gets: what it may do and what the bundle holds (the presets come with
        the page's own ``/synth/info``)."""
        engine = self.live.engine
        spec = engine.control_spec
        lo, hi = spec.note_range
        return message_text(HELLO, [
            "write", int(self.write), "midi", int(getattr(self.router, "midi", None) is not None),
            "macros", int(spec.macro_count), "note_low", int(lo), "note_high", int(hi),
            "base_pitch", int(spec.base_pitch), "methods", ",".join(spec.methods),
        ])

    def status_text(self, *, clients: int) -> str:
        """``/synth/status`` with the router's figures, then the controls and the output level."""
        controls = self.live.engine.controls
        x, y = controls.xy
        extras = {
            "gain": float(controls.gain), "x": float(x), "y": float(y),
            "output_peak": float(getattr(self.live, "output_peak", 0.0)),
            "output_rms": float(getattr(self.live, "output_rms", 0.0)),
            "clients": int(clients),
        }
        return status_text(self.router.status(), extras)

    def picture_text(self, *, changed_only: bool = True) -> str | None:
        """The timbre picture message when the timbre changed since the last call (or always, with
        ``changed_only=False``: for a page that just connected); None otherwise."""
        engine = self.live.engine
        timbre = engine.timbres.current
        if timbre is not self._timbre or self._picture_text is None:
            self._timbre = timbre
            self._picture_text = timbre_picture(timbre, frames=engine.params.frames).text()
            self.pictures += 1
            return self._picture_text
        return None if changed_only else self._picture_text
