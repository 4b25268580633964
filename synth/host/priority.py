"""Real-time scheduling of the live engine's threads, placed below the audio device's own thread.

Order, highest first: the audio callback thread (PortAudio's, or the null output's clock), the synthesis
thread, the control threads (OSC's, the page's and MIDI's reader), the decode worker, the recorder. The
audio thread must come first: it only copies a block, and when it waits for a core, the device plays a gap. JACK runs its clients' callback threads at
SCHED_FIFO 5 by default (measured here with jackd2's dummy driver: server 10, client 5), so fixed
priorities above that (an earlier version used 10/8/5) left the callback thread behind the synthesis thread
and level with the decode worker, which under SCHED_FIFO keeps its core for a whole decode; the JACK server
counted that as xruns. :func:`plan_priorities` therefore reads the audio thread's priority and places the
others under it.

The feeding threads are real-time too because every Python thread takes the GIL: an ordinary thread that
is preempted by another process while it holds the GIL stalls the real-time threads behind it (a priority
inversion the GIL cannot resolve). Real-time, they are not preempted by ordinary processes.
"""

from __future__ import annotations

import dataclasses
import os

__all__ = ["raise_thread_priority", "thread_priority", "plan_priorities", "ThreadPriorities", "AUDIO_PRIORITY"]

# The audio thread's priority when we own it (the null output) or must raise it (a device whose callback
# thread is not real-time): below JACK's server thread (10 by default) is not needed there, as it is ours.
AUDIO_PRIORITY = 10


@dataclasses.dataclass(frozen=True)
class ThreadPriorities:
    """SCHED_FIFO priorities of the engine's threads (1 is the lowest real-time priority)."""

    audio: int
    synthesis: int
    control: int
    decode: int
    record: int

    @classmethod
    def below(cls, audio: int) -> ThreadPriorities:
        """The synthesis, OSC, decode and recorder threads one to four steps under ``audio`` (at least 1)."""
        return cls(audio=audio, synthesis=max(1, audio - 1), control=max(1, audio - 2), decode=max(1, audio - 3),
                   record=max(1, audio - 4))


def raise_thread_priority(priority: int = AUDIO_PRIORITY, *, thread_id: int = 0) -> bool:
    """Put the calling thread (or the thread ``thread_id``, a native id) under SCHED_FIFO at ``priority``;
    False where that is not allowed.

    On a busy machine an ordinary thread can be held off the CPU for tens of ms by other processes, longer
    than the audio buffer; a real-time thread is not. Our threads sleep between blocks, so they cannot
    starve the machine.
    """
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError):
        return False
    return True


def thread_priority(thread_id: int) -> int | None:
    """The real-time (SCHED_FIFO or SCHED_RR) priority of a thread, None when it is not real-time or gone."""
    if not hasattr(os, "sched_getscheduler"):
        return None
    try:
        if os.sched_getscheduler(thread_id) not in (os.SCHED_FIFO, os.SCHED_RR):
            return None
        return int(os.sched_getparam(thread_id).sched_priority)
    except OSError:
        return None


def plan_priorities(audio_thread_id: int | None) -> ThreadPriorities:
    """Priorities for the engine's threads under the audio thread ``audio_thread_id`` (a native id).

    A real-time audio thread keeps its priority; one that is not real-time is raised to
    :data:`AUDIO_PRIORITY` (where allowed), so that our threads never run above it. Unknown (None): assume
    :data:`AUDIO_PRIORITY`.
    """
    audio = thread_priority(audio_thread_id) if audio_thread_id else None
    if audio is None and audio_thread_id and raise_thread_priority(AUDIO_PRIORITY, thread_id=audio_thread_id):
        audio = AUDIO_PRIORITY
    return ThreadPriorities.below(audio if audio is not None else AUDIO_PRIORITY)
