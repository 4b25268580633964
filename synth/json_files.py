"""Reading a JSON file a user hands over (a contract, a model config, a MIDI mapping), with the errors named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_json_file"]


def read_json_file(path: str | Path, *, what: str, error: type[Exception]) -> Any:
    """The parsed content of ``path``; ``error("<path>: no such <what> file")`` when it is missing and
    ``error("<path>: not a readable JSON file (<why>)")`` when it cannot be read or parsed."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: not a readable JSON file ({exc})") from None
