"""tables.md: the four tables, ours beside the paper's, with a header (data, split, budget, hardware), a
sentence per table on where our F1 ranking differs from the paper's, the PCA baseline and the overall best."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

from synth.atomic import atomic_write_text
from training.experiments.hardware import hardware_text
from training.experiments.pca import load_pca
from training.experiments.rows import load_rows
from training.experiments.tables import LABEL_OF, METRIC_COLUMNS, PAPER, TABLES, Table
from training.model.flat_config import flatten

__all__ = ["duration_text", "ranking_sentence", "render_tables", "overall_sentence", "write_tables"]


def duration_text(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _cell(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _order(scores: dict[str, float], labels: dict[str, str]) -> str:
    """ "A > B = C" by descending score."""
    ranked = sorted(scores, key=lambda n: -scores[n])
    text = labels[ranked[0]]
    for prev, name in zip(ranked, ranked[1:], strict=False):
        text += (" = " if round(scores[prev], 3) == round(scores[name], 3) else " > ") + labels[name]
    return text


def ranking_sentence(table: Table, rows: dict[str, dict[str, Any]]) -> str:
    """Where our F1 order of the table's rows differs from the paper's (rows not run are left out).

    Two rows are ordered differently when one has the strictly higher F1 (to 3 decimals) in ours and the
    strictly lower in the paper's; ties on either side do not count as disagreement.
    """
    labels = dict(table.rows)
    ours: dict[str, float] = {}
    for name, _ in table.rows:
        f1 = ((rows.get(name) or {}).get("metrics") or {}).get("f1")
        if isinstance(f1, (int, float)) and math.isfinite(f1):
            ours[name] = float(f1)
    if len(ours) < 2:
        return f"Ranking: {len(ours)} row(s) of table {table.number} measured, too few to compare with the paper."
    paper = {n: PAPER[n]["f1"] for n in ours}
    names = list(ours)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    swapped = []
    for a, b in pairs:
        da, db = round(ours[a] - ours[b], 3), round(paper[a] - paper[b], 3)
        if da * db < 0:
            swapped.append((a, b))
    best_ours = max(ours, key=ours.get)
    best_paper = max(paper, key=paper.get)
    partial = "" if len(ours) == len(table.rows) else f" (over the {len(ours)} rows measured)"
    if not swapped:
        return f"Our F1 ranking agrees with the paper's{partial}: {_order(ours, labels)}."
    detail = "; ".join(
        f"{labels[a]} above {labels[b]}" if ours[a] > ours[b] else f"{labels[b]} above {labels[a]}"
        for a, b in swapped[:6]
    )
    more = f" and {len(swapped) - 6} more" if len(swapped) > 6 else ""
    best = (
        f" Best row: ours {labels[best_ours]}, the paper's {labels[best_paper]}."
        if best_ours != best_paper
        else f" Both rank {labels[best_ours]} best."
    )
    return (
        f"Our F1 ranking differs from the paper's in {len(swapped)} of {len(pairs)} pairs{partial}: "
        f"ours {_order(ours, labels)}; the paper's {_order(paper, labels)}. We put {detail}{more}.{best}"
    )


def _data_text(description: dict[str, Any] | None) -> str:
    if not description:
        return "unknown (no row measured yet)"
    sizes = description.get("split_sizes") or {}
    parts = [
        f"{description.get('notes', '?')} notes"
        + (
            f" (train {sizes.get('train')}, valid {sizes.get('valid')}, test {sizes.get('test')})"
            if sizes
            else ""
        ),
        f"sources {', '.join(map(str, description.get('sources') or ['?']))}",
        f"pitches {', '.join(map(str, description.get('pitches') or ['?']))}",
        f"families {', '.join(map(str, description.get('families') or ['?']))}",
        f"split by {description.get('split_rule', '?')} (seed {description.get('split_seed', '?')})",
    ]
    path = description.get("path")
    if path:
        parts.append(f"features folder `{Path(str(path)).name}`")
    return "; ".join(parts)


def _choices_text(rows: dict[str, dict[str, Any]]) -> str:
    """The settings of the measured rows that the paper does not publish: the dropout rate and each kind of
    penalty's weight ("" when no measured row has one)."""
    configs = [flatten(d["config"]) for d in rows.values() if isinstance(d.get("config"), dict)]
    rates = sorted({c.get("dropout_rate") for c in configs if c.get("dropout_where", "none") != "none"} - {None})
    weights: dict[str, set] = {}
    for c in configs:
        if c.get("regularizer", "none") != "none":
            if c.get("regularizer_weight") is not None:
                weights.setdefault(f"{c['regularizer']} {str(c.get('regularizer_norm', '')).upper()}", set()).add(
                    c["regularizer_weight"])
    parts = [f"dropout rate {', '.join(map(str, rates))}"] if rates else []
    parts += [f"{label} weight {', '.join(f'{w:g}' for w in sorted(ws))}" for label, ws in sorted(weights.items())]
    return "; ".join(parts)


