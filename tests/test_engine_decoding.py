"""Latent -> timbre decoding: the timbre cache, the live worker's coalescing, cache answers that supersede a
decode in flight, and preset prefetching, with the real synthetic bundle's onnxruntime decoder."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from engine_fixtures import synthetic_bundle, wait_until

from synth.control.messages import NoteOn, SetPreset
from synth.engine import Engine, EngineOptions, LiveDecoding, OfflineDecoding
from synth.engine.decoding import (
    INLINE_AFTER_DECODES,
    DecodeWorker,
    Decoding,
    InlineDecoding,
    TimbreCache,
    decode_timbre,
)
from synth.engine.stats import TimbreStats

RATE = 48000


class CountingDecoder:
    """The bundle's real decoder, counting calls and the threads that made them; ``gate`` (when set) holds each
    decode until released; ``delay`` (s) makes each decode at least that slow."""

    def __init__(self, decoder, gate: threading.Event | None = None, delay: float = 0.0) -> None:
        self._decoder = decoder
        self.provider = decoder.provider
        self.calls = 0
        self.threads: list[int] = []
        self.gate = gate
        self.delay = delay

    def decode(self, latents):
        self.calls += 1
        self.threads.append(threading.get_ident())
        if self.gate is not None:
            self.gate.wait(10.0)
        if self.delay:
            time.sleep(self.delay)
        return self._decoder.decode(latents)


@pytest.fixture(scope="module")
def bundle():
    return synthetic_bundle()


def _latent(bundle, name: str) -> np.ndarray:
    return np.asarray(bundle.presets[name].latent, dtype=np.float32)


def test_cache_drops_the_least_recently_used(bundle):
    cache = TimbreCache(capacity=2)
    a, b, c = (cache.key(_latent(bundle, n)) for n in ("bright", "dark", "soft"))
    timbre = object()
    cache.put(a, timbre)
    cache.put(b, timbre)
    assert cache.get(a) is timbre  # a is now the most recent
    cache.put(c, timbre)
    assert a in cache and c in cache and b not in cache
    assert cache.hits == 1


def test_both_strategies_implement_one_interface_and_each_factory_starts_its_own(bundle):
    cache = TimbreCache()
    decoder = bundle.decoder(threads=1)
    offline = OfflineDecoding().start(decoder, params=bundle.params, cache=cache)
    live = LiveDecoding(inline_ms=0).start(decoder, params=bundle.params, cache=cache)
    try:
        assert isinstance(offline, InlineDecoding) and isinstance(live, DecodeWorker)
        for decoding in (offline, live):
            assert isinstance(decoding, Decoding) and decoding.cache is cache and decoding.idle()
        assert (offline.live, live.live, live.inline_ms) == (False, True, 0.0)
        # The sessions' threads each asks the engine for: onnxruntime's default offline, one live.
        assert (OfflineDecoding().threads, OfflineDecoding().tiles) == (None, False)
        assert (LiveDecoding().threads, LiveDecoding().tiles) == (1, True)
    finally:
        live.close()


class RecordingFactory:
    """A decoding factory of the test's own: inline decoding, each strategy it started kept."""

    threads = None
    tiles = False
    latent_share = None

    def __init__(self) -> None:
        self.started: list[InlineDecoding] = []

    def start(self, decoder, *, params, cache, tile_decoder=None, tiles=None) -> InlineDecoding:
        self.started.append(InlineDecoding(decoder, params=params, cache=cache))
        return self.started[-1]


def test_the_engine_decodes_through_the_strategy_it_is_handed(bundle):
    factory = RecordingFactory()
    engine = Engine(bundle, EngineOptions(methods=("sinusoidal",), max_voices=1, initial_preset="bright"),
                    decoding=factory)
    engine.schedule(SetPreset("dark"), 0)
    engine.render(2000)
    assert len(factory.started) == 1 and factory.started[0].requested == 1
    stats = engine.stats().timbres
    assert isinstance(stats, TimbreStats) and stats.latent_changes == 1
    assert (stats.decodes_inline, stats.inline_decodes, stats.tiles_decoded, stats.coalesced) == (False, 0, 0, 0)


