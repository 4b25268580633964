"""Live-engine figures with the null output (paced by the clock like a device): control latency from OSC
packet to the first output sample carrying the change, and the most voices held without underflow."""

from __future__ import annotations

import contextlib
import time

import numpy as np

from synth.inversion.base import DEFAULT_METHOD
from synth.osc.packets import encode_message

__all__ = ["engine_session", "control_latency", "max_voices"]


@contextlib.contextmanager
def engine_session(bundle, *, rate: int = 48000, blocksize: int = 256, ahead_blocks: int = 3, max_voices: int = 16,
                   method: str = DEFAULT_METHOD, record=None, log_path=None, output: str = "null", device=None,
                   channels: int = 1, host: str = "127.0.0.1", allow=(), realtime: bool = True, decoding=None,
                   limits=None):
    """A running LiveEngine + OscServer on a free port, as `melsynth serve` builds them (the null output by
    default); yields ``(live, server)`` and stops both afterwards. ``decoding``: the engine's
    :class:`~synth.engine.decoding.LiveDecoding` (None: serve's, the default one; ``LiveDecoding(inline_ms=0)``
    decodes everything on the worker); ``limits``: each OSC sender's (:class:`~synth.control.rate.SenderLimits`,
    None: the server's default)."""
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.host.live_engine import LiveEngine
    from synth.host.session import LiveSession
    from synth.osc.server import OscServer

    options = EngineOptions(output_rate=rate, method=method, max_voices=max_voices)
    decoding = LiveDecoding() if decoding is None else decoding
    with LiveSession() as session:  # the same parts, order and cleanup as `melsynth serve`
        engine = session.own("engine", Engine(bundle, options, decoding=decoding))
        live = session.own("live", LiveEngine(engine, output=output, device=device, blocksize=blocksize,
                                              ahead_blocks=ahead_blocks, record=record, channels=channels,
                                              realtime=realtime))
        server = session.own("server", OscServer(live, host=host, port=0, allow=allow, log_path=log_path,
                                                 limits=limits))
        session.start()
        try:
            yield live, server
        finally:
            session.stop()
            session.write_log()


