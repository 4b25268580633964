"""The PCA baseline beside the tables: ``OUT/pca.json``, measured once per features folder and note limit."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synth.atomic import atomic_write_text
from synth.errors import DataError
from training.experiments.plan import row_configs

__all__ = ["PCA_FILE", "write_pca_row", "load_pca"]


PCA_FILE = "pca.json"


def write_pca_row(out: Path, feats: Any, *, overrides: dict[str, Any] | None, limit: int | None,
                  log: Callable[[str], None]) -> None:
    """``out/pca.json``: PCA of the rows' training notes beside the tables (k = min(2048, notes), and 128),
    measured once per features folder and note limit (kept while both are the same)."""
    from training.fit.notes import training_rows
    from training.model.families import latent_shape
    from training.pca_baseline import pca_test_metrics

    path = out / PCA_FILE
    signature = {**{k: v for k, v in feats.description().items() if k != "path"}, "limit": limit}
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
            if doc.get("data") == signature and any(r.get("components") == 0 for r in doc.get("rows", [])):
                return
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            pass  # rewritten below
    config = row_configs(overrides)["no_dense"]
    latent = math.prod(latent_shape(config, params=feats.params))
    rows = pca_test_metrics(feats, train_rows=training_rows(feats, seed=config.schedule.seed, limit=limit),
                            latent_size=latent, log=log, with_mean=True)
    atomic_write_text(path, json.dumps({"data": signature, "rows": rows}, indent=2) + "\n")


def load_pca(out: str | Path) -> list[dict[str, Any]]:
    """The PCA rows of ``out/pca.json`` (empty when not measured yet)."""
    path = Path(out) / PCA_FILE
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()).get("rows") or [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); delete it to measure PCA again") from None
