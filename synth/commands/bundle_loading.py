"""Loading a bundle for a command (with a line on stderr for every preset file left out), and the check a
command makes before it writes a preset into one."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["load_bundle_for_command", "refuse_existing_preset"]


def load_bundle_for_command(path: Any):
    """:func:`synth.bundle.load_bundle`, saying which preset files were left out and why (the bundle plays
    with the good ones; ``melsynth presets list`` shows the broken ones, ``presets remove`` deletes one)."""
    from synth.bundle import load_bundle

    bundle = load_bundle(path)
    for name, reason in sorted(bundle.broken_presets.items()):
        print(f"melsynth: preset file {name} left out: {reason}", file=sys.stderr)
    return bundle


def refuse_existing_preset(bundle, name: str, *, force: bool) -> None:
    """Raise :class:`~synth.errors.PresetError` when ``name`` is a preset of ``bundle`` (a file or a loaded
    one) and ``force`` is not set: checked before any work, so a clash costs nothing and writes nothing."""
    from synth.errors import PresetError

    target = bundle.presets_dir / f"{name}.json"
    if (target.exists() or name in bundle.presets) and not force:
        raise PresetError(f"preset {name!r} already exists ({target}); use --force to replace it")