def test_inline_decoding_answers_a_repeated_latent_from_the_cache_with_the_same_timbre(bundle):
    decoder = CountingDecoder(bundle.decoder(threads=1))
    decoding = InlineDecoding(decoder, params=bundle.params)
    first = decoding.request(_latent(bundle, "dark"), ("t1",))
    second = decoding.request(_latent(bundle, "dark"), ("t2",))
    assert decoder.calls == 1
    assert second.timbre is first.timbre and second.tags == ("t2",) and second.decode_ms == 0.0


def test_worker_answers_a_cached_latent_at_once_and_drops_the_older_decode_in_flight(bundle):
    gate = threading.Event()
    decoder = CountingDecoder(bundle.decoder(threads=1), gate=gate)
    worker = DecodeWorker(decoder, params=bundle.params, inline_ms=0)
    try:
        gate.set()
        assert worker.request(_latent(bundle, "dark"), ("dark",)) is None  # not cached: queued
        wait_until(worker.idle)
        decoded = worker.collect()
        assert decoded is not None and decoded.timbre is not None and decoded.tags == ("dark",)

        gate.clear()  # the next decode hangs until released
        assert worker.request(_latent(bundle, "soft"), ("soft",)) is None
        wait_until(lambda: decoder.calls == 2)
        answered = worker.request(_latent(bundle, "dark"), ("dark again",))
        assert answered is not None and answered.timbre is decoded.timbre
        gate.set()
        wait_until(worker.idle)
        stale = worker.collect()
        # The soft decode landed after the newer (cached) dark: it must not replace it, and it is no error.
        assert stale is not None and stale.timbre is None and stale.error == "" and stale.tags == ("soft",)
        # ... but it is kept for later.
        assert worker.request(_latent(bundle, "soft"), ()) is not None
    finally:
        gate.set()
        worker.close()


def test_worker_coalesces_queued_requests_to_the_newest(bundle):
    gate = threading.Event()
    decoder = CountingDecoder(bundle.decoder(threads=1), gate=gate)
    worker = DecodeWorker(decoder, params=bundle.params, inline_ms=0)
    try:
        worker.request(_latent(bundle, "bright"), ("a",))
        wait_until(lambda: decoder.calls == 1)
        worker.request(_latent(bundle, "dark"), ("b",))
        worker.request(_latent(bundle, "soft"), ("c",))
        gate.set()
        wait_until(lambda: worker.idle() and decoder.calls == 2)
        result = worker.collect()
        assert worker.coalesced == 1 and result.tags == ("a", "b", "c")
        assert result.timbre is worker.request(_latent(bundle, "soft"), ()).timbre
    finally:
        gate.set()
        worker.close()


class TimedDecoder(CountingDecoder):
    """Records each decode's (start, end) on the monotonic clock."""

    def __init__(self, decoder, delay: float) -> None:
        super().__init__(decoder, delay=delay)
        self.spans: list[tuple[float, float]] = []

    def decode(self, latents):
        start = time.monotonic()
        try:
            return super().decode(latents)
        finally:
            self.spans.append((start, time.monotonic()))


def test_a_stream_of_changes_to_a_slow_decoder_is_decoded_at_half_duty(bundle):
    """The worker runs at real-time priority: after each decode longer than REST_AFTER_MS it rests as long as
    the decode took, so a stream of changes never holds its core without a break (the stream is coalesced to
    the newest value instead)."""
    decoder = TimedDecoder(bundle.decoder(threads=1), delay=0.03)
    worker = DecodeWorker(decoder, params=bundle.params, inline_ms=0)
    rng = np.random.default_rng(0)
    try:
        latent = _latent(bundle, "bright")
        worker.request(latent, ())  # onnxruntime's first run is slow: not part of the stream
        wait_until(lambda: worker.idle() and len(decoder.spans) == 1)
        time.sleep(0.1)
        for _ in range(300):  # a fader: a new value every millisecond or more (a loaded machine sleeps longer)
            worker.request(latent + rng.normal(0, 0.01, latent.shape).astype(np.float32), ())
            time.sleep(0.001)
        wait_until(lambda: worker.idle(), timeout=30.0)
        spans = decoder.spans[1:]
        assert len(spans) >= 3 and worker.coalesced > 100
        for (start, end), (following, _) in zip(spans, spans[1:], strict=False):  # consecutive pairs
            assert following - end >= 0.9 * (end - start)  # rested at least as long as it worked
    finally:
        worker.close()