def control_latency(live, server, *, seconds: float, rate: float = 20.0, seed: int = 0, kind: str = "latent") -> dict:
    """Send control changes over UDP at ``rate`` a second for ``seconds`` while a note plays.

    ``kind``: ``"latent"`` sends ``/synth/latent/set`` with random indices and values (each needs a decode);
    ``"sweep"`` moves one latent coordinate at a time like a fader, a new coordinate every second (after the
    first two decodes of a sweep, the engine estimates the rest along them);
    ``"morph"`` sweeps ``/synth/morph`` between two presets and ``"macro"`` moves ``/synth/macro`` (each
    needs a decode; the live engine sounds an estimate at once and the decode when it lands, see
    ``exact_latency_ms_*``); ``"preset"`` cycles ``/synth/preset`` through the bundle's presets (answered from the engine's timbre
    cache once prefetched); ``"note"`` plays short notes (no decode at all). The engine stamps each packet
    when its receive thread gets it and resolves the stamp when the output sample that carries the change
    leaves (see ``LiveEngine.control_latency``). Returns ms p50/p90/p99/max, p50/p99 for the exact decode of
    latent commands, the count, and the output buffer the figures include.
    """
    import socket

    if kind not in ("latent", "sweep", "morph", "macro", "preset", "note"):
        raise ValueError(f"kind must be latent, sweep, morph, macro, preset or note, got {kind!r}")
    rng = np.random.default_rng(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", server.port)
    spec = live.engine.control_spec
    presets = list(spec.presets)
    if kind in ("preset", "morph"):
        if len(presets) < 2:
            raise ValueError(f"{kind} latency needs a bundle with at least two presets")
    if kind == "macro" and not spec.macro_count:
        raise ValueError("macro latency needs a bundle with macros")
    if kind in ("preset", "morph", "macro"):
        _wait_for_prefetch(live)
    before, before_exact = live.control_latency.counts(), live.exact_latency.counts()
    estimates_before = live.engine.timbres.timbre_estimates
    held = spec.base_pitch
    if kind == "morph":  # a performer picks a preset, then morphs away from it (from an arbitrary
        # /synth/latent vector there is no decoded neighbour to estimate from: the first morph would wait)
        sock.sendto(encode_message("/synth/preset", [presets[0]]), target)
    sock.sendto(encode_message("/synth/note/on", [held, 100]), target)
    time.sleep(0.3)
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        if kind == "latent":
            index = int(rng.integers(0, spec.latent_size))
            sock.sendto(encode_message("/synth/latent/set", [index, float(rng.normal(0, 0.5))]), target)
        elif kind == "sweep":  # one second per coordinate: a ramp from 0 by a fader step per message
            per_sweep = max(2, int(round(rate)))
            if n % per_sweep == 0:
                index = int(rng.integers(0, spec.latent_size))
            value = 0.5 * (n % per_sweep + 1) / per_sweep
            sock.sendto(encode_message("/synth/latent/set", [index, value]), target)
        elif kind == "morph":  # a performer's fader between the first two presets: a new position each time
            t = float(rng.uniform(0.0, 1.0))
            sock.sendto(encode_message("/synth/morph", [presets[0], presets[1], t]), target)
        elif kind == "macro":  # a knob on one of the first macros, a new setting each time
            k = int(rng.integers(0, min(4, spec.macro_count)))
            sock.sendto(encode_message("/synth/macro", [k, float(rng.uniform(-2.0, 2.0))]), target)
        elif kind == "preset":
            sock.sendto(encode_message("/synth/preset", [presets[n % len(presets)]]), target)
        else:
            note = held + 1 + n % 12
            sock.sendto(encode_message("/synth/note/on", [note, 90]), target)
            sock.sendto(encode_message("/synth/note/off", [note]), target)
        n += 1
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
    sock.sendto(encode_message("/synth/note/off", [held]), target)
    sock.close()
    time.sleep(0.3)
    live.resolve_latencies()
    lat, exact = live.control_latency, live.exact_latency
    events, exact_events = lat.total(since=before), exact.total(since=before_exact)
    stats = live.stats()

    def figure(histogram, q, since, count):
        if not count:
            return float("nan")
        return histogram.maximum(since=since) if q == "max" else histogram.percentile(q, since=since)

    return {
        "control_latency_ms_p50": figure(lat, 50, before, events),
        "control_latency_ms_p90": figure(lat, 90, before, events),
        "control_latency_ms_p99": figure(lat, 99, before, events),
        "control_latency_ms_max": figure(lat, "max", before, events),
        "control_events": events,
        "exact_latency_ms_p50": figure(exact, 50, before_exact, exact_events),
        "exact_latency_ms_p99": figure(exact, 99, before_exact, exact_events),
        "timbre_estimates": stats.engine.timbres.timbre_estimates - estimates_before,
        "sent": n,
        # The margin the engine started with, what every change waits for at least; under load it widens after
        # near-misses (the widest beside it), so the margin at the end is neither bound.
        "buffer_ms": stats.buffer_ms_base,
        "buffer_ms_widest": stats.buffer_ms_widest,
        "underflows": stats.underflows,
    }


def _wait_for_prefetch(live, timeout: float = 30.0) -> None:
    """Until the live engine's decode worker has decoded every preset and macro slope (after start)."""
    end = time.monotonic() + timeout
    while not (live.engine.timbres.presets_decoded() and live.engine.timbres.estimates_ready()) and time.monotonic() < end:
        time.sleep(0.05)


def max_voices(live, *, counts=(4, 8, 12, 16, 20, 24, 32, 40, 48), hold: float = 3.0, settle: float = 0.5) -> dict:
    """Hold chords of growing size; the largest with no underflow while held (stops at the first failure).

    Submits commands straight to the live engine (the OSC path is measured by :func:`control_latency`), once
    the engine has finished decoding its presets after start.
    Returns ``{"max_voices", "tried": {count: underflows}}``.
    """
    from synth.control.messages import NoteOn, Panic

    # Steady state: after start the decode worker spends a few seconds decoding the presets and macro
    # slopes (a core's worth of work on a small machine), which is not what a held chord costs.
    _wait_for_prefetch(live)
    spec = live.engine.control_spec
    lo, hi = spec.note_range
    notes = list(range(lo, hi + 1))
    best = 0
    tried = {}
    for count in counts:
        if count > len(notes) or count > live.engine.pool.max_voices:
            break
        chord = notes[:: max(1, len(notes) // count)][:count]
        if len(chord) < count:
            break
        for note in chord:
            live.submit(NoteOn(note, 100))
        time.sleep(settle)
        u0 = live.ring.underflows
        time.sleep(hold)
        under = live.ring.underflows - u0
        playing = live.engine.pool.playing_count()
        tried[count] = {"underflows": int(under), "playing": int(playing)}
        live.submit(Panic())
        time.sleep(0.4)
        if under or playing < count:
            break
        best = count
    return {"max_voices": best, "tried": tried}
