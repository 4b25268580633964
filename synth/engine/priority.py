"""Real-time scheduling priority for the engine's own threads (synthesis, null output clock)."""

from __future__ import annotations

__all__ = ["raise_thread_priority", "REALTIME_PRIORITY", "CONTROL_PRIORITY", "DECODE_PRIORITY"]

REALTIME_PRIORITY = 10  # below JACK's own threads (their default is 10 for the server, +1..+5 clients)
# The threads that feed the synthesis thread. Every Python thread takes the GIL: an ordinary thread that is
# preempted by another process while it holds the GIL stalls the real-time synthesis thread behind it (a
# priority inversion the GIL cannot resolve). Real-time, below the synthesis thread, they are not preempted
# by ordinary processes. The decoder runs at this priority too, and so holds a core while it decodes.
CONTROL_PRIORITY = 8  # the OSC receive thread (short, frequent)
DECODE_PRIORITY = 5  # the decode worker (one decode of tens of ms at a time)


def raise_thread_priority(priority: int = REALTIME_PRIORITY, *, thread_id: int = 0) -> bool:
    """Put the calling thread (or the thread ``thread_id``, a native id) under SCHED_FIFO at ``priority``;
    False where that is not allowed.

    On a busy machine an ordinary thread can be held off the CPU for tens of ms by other processes, longer
    than the audio buffer; a real-time thread is not. Our threads sleep between blocks, so they cannot
    starve the machine.
    """
    import os

    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError):
        return False
    return True
