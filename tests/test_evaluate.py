"""melsynth evaluate on a real ONNX bundle (synth/benchmarks/synthetic_bundle.py) and real WAV files, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synth.benchmarks import synthetic_bundle
from synth.errors import DataError, ParameterError

pytest.importorskip("synth.bundle")

from synth.cli import main  # noqa: E402
from synth.metrics import SUMMARY_KEYS, summary  # noqa: E402
from synth.metrics.bundle_evaluation import evaluate_bundle, format_table  # noqa: E402
from synth.spectrogram import SpectrogramParams, log_mel  # noqa: E402

SMALL = SpectrogramParams(n_mels=64, frames=128)


def write_nsynth(folder: Path, notes: dict[str, tuple[int, float]], *, params: SpectrogramParams) -> Path:
    """An NSynth-format folder: ``notes`` maps note_str -> (pitch, gain); audio is float WAV (no dither)."""
    import soundfile as sf

    (folder / "audio").mkdir(parents=True)
    examples = {}
    for name, (pitch, gain) in notes.items():
        y, _ = synthetic_bundle.synthetic_note_audio(params=params, pitch=pitch)
        sf.write(folder / "audio" / f"{name}.wav", gain * y, params.sample_rate, subtype="FLOAT")
        instrument = name.rsplit("-", 2)[0]
        examples[name] = {"note_str": name, "pitch": pitch, "velocity": 100, "instrument_str": instrument}
    (folder / "examples.json").write_text(json.dumps(examples))
    return folder


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return synthetic_bundle.make_synthetic_bundle(tmp_path_factory.mktemp("b") / "bundle", params=SMALL)


@pytest.fixture(scope="module")
def nsynth(tmp_path_factory) -> Path:
    notes = {
        "keyboard_synthetic_000-060-100": (60, 1.0),
        "keyboard_synthetic_001-060-100": (60, 0.3),
        "keyboard_synthetic_002-064-100": (64, 1.0),
    }
    return write_nsynth(tmp_path_factory.mktemp("n") / "nsynth", notes, params=SMALL)


def expected_metrics(bundle_path: Path, folder: Path, names: list[str]) -> dict:
    """The metrics computed by hand: features by the contract, encoder and decoder through onnxruntime."""
    import soundfile as sf

    from synth.bundle import load_bundle

    b = load_bundle(bundle_path)
    x = np.stack([log_mel(sf.read(folder / "audio" / f"{n}.wav")[0], params=b.params) for n in names])
    y = b.decoder().decode(b.encoder().encode(x))
    return summary(x, np.clip(y, 0, 1), params=b.params)


def test_json_has_exactly_the_keys_and_the_hand_computed_values(bundle, nsynth, capsys):
    assert main(["evaluate", "--bundle", str(bundle), "--data", str(nsynth), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    # The bundle records no split, so the training notes PCA would be fitted on are unknown: said, not fatal.
    assert tuple(out) == SUMMARY_KEYS and "no PCA baseline" in captured.err
    # Only the base pitch (60) by default; the bundle records no split, so all notes of the folder.
    want = expected_metrics(
        bundle, nsynth, ["keyboard_synthetic_000-060-100", "keyboard_synthetic_001-060-100"]
    )
    assert out["notes"] == 2
    for key in ("rmse", "ssim", "precision", "recall", "f1"):
        assert out[key] == pytest.approx(want[key], abs=1e-6)
    # The synthetic decoder reproduces its own base note almost exactly.
    assert out["rmse"] < 0.05 and out["f1"] > 0.8


def test_all_pitches_and_table(bundle, nsynth, capsys):
    result, what = evaluate_bundle(bundle, data=nsynth, all_pitches=True, progress=False)
    assert result["notes"] == 3 and "all notes" in what
    assert main(["evaluate", "--bundle", str(bundle), "--data", str(nsynth)]) == 0
    text = capsys.readouterr().out
    assert "RMSE" in text and "F1" in text and "0.855" in text


def test_nested_split_folders(bundle, tmp_path, capsys):
    root = tmp_path / "nsynth"
    write_nsynth(root / "nsynth-test", {"brass_acoustic_000-060-050": (60, 0.5)}, params=SMALL)
    write_nsynth(root / "nsynth-valid", {"brass_acoustic_001-060-050": (60, 0.5)}, params=SMALL)
    result, what = evaluate_bundle(bundle, data=root, progress=False)
    assert result["notes"] == 1 and "test split" in what
    with pytest.raises(DataError, match="no train split"):
        evaluate_bundle(bundle, data=root, split="train", progress=False)


def test_split_by_the_bundles_recorded_rule(tmp_path):
    """A bundle that records its features' split rule selects exactly that split of a single folder."""
    from synth.data.splits import make_splits

    path = synthetic_bundle.make_synthetic_bundle(tmp_path / "b", params=SMALL)
    meta = json.loads((path / "bundle.json").read_text())
    meta["data"] = {"split_rule": "random", "split_seed": 3}
    (path / "bundle.json").write_text(json.dumps(meta))
    names = [f"organ_electronic_{i:03d}-060-100" for i in range(10)]
    folder = write_nsynth(
        tmp_path / "n", {n: (60, 0.2 + 0.08 * i) for i, n in enumerate(names)}, params=SMALL
    )
    rows = [{"note_str": n, "instrument_str": n.rsplit("-", 2)[0]} for n in sorted(names)]
    test = [sorted(names)[i] for i in make_splits(rows, rule="random", seed=3)["test"]]
    result, what = evaluate_bundle(path, data=folder, progress=False)
    assert "test split" in what and result["notes"] == len(test)
    assert result == pytest.approx(expected_metrics(path, folder, test))
    assert evaluate_bundle(path, data=folder, split="all", progress=False)[0]["notes"] == 10
    # A recording more than the bundle's data had moves every note's split: refused, except for all notes.
    meta["data"]["notes"] = 9
    (path / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="holds 10 notes, the bundle's training data 9: its 'test' split would not"):
        evaluate_bundle(path, data=folder, progress=False)
    assert evaluate_bundle(path, data=folder, split="all", progress=False)[0]["notes"] == 10


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--split", "train"], "records no split rule"),
        (["--pictures"], "--run only"),
    ],
)
def test_bad_requests_are_clear_errors(bundle, nsynth, argv, message, capsys):
    assert main(["evaluate", "--bundle", str(bundle), "--data", str(nsynth), *argv]) == 1
    assert message in capsys.readouterr().err