def test_live_engine_prefetches_presets_so_a_preset_switch_lands_at_the_next_frame(bundle):
    engine = Engine(bundle, EngineOptions(output_rate=RATE, methods=("sinusoidal",), max_voices=2),
                    decoding=LiveDecoding())
    try:
        wait_until(engine.timbres.presets_decoded)
        cache = engine.timbres.cache
        engine.schedule(NoteOn(60, 100), 0)
        engine.render(2000)
        before = engine.timbres.current
        engine.schedule(SetPreset("dark"), engine.position)
        engine.render(engine.max_frame_samples)  # one frame: no waiting for a decode
        assert engine.timbres.current is not before and engine.timbres.latent_changes == 1
        assert engine.timbres.current is cache.get(cache.key(_latent(bundle, "dark")))
        assert engine.stats().timbres.cache_hits >= 1
    finally:
        engine.close()


def first_order(known, steps):
    """What an estimate must be, written out here and not taken from the engine: the known timbre plus each
    weight times its timbre, part by part, clipped to the unit range."""
    from synth.engine.timbre import Timbre

    parts = {}
    for name in ("held", "sustain", "release"):
        total = np.array(getattr(known, name), dtype=np.float64)
        for weight, timbre in steps:
            total = total + weight * np.asarray(getattr(timbre, name), dtype=np.float64)
        parts[name] = np.clip(total, 0.0, 1.0).astype(np.float32)
    return Timbre(**parts)


def _gated_live_engine(bundle):
    """A live engine whose decoder can be held (``gate.clear()``) once every preset is decoded."""
    gate = threading.Event()
    gate.set()
    decoder = CountingDecoder(bundle.decoder(threads=1), gate=gate)
    # Decodes on the worker, never inline (the path of a conv2d decoder, 12-60 ms a note), so the gate holds it;
    # every change asked for at its frame (these tests are about what each one sounds as, not the pacing of a
    # stream of them: test_a_stream_of_latent_changes_is_paced_to_its_cost_and_ends_on_the_newest).
    engine = Engine(bundle, EngineOptions(output_rate=RATE, methods=("sinusoidal",), max_voices=2),
                    decoding=LiveDecoding(inline_ms=0, latent_share=None), decoder=decoder)
    wait_until(engine.timbres.presets_decoded)
    wait_until(engine.timbres.decoding_idle)
    return engine, gate


def test_a_morph_sounds_an_estimate_at_the_next_frame_then_the_exact_decode(bundle):
    from synth.control.messages import Morph

    engine, gate = _gated_live_engine(bundle)
    try:
        cache = engine.timbres.cache
        first = next(iter(bundle.presets))
        start = cache.peek(cache.key(_latent(bundle, first)))
        assert engine.timbres.current is start
        engine.schedule(NoteOn(60, 100), 0)
        engine.render(2000)
        gate.clear()  # the decoder is now busy for as long as the test wants
        engine.schedule(Morph("bright", "dark", 0.25), engine.position, tag="m1")
        at = engine.next_frame_sample
        engine.render(engine.max_frame_samples)
        # The preset weights moved from one-hot(first) to 0.75 bright + 0.25 dark.
        weights = {name: 0.0 for name in bundle.presets}
        weights[first] -= 1.0
        weights["bright"] += 0.75
        weights["dark"] += 0.25
        steps = [(w, cache.peek(cache.key(_latent(bundle, n)))) for n, w in weights.items() if abs(w) > 1e-9]
        expected = first_order(start, steps)
        for part in ("held", "sustain", "release"):
            np.testing.assert_allclose(getattr(engine.timbres.current, part), getattr(expected, part), atol=1e-6)
        assert engine.timbres.timbre_estimates == 1 and list(engine.applied) == [("m1", at)] and not engine.applied_exact

        gate.set()
        wait_until(engine.timbres.decoding_idle)
        engine.render(engine.max_frame_samples)
        morph_latent = (0.75 * _latent(bundle, "bright").astype(np.float64)
                        + 0.25 * _latent(bundle, "dark").astype(np.float64)).astype(np.float32)
        assert engine.timbres.current is cache.peek(cache.key(morph_latent))
        # The change sounded once (at the estimate); its exact decode is recorded separately, later.
        assert list(engine.applied) == [("m1", at)]
        assert len(engine.applied_exact) == 1 and engine.applied_exact[0][0] == "m1"
        assert engine.applied_exact[0][1] > at
    finally:
        gate.set()
        engine.close()


