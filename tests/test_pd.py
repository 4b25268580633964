"""Pure Data drives the engine headless (``pd -nogui -nosound``) over real UDP: [oscformat] + [netsend -u -b].

Also checks that the example patch ``examples/melsynth.pd`` loads without a missing object.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from engine_fixtures import cents, f0_of, live_session, midi_hz, wait_for

pytestmark = pytest.mark.pd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RATE = 48000


def pd_or_skip() -> str:
    pd = shutil.which("pd")
    if pd is None:
        pytest.skip("Pure Data (Debian puredata-core) is not installed")
    return pd


def test_example_patch_loads_cleanly():
    pd = pd_or_skip()
    proc = subprocess.run(
        [pd, "-nogui", "-nosound", "-noprefs", "-stderr", "-open", str(EXAMPLES / "melsynth.pd"), "-send", "pd quit"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0
    assert "couldn't create" not in proc.stderr and "error" not in proc.stderr.lower(), proc.stderr


# A patch that plays one note, changes preset and a macro, asks for the status, prints the reply and quits.
TEST_PATCH = """#N canvas 0 0 600 400 12;
#X obj 20 20 loadbang;
#X obj 20 50 t b b b b;
#X msg 400 80 connect 127.0.0.1 {port};
#X obj 20 330 netsend -u -b;
#X obj 20 280 list prepend send;
#X obj 20 305 list trim;
#X obj 20 100 delay 300;
#X msg 20 130 60 100;
#X obj 20 160 oscformat synth note on;
#X obj 140 100 delay 1000;
#X obj 140 160 oscformat synth note off;
#X msg 140 130 60;
#X msg 260 130 symbol dark;
#X obj 260 160 oscformat synth preset;
#X msg 260 190 list 0 1.5;
#X obj 260 215 oscformat synth macro;
#X obj 300 100 delay 1400;
#X obj 300 240 oscformat synth status;
#X obj 200 360 oscparse;
#X obj 200 385 print reply;
#X obj 440 100 delay 1800;
#X msg 440 130 \\; pd quit;
#X connect 0 0 1 0;
#X connect 1 3 2 0;
#X connect 1 2 6 0;
#X connect 1 1 9 0;
#X connect 1 1 16 0;
#X connect 1 0 20 0;
#X connect 2 0 3 0;
#X connect 4 0 5 0;
#X connect 5 0 3 0;
#X connect 6 0 7 0;
#X connect 6 0 12 0;
#X connect 6 0 14 0;
#X connect 7 0 8 0;
#X connect 8 0 4 0;
#X connect 9 0 11 0;
#X connect 11 0 10 0;
#X connect 10 0 4 0;
#X connect 12 0 13 0;
#X connect 13 0 4 0;
#X connect 14 0 15 0;
#X connect 15 0 4 0;
#X connect 16 0 17 0;
#X connect 17 0 4 0;
#X connect 3 1 18 0;
#X connect 18 0 19 0;
#X connect 20 0 21 0;
"""


def test_pure_data_plays_the_engine(tmp_path):
    pd = pd_or_skip()
    record = tmp_path / "pd.wav"
    with live_session(record=record) as (live, server):
        patch = tmp_path / "drive.pd"
        patch.write_text(TEST_PATCH.format(port=server.port))
        proc = subprocess.run([pd, "-nogui", "-nosound", "-noprefs", "-stderr", "-open", str(patch)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert wait_for(lambda: live.engine.controls.macros[0] == 1.5, timeout=2)
        stats = live.engine.stats()
        assert stats.notes == 1
        assert live.engine.controls.preset == "dark"
        assert server.router.errors == 0 and server.router.messages == 5
    # Pd received the status reply through [netsend]'s right outlet and parsed it with [oscparse].
    assert "reply: list synth status voices" in proc.stderr, proc.stderr
    y, _ = sf.read(record, dtype="float32")
    loud = np.flatnonzero(np.abs(y) > 1e-3)
    assert loud.size
    start = loud[0]
    assert abs(cents(f0_of(y[start + RATE // 5 : start + RATE // 2], rate=RATE), midi_hz(60))) < 10


def test_max_patch_is_well_formed_and_speaks_the_address_space():
    import json
    import re

    from synth.control.vocabulary import CONTROLS

    known = {c.address for c in CONTROLS}

    patch = json.loads((EXAMPLES / "melsynth.maxpat").read_text())["patcher"]
    ids = {b["box"]["id"]: b["box"] for b in patch["boxes"]}
    for line in patch["lines"]:
        src, dst = line["patchline"]["source"], line["patchline"]["destination"]
        assert src[1] < ids[src[0]]["numoutlets"] and dst[1] < ids[dst[0]]["numinlets"]
    addresses = {m for b in ids.values() for m in re.findall(r"/synth/[a-z/]+", b.get("text", ""))}
    assert addresses <= known
    assert {"/synth/note/on", "/synth/preset", "/synth/xy", "/synth/corners", "/synth/macro"} <= addresses
    pd_text = (EXAMPLES / "melsynth.pd").read_text()
    pd_addresses = {"/" + "/".join(m.split()) for m in re.findall(r"oscformat ([a-z ]+);", pd_text)}
    assert pd_addresses <= known
    assert {"/synth/note/on", "/synth/preset", "/synth/xy", "/synth/corners", "/synth/macro"} <= pd_addresses
