"""Shared helpers of the benchmark suites (:mod:`synth.benchmarks.suites`): the bundle to measure, a JACK dummy
server, a starting `melsynth serve`'s port, JSON output.

Nothing here needs the source checkout: ``REPO`` is where the checkout's root would be (the folder above the
``synth`` package), and its ``presets/default`` is used when it is there (an editable install or a run from
the checkout); an installed package falls back to :mod:`synth.benchmarks.synthetic_bundle`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from pathlib import Path

__all__ = ["REPO", "DEFAULT_BUNDLE", "resolve_bundle", "jack_server", "serve_port", "emit"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = REPO / "presets" / "default"


@functools.cache
def resolve_bundle(path: str | Path | None = None) -> tuple[Path, str]:
    """The bundle to measure and a sentence saying which: ``path``, else presets/default, else the synthetic
    test bundle (a tiny linear ONNX graph: its decode time says nothing about a trained model)."""
    if path is not None:
        return Path(path), f"the bundle {path}"
    if (DEFAULT_BUNDLE / "bundle.json").exists():
        return DEFAULT_BUNDLE, "the default bundle presets/default (the trained model)"
    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle

    root = Path(tempfile.mkdtemp(prefix="melsynth-bench-"))
    return make_synthetic_bundle(root / "bundle"), (
        "the synthetic test bundle from synth/benchmarks/synthetic_bundle.py (presets/default is not there): "
        "engine figures are real, its decoder is a tiny linear graph"
    )


@contextlib.contextmanager
def jack_server(*, rate: int = 48000, period: int = 256):
    """A JACK dummy server for a suite (:func:`synth.benchmarks.jack_dummy.dummy_jack_server`); yields its
    :class:`~synth.benchmarks.jack_dummy.JackServer`, or None when jackd is missing or does not start (the
    suite then measures on the null output and says so)."""
    from synth.benchmarks.jack_dummy import dummy_jack_server
    from synth.errors import ExternalToolError

    stack = contextlib.ExitStack()
    try:
        # One name for every server of this process (see dummy_jack_server): the JACK latency bench opens its
        # meter client in this process after the soak's servers have come and gone.
        server = stack.enter_context(dummy_jack_server(rate=rate, period=period, name=f"melsynth-b{os.getpid()}"))
    except ExternalToolError:
        server = None
    with stack:
        yield server


def serve_port(proc) -> int:
    """Read a starting `melsynth serve`'s stdout up to its output line; its OSC port (RuntimeError with serve's
    stderr if it did not start)."""
    import re

    port = None
    for line in proc.stdout:
        m = re.search(r"listening for OSC on [^ ]+:(\d+)", line)
        port = int(m.group(1)) if m else port
        if line.startswith("melsynth: output"):
            break
    if port is None:
        raise RuntimeError(f"serve did not start: {proc.stderr.read()[-2000:]}")
    return port


def emit(result: dict, *, as_json: bool) -> None:
    """Print ``result`` as JSON or as ``key: value`` lines."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
