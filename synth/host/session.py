"""A live session: the parts of a running engine and the one order they start, stop and are cleaned up in.

``melsynth serve``, the benchmarks and the tests all play through the same parts: a recorder (optional), the
:class:`~synth.engine.Engine`, the :class:`~synth.host.live_engine.LiveEngine` that runs it against an output, the
OSC server (with its router and take log), the page's server and the MIDI input (optional). Each part is
handed to the session as it is built; if anything fails before the session runs (a bad flag, a port in use,
Ctrl-C while the margin fills) :meth:`LiveSession.abort` undoes what exists, newest first, with the
recording discarded before anything could finish it. Once running, :meth:`LiveSession.stop` stops the
control inputs first (MIDI, the page, OSC), then the engine, which finishes the take, whatever fails on the
way; the take log is written after that, when writing costs the take nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from synth.host.stats import LiveStats

__all__ = ["LiveSession"]


class LiveSession:
    """The parts of one live run (attributes ``recorder``, ``engine``, ``live``, ``server``, ``web``,
    ``midi``; None until given) and their start, stop and cleanup order.

    Build the parts one by one, each through :meth:`own` (so that a failure further on undoes it), then
    :meth:`start`, then :meth:`stop`. Used as a context manager it aborts on an exception before
    :meth:`start` has returned and stops otherwise.
    """

    ORDER = ("recorder", "engine", "live", "server", "web", "midi")

    def __init__(self) -> None:
        self._undo = contextlib.ExitStack()
        self.recorder = self.engine = self.live = self.server = self.web = self.midi = None
        self.running = False
        self.stopped = False

    # ------------------------------------------------------------------ building
    def own(self, name: str, part: Any) -> Any:
        """Hand the session ``part`` (one of :data:`ORDER`) and return it: a failure from here until the
        session runs undoes it."""
        if name not in self.ORDER:
            raise ValueError(f"a live session has no part {name!r} (it has {', '.join(self.ORDER)})")
        if part is None:
            return None
        setattr(self, name, part)
        self._undo.callback(self._undoer(name), part)
        return part

    def _undoer(self, name: str) -> Callable[[Any], None]:
        if name == "recorder":
            return lambda recorder: recorder.discard()
        if name == "engine":
            return lambda engine: engine.close()
        if name == "live":
            return self._discard_and_stop_live
        if name == "server":
            return self._stop_server_and_drop_log
        return lambda part: part.stop()  # the page, MIDI

    def _discard_and_stop_live(self, live) -> None:
        # The recording goes first: stopping the live engine would finish it as a take of nothing.
        if self.recorder is not None:
            self.recorder.discard()
        live.stop()

    @staticmethod
    def _stop_server_and_drop_log(server) -> None:
        server.stop()
        server.discard_log()

    def abort(self) -> None:
        """Undo a start that failed part-way: every part built so far, newest first; nothing is kept."""
        self._undo.close()
        self.stopped = True

    # ------------------------------------------------------------------ running
    def start(self, *, between: Callable[[], None] | None = None) -> None:
        """Start the engine (it fills its margin), then the control inputs: OSC, the page, MIDI. ``between``
        runs once the engine plays and before the inputs open (serve installs its signal handlers there).
        Any failure aborts the session and is raised."""
        try:
            self.live.start()
            if between is not None:
                between()
            self.server.start()
            if self.web is not None:
                self.web.start()
            if self.midi is not None:
                self.midi.start()
        except BaseException:
            self.abort()
            raise
        self._undo.pop_all()  # from here on stop() ends the session
        self.running = True

    def stop(self) -> LiveStats:
        """Stop the control inputs (MIDI, the page, OSC), then the engine, which finishes the take, even when
        stopping an input fails. Returns the live engine's figures."""
        self.stopped = True
        try:
            for part in (self.midi, self.web, self.server):
                if part is not None:
                    part.stop()
        finally:
            stats = self.live.stop()
        return stats

    def write_log(self):
        """Write the take log (if one was asked for) now that the engine has stopped; its path or None."""
        return self.server.write_log() if self.server is not None else None

    # ------------------------------------------------------------------ with
    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if self.stopped:
            return
        if self.running:
            self.stop()
        else:
            self.abort()
