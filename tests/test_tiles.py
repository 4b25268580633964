"""Windowed decoding: where a window of latent columns is exact (synth.bundle.tiles), the tile decoder that
export proves exact at every window position (export.tiles), and the live engine sounding a tile of an
arbitrary latent jump before the whole note's decode (synth.engine.timbre_pipeline).

The model is a real one: the paper's no_dense architecture (clipped output), shrunk to 4/8/16 filters,
trained one epoch on 64-mel x 512-frame synthetic notes, so its latent has the default's 8 time columns.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import wait_until

from synth.bundle.tiles import TileLayout, tile_layout_from_metadata
from synth.errors import BundleError
from synth.spectrogram import SpectrogramParams

LAYOUT = TileLayout(columns=3, total_columns=8, frames_per_column=64, reach_frames=27)


# ---------------------------------------------------------------------- the layout (no model)
def test_a_window_is_exact_inside_its_edges_and_up_to_the_note_edges():
    assert LAYOUT.exact_span(0) == (0, 192 - 27)
    assert LAYOUT.exact_span(2) == (128 + 27, 320 - 27)
    assert LAYOUT.exact_span(5) == (320 + 27, 512)
    assert list(LAYOUT.starts) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(BundleError, match="window start 6 outside 0..5"):
        LAYOUT.exact_span(6)


def test_every_short_span_of_the_note_fits_a_window_and_a_long_one_does_not():
    for first in range(0, 512 - 24):
        start = LAYOUT.window_for(first, first + 24)
        assert start is not None
        lo, hi = LAYOUT.exact_span(start)
        assert lo <= first and first + 24 <= hi
    assert LAYOUT.window_for(336, 376) == 4  # the default's sustain frames: the window with most room
    assert LAYOUT.window_for(0, 300) is None


def test_bad_tile_descriptions_are_refused_with_the_reason():
    with pytest.raises(BundleError, match="leave no exact frame inside a reach of 40"):
        TileLayout(columns=1, total_columns=8, frames_per_column=64, reach_frames=40)
    with pytest.raises(BundleError, match="not smaller than the note's 8"):
        TileLayout(columns=8, total_columns=8, frames_per_column=64, reach_frames=0)
    good = {"decoder": "decoder_tile.onnx", "columns": 3, "frames_per_column": 64, "reach_frames": 27}
    assert tile_layout_from_metadata(good, latent_shape=(2, 8, 128), frames=512, source="b.json") == LAYOUT
    with pytest.raises(BundleError, match=r"b.json: 'tiles' lacks \['reach_frames'\]"):
        tile_layout_from_metadata({k: v for k, v in good.items() if k != "reach_frames"}, latent_shape=(2, 8, 128),
                                  frames=512, source="b.json")
    with pytest.raises(BundleError, match="do not make the contract's 256"):
        tile_layout_from_metadata(good, latent_shape=(2, 8, 128), frames=256, source="b.json")
    with pytest.raises(BundleError, match="columns must be a positive integer"):
        tile_layout_from_metadata(dict(good, columns="3"), latent_shape=(2, 8, 128), frames=512, source="b.json")


# ---------------------------------------------------------------------- a real model with tiles
PARAMS = SpectrogramParams(n_mels=64, frames=512)


@pytest.fixture(scope="module")
def tiled(tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    training_fixtures = pytest.importorskip("training_fixtures")
    from test_export_presets import rows_of

    from export.bundle_writer import export_run
    from training.fit import FitOptions, fit

    root = tmp_path_factory.mktemp("tiles")
    x = np.clip(training_fixtures.synthetic_notes(16, params=PARAMS) * 1.2 + 0.1, 0, 1).astype(np.float32)
    feats = training_fixtures.write_features(root / "features", x, params=PARAMS)
    (feats / "index.json").write_text(json.dumps({"rows": rows_of(len(x))}))
    config = training_fixtures.small_config("clip", max_epochs=1)
    run = fit(features=feats, config=config, out=root / "run", options=FitOptions(verbose=0))
    return export_run(run, root / "bundle", log=lambda line: None)


def test_export_writes_a_hash_checked_tile_decoder(tiled):
    from synth.bundle import load_bundle

    bundle = load_bundle(tiled)
    meta = json.loads((tiled / "bundle.json").read_text())
    assert meta["tiles"]["decoder"] == "decoder_tile.onnx" and "decoder_tile.onnx" in meta["sha256"]
    assert bundle.tiles.columns == 3 and bundle.tiles.total_columns == 8 and bundle.tiles.frames_per_column == 64
    assert meta["tiles"]["parity"]["windows"] == 6 and meta["tiles"]["parity"]["max_abs"] <= 1e-5
    # A corrupted tile decoder is refused like any other graph.
    data = bytearray((tiled / "decoder_tile.onnx").read_bytes())
    copy = tiled.parent / "corrupt"
    import shutil

    shutil.copytree(tiled, copy)
    data[-1] ^= 0xFF
    (copy / "decoder_tile.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="decoder_tile.onnx: SHA-256 mismatch"):
        load_bundle(copy)


def test_a_bundle_without_tiles_still_loads_and_plays_whole_notes(tiled, tmp_path):
    import shutil

    from synth.bundle import load_bundle
    from synth.control.messages import NoteOn
    from synth.engine import Engine, EngineOptions, LiveDecoding

    old = tmp_path / "old"
    shutil.copytree(tiled, old)
    meta = json.loads((old / "bundle.json").read_text())
    del meta["tiles"], meta["sha256"]["decoder_tile.onnx"]
    (old / "bundle.json").write_text(json.dumps(meta))
    (old / "decoder_tile.onnx").unlink()
    bundle = load_bundle(old)
    assert bundle.tiles is None and bundle.tile_decoder() is None
    with Engine(bundle, EngineOptions(methods=("sinusoidal",), max_voices=2), decoding=LiveDecoding()) as engine:
        engine.schedule(NoteOn(60, 100), 0)
        assert np.max(np.abs(engine.render(8000))) > 0


def test_every_tile_position_decodes_its_span_exactly_like_the_whole_note(tiled):
    from synth.bundle import load_bundle

    bundle = load_bundle(tiled)
    whole, tile = bundle.decoder(), bundle.tile_decoder()
    layout = bundle.tiles
    rng = np.random.default_rng(7)
    latents = np.concatenate([np.stack([p.latent for p in bundle.presets.values()])[:4],
                              rng.standard_normal((4, *bundle.latent_shape)).astype(np.float32) * 2])
    full = whole.decode(latents)
    outside = 0.0
    for start in layout.starts:
        out = tile.decode(np.ascontiguousarray(latents[:, :, start : start + layout.columns]))
        first, end = layout.exact_span(start)
        offset = start * layout.frames_per_column
        np.testing.assert_allclose(out[:, :, first - offset : end - offset], full[:, :, first:end], atol=1e-5, rtol=0)
        # The window's own edges (not the note's) are felt just outside the span: the span is not trivially
        # the whole window.
        if start not in (0, layout.starts[-1]):
            edge = np.abs(out[:, :, : first - offset] - full[:, :, offset:first])
            outside = max(outside, float(edge.max()))
    assert outside > 1e-4


def test_the_tile_check_refuses_a_reach_that_is_too_short(tiled):
    from export.tiles import check_tiles
    from synth.bundle import load_bundle

    bundle = load_bundle(tiled)
    short = TileLayout(columns=3, total_columns=8, frames_per_column=64, reach_frames=0)
    latents = np.random.default_rng(0).standard_normal((2, *bundle.latent_shape)).astype(np.float32)
    with pytest.raises(BundleError, match="the window at latent column 0 differs from the whole decode by .* on frames 0..191"):
        check_tiles(bundle.decoder(), bundle.tile_decoder(), layout=short, latents=latents, log=lambda s: None)


def test_measured_reach_bounds_what_one_column_changes(tiled):
    from export.tiles import REACH_MARGIN_FRAMES, measure_reach
    from synth.bundle import load_bundle

    bundle = load_bundle(tiled)
    decoder = bundle.decoder()
    reach = measure_reach(decoder, latent_shape=bundle.latent_shape, frames=PARAMS.frames)
    assert reach == bundle.tiles.reach_frames and REACH_MARGIN_FRAMES < reach < 64
    z = np.random.default_rng(3).standard_normal((1, *bundle.latent_shape)).astype(np.float32)
    moved = z.copy()
    moved[0, :, 4, :] += 3.0
    changed = np.flatnonzero(np.max(np.abs(decoder.decode(moved)[0] - decoder.decode(z)[0]), axis=0) > 1e-6)
    assert changed.size and changed[0] >= 256 - reach and changed[-1] < 320 + reach


# ---------------------------------------------------------------------- the engine
class GatedDecoder:
    """The bundle's whole-note decoder, held while ``gate`` is clear (the tile decoder is not)."""

    def __init__(self, decoder, gate: threading.Event) -> None:
        self._decoder, self.gate, self.provider = decoder, gate, decoder.provider

    def decode(self, latents):
        self.gate.wait(10.0)
        return self._decoder.decode(latents)


