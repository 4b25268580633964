"""The Tables I-IV sweep: table writer on fake rows, skip-existing logic, and a tiny real sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synth.errors import DataError, ParameterError
from training.experiments import (
    PAPER,
    ROW_FORMAT,
    ROW_NAMES,
    TABLES,
    load_rows,
    ranking_sentence,
    render_tables,
    row_groups,
    write_tables,
)

DATA = {
    "path": "/x/features/soundfont",
    "notes": 1200,
    "split_rule": "instrument",
    "split_seed": 0,
    "split_sizes": {"train": 960, "valid": 120, "test": 120},
    "families": ["bass", "organ"],
    "pitches": [60],
    "sources": ["soundfont"],
}


def fake_row(name: str, f1: float, *, rmse: float = 0.05, epochs: int = 7) -> dict:
    return {
        "format": ROW_FORMAT,
        "name": name,
        "run": name,
        "metrics": {"rmse": rmse, "ssim": 0.8, "precision": f1, "recall": f1, "f1": f1, "notes": 120},
        "epochs": epochs,
        "best_epoch": epochs - 1,
        "stopped": "max_epochs",
        "wall_s": 60.0,
        "budget": {"max_epochs": epochs, "limit": 500, "patience": 10},
        "hardware": {"cpu": "Test CPU 3000", "cores": 2, "gpus": []},
        "data": DATA,
    }


def write_rows(out: Path, rows: dict[str, dict]) -> None:
    (out / "rows").mkdir(parents=True, exist_ok=True)
    for name, doc in rows.items():
        (out / "rows" / f"{name}.json").write_text(json.dumps(doc))


def test_paper_numbers_cover_every_row_and_match_the_tables():
    assert set(PAPER) == set(ROW_NAMES)
    assert PAPER["no_dense"] == {
        "rmse": 0.063,
        "ssim": 0.861,
        "recall": 0.856,
        "precision": 0.859,
        "f1": 0.855,
    }
    assert PAPER["kr_l2_D"]["f1"] == 0.817 and PAPER["ar_l1_D"]["f1"] == 0.0
    assert PAPER["latent_2048"]["precision"] == 0.837
    # The baseline appears once per table with the same numbers.
    assert PAPER["no_reg"] == PAPER["pool_max"] == PAPER["latent_8192"] == PAPER["dense"]
    assert [len(t.rows) for t in TABLES] == [16, 3, 3, 2]


def test_identical_rows_share_one_run():
    groups = row_groups()
    assert ["no_reg", "pool_max", "latent_8192", "dense"] in groups
    assert sum(len(g) for g in groups) == len(ROW_NAMES) and len(groups) == len(ROW_NAMES) - 3
    assert row_groups(["dense"]) == [["no_reg", "pool_max", "latent_8192", "dense"]]
    with pytest.raises(ParameterError, match="unknown table rows"):
        row_groups(["no_such_row"])


def test_tables_show_ours_beside_the_papers_and_not_run(tmp_path):
    write_rows(tmp_path, {"no_dense": fake_row("no_dense", 0.91), "dense": fake_row("dense", 0.70)})
    path = write_tables(tmp_path)
    text = path.read_text()
    assert "## Table IV" in text and "## Table I:" in text
    assert (
        "| No Dense | 0.050 (0.063) | 0.800 (0.861) | 0.910 (0.856) | 0.910 (0.859) | 0.910 (0.855) |" in text
    )
    assert "| Dropout E | not run (0.097)" in text
    assert "1200 notes (train 960, valid 120, test 120)" in text
    assert "Test CPU 3000, 2 cores, no GPU" in text
    assert "at most 7 epochs, early stopping patience 10, at most 500 training notes" in text
    assert "Split measured**: test (120 notes)" in text
    assert "Our F1 ranking agrees with the paper's: No Dense > Dense." in text


def test_tables_name_the_settings_the_paper_does_not_publish(tmp_path):
    from training.model.config import variant

    rows = {name: dict(fake_row(name, 0.8), config=variant(name).to_dict())
            for name in ("no_reg", "dropout_E", "kr_l1_D", "kr_l2_D", "ar_l1_E")}
    write_rows(tmp_path, rows)
    assert ("- **Not in the paper, our choice** (training/model/conv.py says why): dropout rate 0.3; activity L1 "
            "weight 0.0001; kernel L1 weight 1e-06; kernel L2 weight 0.0001.") in write_tables(tmp_path).read_text()
    write_rows(tmp_path / "plain", {"no_reg": dict(fake_row("no_reg", 0.8), config=variant("no_reg").to_dict())})
    assert "Not in the paper" not in write_tables(tmp_path / "plain").read_text()


def test_ranking_sentence_names_the_disagreements():
    table = TABLES[1]  # max, average, no pooling: the paper has max > avg > none
    rows = {
        "pool_max": fake_row("pool_max", 0.70),
        "pool_avg": fake_row("pool_avg", 0.75),
        "pool_none": fake_row("pool_none", 0.60),
    }
    text = ranking_sentence(table, rows)
    assert "differs from the paper's in 1 of 3 pairs" in text
    assert "Average Pooling above Max Pooling" in text
    assert "Best row: ours Average Pooling, the paper's Max Pooling." in text
    # Ties on our side are not disagreements; too few rows cannot be ranked.
    rows["pool_avg"] = fake_row("pool_avg", 0.70)
    assert "agrees" in ranking_sentence(table, rows)
    assert "too few" in ranking_sentence(table, {"pool_max": fake_row("pool_max", 0.7)})


def test_ranking_over_a_partial_table_says_so():
    rows = {"kr_l2_D": fake_row("kr_l2_D", 0.8), "no_reg": fake_row("no_reg", 0.7)}
    assert "(over the 2 rows measured)" in ranking_sentence(TABLES[0], rows)


def test_nan_metrics_and_empty_results(tmp_path):
    doc = fake_row("no_reg", 0.5)
    doc["metrics"]["f1"] = float("nan")
    text = render_tables({"no_reg": doc})
    assert "n/a (0.772)" in text
    assert "not run" in render_tables({}) and "no row run yet" in render_tables({})


def test_foreign_row_files_are_refused(tmp_path):
    (tmp_path / "rows").mkdir()
    (tmp_path / "rows" / "no_reg.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_rows(tmp_path)
    (tmp_path / "rows" / "no_reg.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="not a melsynth experiment row"):
        load_rows(tmp_path)


def test_rows_already_there_are_skipped_without_training(tmp_path):
    fixtures = pytest.importorskip("training_fixtures")
    pytest.importorskip("training.fit")
    from training.datasets.features import load_features
    from training.experiments import run_experiments

    data = fixtures.write_features(tmp_path / "features", fixtures.synthetic_notes(10))
    row = dict(fake_row("no_dense", 0.9), data=load_features(data).description(), stopped="early_stopping",
               budget={"max_epochs": None, "limit": None, "patience": 10})
    write_rows(tmp_path / "out", {"no_dense": row})
    lines: list[str] = []
    path = run_experiments(
        data=data, out=tmp_path / "out", runs=tmp_path / "runs", rows=["no_dense"], log=lines.append
    )
    assert "1 already done" in lines[0]
    assert not (tmp_path / "runs").exists()
    assert "| No Dense | 0.050 (0.063)" in path.read_text()
    # Rows measured on other notes, or under another note limit, are refused before anything trains.
    for changed, said in ((dict(row, data=dict(row["data"], notes=99)), "notes 99 -> 10"),
                          (dict(row, budget=dict(row["budget"], limit=5)), "--limit 5 -> None")):
        write_rows(tmp_path / "out", {"no_dense": changed})
        with pytest.raises(DataError, match=f"no_dense.json: measured on other data than this sweep's \\({said}\\)"):
            run_experiments(data=data, out=tmp_path / "out", runs=tmp_path / "runs", rows=["no_dense"],
                            log=lines.append)
        assert not (tmp_path / "runs").exists()


def test_cli_list_and_tables_only(tmp_path, capsys):
    from synth.cli import main

    assert main(["experiments", "--list"]) == 0
    assert "run no_reg: rows no_reg, pool_max, latent_8192, dense" in capsys.readouterr().out
    write_rows(tmp_path, {"dense": fake_row("dense", 0.7)})
    assert main(["experiments", "--out", str(tmp_path), "--tables-only"]) == 0
    assert (tmp_path / "tables.md").is_file()
    assert main(["experiments", "--out", str(tmp_path)]) == 1
    assert "--data" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- a real sweep
@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two tiny real runs (the baseline group and no_dense), one epoch each, 64 x 64 notes."""
    fixtures = pytest.importorskip("training_fixtures")
    pytest.importorskip("training.fit")
    pytest.importorskip("tensorflow")
    from training.experiments import run_experiments

    root = tmp_path_factory.mktemp("sweep")
    data = fixtures.write_features(root / "features", fixtures.synthetic_notes(12))
    lines: list[str] = []
    kwargs = dict(
        data=data,
        out=root / "out",
        runs=root / "runs",
        rows=["dense", "no_dense"],
        max_epochs=1,
        overrides={"filters": (4, 8, 16), "batch_size": 8},
        verbose=0,
        log=lines.append,
    )
    path = run_experiments(**kwargs)
    return {"root": root, "data": data, "tables": path, "lines": lines, "kwargs": kwargs}