def _budget_text(rows: dict[str, dict[str, Any]]) -> str:
    if not rows:
        return "no row run yet"
    budgets = sorted({json.dumps(d.get("budget") or {}, sort_keys=True) for d in rows.values()})
    texts = []
    for b in map(json.loads, budgets):
        limit = b.get("limit")
        texts.append(
            f"at most {b.get('max_epochs', '?')} epochs, early stopping patience {b.get('patience', '?')}, "
            + (f"at most {limit} training notes" if limit else "all training notes")
        )
    epochs = [d.get("epochs") for d in rows.values() if isinstance(d.get("epochs"), int)]
    stops = sorted({str(d.get("stopped")) for d in rows.values()})
    text = " | ".join(texts)
    if epochs:
        text += f"; epochs run {min(epochs)}-{max(epochs)} (stopped by: {', '.join(stops)})"
    walls = {d.get("run"): d.get("wall_s") for d in rows.values()}
    total = sum(w for w in walls.values() if isinstance(w, (int, float)) and math.isfinite(w))
    text += f"; training time {duration_text(total)} over {len(walls)} runs"
    return text


def render_tables(
    rows: dict[str, dict[str, Any]],
    *,
    data_description: dict[str, Any] | None = None,
    split: str = "test",
    generated: str | None = None,
    pca: list[dict[str, Any]] | None = None,
) -> str:
    """tables.md as text: header, the four tables (ours beside the paper's), a ranking sentence each, and the
    PCA baseline's rows (``pca``, from :func:`load_pca`)."""
    if data_description is None and rows:
        data_description = next(iter(rows.values())).get("data")
    signatures = {
        json.dumps({k: v for k, v in (d.get("data") or {}).items() if k != "path"}, sort_keys=True)
        for d in rows.values()
    }
    hardware_set = sorted({hardware_text(d.get("hardware") or {}) for d in rows.values()})
    notes = sorted({(d.get("metrics") or {}).get("notes") for d in rows.values()} - {None})
    lines = [
        "# Reproduction of the paper's Tables I-IV",
        "",
        f"- **Data**: {_data_text(data_description)}."
        + (" **Warning: the rows were measured on different data.**" if len(signatures) > 1 else ""),
        f"- **Split measured**: {split}"
        + (f" ({', '.join(map(str, notes))} notes)" if notes else "")
        + "; the paper used a 3750-note single-pitch NSynth subset split 80/10/10.",
        f"- **Budget**: {_budget_text(rows)}. The paper trained to early stopping (patience 10) on a Tesla P100.",
        f"- **Hardware**: {'; '.join(hardware_set) if hardware_set else 'none yet'}.",
        *([f"- **Not in the paper, our choice** (training/model/conv.py says why): {choices}."]
          if (choices := _choices_text(rows)) else []),
        "- **Metrics**: `synth.metrics.summary`: per-note RMSE and SSIM (scikit-image, data_range 1, 7x7 window) "
        "on the unit scale, and the paper's harmonic recall/precision/F1 (peaks of each frame in dB within 30 dB "
        "of the frame's highest, band-centre frequencies, one-to-one matches within 3 %, silent frames "
        "skipped), each averaged over notes.",
        "- Columns: ours, then the paper's in parentheses. Rows that are one model (No Reg = Max Pooling = "
        "Latent Dim 8192 = Dense) share one run.",
    ]
    if generated:
        lines.append(f"- Generated by `melsynth experiments` on {generated}.")
    for table in TABLES:
        lines += ["", f"## Table {table.number}: {table.caption}", ""]
        header = "| Experiment | " + " | ".join(label for _, label in METRIC_COLUMNS) + " | Epochs |"
        lines += [header, "|" + "---|" * (len(METRIC_COLUMNS) + 2)]
        for name, label in table.rows:
            doc = rows.get(name)
            paper = PAPER[name]
            if doc is None:
                cells = [f"not run ({_cell(paper[k])})" for k, _ in METRIC_COLUMNS] + ["-"]
            else:
                metrics = doc.get("metrics") or {}
                cells = [f"{_cell(metrics.get(k))} ({_cell(paper[k])})" for k, _ in METRIC_COLUMNS]
                cells.append(
                    f"{doc.get('epochs', '?')}"
                    + (f" (best {doc['best_epoch']})" if doc.get("best_epoch") else "")
                )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", ranking_sentence(table, rows)]
    if pca:
        lines += ["", "## PCA baseline", "",
                  "PCA fitted on the same training notes (numpy's SVD), the first K principal directions, on the same "
                  "test notes: the linear code an autoencoder has to beat.", "",
                  "| PCA | " + " | ".join(label for _, label in METRIC_COLUMNS) + " |",
                  "|" + "---|" * (len(METRIC_COLUMNS) + 1)]
        for row in pca:
            label = (f"{row['components']} components of {row['train_notes']} notes" if row["components"]
                     else f"0 components: the mean of the {row['train_notes']} notes")
            lines.append(f"| {label} | " + " | ".join(_cell(row.get(k)) for k, _ in METRIC_COLUMNS) + " |")
        mean = next((row for row in pca if row["components"] == 0), None)
        if mean is not None:
            lines += ["", f"The mean training note is the same output whatever the input, yet its harmonic F1 is "
                      f"{_cell(mean.get('f1'))}: at one pitch every note's harmonics lie at the same frequencies, so "
                      "F1 rewards peaks in the right places before it rewards the right note. Read each row's F1 "
                      "beside this one, and a row that collapsed to nearly one output (activity penalties on the "
                      "decoder) by its RMSE and SSIM; the paper reports F1 0 for such rows."]
    lines += ["", "## Overall", "", overall_sentence(rows)]
    return "\n".join(lines) + "\n"