@pytest.mark.parametrize("where", ["hold", "sustain"])
def test_a_latent_jump_sounds_its_exact_tile_where_the_voice_plays_before_the_whole_decode(tiled, where):
    from synth.bundle import load_bundle
    from synth.control.messages import NoteOn, SetLatent
    from synth.engine import Engine, EngineOptions, LiveDecoding
    from synth.engine.timbre import make_timbre

    bundle = load_bundle(tiled)
    gate = threading.Event()
    gate.set()
    # The decoder as slow as a conv2d one (decodes on the worker, never inline): held by the gate.
    engine = Engine(bundle, EngineOptions(output_rate=48000, methods=("sinusoidal",), max_voices=2),
                    decoding=LiveDecoding(inline_ms=0), decoder=GatedDecoder(bundle.decoder(threads=1), gate))
    try:
        wait_until(lambda: engine.timbres.presets_decoded() and engine.timbres.estimates_ready() and engine.timbres.decoding_idle())
        engine.schedule(NoteOn(60, 100), 0)
        frames = 100 if where == "hold" else 420  # 0.8 s into the note, or resting on its sustain frame
        engine.render(engine.frame_start(frames))
        voice = next(v for v in engine.pool.slots if v.active)
        span = voice.frames_ahead(engine.timbres.current, frames=PARAMS.frames, lookahead=24)
        before = engine.timbres.current
        z = np.random.default_rng(11).standard_normal(bundle.latent_shape).astype(np.float32)
        exact = make_timbre(bundle.decoder().decode(z[None])[0], params=bundle.params)
        gate.clear()  # the whole note cannot be decoded now; its tile can
        engine.schedule(SetLatent(z), engine.position, tag="jump")
        engine.render(engine.max_frame_samples)
        wait_until(lambda: engine.stats().timbres.tiles_decoded == 1)
        engine.render(engine.max_frame_samples)
        assert engine.stats().timbres.tiles == 1
        tags = [t for t, _ in engine.applied_exact]
        assert tags == ["jump"]
        sounding = engine.timbres.current
        if where == "hold":
            np.testing.assert_allclose(sounding.held[span[0] : span[1]], exact.held[span[0] : span[1]], atol=1e-5)
            # Frames the voice is far from are still the old sound until the whole decode lands.
            np.testing.assert_array_equal(sounding.release, before.release)
        else:  # a held voice runs round its sustain loop: those frames are the new sound's
            lo, hi = sounding.loop_read_span
            assert span == (lo, hi)
            np.testing.assert_allclose(sounding.held[lo:hi], exact.held[lo:hi], atol=1e-5)
            np.testing.assert_array_equal(sounding.held[:64], before.held[:64])
        gate.set()
        wait_until(engine.timbres.decoding_idle)
        engine.render(engine.max_frame_samples)
        for part in ("held", "sustain", "release"):
            np.testing.assert_allclose(getattr(engine.timbres.current, part), getattr(exact, part), atol=1e-5)
        assert [t for t, _ in engine.applied_exact] == ["jump"]  # counted once, at the tile
    finally:
        gate.set()
        engine.close()
