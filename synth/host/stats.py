"""The live host's figures as a typed, immutable object: what :meth:`LiveEngine.stats` and ``stop`` return.

Built on request (a status query, the end of a run) from the counters and histograms the live engine keeps,
never by the synthesis thread or the audio callback: asking costs the asking thread one object and a few
histogram reads (tens of microseconds, :mod:`synth.host.histogram`), the real-time threads nothing.
"""

from __future__ import annotations

import dataclasses

from synth.engine.stats import EngineStats

__all__ = ["LiveStats"]


@dataclasses.dataclass(frozen=True)
class LiveStats:
    """Figures of one live run so far: the engine's, and what the host adds around it.

    Attributes
    ----------
    seconds : float  wall-clock seconds since the run started (0.0 before)
    underflows : int  times the output found the ring empty (zero-filled)
    underflows_startup, underflows_idle, underflows_playing : int  ``underflows`` split by what the engine was
        doing when the ring ran dry: its start-up decodes, nothing sounding, playing
    device_xruns : int  underruns the audio device reported itself (0 with the null output)
    callbacks : int  blocks the output took
    buffer_ms : float  the margin rendered ahead of the output now, ms
    buffer_ms_base : float  the margin the run started with (``--ahead``), ms
    buffer_ms_widest : float  the widest the margin grew after near-misses, ms
    near_misses : int  times the ring held less than one block (the margin widened)
    buffer_ms_idle : float  how far ahead silence is rendered while nothing sounds (``--idle-ahead``), ms
    buffer_ms_onset : float  the margin a command onto that silence takes it back to (``--onset-ahead``), ms
    taken_back : int  commands that took back silence rendered ahead
    taken_back_ms : float  the silence taken back, all told, ms
    device_latency_ms : float  the device's own output latency (its buffer), ms
    latency_ms, latency_ms_p99 : float  control latency, median and 99th percentile: from a command's arrival
        to the first output sample carrying it, beyond the device buffer, ms (0.0 before the first)
    latency_count : int  commands those percentiles are over
    exact_latency_ms_p99 : float  99th percentile of the same to the exact decode of a latent change, ms
    render_ms_p99 : float  99th percentile of one block's render (wall time), ms
    render_load : float  CPU time spent rendering per second of audio made (1.0: all of one core)
    stolen_ms_max : float  the longest wait inside one block's render (wall time minus CPU time), ms
    output_peak, output_rms : float  peak and RMS of the block made last (linear, 1.0 = full scale)
    realtime : bool  whether the synthesis thread got its real-time priority
    output : str  the output device, as it names itself
    failure : str  why the run ended by itself ("" while it has not)
    engine : EngineStats  the engine's own figures
    """

    seconds: float
    underflows: int
    underflows_startup: int
    underflows_idle: int
    underflows_playing: int
    device_xruns: int
    callbacks: int
    buffer_ms: float
    buffer_ms_base: float
    buffer_ms_widest: float
    near_misses: int
    buffer_ms_idle: float
    buffer_ms_onset: float
    taken_back: int
    taken_back_ms: float
    device_latency_ms: float
    latency_ms: float
    latency_ms_p99: float
    latency_count: int
    exact_latency_ms_p99: float
    render_ms_p99: float
    render_load: float
    stolen_ms_max: float
    output_peak: float
    output_rms: float
    realtime: bool
    output: str
    failure: str
    engine: EngineStats