def test_a_macro_move_sounds_an_estimate_from_the_macro_slope_at_the_mean(bundle):
    from synth.control.messages import SetLatentValue, SetMacro

    engine, gate = _gated_live_engine(bundle)
    try:
        wait_until(engine.timbres.estimates_ready)
        cache = engine.timbres.cache
        mean = np.asarray(bundle.macros.mean, dtype=np.float64).reshape(-1)
        step = bundle.macros.stds[2] * np.asarray(bundle.macros.components[2], dtype=np.float64).reshape(-1)
        shape = bundle.latent_shape

        def decoded(z):
            return cache.peek(cache.key(z.reshape(shape).astype(np.float32)))

        # After an arbitrary base (no preset weights), a macro move still has a slope to step along.
        engine.schedule(SetLatentValue(5, 0.3), engine.position)
        engine.render(engine.max_frame_samples)
        wait_until(engine.timbres.decoding_idle)
        engine.render(engine.max_frame_samples)
        start = engine.timbres.current
        gate.clear()
        engine.schedule(SetMacro(2, -1.5), engine.position, tag="k")
        engine.render(engine.max_frame_samples)
        expected = first_order(start, [(-1.5, decoded(mean + step)), (1.5, decoded(mean))])
        for part in ("held", "sustain", "release"):
            np.testing.assert_allclose(getattr(engine.timbres.current, part), getattr(expected, part), atol=1e-6)
        assert engine.timbres.timbre_estimates == 1 and [t for t, _ in engine.applied][-1] == "k"
    finally:
        gate.set()
        engine.close()


def _settle(engine, command) -> None:
    """Apply ``command`` and let its exact decode sound."""
    engine.schedule(command, engine.position)
    engine.render(engine.max_frame_samples)
    wait_until(engine.timbres.decoding_idle)
    engine.render(engine.max_frame_samples)


def test_a_fader_on_one_latent_coordinate_sounds_at_the_next_frame_once_two_points_are_decoded(bundle):
    from synth.control.messages import SetLatentValue

    engine, gate = _gated_live_engine(bundle)
    try:
        cache = engine.timbres.cache
        engine.schedule(NoteOn(60, 100), 0)
        _settle(engine, SetLatentValue(3, 0.1))
        _settle(engine, SetLatentValue(3, 0.3))
        z = engine._control.latent()  # noqa: SLF001
        t_a = cache.peek(cache.key(np.where(np.arange(z.size).reshape(z.shape) == 3, np.float32(0.1), z)))
        t_b = engine.timbres.current
        assert t_a is not None and t_a is not t_b
        # (0.3 was already estimated along the preset's own value and 0.1 while it decoded.)
        estimates = engine.timbres.timbre_estimates
        gate.clear()
        # 0.6 lies on the line through the two decoded points, 1.5 steps past the newest.
        engine.schedule(SetLatentValue(3, 0.6), engine.position, tag="f")
        at = engine.next_frame_sample
        engine.render(engine.max_frame_samples)
        expected = first_order(t_b, [(-1.5, t_a), (1.5, t_b)])
        for part in ("held", "sustain", "release"):
            np.testing.assert_allclose(getattr(engine.timbres.current, part), getattr(expected, part), atol=1e-6)
        assert engine.timbres.timbre_estimates == estimates + 1
        assert [x for x in engine.applied if x[0] == "f"] == [("f", at)]

        # Another coordinate leaves the line: that change waits for the decoder.
        engine.schedule(SetLatentValue(4, 0.5), engine.position, tag="g")
        engine.render(4 * engine.max_frame_samples)
        assert engine.timbres.timbre_estimates == estimates + 1 and "g" not in [x[0] for x in engine.applied]
        gate.set()
        wait_until(engine.timbres.decoding_idle)
        engine.render(engine.max_frame_samples)
        assert "g" in [x[0] for x in engine.applied]
        assert [x[0] for x in engine.applied_exact][-1] == "g"
    finally:
        gate.set()
        engine.close()