def test_tiny_sweep_writes_rows_tables_and_skips_on_rerun(sweep):
    root = sweep["root"]
    rows = load_rows(root / "out")
    assert set(rows) == {"no_reg", "pool_max", "latent_8192", "dense", "no_dense"}
    assert sorted(p.name for p in (root / "runs").iterdir()) == ["no_dense", "no_reg"]
    doc = rows["dense"]
    assert doc["run"] == "no_reg" and doc["epochs"] == 1 and doc["budget"]["max_epochs"] == 1
    assert doc["metrics"]["notes"] == 3 and 0 <= doc["metrics"]["f1"] <= 1
    assert doc["hardware"]["cores"] >= 1 and doc["hardware"]["cpu"]
    assert doc["config"]["architecture"]["filters"] == [4, 8, 16]
    text = sweep["tables"].read_text()
    assert (
        "| Dropout E | not run" in text
        and "| No Dense | " in text
        and "not run" not in text.split("| No Dense |")[1].split("\n")[0]
    )
    assert any("ETA" in line for line in sweep["lines"]) and any("done in" in line for line in sweep["lines"])
    # The PCA baseline beside the tables: 7 training notes, k = min(latent 1 x 1 x 16, 7).
    assert "## PCA baseline" in text and "| 7 components of 7 notes |" in text
    assert "| 0 components: the mean of the 7 notes |" in text and "its harmonic F1 is" in text
    # A rerun trains nothing.
    from training.experiments import run_experiments

    before = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("*.h5")}
    lines: list[str] = []
    run_experiments(**dict(sweep["kwargs"], log=lines.append))
    assert "2 already done" in lines[0]
    assert before == {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("*.h5")}


