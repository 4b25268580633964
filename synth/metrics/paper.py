"""The paper's best model's figures (Table IV, no dense layer), which every table here is read against.

Natsiou, Longo and O'Leary measured them on NSynth at one pitch with a random 80/10/10 split, so instruments
may appear in training and test alike; this project's test splits hold instruments no model trained on.
"""

from __future__ import annotations

__all__ = ["PAPER_NO_DENSE"]

PAPER_NO_DENSE = {"rmse": 0.063, "ssim": 0.861, "precision": 0.859, "recall": 0.856, "f1": 0.855}
