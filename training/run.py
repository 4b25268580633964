"""Open a finished (or interrupted) run folder written by :func:`training.fit.fit`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from synth.errors import DataError
from synth.json_files import read_json_file
from synth.spectrogram import SpectrogramParams
from training.datasets.features import sha256_file
from training.model.config import ModelConfig

__all__ = ["Run", "load_run"]


@dataclasses.dataclass(frozen=True)
class Run:
    """A run folder: its resolved ``config``, spectrogram contract ``params``, ``data`` description,
    ``fit`` settings and ``status`` (epochs, best epoch, why it stopped)."""

    path: Path
    config: ModelConfig
    params: SpectrogramParams
    data: dict[str, Any]
    fit: dict[str, Any]
    status: dict[str, Any]

    @property
    def best_weights(self) -> Path:
        return self.path / "best.weights.h5"

    def _checkpointed_best(self) -> str | None:
        """The best weights' SHA-256 that the newest checkpoint records: a run stopped (killed) after a new
        best was copied but before status.json was rewritten has that one, and is whole."""
        from training.fit.checkpoints import latest_checkpoint

        ckpt = latest_checkpoint(self.path)
        if ckpt is None:
            return None
        try:
            state = json.loads((ckpt / "state.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return state.get("best_weights_sha256") if isinstance(state, dict) else None

    def check_same_notes(self, feats: Any, *, split: str) -> None:
        """DataError when the loaded features folder ``feats`` holds other notes, or splits them otherwise,
        than the folder this run trained on (its path aside: a folder may move). Its ``split`` would then not
        be the run's, and could hold notes the run trained on; ``split="all"`` asks for every note anyway."""
        if split == "all" or not self.data:
            return
        differ = feats.differences(self.data)
        if differ:
            raise DataError(
                f"features folder {feats.path} holds other notes than run {self.path} trained on "
                f"({'; '.join(differ)}): its {split!r} split is not the run's and may hold notes the run "
                "trained on; measure the run's own folder, or every note of this one (split all)"
            )

    def models(self) -> tuple[Any, Any, Any]:
        """``(autoencoder, encoder, decoder)`` built from the config with the best weights loaded (float32).

        Raises DataError if the best weights are missing, fail their SHA-256 check or do not fit.
        """
        from training.model.families import build_models

        weights = self.best_weights
        if not weights.is_file():
            raise DataError(f"{weights}: missing (the run has not finished an epoch)")
        expected = self.status.get("best_weights_sha256")
        if expected and (actual := sha256_file(weights)) != expected and actual != self._checkpointed_best():
            raise DataError(f"{weights}: fails its SHA-256 check (corrupt or changed after training)")
        import keras

        old = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("float32")
        try:
            autoencoder, encoder, decoder = build_models(self.config, params=self.params)
        finally:
            keras.mixed_precision.set_global_policy(old)
        from training.fit.weights import load_weights_whole

        load_weights_whole(autoencoder, weights, what=f"the model of {self.path / 'config.json'}")
        return autoencoder, encoder, decoder


def load_run(path: str | Path) -> Run:
    """Read a run folder's config.json and status.json; DataError for a missing or corrupt run."""
    from training.fit.run_folder import RUN_FORMAT

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such run folder")
    doc = read_json_file(path / "config.json", what="run config", error=DataError)
    if not isinstance(doc, dict) or doc.get("format") != RUN_FORMAT:
        raise DataError(f"{path / 'config.json'}: not a melsynth run config (format {RUN_FORMAT!r} expected)")
    try:
        config = ModelConfig.from_dict(doc["config"], source=f"{path / 'config.json'} config")
        params = SpectrogramParams.from_dict(doc["spectrogram"], source=f"{path / 'config.json'} spectrogram")
        data, fit = dict(doc["data"]), dict(doc["fit"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path / 'config.json'}: malformed ({exc})") from None
    status_path = path / "status.json"
    status = read_json_file(status_path, what="run status", error=DataError) if status_path.is_file() else {}
    if not isinstance(status, dict):
        raise DataError(f"{status_path}: expected a JSON object")
    return Run(path, config, params, data, fit, status)