@pytest.mark.parametrize("change", ["latent_value", "morph_after_latent", "off"])
def test_what_cannot_be_estimated_waits_for_the_decoder(bundle, change):
    from synth.control.messages import Morph, SetLatentValue

    engine, gate = _gated_live_engine(bundle)
    try:
        if change == "off":
            engine.timbres.estimate_timbres = False
        if change == "morph_after_latent":  # no preset weights to step from
            engine.schedule(SetLatentValue(1, 0.2), engine.position)
            engine.render(engine.max_frame_samples)
            wait_until(engine.timbres.decoding_idle)
        engine.render(2000)
        before = engine.timbres.current
        gate.clear()
        command = {"latent_value": SetLatentValue(3, 0.7), "morph_after_latent": Morph("bright", "dark", 0.5),
                   "off": Morph("bright", "dark", 0.5)}[change]
        engine.applied.clear()
        engine.schedule(command, engine.position, tag="c")
        engine.render(4 * engine.max_frame_samples)
        assert engine.timbres.current is before and engine.timbres.timbre_estimates == 0 and not engine.applied
        gate.set()
        wait_until(engine.timbres.decoding_idle)
        engine.render(engine.max_frame_samples)
        assert engine.timbres.current is not before and [t for t, _ in engine.applied] == ["c"]
    finally:
        gate.set()
        engine.close()


def test_pinned_timbres_outlive_any_number_of_new_ones(bundle):
    cache = TimbreCache(capacity=2)
    timbres = {name: object() for name in ("bright", "dark", "soft")}
    cache.put(b"pinned", timbres["bright"], pin=True)
    for i in range(5):
        cache.put(bytes([i]), timbres["dark"])
    assert cache.peek(b"pinned") is timbres["bright"] and cache.is_pinned(b"pinned")
    assert len(cache) == 3 and cache.peek(bytes([0])) is None and cache.peek(bytes([4])) is timbres["dark"]
    cache.put(bytes([4]), timbres["soft"], pin=True)  # pinning a cached entry moves it over
    assert cache.is_pinned(bytes([4])) and len(cache) == 3


def _random_latents(bundle, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.5, bundle.latent_shape).astype(np.float32) for _ in range(n)]


def test_a_decoder_measured_fast_decodes_in_the_requesting_thread_exactly(bundle):
    """Once the worker has measured enough decodes at most inline_ms, a request is decoded by the caller
    (the synthesis thread) and answered at once with the exact timbre; before that it is queued."""
    decoder = CountingDecoder(bundle.decoder(threads=1))
    worker = DecodeWorker(decoder, params=bundle.params, inline_ms=1e3)  # any real decode is this fast
    try:
        first = _random_latents(bundle, 1, seed=1)[0]
        assert not worker.decodes_inline() and worker.request(first, ("queued",)) is None
        wait_until(worker.idle)
        assert worker.collect().tags == ("queued",)
        worker.prefetch(_random_latents(bundle, INLINE_AFTER_DECODES, seed=2))
        # Every prefetch decode measured: idle() does not count prefetching, and the speed is judged after the
        # 7th prefetch decode, so the 8th may still be running on the worker when it says "inline".
        wait_until(lambda: len(worker.decode_ms) == 1 + INLINE_AFTER_DECODES and worker.idle())
        assert worker.decodes_inline()
        jump = _random_latents(bundle, 1, seed=3)[0]
        result = worker.request(jump, ("jump",))
        assert result is not None and result.tags == ("jump",) and result.error == ""
        assert decoder.threads[-1] == threading.get_ident() and worker.inline_decodes == 1
        expected, _, _ = decode_timbre(bundle.decoder(threads=1), jump, params=bundle.params)
        for part in ("held", "sustain", "release"):
            np.testing.assert_array_equal(getattr(result.timbre, part), getattr(expected, part))
        assert worker.request(jump, ()).timbre is result.timbre  # and it is cached like any decode
    finally:
        worker.close()


