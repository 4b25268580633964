"""melsynth ablation: rows from real (tiny) runs, PCA beside them, and refusals that write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
fixtures = pytest.importorskip("training_fixtures")

from synth.errors import DataError  # noqa: E402
from training.ablation import write_ablation  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, list[Path]]:
    from training.fit import FitOptions, fit

    root = tmp_path_factory.mktemp("ablation")
    data = fixtures.write_features(root / "features", fixtures.synthetic_notes(12))
    out = []
    for name in ("no_dense", "clip"):
        config = fixtures.small_config(name, max_epochs=1)
        out.append(fit(features=data, config=config, out=root / f"run_{name}",
                       options=FitOptions(verbose=0, run_eagerly=True)))
    return root, out


def test_rows_carry_each_runs_change_metrics_and_decode_time_beside_pca(runs):
    root, paths = runs
    lines: list[str] = []
    table = write_ablation(paths, root / "results" / "ablation.md", note="1 epoch each", decode_repeats=3,
                           log=lines.append).read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    metrics = json.loads((paths[1] / "metrics.json").read_text())
    clip = rows["run_clip"].split(" | ")
    assert "output_activation=clip" in clip[1] and clip[2] == "1 (1)" and clip[3] == "max_epochs"
    assert float(clip[8]) == pytest.approx(metrics["f1"], abs=5e-5)
    assert float(clip[9].rstrip(" |")) > 0  # decode ms, measured
    # The small test configs differ from the paper's no_dense in filters and batch too, and say so.
    assert "filters=[4, 8, 16]" in rows["run_no_dense"]
    # PCA on the same 7 training notes, k = min(latent 16, 7 notes).
    assert "| PCA, 7 components | fitted on the same training notes |" in table
    assert "| the paper's no_dense |" in table and "1 epoch each" in table


def test_a_missing_run_or_one_without_metrics_writes_nothing(runs, tmp_path):
    root, paths = runs
    target = tmp_path / "ablation.md"
    with pytest.raises(DataError, match="run folder .*nope is missing"):
        write_ablation([paths[0], root / "nope"], target, log=lambda _: None)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(paths[1], unfinished)
    (unfinished / "metrics.json").unlink()
    with pytest.raises(DataError, match="metrics.json is missing"):
        write_ablation([paths[0], unfinished], target, log=lambda _: None)
    assert not target.exists()
