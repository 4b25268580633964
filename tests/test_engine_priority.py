"""Scheduling of a live engine's threads: where real-time priority is allowed, the synthesis thread runs
under SCHED_FIFO and so do the threads that feed it (decode worker, OSC receive), below it."""

from __future__ import annotations

import os

import pytest
from engine_fixtures import live_session, wait_for

from synth.engine.priority import CONTROL_PRIORITY, DECODE_PRIORITY, REALTIME_PRIORITY


def test_decode_and_osc_threads_run_real_time_below_the_synthesis_thread():
    with live_session() as (live, server):
        if not live.realtime:
            pytest.skip("SCHED_FIFO is not permitted to this user here")
        worker = live.engine.decode_thread_id()
        osc = server._thread.native_id  # noqa: SLF001
        synthesis = live._thread.native_id  # noqa: SLF001
        assert wait_for(lambda: os.sched_getscheduler(osc) == os.SCHED_FIFO)
        for tid, priority in ((synthesis, REALTIME_PRIORITY), (worker, DECODE_PRIORITY), (osc, CONTROL_PRIORITY)):
            assert os.sched_getscheduler(tid) == os.SCHED_FIFO
            assert os.sched_getparam(tid).sched_priority == priority
        assert CONTROL_PRIORITY < REALTIME_PRIORITY and DECODE_PRIORITY < REALTIME_PRIORITY


def test_without_realtime_no_thread_is_raised():
    with live_session(realtime=False) as (live, _):
        assert not live.realtime
        assert os.sched_getscheduler(live.engine.decode_thread_id()) == os.SCHED_OTHER
