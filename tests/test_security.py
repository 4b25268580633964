"""Security: who may control the engine, and what an OSC message may touch.

- The server binds loopback unless told otherwise; a non-loopback address needs ``--allow``, and with an
  allow list packets from any other address are dropped (sent here from a second loopback address,
  127.0.0.2).
- No OSC message makes the engine open a file: every ``open()`` during a session of hostile preset names
  (``../../etc/passwd`` ...) is recorded with an audit hook, and none happens outside the bundle's presets.
- Nothing is unpickled: the code never enables pickle, and a features file holding an object array is
  refused (the bundle's macros.npz case is in tests/test_bundle.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import OscClient, live_session, synthetic_bundle_path, wait_for
from reliability_fixtures import REPO, status_of

from synth.errors import DataError, ParameterError


def test_serve_listens_on_loopback_by_default():
    import argparse

    from synth.commands.serve import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--bundle", "b"]).host == "127.0.0.1"
    with live_session() as (_, server):
        assert server._sock.getsockname()[0] == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_non_loopback_needs_an_allow_list(host):
    from synth.osc.server import OscServer

    class Live:
        engine = None

    with pytest.raises(ParameterError, match="--allow"):
        OscServer(Live(), host=host, port=0)


def test_serve_refuses_a_public_address_without_allow():
    proc = subprocess.run(
        [sys.executable, "-m", "synth.cli", "serve", "--bundle", str(synthetic_bundle_path()), "--output", "null",
         "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 1
    assert "name the machines with --allow" in proc.stderr, proc.stderr
    assert "listening" not in proc.stdout


def test_an_allowed_ipv4_sender_is_heard_on_a_dual_stack_address():
    """Bound to ::, an IPv4 sender arrives as ::ffff:127.0.0.1; --allow 127.0.0.1 once dropped it."""
    with live_session(host="::", allow=("127.0.0.1",)) as (live, server):
        friend = OscClient(server.port, host="127.0.0.1")
        friend.send("/synth/gain", 0.3)
        assert wait_for(lambda: abs(live.engine.gain - 0.3) < 1e-6)  # OSC sends float32
        friend.close()
        assert server.router.dropped == 0


def test_packets_from_addresses_not_allowed_are_dropped():
    with live_session(allow=("127.0.0.1",)) as (live, server):
        stranger = OscClient(server.port, source="127.0.0.2")
        friend = OscClient(server.port, source="127.0.0.1")
        stranger.send("/synth/gain", 0.1)
        stranger.send("/synth/note/on", 60, 100)
        stranger.send("/synth/status")
        assert wait_for(lambda: server.packets >= 3)
        with pytest.raises((TimeoutError, OSError)):
            stranger.receive(timeout=0.5)  # not even an error reply goes back
        status = status_of(friend)
        friend.close()
        stranger.close()
        assert server.router.dropped == 3 and status["dropped"] == 3
        assert status["messages"] == 1 and status["notes"] == 0
        assert live.engine.gain != 0.1


def test_a_loopback_sender_is_accepted_without_an_allow_list():
    with live_session() as (_, server):
        other = OscClient(server.port, source="127.0.0.2")
        assert status_of(other)["dropped"] == 0
        other.close()


HOSTILE_NAMES = ["../../etc/passwd", "/etc/passwd", "..", "bright/../../x", "presets/../bundle.json",
                 "bright.json", "~/x", "CON", "a" * 300, "../presets/bright"]


def test_no_file_is_opened_because_of_an_osc_message(tmp_path):
    """Record every open() made while the server handles hostile and valid preset messages."""
    opened: list[tuple[str, str]] = []
    watching = threading.Event()

    def hook(event, args):
        # The test's own client runs on the main thread; the server, decoder and synthesis threads do not.
        if (watching.is_set() and event == "open" and args and isinstance(args[0], (str, bytes, Path))
                and threading.current_thread() is not threading.main_thread()):
            opened.append((threading.current_thread().name, str(args[0])))

    sys.addaudithook(hook)  # cannot be removed: it only records while `watching` is set
    bundle_presets = (synthetic_bundle_path() / "presets").resolve()
    with live_session() as (live, server):
        client = OscClient(server.port)
        watching.set()
        for name in HOSTILE_NAMES:
            client.send("/synth/preset", name)
            client.send("/synth/morph", "bright", name, 0.5)
            client.send("/synth/corners", name, "dark", "hollow", "soft")
        client.send("/synth/preset", "dark")
        client.send("/synth/morph", "bright", "hollow", 0.3)
        assert wait_for(lambda: server.packets >= 3 * len(HOSTILE_NAMES) + 2)
        time.sleep(0.3)
        watching.clear()
        replies = client.drain()
        client.close()
        errors = server.router.errors
    assert errors == 3 * len(HOSTILE_NAMES)
    assert sum(1 for address, _ in replies if address == "/synth/error") >= 3 * len(HOSTILE_NAMES)
    # Lazy imports of python modules (the server imports python-osc's parser on its first packet) are code
    # being loaded, not data a message chose.
    data = [(t, p) for t, p in opened if not p.endswith((".py", ".pyc", ".so"))]
    outside = [(t, p) for t, p in data if not Path(p).resolve().is_relative_to(bundle_presets)]
    assert outside == [], outside


SOURCE_DIRS = ("synth", "training", "export")
PICKLE_PATTERNS = [
    r"^\s*(import|from)\s+(pickle|cPickle|dill|cloudpickle|joblib|shelve|marshal)\b",
    r"allow_pickle\s*=\s*True",
    r"\btorch\.load\(",
    r"pd\.read_pickle|\.read_pickle\(",
]


def test_no_code_path_unpickles():
    hits = []
    for folder in SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if any(re.search(p, line) for p in PICKLE_PATTERNS):
                    hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert hits == []


def test_a_features_file_that_is_no_npy_is_not_called_pickled(tmp_path):
    """A features.npy linked to a text file was refused as holding "pickled data" (numpy's word for any file
    that is neither .npy nor zip); the message now says what the file is."""
    from synth.numpy_files import numpy_file_problem
    from synth.spectrogram import SpectrogramParams
    from training.datasets.features import load_features, sha256_file

    feat = tmp_path / "feat"
    feat.mkdir()
    (tmp_path / "notes.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (feat / "features.npy").symlink_to(tmp_path / "notes.txt")
    SpectrogramParams().save(feat / "spectrogram.json")
    (feat / "index.json").write_text(json.dumps({"rows": [{"note_str": "a"}]}))
    (feat / "splits.json").write_text(json.dumps({"train": [0], "valid": [], "test": []}))
    (feat / "checksums.json").write_text(json.dumps({"features.npy": sha256_file(feat / "features.npy")}))
    with pytest.raises(DataError) as err:
        load_features(feat)
    assert str(err.value) == (f"{feat / 'features.npy'}: not a .npy file: it begins with b'root:x:0:0' "
                              "(a .npy begins with b'\\x93NUMPY')")
    assert numpy_file_problem(tmp_path / "notes.txt", archive=True).startswith("not a .npz file: it begins with")
    (tmp_path / "empty").write_bytes(b"")
    assert numpy_file_problem(tmp_path / "empty", archive=False).startswith("not a .npy file: it is empty")
    np.save(tmp_path / "a.npy", np.zeros(2))
    np.savez(tmp_path / "a.npz", a=np.zeros(2))
    assert numpy_file_problem(tmp_path / "a.npy", archive=False) == numpy_file_problem(tmp_path / "a.npz", archive=True) == ""


def test_features_holding_an_object_array_are_refused(tmp_path):
    from training.datasets.features import load_features, sha256_file

    feat = tmp_path / "feat"
    feat.mkdir()
    np.save(feat / "features.npy", np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    from synth.spectrogram import SpectrogramParams

    SpectrogramParams().save(feat / "spectrogram.json")
    (feat / "index.json").write_text(json.dumps({"rows": [{"note_str": "a"}, {"note_str": "b"}]}))
    (feat / "splits.json").write_text(json.dumps({"train": [0], "valid": [1], "test": []}))
    (feat / "checksums.json").write_text(json.dumps({"features.npy": sha256_file(feat / "features.npy")}))
    # Refused by numpy as it opens the file (no memory map, no pickle of Python objects): a loader that
    # unpickled it would fail later, at the shape check, with another message, having run the pickle.
    with pytest.raises(DataError, match=r"features\.npy: not a readable \.npy array"):
        load_features(feat)