def test_missing_data_wrong_rate_and_wrong_pitch(bundle, tmp_path, capsys):
    assert main(["evaluate", "--bundle", str(bundle)]) == 1
    assert "--data" in capsys.readouterr().err
    import soundfile as sf

    folder = write_nsynth(tmp_path / "n", {"bass_synthetic_000-060-100": (60, 1.0)}, params=SMALL)
    sf.write(folder / "audio" / "bass_synthetic_000-060-100.wav", np.zeros(800), 8000)
    with pytest.raises(DataError, match="8000 Hz"):
        evaluate_bundle(bundle, data=folder, progress=False)
    other = write_nsynth(tmp_path / "m", {"bass_synthetic_000-050-100": (50, 1.0)}, params=SMALL)
    with pytest.raises(DataError, match="base pitch 60"):
        evaluate_bundle(bundle, data=other, progress=False)
    with pytest.raises(ParameterError, match="split"):
        evaluate_bundle(bundle, data=other, split="nope", progress=False)


def test_format_table_says_nan_as_not_available():
    text = format_table(
        {
            "rmse": 0.1,
            "ssim": 0.5,
            "precision": float("nan"),
            "recall": float("nan"),
            "f1": float("nan"),
            "notes": 3,
        },
        what="x",
    )
    assert "n/a" in text and "3 notes" in text


