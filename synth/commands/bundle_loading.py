"""Loading a bundle for a command: the bundle, with a line on stderr for every preset file left out."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["load_bundle_for_command"]


def load_bundle_for_command(path: Any):
    """:func:`synth.bundle.load_bundle`, saying which preset files were left out and why (the bundle plays
    with the good ones; ``melsynth presets list`` shows the broken ones, ``presets remove`` deletes one)."""
    from synth.bundle import load_bundle

    bundle = load_bundle(path)
    for name, reason in sorted(bundle.broken_presets.items()):
        print(f"melsynth: preset file {name} left out: {reason}", file=sys.stderr)
    return bundle
