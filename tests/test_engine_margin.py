"""The adaptive margin: its policy as a pure state machine, and the live engine's use of it (underflows filed
by phase, the margin widened after one)."""

from __future__ import annotations

import pytest
from engine_fixtures import live_session, wait_for

from synth.engine import NoteOn
from synth.engine.margin import MarginPolicy
from synth.errors import ParameterError


def test_a_near_miss_widens_the_margin_and_calm_narrows_it_again():
    m = MarginPolicy(blocks=3, max_blocks=5, relax_seconds=10.0, startup_blocks=0)
    assert m.observe(fill_blocks=2.5, underflows=0, now=0.0) == 3  # normal: between margin - 1 and margin
    assert m.observe(fill_blocks=0.6, underflows=0, now=1.0) == 4  # less than a block left: near-miss
    assert m.observe(fill_blocks=0.0, underflows=1, now=2.0) == 5  # ran dry
    assert m.observe(fill_blocks=0.0, underflows=2, now=3.0) == 5  # at the widest
    assert m.near_misses == 3 and m.widest == 5
    assert m.observe(fill_blocks=4.0, underflows=2, now=12.9) == 5  # not yet 10 s of calm
    assert m.observe(fill_blocks=4.0, underflows=2, now=13.0) == 4  # one block per calm period
    assert m.observe(fill_blocks=3.5, underflows=2, now=22.9) == 4
    assert m.observe(fill_blocks=3.5, underflows=2, now=23.0) == 3
    assert m.observe(fill_blocks=2.5, underflows=2, now=99.0) == 3  # never below the calm margin
    assert [c.reason for c in m.changes] == ["near-miss", "underflow", "calm", "calm"]
    m.reset()
    assert m.blocks == 3 and m.near_misses == 0 and not m.changes


def test_start_up_work_widens_the_margin_within_its_bound():
    m = MarginPolicy(blocks=3, max_blocks=6, startup_blocks=2)
    m.set_startup(True, now=0.0)
    assert m.blocks == 5
    assert m.observe(fill_blocks=0.5, underflows=0, now=1.0) == 6  # 4 adapted + 2, capped at 6
    m.set_startup(False, now=2.0)
    assert m.blocks == 4  # the near-miss's block stays until calm
    assert [c.reason for c in m.changes] == ["start-up", "near-miss", "start-up done"]


def test_a_fixed_margin_never_moves():
    m = MarginPolicy(blocks=4, max_blocks=4, startup_blocks=0)
    for t in range(5):
        assert m.observe(fill_blocks=0.0, underflows=t + 1, now=float(t)) == 4
    assert m.near_misses == 5 and m.widest == 4


@pytest.mark.parametrize("kw, message", [
    ({"blocks": 0, "max_blocks": 4}, "blocks must be an integer >= 1"),
    ({"blocks": 4, "max_blocks": 3}, "max_blocks \\(3\\) is below blocks \\(4\\)"),
    ({"blocks": 3, "max_blocks": 4, "relax_seconds": 0}, "relax_seconds must be positive"),
    ({"blocks": 3, "max_blocks": 4, "startup_blocks": -1}, "startup_blocks must be an integer >= 0"),
])
def test_bad_margins_are_named(kw, message):
    with pytest.raises(ParameterError, match=message):
        MarginPolicy(**kw)


def test_the_live_engine_files_each_underflow_by_phase_and_widens_after_it():
    # The output's underflow counter is bumped by the test: the engine cannot tell it from a real dry ring,
    # and what follows (filing, widening) is what the engine guarantees after any underflow.
    with live_session(max_voices=4) as (live, _):
        assert wait_for(lambda: not live.margin.startup, timeout=60.0)
        base = live.margin.blocks
        live.ring.underflows += 1
        assert wait_for(lambda: live.stats()["underflows_idle"] == 1)
        assert live.margin.blocks >= base + 1 and live.stats()["near_misses"] >= 1
        live.submit(NoteOn(60, 100))
        assert wait_for(lambda: live.engine.sounding_voices > 0)
        live.ring.underflows += 1
        assert wait_for(lambda: live.stats()["underflows_playing"] == 1)
        stats = live.stats()
    assert stats["buffer_ms_widest"] > stats["buffer_ms_base"]
    assert stats["underflows"] == stats["underflows_startup"] + stats["underflows_idle"] + stats["underflows_playing"]
