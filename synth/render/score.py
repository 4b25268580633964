"""Scores: timed OSC messages in the engine's own vocabulary, checked as a whole before anything plays.

A score is a JSON list of entries, or a JSON object whose ``"messages"`` key holds that list (other keys are
descriptive and ignored)::

    [{"time": 0.0, "address": "/synth/preset", "args": ["bright"]},
     {"time": 0.0, "address": "/synth/note/on", "args": [60, 100]},
     {"time": 2.5, "address": "/synth/note/off", "args": [60]}]

``melsynth serve --log-osc FILE.json`` writes exactly this, so a live take can be re-rendered offline.
Each entry's ``args`` go through :func:`synth.control.vocabulary.parse_message` with the bundle's
:class:`~synth.control.spec.ControlSpec`, the very validator of the OSC server, so a score can say
exactly what a performer can. ``args`` may be left out when a message takes none.

Order: entries are sorted by time, *stably* (entries with equal times keep their order in the file). A live
log needs that: a timetagged bundle is logged when it arrives, before messages that arrive after it but are
due earlier.

Every entry is checked before anything is rendered or written: time (a finite number of seconds, >= 0, at
most :data:`MAX_SCORE_SECONDS`), address (a control address of the vocabulary; the queries
``/synth/status`` and ``/synth/info`` have no effect in a score and are refused), and arguments. All problems
found (up to :data:`MAX_REPORTED`) are reported together, each with its entry index (0-based, in file
order), as one :class:`~synth.errors.ScoreError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from synth.control.messages import Command
from synth.control.spec import ControlSpec
from synth.control.vocabulary import parse_message
from synth.errors import ParameterError, ScoreError
from synth.inversion.base import METHODS
from synth.render.timeline import sample_of

__all__ = [
    "Score", "ScoreEntry", "parse_score", "load_score", "score_spec", "MAX_SCORE_SECONDS", "MAX_SCORE_BYTES",
]

MAX_SCORE_SECONDS = 6 * 3600.0  # a score is a performance, not a day of audio (1.2 GB of 24-bit 48 kHz)
MAX_SCORE_BYTES = 256 * 1024 * 1024
MAX_REPORTED = 10


@dataclasses.dataclass(frozen=True)
class ScoreEntry:
    """One checked message: ``index`` in the file, ``time`` (s), the OSC ``address`` and ``args``, and
    the engine ``command`` they make."""

    index: int
    time: float
    address: str
    args: tuple
    command: Command


@dataclasses.dataclass(frozen=True)
class Score:
    """A checked score: entries sorted by time (stably), and where it came from."""

    entries: tuple[ScoreEntry, ...]
    source: str = "score"

    @property
    def duration(self) -> float:
        """Time of the last message (s); 0.0 for an empty score."""
        return self.entries[-1].time if self.entries else 0.0

    def events(self, *, rate: int) -> list[tuple[int, Command]]:
        """``(sample, command)`` pairs at output rate ``rate`` (``round(time * rate)``), in score order."""
        return [(sample_of(e.time, rate=rate), e.command) for e in self.entries]

    def uses_method_switch(self) -> bool:
        return any(e.address == "/synth/method" for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def score_spec(bundle) -> ControlSpec:
    """What a score for ``bundle`` may say: the bundle's notes, latent size, presets and macros, and both
    inversion methods (a renderer builds whichever the score asks for)."""
    return ControlSpec.for_bundle(bundle, methods=METHODS)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_entry(index: int, entry: Any, *, spec: ControlSpec) -> ScoreEntry:
    """One entry -> ScoreEntry, or ParameterError with the reason (the caller adds the index)."""
    if not isinstance(entry, dict):
        raise ParameterError(f"expected an object with time, address and args, got {type(entry).__name__}")
    missing = [k for k in ("time", "address") if k not in entry]
    if missing:
        raise ParameterError(f"missing {' and '.join(repr(k) for k in missing)}")
    time = entry["time"]
    if isinstance(time, bool) or not isinstance(time, (int, float)):
        raise ParameterError(f"time must be a number of seconds, got {_describe(time)}")
    if not math.isfinite(time):
        raise ParameterError(f"time must be finite, got {time}")
    if time < 0:
        raise ParameterError(f"time must be >= 0, got {time}")
    if time > MAX_SCORE_SECONDS:
        raise ParameterError(f"time {time} s is beyond the {MAX_SCORE_SECONDS / 3600:g} h a score may last")
    address = entry["address"]
    if not isinstance(address, str):
        raise ParameterError(f"address must be a string, got {_describe(address)}")
    args = entry.get("args", [])
    if not isinstance(args, list):
        raise ParameterError(f"{address}: args must be a list, got {_describe(args)}")
    try:
        command = parse_message(address, args, spec=spec)
    except ParameterError as exc:
        raise ParameterError(f"{address[:100]}: {exc}") from None
    if not isinstance(command, Command):  # a query or MIDI learn: for a server, not for the engine
        raise ParameterError(f"{address} is a query; it has no effect in a score")
    return ScoreEntry(index=index, time=float(time), address=address, args=tuple(args), command=command)


def parse_score(data: Any, *, spec: ControlSpec, source: str = "score") -> Score:
    """Check a decoded score (list, or object with ``"messages"``) against an engine's ``spec``.

    Raises :class:`~synth.errors.ScoreError` naming ``source`` and, for each bad entry (up to
    :data:`MAX_REPORTED`), its index and what is wrong. Nothing is partially accepted.
    """
    if isinstance(data, dict):
        if "messages" not in data:
            raise ScoreError(f"{source}: a score object needs a 'messages' list (or make the file a list)")
        data = data["messages"]
    if not isinstance(data, list):
        raise ScoreError(f"{source}: a score is a list of messages, got {type(data).__name__}")
    if not data:
        raise ScoreError(f"{source}: the score has no messages")
    entries: list[ScoreEntry] = []
    problems: list[str] = []
    n_bad = 0
    for index, raw in enumerate(data):
        try:
            entries.append(_check_entry(index, raw, spec=spec))
        except ParameterError as exc:
            n_bad += 1
            if len(problems) < MAX_REPORTED:
                problems.append(f"entry {index}: {exc}")
    if n_bad:
        more = f"; and {n_bad - len(problems)} more" if n_bad > len(problems) else ""
        raise ScoreError(
            f"{source}: {n_bad} bad entr{'y' if n_bad == 1 else 'ies'} of {len(data)}: "
            + "; ".join(problems) + more
        )
    entries.sort(key=lambda e: e.time)  # stable: equal times keep file order
    return Score(entries=tuple(entries), source=source)


def load_score(path: str | Path, *, spec: ControlSpec) -> Score:
    """Read and check a score file (JSON; see the module docstring).

    Raises :class:`~synth.errors.ScoreError` for a missing, unreadable, oversized or invalid file, with the
    line and column of a JSON syntax error or the index of each bad entry.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ScoreError(f"{path}: not a file")
        if size > MAX_SCORE_BYTES:
            raise ScoreError(f"{path}: {size} bytes is too large for a score")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScoreError(f"{path}: no such score file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoreError(f"{path}: cannot read the score ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScoreError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ScoreError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ScoreError(f"{path}: not valid JSON ({exc})") from None
    return parse_score(data, spec=spec, source=str(path))
