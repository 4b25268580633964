"""Epoch time of ``training.fit.fit`` in two source trees, on one features folder, alternating runs.

For a change to the training loop: the same synthetic set, the same paper-size model (no_dense, 128 x 512,
batch 16, float32, XLA off), each tree's fit() in a fresh process, trees alternating round by round so a
change in the machine's load falls on both. Reports each run's steady epochs (after the first) and the
median per tree::

    git archive <old commit> training synth | tar -x -C /tmp/before
    .venv/bin/python bench/compare_fit_trees.py --before /tmp/before --after . --instruments 32 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = """
import csv, json, sys, time
import training.fit.loop as loop
from training.fit import FitOptions, fit
# Both loops write history.csv once per epoch: the CPU time between two writes is one epoch's (less exposed
# to other processes' load than the wall clock).
marks, write = [], loop.write_history
def marked(*args, **kw):
    marks.append(time.process_time())
    return write(*args, **kw)
loop.write_history = marked
from training.model.config import default_config
config = default_config().with_schedule(batch_size=16, patience=99)
out = fit(features=sys.argv[1], config=config, out=sys.argv[2],
          options=FitOptions(max_epochs=int(sys.argv[3]), xla="off", verbose=0))
rows = list(csv.DictReader(open(out / "history.csv")))
doc = json.loads((out / "config.json").read_text())
cpu = [round(b - a, 3) for a, b in zip(marks, marks[1:])][: len(rows) - 1]
print("RESULT", json.dumps({"seconds": [float(r["seconds"]) for r in rows], "val_loss": float(rows[-1]["val_loss"]),
                           "train_notes": doc["fit"]["train_notes"], "cpu_s": cpu}))
"""


def _features(root: Path, instruments: int) -> Path:
    from training.datasets.compute_features import compute_features
    from training.datasets.synthetic import make_synthetic_dataset

    notes = make_synthetic_dataset(out=root / "nsynth", instruments=instruments)
    return compute_features(notes, out=root / "features", workers=2, progress=False)


def _run(tree: Path, features: Path, out: Path, epochs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree.resolve()), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", RUN, str(features), str(out), str(epochs)], env=env,
                          capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{tree}: fit failed\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--instruments", type=int, default=32, help="synthetic instruments, 5 notes each")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report: dict = {"before": {"runs": []}, "after": {"runs": []}}
    with tempfile.TemporaryDirectory() as tmp:
        features = _features(Path(tmp), args.instruments)
        for r in range(args.rounds):
            for name in (("before", "after") if r % 2 == 0 else ("after", "before")):
                got = _run(getattr(args, name), features, Path(tmp) / f"{name}-{r}", args.epochs)
                report[name]["runs"].append(got)
                print(name, r, got, flush=True)
    for name in ("before", "after"):
        steady = [s for run in report[name]["runs"] for s in run["seconds"][1:]]
        cpu = [s for run in report[name]["runs"] for s in run["cpu_s"]]
        notes = report[name]["runs"][0]["train_notes"]
        report[name].update(epoch_s=round(statistics.median(steady), 3), train_notes=notes,
                            notes_per_s=round(notes / statistics.median(steady), 1),
                            epoch_cpu_s=round(statistics.median(cpu), 3))
    report["after_over_before"] = round(report["after"]["epoch_s"] / report["before"]["epoch_s"], 3)
    report["cpu_after_over_before"] = round(report["after"]["epoch_cpu_s"] / report["before"]["epoch_cpu_s"], 3)
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "runs"} if isinstance(v, dict) else v)
                      for k, v in report.items()}, indent=1))
    return 0