def test_evaluate_bundle_never_imports_tensorflow(bundle, nsynth):
    code = (
        "import sys; from synth.cli import main; "
        f"rc = main(['evaluate', '--bundle', {str(bundle)!r}, '--data', {str(nsynth)!r}, '--json']); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'; "
        "sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert tuple(json.loads(done.stdout)) == SUMMARY_KEYS


def test_the_pca_baseline_is_fitted_on_the_training_notes_read_back_a_batch_at_a_time(tmp_path):
    """--pca computes the training notes' log-mels once into a scratch file and fits PCA from it batch by
    batch: the same baseline as fitting on all of them held at once."""
    from synth.data.splits import make_splits
    from synth.metrics.pca import fit_pca

    path = synthetic_bundle.make_synthetic_bundle(tmp_path / "b", params=SMALL)
    meta = json.loads((path / "bundle.json").read_text())
    meta["data"] = {"split_rule": "random", "split_seed": 3}
    (path / "bundle.json").write_text(json.dumps(meta))
    names = sorted(f"organ_electronic_{i:03d}-060-100" for i in range(10))
    folder = write_nsynth(tmp_path / "n", {n: (60, 0.2 + 0.08 * i) for i, n in enumerate(names)}, params=SMALL)
    split = make_splits([{"note_str": n, "instrument_str": n.rsplit("-", 2)[0]} for n in names], rule="random",
                        seed=3)
    result, _ = evaluate_bundle(path, data=folder, pca=True, progress=False)
    (row,) = result["pca"]
    assert row["train_notes"] == len(split["train"])

    def features(rows):
        import soundfile as sf

        return np.stack([log_mel(sf.read(folder / "audio" / f"{names[i]}.wav")[0], params=SMALL) for i in rows])

    x_test = features(split["test"])
    base = fit_pca(features(split["train"]), components=row["components"])
    want = summary(x_test, base.reconstruct(x_test), params=SMALL)
    for key in ("rmse", "ssim", "f1"):
        assert row[key] == pytest.approx(want[key], abs=1e-6)


def test_a_keyboard_bundle_is_measured_at_each_notes_own_key(tmp_path):
    """A keyboard model's encoder and decoder take each note's key: with --all-pitches every note at a trained
    key, each reconstructed at its own (the hand-computed figures), and the notes at other keys left out, said."""
    import soundfile as sf

    from synth.bundle import load_bundle

    path = synthetic_bundle.make_synthetic_bundle(tmp_path / "keys", params=SMALL, keys=(48, 60, 72))
    folder = write_nsynth(tmp_path / "nsynth", {
        "keyboard_synthetic_000-048-100": (48, 1.0),
        "keyboard_synthetic_001-060-100": (60, 1.0),
        "keyboard_synthetic_002-072-100": (72, 0.5),
        "keyboard_synthetic_003-064-100": (64, 1.0),
    }, params=SMALL)
    result, what = evaluate_bundle(path, data=folder, all_pitches=True, progress=False)
    assert result["notes"] == 3 and "1 notes at other keys skipped" in what, what
    b = load_bundle(path)
    names = ["keyboard_synthetic_000-048-100", "keyboard_synthetic_001-060-100", "keyboard_synthetic_002-072-100"]
    x = np.stack([log_mel(sf.read(folder / "audio" / f"{n}.wav")[0], params=b.params) for n in names])
    keys = np.array([48, 60, 72])
    want = summary(x, np.clip(b.decoder().decode(b.encoder().encode(x, pitch=keys), pitch=keys), 0, 1),
                   params=b.params)
    for key in ("rmse", "ssim", "f1"):
        assert result[key] == pytest.approx(want[key], abs=1e-6)
    # At the base key only by default.
    assert evaluate_bundle(path, data=folder, progress=False)[0]["notes"] == 1
