"""Real-time scheduling priority for the engine's own threads (synthesis, null output clock)."""

from __future__ import annotations

__all__ = ["raise_thread_priority", "REALTIME_PRIORITY"]

REALTIME_PRIORITY = 10  # below JACK's own threads (their default is 10 for the server, +1..+5 clients)


def raise_thread_priority(priority: int = REALTIME_PRIORITY) -> bool:
    """Put the calling thread under SCHED_FIFO at ``priority``; False where that is not allowed.

    On a busy machine an ordinary thread can be held off the CPU for tens of ms by other processes, longer
    than the audio buffer; a real-time thread is not. Our threads sleep between blocks, so they cannot
    starve the machine.
    """
    import os

    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError):
        return False
    return True