def test_a_decoder_slower_than_the_bound_stays_on_the_worker(bundle):
    decoder = CountingDecoder(bundle.decoder(threads=1), delay=0.005)  # every decode at least 5 ms
    worker = DecodeWorker(decoder, params=bundle.params, inline_ms=2.0)
    try:
        worker.prefetch(_random_latents(bundle, INLINE_AFTER_DECODES, seed=2))
        wait_until(lambda: len(worker.decode_ms) >= INLINE_AFTER_DECODES and worker.idle())
        assert not worker.decodes_inline()
        assert worker.request(_random_latents(bundle, 1, seed=3)[0], ("jump",)) is None
        wait_until(worker.idle)
        assert worker.collect().tags == ("jump",) and decoder.threads[-1] != threading.get_ident()
        assert worker.inline_decodes == 0
    finally:
        worker.close()


def test_with_a_fast_decoder_a_latent_jump_sounds_exactly_at_the_next_frame(bundle):
    """The live engine's latency path for a fast decoder: an arbitrary latent value (nothing to estimate it
    from) sounds exactly, at the frame after the command, as an offline render would place it."""
    from synth.control.messages import SetLatentValue

    engine = Engine(bundle, EngineOptions(output_rate=RATE, methods=("sinusoidal",), max_voices=2,
                                          initial_preset="dark"), decoding=LiveDecoding(inline_ms=1e3))
    try:
        wait_until(lambda: engine.timbres.presets_decoded() and engine.timbres.estimates_ready() and engine.timbres.decoding_idle())
        assert engine.stats().timbres.decodes_inline
        engine.schedule(NoteOn(60, 100), 0)
        engine.render(2000)
        engine.schedule(SetLatentValue(5, 0.9), engine.position, tag="jump")
        at = engine.next_frame_sample
        engine.render(engine.max_frame_samples)
        latent = _latent(bundle, "dark").copy()
        latent.reshape(-1)[5] = 0.9
        expected, _, _ = decode_timbre(bundle.decoder(threads=1), latent, params=bundle.params)
        np.testing.assert_array_equal(engine.timbres.current.held, expected.held)
        assert list(engine.applied) == [("jump", at)] and list(engine.applied_exact) == [("jump", at)]
        assert engine.timbres.timbre_estimates == 0 and engine.stats().timbres.inline_decodes == 1
    finally:
        engine.close()


# ----------------------------------------------------------------------------------------- pacing (issue 30)
def test_the_pacer_lets_a_change_go_once_the_last_ones_cost_is_paid_back_at_its_share():
    from synth.engine.pacing import LatentPacer
    from synth.errors import ParameterError

    pacer = LatentPacer(share=0.1, frame_seconds=0.01, max_wait_seconds=0.1, burst_seconds=0.0)
    assert pacer.ready(frame=0)  # the first change after a pause goes at once
    pacer.spent(frame=0, seconds=0.002)  # 2 ms at a tenth of 10 ms frames: two frames
    assert [pacer.ready(frame=f) for f in (1, 2)] == [False, True] and pacer.waited == 1
    pacer.spent(frame=2, seconds=0.0005)  # half a frame: the next frame
    pacer.spent(frame=2, seconds=0.0005)  # what taking a worker's answer cost adds up
    assert not pacer.ready(frame=2) and pacer.ready(frame=3)
    pacer.spent(frame=3, seconds=5.0)  # one slow change (a collection counted in it) holds the next 0.1 s at most
    assert not pacer.ready(frame=12) and pacer.ready(frame=13)
    pacer.spent(frame=40, seconds=0.0)
    assert pacer.ready(frame=40)
    for bad in ({"share": 0.0, "frame_seconds": 0.01}, {"share": 1.5, "frame_seconds": 0.01},
                {"share": True, "frame_seconds": 0.01}, {"share": 0.1, "frame_seconds": -1.0},
                {"share": 0.1, "frame_seconds": 0.01, "max_wait_seconds": float("nan")},
                {"share": 0.1, "frame_seconds": 0.01, "burst_seconds": -1.0}):
        with pytest.raises(ParameterError):
            LatentPacer(**bad)