def test_a_row_of_a_changed_variant_runs_again_and_a_run_of_another_model_is_refused(sweep, tmp_path):
    import shutil

    from training.experiments import run_experiments

    out, runs = tmp_path / "out", tmp_path / "runs"
    shutil.copytree(sweep["root"] / "out", out)
    shutil.copytree(sweep["root"] / "runs", runs)
    kwargs = dict(sweep["kwargs"], out=out, runs=runs, rows=["no_dense"])
    # The row measured another dropout rate than no_dense has now: it is measured again from its run.
    row = json.loads((out / "rows" / "no_dense.json").read_text())
    row["config"]["architecture"]["dropout_rate"] = 0.5
    (out / "rows" / "no_dense.json").write_text(json.dumps(row))
    lines: list[str] = []
    run_experiments(**dict(kwargs, log=lines.append))
    assert any("row no_dense: measured another model (dropout_rate 0.5 -> 0.3)" in line for line in lines), lines
    assert "0 already done" in next(line for line in lines if "already done" in line)
    assert json.loads((out / "rows" / "no_dense.json").read_text())["config"]["architecture"]["dropout_rate"] == 0.3
    # A run folder that trained other filters is neither resumed, nor measured, nor trained over.
    doc = json.loads((runs / "no_dense" / "config.json").read_text())
    doc["config"]["architecture"]["filters"] = [4, 8, 32]
    (runs / "no_dense" / "config.json").write_text(json.dumps(doc))
    (out / "rows" / "no_dense.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in (runs / "no_dense").rglob("*")}
    lines = []
    with pytest.raises(DataError, match="rows failed to train: no_dense"):
        run_experiments(**dict(kwargs, log=lines.append))
    assert any("trained another model than row no_dense has now (filters [4, 8, 32] -> [4, 8, 16])" in line
               for line in lines), lines
    assert before == {p: p.stat().st_mtime_ns for p in (runs / "no_dense").rglob("*")}
    assert not (out / "rows" / "no_dense.json").exists()


def test_what_does_not_make_another_model_keeps_rows_and_runs(sweep, tmp_path):
    import shutil

    from training.experiments import run_experiments

    out, runs = tmp_path / "out", tmp_path / "runs"
    shutil.copytree(sweep["root"] / "out", out)
    shutil.copytree(sweep["root"] / "runs", runs)
    kwargs = dict(sweep["kwargs"], out=out, runs=runs)
    from training_fixtures import flat_form

    from training.model.config import ModelConfig

    # Recorded before a field existed (read with its default, as fit reads it) and before the schedule was split
    # out (its fields flat beside every family's): the row and run stand.
    for path, key in ((out / "rows" / "no_dense.json", "config"), (runs / "no_dense" / "config.json", "config")):
        doc = json.loads(path.read_text())
        doc[key] = flat_form(ModelConfig.from_dict(doc[key]), nested_schedule=False)
        del doc[key]["mel_head"], doc[key]["layout"]
        path.write_text(json.dumps(doc))
    lines: list[str] = []
    run_experiments(**dict(kwargs, patience=3, log=lines.append))  # a new patience is for new runs only
    assert "2 already done" in lines[0], lines
    # A longer epoch bound extends the run; it is not another model.
    lines = []
    run_experiments(**dict(kwargs, rows=["no_dense"], max_epochs=2, log=lines.append))
    assert json.loads((runs / "no_dense" / "status.json").read_text())["epochs_done"] == 2, lines
    # Without --max-epochs the budget is the config's own bound (3 here), not whatever the rows had.
    lines = []
    run_experiments(**dict(kwargs, rows=["no_dense"], max_epochs=None,
                           overrides=dict(kwargs["overrides"], max_epochs=3), log=lines.append))
    assert any("row no_dense: stopped at its bound of 2 epochs, the budget is now 3: it trains on" in line
               for line in lines), lines
    assert json.loads((runs / "no_dense" / "status.json").read_text())["epochs_done"] == 3, lines
    # One stale row of a shared run: the run is measured again and all of its rows are rewritten.
    dense = json.loads((out / "rows" / "dense.json").read_text())
    dense["config"]["architecture"]["dropout_rate"] = 0.5
    (out / "rows" / "dense.json").write_text(json.dumps(dense))
    before = {n: (out / "rows" / f"{n}.json").stat().st_mtime_ns for n in ("no_reg", "pool_max", "latent_8192")}
    lines = []
    run_experiments(**dict(kwargs, rows=["dense"], log=lines.append))
    assert any("row dense: measured another model" in line for line in lines), lines
    assert all((out / "rows" / f"{n}.json").stat().st_mtime_ns != t for n, t in before.items())
    assert json.loads((out / "rows" / "dense.json").read_text())["config"]["architecture"]["dropout_rate"] == 0.3


def test_evaluate_a_run_and_its_pictures(sweep, capsys):
    from synth.cli import main
    from synth.metrics import SUMMARY_KEYS

    run_dir = sweep["root"] / "runs" / "no_dense"
    assert main(["evaluate", "--run", str(run_dir), "--json", "--pictures"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert tuple(out) == (*SUMMARY_KEYS, "pca") and out["notes"] == 3
    # The fit's own metrics.json (test split) and evaluate agree.
    fit_metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("rmse", "ssim", "f1"):
        assert out[key] == pytest.approx(fit_metrics[key], abs=1e-5)
    # PCA beside it: fitted on the run's 7 training notes, k = min(latent 1 x 1 x 16, 7 notes) = 7.
    from synth.metrics import summary
    from synth.metrics.pca import fit_pca
    from training.datasets.features import load_features

    feats = load_features(sweep["data"])
    train, test = feats.x[feats.subset("train")], feats.x[np.sort(feats.subset("test"))]
    want = summary(test, fit_pca(train, components=7).reconstruct(test), params=feats.params)
    (pca,) = out["pca"]
    assert pca["components"] == 7 and pca["train_notes"] == 7 and pca["notes"] == 3
    for key in ("rmse", "ssim", "precision", "recall", "f1"):
        assert pca[key] == pytest.approx(want[key], abs=1e-6)
    for name in ("reconstruction.png", "peaks.png", "history.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["evaluate", "--run", str(run_dir), "--split", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == 12
    # Another features folder (other notes, another split) has another test split, which may hold notes the
    # run trained on: refused for a split, measured for all of its notes.
    fixtures = pytest.importorskip("training_fixtures")
    other = fixtures.write_features(run_dir.parent / "other-features", fixtures.synthetic_notes(10))
    assert main(["evaluate", "--run", str(run_dir), "--data", str(other), "--json"]) == 1
    err = capsys.readouterr().err
    assert f"features folder {other} holds other notes than run {run_dir} trained on (notes 12 -> 10;" in err
    assert "its 'test' split is not the run's" in err
    assert main(["evaluate", "--run", str(run_dir), "--data", str(other), "--split", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == 10


def test_overall_sentence_names_our_best_row():
    from training.experiments import overall_sentence

    rows = {"kr_l2_D": fake_row("kr_l2_D", 0.8), "no_dense": fake_row("no_dense", 0.7)}
    assert overall_sentence(rows).startswith("Our best row by F1 is KR L2 D (the paper's best is No Dense)")
    assert overall_sentence({}) == "No row measured yet."


# ---------------------------------------------------------------------------------------------- pictures
def test_pictures_from_arrays(tmp_path):
    import numpy as np

    from synth.spectrogram import SpectrogramParams
    from training.plots import plot_history, plot_peaks, plot_reconstruction

    params = SpectrogramParams(n_mels=64, frames=64)
    rng = np.random.default_rng(0)
    x = rng.random((64, 64)).astype(np.float32)
    y = np.clip(x + 0.05 * rng.standard_normal(x.shape), 0, 1)
    png = b"\x89PNG\r\n\x1a\n"
    assert plot_reconstruction(x, y, params=params, path=tmp_path / "r.png").read_bytes()[:8] == png
    assert plot_peaks(x, y, params=params, frame=10, path=tmp_path / "p.png").read_bytes()[:8] == png
    (tmp_path / "h.csv").write_text("epoch,loss,val_loss,seconds\n1,0.02,0.03,1.5\n2,0.01,0.02,1.4\n")
    assert plot_history(tmp_path / "h.csv", tmp_path / "h.png").read_bytes()[:8] == png
    with pytest.raises(ParameterError, match="frame"):
        plot_peaks(x, y, params=params, frame=64, path=tmp_path / "bad.png")
    with pytest.raises(ParameterError, match="shape"):
        plot_reconstruction(x[:10], y[:10], params=params, path=tmp_path / "bad.png")
    with pytest.raises(DataError, match="missing"):
        plot_history(tmp_path / "none.csv", tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv", "h.png", "p.png", "r.png"]  # no temp files
