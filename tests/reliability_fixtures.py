"""Helpers for the reliability, fuzz, soak and security tests.

- :func:`serve_process`: ``melsynth serve`` as a subprocess (the way a user starts it), its OSC port parsed
  from its first lines; always ends the process.
- :func:`status_of`: ``/synth/status`` as a dict, over UDP.
- :func:`nan_bundle`: a copy of the synthetic bundle whose ONNX decoder outputs NaN when any latent value
  exceeds a threshold (a real graph change, hashes rewritten so the loader accepts it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAN_THRESHOLD = 100.0


@contextlib.contextmanager
def serve_process(*args: str, env: dict | None = None, ready_timeout: float = 120.0, preexec_fn=None):
    """Run ``python -m synth.cli serve ARGS``; yields ``(proc, port, lines)`` once it prints its output line.
    ``preexec_fn`` runs in the child before serve starts (e.g. to start it with a signal ignored)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "synth.cli", "serve", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env=dict(os.environ if env is None else env, PYTHONUNBUFFERED="1"), preexec_fn=preexec_fn,
    )
    try:
        lines: list[str] = []
        port = None
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"listening for OSC on [^ ]+:(\d+)", line)
            if m:
                port = int(m.group(1))
            if line.startswith("melsynth: output"):
                break
        if port is None:
            err = proc.stderr.read() if proc.poll() is not None else ""
            raise AssertionError(f"serve did not start: {lines} {err}")
        yield proc, port, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def status_of(client, *, timeout: float = 5.0) -> dict:
    """Ask for ``/synth/status`` and return its key/value pairs (skipping any error replies queued first)."""
    client.send("/synth/status")
    for _ in range(1000):
        address, args = client.receive(timeout=timeout)
        if address == "/synth/status":
            return dict(zip(args[::2], args[1::2], strict=True))
    raise AssertionError("no /synth/status reply")


def nan_bundle(dest: Path, source: Path, *, threshold: float = NAN_THRESHOLD) -> Path:
    """Copy bundle ``source`` to ``dest`` with a decoder that outputs NaN when max(latent) > ``threshold``.

    The graph gains ``mel = clean + 0 * sqrt(threshold - max(latent))``: zero (no change) while the latent
    stays below the threshold, NaN everywhere beyond it. ``bundle.json``'s digests and every preset's bundle
    hash are rewritten, as a re-export would.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from synth.bundle import bundle_hash_of, sha256_bytes

    shutil.copytree(source, dest)
    model = onnx.load(dest / "decoder.onnx")
    graph = model.graph
    out_name = graph.output[0].name
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == out_name:
                node.output[i] = "clean_mel"
    graph.initializer.extend([
        numpy_helper.from_array(np.array(threshold, np.float32), "nan_threshold"),
        numpy_helper.from_array(np.array(0.0, np.float32), "nan_zero"),
    ])
    graph.node.extend([
        helper.make_node("ReduceMax", ["latent"], ["latent_max"], keepdims=0),
        helper.make_node("Sub", ["nan_threshold", "latent_max"], ["headroom"]),
        helper.make_node("Sqrt", ["headroom"], ["root"]),
        helper.make_node("Mul", ["root", "nan_zero"], ["poison"]),
        helper.make_node("Add", ["clean_mel", "poison"], [out_name]),
    ])
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    (dest / "decoder.onnx").write_bytes(data)
    meta = json.loads((dest / "bundle.json").read_text())
    meta["sha256"]["decoder.onnx"] = sha256_bytes(data)
    encoder_sha = meta["sha256"]["encoder.onnx"]
    new_hash = bundle_hash_of(decoder_sha256=meta["sha256"]["decoder.onnx"], encoder_sha256=encoder_sha)
    (dest / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
    for preset in (dest / "presets").glob("*.json"):
        doc = json.loads(preset.read_text())
        doc["bundle_hash"] = new_hash
        preset.write_text(json.dumps(doc) + "\n")
    return dest
