"""Reading a JSON file (a contract, a model config, a MIDI mapping, a preset, a run's or a dataset's
records), with the errors named: the one home for that, whoever raises."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["read_json_file", "exact_keys"]


def exact_keys(data: Any, *, keys: Sequence[str], where: str, error: type[Exception]) -> dict[str, Any]:
    """``data`` when it is a JSON object with exactly ``keys``; ``error("<where>: expected a JSON object, got
    <type>")`` or ``error("<where>: missing keys [...], unknown keys [...]")`` otherwise."""
    if not isinstance(data, dict):
        raise error(f"{where}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    unknown = [k for k in data if k not in keys]
    if missing or unknown:
        raise error(f"{where}: missing keys {missing}, unknown keys {unknown}")
    return data


def read_json_file(path: str | Path, *, what: str, error: type[Exception], max_bytes: int | None = None) -> Any:
    """The parsed content of ``path`` (UTF-8); ``error("<path>: no such <what> file")`` when it is missing,
    ``error("<path>: not a readable JSON <what> file (<why>)")`` when it cannot be read or parsed, and
    ``error("<path>: N bytes is too large for a <what> file")`` beyond ``max_bytes``."""
    path = Path(path)
    try:
        if max_bytes is not None and (size := path.stat().st_size) > max_bytes:
            raise error(f"{path}: {size} bytes is too large for a {what} file")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not a readable JSON {what} file ({exc})") from None
    except RecursionError:
        # json's decoder recurses per nesting level: a file of 100,000 '[' exhausts the stack.
        raise error(f"{path}: not a readable JSON {what} file (nested too deeply)") from None
    except ValueError as exc:
        # An integer of more than 4,300 digits (Python's int/str conversion limit) is not a value of ours.
        raise error(f"{path}: not a readable JSON {what} file ({exc})") from None
