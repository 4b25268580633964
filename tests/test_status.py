"""The figures as typed objects (synth/engine/stats.py, synth/host/stats.py) and the ``/synth/status`` wire
table built from them (synth/control/status.py), without an engine: a figure renamed on either side without the
other following fails here, before any sender or page reads a key that is gone."""

from __future__ import annotations

import dataclasses
import json
import typing
from types import SimpleNamespace

import pytest

from synth.control.router import ControlRouter
from synth.control.spec import ControlSpec
from synth.control.status import STATUS_KEYS, Status
from synth.engine.stats import EngineStats, TimbreStats
from synth.host.stats import LiveStats
from synth.web.messages import status_text

# The keys of /synth/status as they go out, in order: what senders, the page (synth/web/static/app.js) and the
# soak's monitor read. Written out here, not taken from the code, so that renaming a field of Status (or of a
# figure it is built from, with the router following the rename into the wire) fails until this line agrees.
WIRE_KEYS = (
    "voices", "underflows", "latency_ms", "decode_ms", "method", "provider", "preset", "messages", "errors",
    "dropped", "decode_errors", "notes", "underflows_startup", "underflows_idle", "underflows_playing", "buffer_ms",
    "throttled",
)


def distinct(cls, counter=None):
    """An instance of the stats dataclass ``cls`` whose every figure differs from every other (nested ones
    included), so a figure read from the wrong field shows."""
    counter = counter if counter is not None else iter(range(1, 1000))
    values = {}
    for name, kind in typing.get_type_hints(cls).items():
        if dataclasses.is_dataclass(kind):
            values[name] = distinct(kind, counter)
        elif kind is bool:
            values[name] = True
        elif kind is int:
            values[name] = next(counter)
        elif kind is float:
            values[name] = next(counter) + 0.25
        elif kind is str:
            values[name] = f"text {next(counter)}"
        else:
            raise TypeError(f"{cls.__name__}.{name}: a figure is a bool, int, float, str or stats object, "
                            f"not {kind!r}")
    return cls(**values)


class _Live:
    """What the router asks of a live engine for a status: its figures, its controls and its decoder."""

    def __init__(self, stats: LiveStats) -> None:
        self._stats = stats
        self.engine = SimpleNamespace(
            controls=SimpleNamespace(method="griffinlim", preset="dark"), provider="CPUExecutionProvider",
            control_spec=ControlSpec(base_pitch=60, latent_shape=(8,), presets=("dark",), macro_count=0))

    def stats(self) -> LiveStats:
        return self._stats


@pytest.fixture
def router_and_stats():
    stats = distinct(LiveStats)
    router = ControlRouter(_Live(stats))
    router.messages, router.errors, router.dropped, router.throttled = 901, 902, 903, 904
    return router, stats


def test_the_status_keys_on_the_wire_stay_as_senders_read_them():
    assert STATUS_KEYS == WIRE_KEYS
    assert tuple(f.name for f in dataclasses.fields(Status)) == WIRE_KEYS


def test_every_status_figure_is_read_from_its_source(router_and_stats):
    router, s = router_and_stats
    assert dataclasses.asdict(router.status()) == {
        "voices": s.engine.voices, "underflows": s.underflows, "latency_ms": s.latency_ms,
        "decode_ms": s.engine.timbres.decode_ms, "method": "griffinlim", "provider": "CPUExecutionProvider",
        "preset": "dark", "messages": 901, "errors": 902, "dropped": 903,
        "decode_errors": s.engine.timbres.decode_errors, "notes": s.engine.notes,
        "underflows_startup": s.underflows_startup, "underflows_idle": s.underflows_idle,
        "underflows_playing": s.underflows_playing, "buffer_ms": s.buffer_ms, "throttled": 904,
    }


def test_the_osc_reply_and_the_pages_status_carry_the_same_pairs(router_and_stats):
    router, _ = router_and_stats
    reply = router.dispatch("/synth/status", [])
    status = router.status()
    assert reply.address == "/synth/status"
    assert reply.args[0::2] == WIRE_KEYS and reply.args[1::2] == tuple(getattr(status, k) for k in WIRE_KEYS)
    page = json.loads(status_text(status, {"output_peak": 0.5, "clients": 1}))
    assert page == {"address": "/synth/status", "args": [*reply.args, "output_peak", 0.5, "clients", 1]}


def test_a_figure_not_finite_yet_goes_out_as_zero(router_and_stats):
    router, s = router_and_stats
    router.live._stats = dataclasses.replace(s, latency_ms=float("nan"), buffer_ms=float("inf"))
    pairs = dict(zip(*[iter(router.dispatch("/synth/status", []).args)] * 2, strict=True))
    assert pairs["latency_ms"] == 0.0 and pairs["buffer_ms"] == 0.0
    page = json.loads(status_text(router.status(), {}))["args"]
    assert page[page.index("latency_ms") + 1] == 0.0 and page[page.index("buffer_ms") + 1] == 0.0


@pytest.mark.parametrize("cls", [TimbreStats, EngineStats, LiveStats, Status])
def test_stats_are_frozen_and_every_field_is_typed_and_documented(cls):
    value = distinct(cls)
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, 0)
    for f in dataclasses.fields(cls):
        assert f.name in cls.__doc__, f"{cls.__name__}.{f.name} has no line in the docstring"
