"""A home-key decoder's per-key tables run in numpy (synth.bundle.key_tables): the same decode as the graph, at
every key, or not used at all."""

from __future__ import annotations

import numpy as np
import pytest

from synth.bundle.key_tables import KeyTables, key_tables

KEYS = (48, 60, 72)
HOME = 60
N_MELS, P, C, K, R = 8, 4, 3, 6, 2  # bands, frames a column, columns, latent values a column, rank
D = N_MELS * P


def _tables(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    s = len(KEYS)
    gate = np.zeros(s, np.float32)
    gate[KEYS.index(HOME)] = 1.0
    return {
        "slot_of": np.array([int(np.argmin(np.abs(np.array(KEYS) - k))) for k in range(128)], np.int64),
        "gate": gate,
        "a": rng.standard_normal((s, K, R)).astype(np.float32) * 0.3,
        "b": (rng.standard_normal((s, R, D)) * 0.3).astype(np.float16),
        "mean": rng.uniform(0.2, 0.8, (s, D)).astype(np.float32),
        "home": rng.standard_normal((K, D)).astype(np.float32) * 0.2,
        "home_bias": rng.uniform(0.2, 0.8, D).astype(np.float32),
    }


def _graph(t: dict[str, np.ndarray], *, clip: bool = True) -> bytes:
    """The home-key decoder's arithmetic as an ONNX graph at this test's small sizes (the exporter's
    structure, as the benches' stand-in bundle builds it)."""
    from synth.benchmarks.home_key_bundle import home_key_decoder_graph

    return home_key_decoder_graph(t, n_mels=N_MELS, frames=C * P, columns=C, clip=clip, name="home_key_like")


class _Session:
    """What key_tables asks of the bundle's decoder: ``decode(latents, pitch=...)`` and ``name``."""

    name = "home-key-like"

    def __init__(self, model: bytes) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])

    def decode(self, latents, *, pitch):
        pitch = np.asarray(pitch, np.int32).reshape(-1, 1)
        return self._session.run(["mel"], {"latent": np.asarray(latents, np.float32), "pitch": pitch})[0]


def test_the_tables_decode_what_the_graph_does_at_every_key():
    model = _graph(_tables())
    session = _Session(model)
    tables = key_tables(model, session=session, keys=KEYS, latent_shape=(1, C, K), n_mels=N_MELS)
    assert isinstance(tables, KeyTables)
    z = np.random.default_rng(5).standard_normal((1, 1, C, K)).astype(np.float32)
    for keys in ([48], [72, 60], [60, 48, 72], [50]):  # (50: the nearest trained key's, 48)
        mine = tables.decode_at_keys(z, np.array(keys))
        theirs = session.decode(np.repeat(z, len(keys), 0), pitch=keys)
        assert mine.shape == (len(keys), N_MELS, C * P)
        np.testing.assert_allclose(mine, theirs, atol=1e-6)


def test_a_graph_the_tables_do_not_match_is_left_to_onnxruntime():
    """The same tables in a graph that does something else (no clip): parity fails, no tables."""
    t = _tables()
    t["mean"] = t["mean"] + 1.0  # patches above 1: the clip matters
    model = _graph(t, clip=False)
    assert key_tables(model, session=_Session(model), keys=KEYS, latent_shape=(1, C, K), n_mels=N_MELS) is None


def test_a_keyboard_bundle_of_another_family_keeps_its_session():
    import tempfile
    from pathlib import Path

    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle
    from synth.bundle import Decoder, load_bundle

    bundle = load_bundle(make_synthetic_bundle(Path(tempfile.mkdtemp()) / "b", keys=KEYS))
    assert isinstance(bundle.keyed_decoder(threads=1), Decoder)


@pytest.mark.parametrize("keys", [[], [128], [-1]])
def test_keys_outside_midi_are_refused(keys):
    from synth.errors import ParameterError

    model = _graph(_tables())
    tables = key_tables(model, session=_Session(model), keys=KEYS, latent_shape=(1, C, K), n_mels=N_MELS)
    with pytest.raises(ParameterError):
        tables.decode_at_keys(np.zeros((1, 1, C, K), np.float32), np.array(keys, dtype=np.int64))


def test_float16_is_widened_exactly():
    """Every float16 value (normal, subnormal, zeros, infinities, nan) as numpy's own cast gives it, to the bit."""
    from synth.bundle.key_tables import widen_float16

    bits = np.arange(65536, dtype=np.uint16)
    out = np.empty(65536, np.float32)
    widen_float16(bits, out)
    np.testing.assert_array_equal(out.view(np.uint32), bits.view(np.float16).astype(np.float32).view(np.uint32))


def test_the_float16_tables_stay_float16_and_decode_as_the_float32_ones():
    t = _tables()
    model = _graph(t)
    tables = key_tables(model, session=_Session(model), keys=KEYS, latent_shape=(1, C, K), n_mels=N_MELS)
    assert tables.b.dtype == np.float16
    wide = KeyTables(**{**t, "b": t["b"].astype(np.float32)}, n_mels=N_MELS, latent_shape=(1, C, K))
    z = np.random.default_rng(3).standard_normal((1, 1, C, K)).astype(np.float32)
    for keys in ([48], [72, 60, 48]):
        np.testing.assert_array_equal(tables.decode_at_keys(z, np.array(keys)), wide.decode_at_keys(z, np.array(keys)))