def test_a_pause_saves_up_a_burst_and_a_stream_is_still_paced_to_its_share():
    """A performer's few quick moves after a pause go at once (the share of burst_seconds of audio saved up);
    a stream that outlasts the credit is paced to the share, as without it."""
    from synth.engine.pacing import LatentPacer

    pacer = LatentPacer(share=0.1, frame_seconds=0.01, max_wait_seconds=1.0, burst_seconds=0.1)  # 1 ms credit
    frame, went = 100, []
    for _ in range(40):  # a change asked for every frame, each costing 5 ms (five frames of the share)
        if pacer.ready(frame=frame):
            went.append(frame)
            pacer.spent(frame=frame, seconds=0.005)
        frame += 1
    assert went[:3] == [100, 101, 102]  # the credit (10 frames' share) pays for the first ones at once
    gaps = np.diff(went[5:])
    assert len(gaps) and np.all(gaps == 5)  # then one every 5 frames: 5 ms paid back at 1 ms a frame


def test_a_stream_of_latent_changes_is_paced_to_its_cost_and_ends_on_the_newest(bundle):
    """A change every frame (a fader sent at 1 kHz, a flood of /synth/latent/set) once made a decode, a timbre
    and a crossfade in the synthesis thread at every frame; live, they are paced to what they cost, and none is
    lost: each one's tag is applied, and the newest value sounds, exactly, once the stream stops."""
    from synth.control.messages import SetLatentValue

    # A share so small that any cost holds the next change for the longest wait (0.1 s, 13 frames): the
    # pacing is then the same on any machine.
    engine = Engine(bundle, EngineOptions(output_rate=RATE, methods=("sinusoidal",), max_voices=2,
                                          initial_preset="dark"),
                    decoding=LiveDecoding(inline_ms=1e3, latent_share=1e-9))
    try:
        timbres = engine.timbres
        wait_until(lambda: timbres.presets_decoded() and timbres.estimates_ready() and timbres.decoding_idle())
        engine.schedule(NoteOn(60, 100), 0)
        engine.render(engine.max_frame_samples)
        changes = timbres.latent_changes
        values = np.linspace(0.05, 0.8, 40)
        for i, v in enumerate(values):  # one change a frame for 40 frames
            engine.schedule(SetLatentValue(5, float(v)), engine.position, tag=i)
            engine.render(engine.frame_start(engine.frame + 1) - engine.position)
        asked = timbres.latent_changes - changes
        assert 3 <= asked <= 5, asked  # frames 0, 13, 26, 39 of the 40 (each paced 13 frames)
        engine.render(20 * engine.max_frame_samples)  # the stream has stopped: the newest is asked for
        latent = _latent(bundle, "dark").copy()
        latent.reshape(-1)[5] = np.float32(values[-1])
        expected, _, _ = decode_timbre(bundle.decoder(threads=1), latent, params=bundle.params)
        np.testing.assert_array_equal(timbres.current.held, expected.held)
        np.testing.assert_array_equal(engine.requested_latent, latent)
        assert sorted(t for t, _ in engine.applied) == list(range(40))  # every command applied, none dropped
    finally:
        engine.close()

    offline = Engine(bundle, EngineOptions(output_rate=RATE, methods=("sinusoidal",), max_voices=2,
                                           initial_preset="dark"), decoding=OfflineDecoding())
    for v in values:  # offline every change is exact at its own frame, as before
        offline.schedule(SetLatentValue(5, float(v)), offline.position)
        offline.render(offline.frame_start(offline.frame + 1) - offline.position)
    assert offline.timbres.latent_changes == 40
