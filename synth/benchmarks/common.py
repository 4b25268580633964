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
import shutil
import subprocess
import tempfile
import time
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
    """``jackd -d dummy`` under its own name; yields the name (set JACK_DEFAULT_SERVER for clients), or None
    when jackd is not installed or does not start."""
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        yield None
        return
    name = f"melsynth-bench-{os.getpid()}"
    proc = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, JACK_NO_AUDIO_RESERVATION="1"))
    try:
        deadline = time.monotonic() + 10
        ready = False
        while not ready and time.monotonic() < deadline and proc.poll() is None:
            ready = subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode == 0
            time.sleep(0.2)
        yield name if ready else None
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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
