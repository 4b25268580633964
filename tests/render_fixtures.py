"""Helpers for the render, score and encode tests: a synthetic bundle, scores, and the console in-process."""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path

RATE = 48000


@functools.lru_cache(maxsize=1)
def render_bundle_path() -> Path:
    """A synthetic bundle (6 presets) that the tests only read."""
    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle

    root = Path(tempfile.mkdtemp(prefix="melsynth-render-tests-"))
    return make_synthetic_bundle(root / "bundle", n_presets=6)


@functools.lru_cache(maxsize=1)
def render_bundle():
    from synth.bundle import load_bundle

    return load_bundle(render_bundle_path())


@functools.lru_cache(maxsize=1)
def shared_decoder():
    return render_bundle().decoder()


@functools.cache
def release_seconds(preset: str = "bright") -> float:
    """How long a released note of ``preset`` rings: its audible release frames (a voice ends at the last one,
    see synth.engine.timbre.RELEASE_SILENT_U), in seconds; the inverter's tail comes on top."""
    from synth.engine.timbre import make_timbre

    b = render_bundle()
    t = make_timbre(shared_decoder().decode(b.presets[preset].latent[None])[0], params=b.params)
    return t.audible_release_frames * b.params.hop_length / b.params.sample_rate


def fresh_bundle(path: Path, **kw) -> Path:
    """A bundle of the tests' own, for tests that write into it or spoil it."""
    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle

    return make_synthetic_bundle(path, **kw)


def busy_score(latent_size: int) -> list[dict]:
    """Every kind of control message, off the frame grid, with a method switch and overlapping notes."""
    return [
        {"time": 0.0, "address": "/synth/preset", "args": ["bright"]},
        {"time": 0.0, "address": "/synth/note/on", "args": [60, 100]},
        {"time": 0.0213, "address": "/synth/note/on", "args": [67, 80.5]},
        {"time": 0.1042, "address": "/synth/morph", "args": ["bright", "hollow", 0.4]},
        {"time": 0.2, "address": "/synth/macro", "args": [0, 1.5]},
        {"time": 0.2571, "address": "/synth/note/on", "args": [48, 127]},
        {"time": 0.33, "address": "/synth/method", "args": ["griffinlim"]},
        {"time": 0.41, "address": "/synth/latent/set", "args": [3, 0.25]},
        {"time": 0.47, "address": "/synth/corners", "args": ["bright", "dark", "hollow", "soft"]},
        {"time": 0.5, "address": "/synth/xy", "args": [0.2, 0.9]},
        {"time": 0.55, "address": "/synth/note/off", "args": [60]},
        {"time": 0.6, "address": "/synth/latent", "args": [0.01 * ((i % 7) - 3) for i in range(latent_size)]},
        {"time": 0.7, "address": "/synth/gain", "args": [0.8]},
        {"time": 0.75, "address": "/synth/method", "args": ["sinusoidal"]},
        {"time": 0.8, "address": "/synth/note/off", "args": [67]},
        {"time": 0.9, "address": "/synth/note/on", "args": [72, 90]},
        {"time": 1.1, "address": "/synth/panic"},
        {"time": 1.2, "address": "/synth/note/on", "args": [64, 100]},
        {"time": 1.3, "address": "/synth/note/off", "args": [64]},
        {"time": 1.3, "address": "/synth/note/off", "args": [48]},
    ]


def notes_score() -> list[dict]:
    """Notes, a method switch and a gain change: nothing that needs the decoder."""
    return [
        {"time": 0.0, "address": "/synth/note/on", "args": [60, 100]},
        {"time": 0.25, "address": "/synth/note/on", "args": [64, 90]},
        {"time": 0.3, "address": "/synth/method", "args": ["griffinlim"]},
        {"time": 0.5, "address": "/synth/gain", "args": [0.7]},
        {"time": 0.6, "address": "/synth/note/off", "args": [60]},
        {"time": 0.8, "address": "/synth/method", "args": ["sinusoidal"]},
        {"time": 0.9, "address": "/synth/note/off", "args": [64]},
    ]


def melsynth(*argv: str) -> tuple[int, str, str]:
    """Run the console command in this process; returns (exit code, stdout, stderr)."""
    from synth.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def leftovers(folder: Path) -> list[str]:
    """Temporary files of atomic writes left in ``folder`` (there must never be any)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))
