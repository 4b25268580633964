"""Scheduling of a live engine's threads: where real-time priority is allowed, the audio thread comes
first, then the synthesis thread, the OSC receive thread and the decode worker, all under SCHED_FIFO."""

from __future__ import annotations

import os

import pytest
from engine_fixtures import live_session, wait_for

from synth.host.priority import AUDIO_PRIORITY, ThreadPriorities, plan_priorities, thread_priority


def _priorities(live, server) -> list[int | None]:
    """Real-time priorities of the audio, synthesis, OSC and decode threads, in that order."""
    assert wait_for(lambda: thread_priority(server._thread.native_id) is not None)  # noqa: SLF001
    return [thread_priority(tid) for tid in (
        live.output.audio_thread_id(), live._thread.native_id, server._thread.native_id,  # noqa: SLF001
        live.engine.timbres.decode_thread_id(),
    )]


def test_threads_run_real_time_below_the_audio_thread():
    with live_session() as (live, server):
        if not live.realtime:
            pytest.skip("SCHED_FIFO is not permitted to this user here")
        assert _priorities(live, server) == [AUDIO_PRIORITY, AUDIO_PRIORITY - 1, AUDIO_PRIORITY - 2, AUDIO_PRIORITY - 3]


def test_priorities_follow_a_device_callback_thread_below_them():
    import threading

    # JACK runs its clients' callback threads at SCHED_FIFO 5: the engine's threads go under it.
    ready, done = threading.Event(), threading.Event()
    audio = threading.Thread(target=lambda: (ready.set(), done.wait(10)))
    audio.start()
    ready.wait(5)
    try:
        from synth.host.priority import raise_thread_priority

        if not raise_thread_priority(5, thread_id=audio.native_id):
            pytest.skip("SCHED_FIFO is not permitted to this user here")
        assert plan_priorities(audio.native_id) == ThreadPriorities(audio=5, synthesis=4, control=3, decode=2, record=1)
        assert plan_priorities(None) == ThreadPriorities.below(AUDIO_PRIORITY)
        assert ThreadPriorities.below(2) == ThreadPriorities(audio=2, synthesis=1, control=1, decode=1, record=1)
    finally:
        done.set()
        audio.join()


def test_without_realtime_no_thread_is_raised():
    with live_session(realtime=False) as (live, _):
        assert not live.realtime
        assert os.sched_getscheduler(live.engine.timbres.decode_thread_id()) == os.SCHED_OTHER
