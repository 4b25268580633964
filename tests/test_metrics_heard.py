"""The error as heard: a spectrogram inverted to audio and analysed again, against the original note."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth.errors import ParameterError
from synth.metrics.heard import heard_error_db
from synth.spectrogram import SpectrogramParams, log_mel

PARAMS = SpectrogramParams(n_mels=64, frames=128)


def note(f0: float = 261.6, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * PARAMS.sample_rate)) / PARAMS.sample_rate
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) * np.exp(-t) * 0.3
    return log_mel(y.astype(np.float32), params=PARAMS)


@pytest.mark.parametrize("method", ["sinusoidal", "griffinlim"])
def test_the_original_inverts_close_to_itself_and_a_wrong_note_does_not(method):
    x = note()
    floor = heard_error_db(x, x, method=method, params=PARAMS)
    other = heard_error_db(x, note(f0=392.0), method=method, params=PARAMS)
    dimmed = heard_error_db(x, np.clip(x - 0.1, 0, 1), method=method, params=PARAMS)  # 13 dB quieter
    assert 0 < floor < 12 and other > floor + 5 and dimmed > floor + 2, (floor, other, dimmed)


def test_silence_has_no_loud_bins_and_shapes_are_checked():
    silent = np.zeros((PARAMS.n_mels, PARAMS.frames), np.float32)
    assert np.isnan(heard_error_db(silent, silent, method="sinusoidal", params=PARAMS))
    with pytest.raises(ParameterError, match="expected two"):
        heard_error_db(silent, silent[:, :10], method="sinusoidal", params=PARAMS)


def test_evaluate_reports_it_for_the_model_and_the_original(tmp_path, capsys):
    from test_evaluate import write_nsynth

    from synth.benchmarks.synthetic_bundle import make_synthetic_bundle
    from synth.cli import main

    small = SpectrogramParams(n_mels=64, frames=128)
    bundle = make_synthetic_bundle(tmp_path / "b", params=small)
    data = write_nsynth(tmp_path / "n", {f"keyboard_synthetic_00{i}-060-100": (60, 0.5 + 0.1 * i) for i in range(3)},
                        params=small)
    assert main(["evaluate", "--bundle", str(bundle), "--data", str(data), "--json", "--heard", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    heard = result["heard"]
    assert heard["notes"] == 2 and set(heard) == {"notes", "original", "model"}
    for source in ("original", "model"):
        assert all(v is not None and 0 < v < 60 for v in heard[source].values()), heard
    # and by region of the note, for every method, its overall figure the same as above
    regions = result["heard_regions"]
    for source in ("original", "model"):
        for method, r in regions[source].items():
            assert set(r["bias"]) == {"attack", "sustain_low", "sustain_high", "release"}
            assert r["heard"] == pytest.approx(heard[source][method])
    assert main(["evaluate", "--bundle", str(bundle), "--data", str(data), "--heard", "2"]) == 0
    assert "ours, harmonic, by region (bias / abs dB): attack" in capsys.readouterr().out