def overall_sentence(rows: dict[str, dict[str, Any]]) -> str:
    """Our best row by F1 over every table, beside the paper's best (No Dense)."""
    scored = {
        name: float(doc["metrics"]["f1"])
        for name, doc in rows.items()
        if isinstance((doc.get("metrics") or {}).get("f1"), (int, float))
        and math.isfinite(doc["metrics"]["f1"])
    }
    if not scored:
        return "No row measured yet."
    best = max(scored, key=scored.get)
    m = rows[best]["metrics"]
    same = " as in the paper" if best == "no_dense" else " (the paper's best is No Dense)"
    return (
        f"Our best row by F1 is {LABEL_OF[best]}{same}: RMSE {_cell(m.get('rmse'))}, SSIM {_cell(m.get('ssim'))}, "
        f"F1 {_cell(m.get('f1'))}; the paper's No Dense has RMSE 0.063, SSIM 0.861, F1 0.855."
    )


def write_tables(
    out: str | Path, *, data_description: dict[str, Any] | None = None, split: str = "test"
) -> Path:
    """Render tables.md from the row JSONs under ``out/rows`` and write it atomically; returns its path."""
    out = Path(out)
    rows = load_rows(out)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = render_tables(rows, data_description=data_description, split=split, generated=when, pca=load_pca(out))
    path = out / "tables.md"
    atomic_write_text(path, text)
    return path
