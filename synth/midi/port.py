"""A MIDI input port (python-rtmidi) feeding a live engine through :class:`~synth.midi.translate.MidiTranslator`.

Where the port comes from:

- ``port=None``: a virtual input port that a DAW or keyboard connects to, named ``melsynth:midi_in`` under
  JACK (when a JACK server runs) or ``melsynth`` in the ALSA sequencer;
- a number or (part of) a name: that existing output port of another program or device, opened by us.

rtmidi reads the port on its own thread (its JACK client does so in C inside JACK's process callback) and
queues each complete message, in C; one thread of ours (``melsynth-midi``, real-time like the OSC thread
when the engine is) takes them from that queue every millisecond, translates them, submits the checked
commands to the engine (stamped with their arrival, so latency figures cover MIDI too) and counts. No
Python runs in JACK's process callback: a Python callback there waits for the GIL, and when that wait ran
past the JACK cycle the sender's next cycle rewrote the port buffer rtmidi was still reading; rtmidi does
not check ``jack_midi_event_get``, so the event it missed was delivered as a second copy of the one before
(a note out of range arrived as the unmapped CC sent before it: the test_midi_jack flake).
The same thread looks once a second whether an opened port has disappeared (a keyboard unplugged, a DAW
closed), says so, and opens it again when it comes back: one thread owns the rtmidi client, so no port is
closed under a read. Nothing a message or a port does can stop the engine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from synth.control.messages import Command
from synth.errors import AudioDeviceError, ParameterError
from synth.midi.translate import MidiTranslator
from synth.native_stderr import captured_native_stderr

__all__ = ["MidiInput", "list_midi_ports", "midi_api"]

CLIENT_NAME = "melsynth"
VIRTUAL_PORT = "midi_in"
WATCH_SECONDS = 1.0
POLL_SECONDS = 0.001  # between looks at rtmidi's queue when it is empty: at most 1 ms added to a note's latency
QUEUE_MESSAGES = 4096  # rtmidi's queue: a second of a dense controller stream between two looks, and more


def midi_api() -> tuple[int, str]:
    """(rtmidi API, its name) to use here: JACK when a JACK server answers, else ALSA when the sequencer
    exists; AudioDeviceError when neither does."""
    import rtmidi

    compiled = rtmidi.get_compiled_api()
    os.environ.setdefault("JACK_NO_START_SERVER", "1")  # never start a JACK server of our own
    if rtmidi.API_UNIX_JACK in compiled:
        # libjack says "Cannot connect to server socket ..." on stderr when no server runs: expected here.
        with captured_native_stderr():
            try:
                probe = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, f"{CLIENT_NAME}-probe")
            except rtmidi.RtMidiError:
                probe = None
        if probe is not None:
            probe.delete()
            return rtmidi.API_UNIX_JACK, "JACK"
    if rtmidi.API_LINUX_ALSA in compiled and os.path.exists("/dev/snd/seq"):
        return rtmidi.API_LINUX_ALSA, "ALSA"
    for api in compiled:  # CoreMIDI, Windows MM
        if api not in (rtmidi.API_UNIX_JACK, rtmidi.API_LINUX_ALSA, rtmidi.API_RTMIDI_DUMMY):
            return api, rtmidi.get_api_display_name(api)
    raise AudioDeviceError("no MIDI system here: no JACK server answers and there is no ALSA sequencer "
                           "(/dev/snd/seq); start JACK, or load the snd-seq module")


def list_midi_ports() -> dict:
    """``{"api": name, "inputs": [port names we could open]}`` or ``{"api": None, "why": reason}``."""
    import rtmidi

    try:
        api, name = midi_api()
    except AudioDeviceError as exc:
        return {"api": None, "inputs": [], "why": str(exc)}
    probe = rtmidi.MidiIn(api, f"{CLIENT_NAME}-list")
    try:
        return {"api": name, "inputs": list(probe.get_ports())}
    finally:
        probe.delete()


class MidiInput:
    """MIDI in for a live engine.

    Parameters
    ----------
    submit : the live engine's ``submit(command, received=..., checked=...)``
    translator : what the messages mean
    port : None (a virtual port), or an existing port's number or (part of its) name
    on_command : called with ``(command, at_sample)`` for every command applied (the OSC server's
        :meth:`~synth.osc.server.OscServer.log_command`, so the take log holds MIDI too), or None
    on_event : called with a line for the user when the port goes away, comes back, or learns a CC
    priority : called on the reading thread as it starts: the SCHED_FIFO priority to take (None: stay as it is)
    """

    def __init__(self, submit: Callable, translator: MidiTranslator, *, port: int | str | None = None,
                 on_command: Callable[[Command, int], None] | None = None,
                 on_event: Callable[[str], None] | None = None,
                 priority: Callable[[], int | None] | None = None) -> None:
        self._submit = submit
        self.translator = translator
        self.wanted = port
        self._on_command = on_command
        self._on_event = on_event or (lambda message: None)
        self._priority = priority
        self.api, self.api_name = midi_api()
        self.port_name = ""
        self.messages = self.applied = self.ignored = self.errors = 0
        self.lost = self.reopened = 0
        self.last_error = ""
        self._midi = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="melsynth-midi", daemon=True)

    # ------------------------------------------------------------------ ports
    def _new_client(self):
        import rtmidi

        midi = rtmidi.MidiIn(self.api, CLIENT_NAME, queue_size_limit=QUEUE_MESSAGES)
        midi.ignore_types(sysex=False, timing=True, active_sense=True)  # sysex is seen, counted, ignored
        return midi

    def _find(self, midi) -> int | None:
        ports = list(midi.get_ports())
        wanted = self.wanted
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().isdigit()):
            index = int(wanted)
            return index if 0 <= index < len(ports) else None
        matches = [i for i, p in enumerate(ports) if str(wanted).lower() in p.lower()]
        if len(matches) > 1:
            raise ParameterError(f"several MIDI ports match {wanted!r}: {', '.join(ports[i] for i in matches)}")
        return matches[0] if matches else None

    def _open(self) -> bool:
        midi = self._new_client()
        if self.wanted is None:
            midi.open_virtual_port(VIRTUAL_PORT)
            self.port_name = f"{CLIENT_NAME}:{VIRTUAL_PORT}" if self.api_name == "JACK" else CLIENT_NAME
        else:
            index = self._find(midi)
            if index is None:
                midi.delete()
                return False
            self.port_name = midi.get_ports()[index]
            midi.open_port(index)
        self._midi = midi  # no callback: rtmidi queues what arrives, and _run reads it
        return True

    def start(self) -> None:
        """Open the port (ParameterError when a named one is not there), then read and watch it."""
        if not self._open():
            raise ParameterError(f"no MIDI port {self.wanted!r} ({self.api_name}); see melsynth devices")
        self._thread.start()

    def _still_there(self) -> bool:
        if self.wanted is None or self._midi is None:
            return self._midi is not None
        return any(self.port_name == p for p in self._midi.get_ports())

    def _run(self) -> None:
        """Read the queued messages as they come and look at the port once a second, until stopped."""
        if self._priority is not None:
            from synth.host.priority import raise_thread_priority

            wanted = self._priority()
            if wanted is not None:
                # As the OSC thread: a preempted thread holding the GIL stalls the synthesis thread.
                raise_thread_priority(wanted)
        next_look = time.monotonic() + WATCH_SECONDS
        while not self._stop.is_set():
            if not self._read_queued():
                self._stop.wait(POLL_SECONDS)
            if time.monotonic() >= next_look:
                next_look = time.monotonic() + WATCH_SECONDS
                self._watch_port()

    def _read_queued(self) -> int:
        """Handle every message rtmidi has queued; returns how many."""
        midi, count = self._midi, 0
        while midi is not None:
            event = midi.get_message()
            if event is None:
                break
            self._on_message(event)
            count += 1
        return count

    def _watch_port(self) -> None:
        import rtmidi

        try:
            if self._midi is not None and not self._still_there():
                self.lost += 1
                self._close()
                self._on_event(f"MIDI port {self.port_name} went away; waiting for it to come back")
            elif self._midi is None and self._open():
                self.reopened += 1
                self._on_event(f"MIDI port {self.port_name} is back")
        except (rtmidi.RtMidiError, ParameterError) as exc:  # rtmidi's own failures: try again next second
            self.last_error = str(exc)

    def _close(self) -> None:
        midi, self._midi = self._midi, None
        if midi is not None:
            midi.close_port()
            midi.delete()

    def stop(self) -> None:
        """Stop reading (what is queued by then is read first) and close the port."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3.0)
        if not self._thread.is_alive():
            self._read_queued()
            self._close()

    # ------------------------------------------------------------------ messages (our reading thread)
    def _on_message(self, event) -> None:
        received = time.time()
        self.messages += 1
        try:
            message, _delta = event
            result = self.translator.translate(message)
        except (TypeError, ValueError) as exc:  # a malformed event from the binding: counted, never raised
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        if result.error:
            self.errors += 1
            self.last_error = result.error
            return
        if result.learned is not None:
            self._on_event(f"MIDI learn: CC {result.learned[0]} -> {result.learned[1]}")
        if not result.commands:
            self.ignored += 1
            return
        self.applied += 1
        for command in result.commands:
            at_sample = self._submit(command, received=received, checked=True)  # the translator checked it
            if self._on_command is not None:
                self._on_command(command, at_sample)

    def counters(self) -> dict:
        return {"midi_messages": self.messages, "midi_applied": self.applied, "midi_ignored": self.ignored,
                "midi_errors": self.errors, "midi_port_lost": self.lost, "midi_port_reopened": self.reopened}
