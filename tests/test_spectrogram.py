"""The spectrogram contract: defaults, JSON round trip, validation, the fixed range, agreement with librosa."""

import json

import librosa
import numpy as np
import pytest

from synth.errors import ContractError, ParameterError
from synth.spectrogram import (
    CONTRACT_KEYS,
    SpectrogramParams,
    analysis_window,
    log_mel,
    mel_band_frequencies,
    mel_basis,
    unit_to_db,
    unit_to_power,
)


def tone(freq=261.63, seconds=4.0, sr=16000, level=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def librosa_reference(y, p: SpectrogramParams):
    """The contract's definition, written out from the JSON keys alone."""
    d = json.loads(p.to_json())
    M = librosa.feature.melspectrogram(
        y=y, sr=d["sample_rate"], n_fft=d["n_fft"], hop_length=d["hop_length"], win_length=d["win_length"],
        window=d["window"], center=d["center"], power=2.0, n_mels=d["n_mels"], fmin=d["fmin"], fmax=d["fmax"],
        htk=d["htk"], norm=d["mel_norm"])
    x = np.clip((10 * np.log10(np.maximum(M, d["amin"])) - d["db_min"]) / (d["db_max"] - d["db_min"]), 0, 1)
    x = x[:, : d["frames"]]
    return np.pad(x, ((0, 0), (0, d["frames"] - x.shape[1])))


def test_defaults_follow_the_paper_at_16k():
    p = SpectrogramParams()
    assert (p.sample_rate, p.n_fft, p.win_length, p.hop_length, p.window) == (16000, 1024, 690, 125, "blackman")
    assert (p.n_mels, p.fmin, p.fmax, p.frames) == (128, 0.0, 8000.0, 512)
    assert p.n_samples == 64000 and p.duration == 4.0
    assert p.frame_of(3.0) == 384


def test_json_has_exactly_the_contract_keys_and_round_trips(tmp_path):
    p = SpectrogramParams(db_min=-90.0)
    assert tuple(p.to_dict()) == CONTRACT_KEYS
    p.save(tmp_path / "spectrogram.json")
    assert SpectrogramParams.load(tmp_path / "spectrogram.json") == p


@pytest.mark.parametrize("edit, fragment", [
    ({"n_fft": 256}, "win_length 690 exceeds n_fft"),
    ({"db_min": 40.0}, "db_min < db_max"),
    ({"fmax": 9000.0}, "fmax"),
    ({"hop_length": 0}, "hop_length must be positive"),
    ({"center": 1}, "center=1 has the wrong type"),
    ({"n_mels": 128.0}, "n_mels=128.0 has the wrong type"),
])
def test_invalid_contracts_are_refused_with_the_key_named(edit, fragment):
    d = SpectrogramParams().to_dict() | edit
    with pytest.raises(ContractError, match=fragment):
        SpectrogramParams.from_dict(d)


def test_missing_and_unknown_keys_are_named(tmp_path):
    d = SpectrogramParams().to_dict()
    del d["hop_length"]
    d["hop"] = 125
    with pytest.raises(ContractError, match=r"missing keys \['hop_length'\], unknown keys \['hop'\]"):
        SpectrogramParams.from_dict(d)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ContractError, match="bad.json"):
        SpectrogramParams.load(bad)


def test_require_equal_names_the_differing_keys():
    with pytest.raises(ContractError, match="hop_length: 125 != 128"):
        SpectrogramParams().require_equal(SpectrogramParams(hop_length=128), what="features")


@pytest.mark.parametrize("params", [SpectrogramParams(), SpectrogramParams(n_mels=64, fmax=7000.0, frames=300, center=False)])
def test_log_mel_matches_librosa_to_1e5(params):
    rng = np.random.default_rng(1)
    y = tone() * np.exp(-np.linspace(0, 3, 64000)).astype(np.float32) + 1e-3 * rng.standard_normal(64000).astype(np.float32)
    x = log_mel(y, params=params)
    assert x.shape == (params.n_mels, params.frames) and x.dtype == np.float32
    np.testing.assert_allclose(x, librosa_reference(y, params), atol=1e-5)


CONTRACT_VARIANTS = [
    SpectrogramParams(),
    SpectrogramParams(htk=True),
    SpectrogramParams(mel_norm=None, fmin=30.0, fmax=6000.0, n_mels=80),
    SpectrogramParams(sample_rate=22050, n_fft=2048, win_length=2048, fmax=11025.0, window="hann"),
]


@pytest.mark.parametrize("params", CONTRACT_VARIANTS)
def test_filterbank_and_band_centres_equal_librosas(params):
    # Computed with numpy so that the engine never imports librosa; the contract is librosa's definition.
    expected = librosa.filters.mel(sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels,
                                   fmin=params.fmin, fmax=params.fmax, htk=params.htk, norm=params.mel_norm)
    basis = mel_basis(params=params)
    assert basis.shape == expected.shape and basis.dtype == np.float32
    np.testing.assert_allclose(basis, expected, rtol=1e-5, atol=1e-9)
    centres = librosa.mel_frequencies(n_mels=params.n_mels + 2, fmin=params.fmin, fmax=params.fmax,
                                      htk=params.htk)[1:-1]
    np.testing.assert_allclose(mel_band_frequencies(params=params), centres, rtol=1e-12)


@pytest.mark.parametrize("window", ["blackman", "hann", "hamming", "blackmanharris"])  # numpy's three, scipy's
def test_analysis_window_is_librosas_periodic_window(window):
    params = SpectrogramParams(window=window)
    np.testing.assert_allclose(analysis_window(params=params),
                               librosa.filters.get_window(window, params.win_length, fftbins=True), atol=1e-12)


def test_unknown_window_is_named():
    with pytest.raises(ContractError, match="unknown window 'triangle-ish'"):
        analysis_window(params=SpectrogramParams(window="triangle-ish"))


def test_fixed_range_keeps_velocity():
    """Per-note max normalisation would make these equal; the fixed dB range keeps 20 dB apart."""
    p = SpectrogramParams()
    loud, soft = log_mel(tone(level=0.5), params=p), log_mel(tone(level=0.05), params=p)
    peak_db = unit_to_db(loud.max(), params=p) - unit_to_db(soft.max(), params=p)
    assert peak_db == pytest.approx(20.0, abs=0.1)
    band = np.argmax(loud[:, 200])
    assert abs(mel_band_frequencies(params=p)[band] - 261.63) / 261.63 < 0.05


def test_short_audio_is_zero_padded_and_silence_sits_at_the_floor():
    p = SpectrogramParams()
    x = log_mel(tone(seconds=1.0), params=p)
    assert x.shape == (128, 512)
    assert np.all(x[:, 140:] == 0.0) and x[:, :100].max() > 0.5
    assert np.all(log_mel(np.zeros(64000, np.float32), params=p) == 0.0)
    assert unit_to_power(np.zeros(1), params=p)[0] == pytest.approx(1e-10)


@pytest.mark.parametrize("y, fragment", [
    (np.zeros((2, 100), np.float32), "shape"),
    (np.array([], np.float32), "empty"),
    (np.array([0.0, np.nan] * 600, np.float32), "NaN"),
    (np.zeros(2000, np.int16), "floating"),
])
def test_bad_audio_is_refused(y, fragment):
    with pytest.raises(ParameterError, match=fragment):
        log_mel(y, params=SpectrogramParams())
