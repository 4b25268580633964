"""MIDI messages -> the engine's own commands, as the OSC vocabulary makes them.

:class:`MidiTranslator` is pure bookkeeping: it takes one complete MIDI message (a list of bytes, as
python-rtmidi delivers them) and returns the checked commands it means, with the state MIDI needs (the
sustain pedal and the notes it holds, the XY position, MIDI learn). It never touches the engine, so the port
thread hands the commands over and nothing else; tests drive it without any MIDI system.

Every message is one of: applied (it produced commands), ignored (sysex, clock and other system messages,
CCs nothing is mapped to, other channels, aftertouch) or an error (malformed bytes, a note outside the
bundle's range, a program beyond its presets). Ignored and bad messages change nothing.
"""

from __future__ import annotations

import dataclasses

from synth.control.messages import (
    Command,
    Morph,
    NoteOff,
    NoteOn,
    Panic,
    SetBend,
    SetGain,
    SetMacro,
    SetPreset,
    SetXY,
)
from synth.control.spec import ControlSpec
from synth.control.targets import MidiTarget, parse_target
from synth.control.vocabulary import check_message
from synth.errors import ParameterError
from synth.midi.mapping import MidiMapping

__all__ = ["MidiTranslator", "Translation"]

_DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


@dataclasses.dataclass(frozen=True)
class Translation:
    """What one message meant: ``commands`` to submit, or why none (``ignored`` / ``error``, a reason)."""

    commands: tuple[Command, ...] = ()
    ignored: str = ""
    error: str = ""
    learned: tuple[int, MidiTarget] | None = None  # (CC, target) when this message completed a MIDI learn


class MidiTranslator:
    """Turn MIDI messages into engine commands for a bundle's ``spec`` under ``mapping``.

    Not thread-safe by itself: one port thread calls :meth:`translate`; :meth:`learn` may come from the OSC
    thread and only sets one attribute.
    """

    def __init__(self, spec: ControlSpec, mapping: MidiMapping | None = None) -> None:
        self.spec = spec
        self.mapping = mapping or MidiMapping()
        self.mapping.check_presets(spec.presets, macro_count=spec.macro_count)
        self.reset()

    def reset(self) -> None:
        """Pedal up, no note held by it, the XY pad centred, no learn pending."""
        self.sustain = False
        self._sustained: set[int] = set()  # notes released while the pedal was down
        self._down: set[int] = set()  # keys held now
        self.xy = [0.5, 0.5]
        self._learn: MidiTarget | None = None

    def learn(self, target: MidiTarget | str) -> None:
        """Bind the next CC that moves to ``target`` (``/synth/midi/learn target``)."""
        self._learn = target if isinstance(target, MidiTarget) else parse_target(target)

    @property
    def learning(self) -> MidiTarget | None:
        return self._learn

    def translate(self, message: list[int] | tuple[int, ...] | bytes) -> Translation:
        data = list(message)
        if not data:
            return Translation(error="empty message")
        status = data[0]
        if not isinstance(status, int) or not 0 <= status <= 0xFF:
            return Translation(error=f"not a byte: {status!r}")
        if status < 0x80:
            return Translation(error="no status byte (running status must be expanded by the port)")
        if status >= 0xF0:
            return Translation(ignored="system message" if status != 0xF0 else "sysex")
        kind, channel = status & 0xF0, (status & 0x0F) + 1
        need = _DATA_BYTES[kind]
        args = data[1:]
        if len(args) != need or any(not isinstance(b, int) or not 0 <= b <= 0x7F for b in args):
            return Translation(error=f"status 0x{status:02X} needs {need} data bytes 0..127, got {args[:4]}")
        if self.mapping.channel is not None and channel != self.mapping.channel:
            return Translation(ignored=f"channel {channel}")
        try:
            if kind == 0x90 and args[1] > 0:
                return self._note_on(args[0], args[1])
            if kind in (0x80, 0x90):
                return self._note_off(args[0])
            if kind == 0xE0:
                value = args[0] | (args[1] << 7)  # 0..16383, 8192 centre
                semitones = (value - 8192) / (8191.0 if value > 8192 else 8192.0) * self.mapping.bend_range
                return self._checked(SetBend(round(semitones, 6)))
            if kind == 0xB0:
                return self._control_change(args[0], args[1])
            if kind == 0xC0:
                return self._program(args[0])
        except ParameterError as exc:
            return Translation(error=str(exc))
        return Translation(ignored="aftertouch")

    # ------------------------------------------------------------------ kinds
    def _checked(self, *commands: Command) -> Translation:
        return Translation(commands=tuple(check_message(c, spec=self.spec) for c in commands))

    def _note_on(self, note: int, velocity: int) -> Translation:
        out = self._checked(NoteOn(note, float(velocity)))
        self._down.add(note)
        self._sustained.discard(note)
        return out

    def _note_off(self, note: int) -> Translation:
        lo, hi = self.spec.note_range
        if not lo <= note <= hi:
            return Translation(error=f"note {note} out of range {lo}..{hi}")
        self._down.discard(note)
        if self.sustain:
            self._sustained.add(note)
            return Translation(ignored="held by the sustain pedal")
        return self._checked(NoteOff(note))

    def _program(self, program: int) -> Translation:
        if not self.mapping.program_change:
            return Translation(ignored="program changes are off in the mapping")
        presets = self.spec.presets
        if program >= len(presets):
            return Translation(error=f"program {program}: the bundle has {len(presets)} presets (0..{len(presets) - 1})")
        return self._checked(SetPreset(presets[program]))

    def _control_change(self, number: int, value: int) -> Translation:
        learned = None
        if self._learn is not None:
            learned = (number, self._learn)
            self.mapping = self.mapping.with_cc(number, self._learn)
            self._learn = None
        target = self.mapping.cc.get(number)
        if target is None:
            return Translation(ignored=f"CC {number} is not mapped")
        unit = value / 127.0
        kind = target.kind
        if kind == "sustain":
            down = value >= 64
            released, self.sustain = (not down and self.sustain), down
            if released:
                notes, self._sustained = sorted(self._sustained - self._down), set()
                return dataclasses.replace(self._checked(*(NoteOff(n) for n in notes)), learned=learned)
            return Translation(ignored="sustain pedal", learned=learned)
        if kind == "panic":
            self._sustained.clear()
            command: Command = Panic()
        elif kind == "gain":
            command = SetGain(unit)
        elif kind in ("x", "y"):
            self.xy["xy".index(kind)] = unit
            command = SetXY(*self.xy)
        elif kind == "morph":
            a, b = self.mapping.morph or (self.spec.presets[:2] * 2)[:2]
            command = Morph(a, b, unit)
        else:  # macro
            k = target.index
            if k >= self.spec.macro_count:
                return Translation(ignored=f"CC {number} -> {target}: the bundle has {self.spec.macro_count} macros",
                                   learned=learned)
            centred = (value - 64) / (63.0 if value > 64 else 64.0)
            command = SetMacro(k, round(centred * self.mapping.macro_range, 6))
        return dataclasses.replace(self._checked(command), learned=learned)
