"""docs/OSC.md's tables, written from the vocabulary: the messages (:data:`synth.control.vocabulary.CONTROLS`)
and the MIDI targets (:data:`~synth.control.targets.TARGETS`).

``python -m synth.control.docs`` rewrites the generated parts of docs/OSC.md (between the ``<!-- generated:
NAME -->`` and ``<!-- end generated -->`` lines); the suite fails when they differ from the tables.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from synth.control import vocabulary
from synth.control.targets import TARGETS
from synth.control.vocabulary import DEFAULT_PORT, Control

__all__ = ["messages_table", "targets_table", "SECTIONS", "rewrite", "main"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "OSC.md"


def _type_tag(value) -> str:
    return "i" if isinstance(value, int) else "f" if isinstance(value, float) else "s"


def _example(control: Control) -> str:
    if control.reply:
        return f"reply `{control.reply}`"
    if control.arguments and not control.example:
        return "(from code: the whole vector in one message)"
    tags = "".join(_type_tag(v) for v in control.example)
    values = " ".join(str(v) for v in control.example)
    return f"`oscsend localhost {DEFAULT_PORT} {control.address}{' ' + tags if tags else ''}{' ' + values if values else ''}`"


def messages_table() -> str:
    """The messages: address, arguments, what it does, an example (oscsend) or the reply."""
    lines = ["| address | arguments | does | example |", "|---|---|---|---|"]
    for control in vocabulary.CONTROLS:
        args = ", ".join(a.describe() + (f": {a.help}" if a.help else "") for a in control.arguments)
        lines.append(f"| `{control.address}` | {args} | {control.help} | {_example(control)} |")
    return "\n".join(lines)


def targets_table() -> str:
    """What a MIDI controller can move (``--midi-map``'s ``cc`` values, ``/synth/midi/learn``'s argument)."""
    lines = ["| target | moves |", "|---|---|"]
    lines += [f"| `{'macro:K' if kind == 'macro' else kind}` | {does} |" for kind, does in TARGETS.items()]
    return "\n".join(lines)


SECTIONS = {"messages": messages_table, "midi-targets": targets_table}


def rewrite(text: str) -> str:
    """``text`` with every generated section replaced by its table now."""
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated: {re.escape(name)} -->\n).*?(<!-- end generated -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no '<!-- generated: {name} -->' section")
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> int:
    text = DOC.read_text()
    new = rewrite(text)
    if new != text:
        DOC.write_text(new)
        print(f"rewrote the generated tables of {DOC}")
    else:
        print(f"{DOC} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
