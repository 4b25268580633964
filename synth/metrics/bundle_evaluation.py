"""A bundle's paper metrics on NSynth-format notes, beside PCA fitted on the same training notes
(``melsynth evaluate --bundle``), and the readable table of any evaluation's result.

The features are computed by the bundle's contract (:func:`synth.spectrogram.log_mel`) from the NSynth-format
folder's ``examples.json`` and ``audio/*.wav``; the split is the bundle's recorded rule and seed.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError
from synth.metrics.evaluation import (
    HEARD_METHODS,
    SPLITS,
    Reconstruct,
    batches,
    measure,
    pca_reconstructors,
    with_pca,
)
from synth.metrics.paper import PAPER_NO_DENSE

__all__ = ["evaluate_bundle", "format_table", "json_ready", "nan_to_none", "PAPER_BEST"]


# The paper's best model (Table IV, "No Dense"), for the readable table.
PAPER_BEST = PAPER_NO_DENSE
_LABELS = (("rmse", "RMSE"), ("ssim", "SSIM"), ("recall", "recall"), ("precision", "precision"), ("f1", "F1"))


def _bundle_notes(
    folder: Path, *, split: str | None, data_description: Any
) -> tuple[list[tuple[Path, dict[str, Any]]], str]:
    """(audio path, example) of the notes to measure, and a phrase saying which notes they are."""
    # numpy/json only, like the split rule below: the same reader and checks as `melsynth dataset features`
    from synth.data.nsynth_format import read_examples as _read_examples

    nested = {s: folder / f"nsynth-{s}" for s in ("train", "valid", "test")}
    if not (folder / "examples.json").is_file() and any(
        (p / "examples.json").is_file() for p in nested.values()
    ):
        split = split or "test"
        names = ("train", "valid", "test") if split == "all" else (split,)
        notes = []
        for name in names:
            sub = nested[name]
            if not (sub / "examples.json").is_file():
                raise DataError(f"{sub}: missing (no {name} split in {folder})")
            examples = _read_examples(sub)
            notes += [(sub / "audio" / f"{k}.wav", examples[k]) for k in sorted(examples)]
        return notes, f"{split} split of {folder}"
    if not folder.is_dir():
        raise DataError(f"{folder}: no such NSynth-format folder")
    examples = _read_examples(folder)
    names = sorted(examples)  # the row order of `melsynth dataset features`
    rule = data_description.get("split_rule") if isinstance(data_description, dict) else None
    seed = data_description.get("split_seed") if isinstance(data_description, dict) else None
    if split is None:
        split = "test" if rule is not None else "all"
    if split == "all":
        return [(folder / "audio" / f"{k}.wav", examples[k]) for k in names], f"all notes of {folder}"
    recorded = data_description.get("notes") if isinstance(data_description, dict) else None
    if isinstance(recorded, int) and recorded != len(names):
        # The split is cut from the notes there are: one recording more or less moves every note's split.
        raise DataError(
            f"{folder} holds {len(names)} notes, the bundle's training data {recorded}: its {split!r} split would not "
            "be the bundle's and may hold notes it trained on; measure the folder it was made from, or --split all"
        )
    if rule is None or seed is None:
        raise ParameterError(
            f"the bundle records no split rule, so the {split!r} split of {folder} is unknown; use --split all "
            "or a folder holding nsynth-train/valid/test"
        )
    from synth.data.splits import make_splits  # numpy only: the very rule the features used

    rows = [dict(examples[k]) for k in names]
    for row in rows:
        row.setdefault("instrument_str", row["note_str"].rsplit("-", 2)[0])
    chosen = make_splits(rows, rule=str(rule), seed=int(seed))[split]
    return (
        [(folder / "audio" / f"{names[i]}.wav", examples[names[i]]) for i in chosen],
        f"{split} split of {folder} (rule {rule}, seed {seed})",
    )


def _note_features(path: Path, params: Any) -> np.ndarray:
    import soundfile as sf

    from synth.spectrogram import log_mel

    try:
        y, sr = sf.read(path, dtype="float64", always_2d=True)
    except FileNotFoundError:
        raise DataError(f"{path}: missing audio file") from None
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise DataError(f"{path}: unreadable audio ({exc})") from None
    if sr != params.sample_rate:
        raise DataError(f"{path}: sample rate {sr} Hz, the bundle's contract says {params.sample_rate} Hz")
    if y.shape[0] == 0:
        raise DataError(f"{path}: empty audio file")
    return log_mel(y.mean(axis=1), params=params, name=str(path))


def _spilled_features(paths: list[Path], params: Any, *, folder: Path, progress: bool
                      ) -> Callable[[slice], np.ndarray]:
    """The log-mels of ``paths``, computed once into a float32 file in ``folder``, and a reader of any slice of
    them: the PCA fit reads each note several times (once per pass), and a log-mel from its WAV costs more
    than reading it back, while holding them all is what it must not do."""
    path = folder / "notes.f32"
    values = params.n_mels * params.frames
    try:
        with open(path, "wb") as fh:
            for i in batches(len(paths), 1, desc="PCA training notes", progress=progress):
                fh.write(np.ascontiguousarray(_note_features(paths[i.start], params), np.float32).tobytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot write the PCA's training notes there ({exc})") from None

    def read(part: slice) -> np.ndarray:
        with open(path, "rb") as fh:
            fh.seek(part.start * values * 4)
            flat = np.fromfile(fh, np.float32, (part.stop - part.start) * values)
        return flat.reshape(-1, params.n_mels, params.frames)

    return read


def evaluate_bundle(
    bundle_dir: str | Path,
    *,
    data: str | Path,
    split: str | None = None,
    all_pitches: bool = False,
    batch_size: int = 16,
    progress: bool = True,
    pca: bool = False,
    heard: int = 0,
) -> tuple[dict[str, Any], str]:
    """Metrics of a bundle's encoder + decoder (onnxruntime) on notes of an NSynth-format folder.

    Parameters
    ----------
    bundle_dir : a bundle folder (:func:`synth.bundle.load_bundle` checks it)
    data : an NSynth-format folder, or a folder of nsynth-{train,valid,test} folders
    split : see the module docstring; None picks the default
    all_pitches : measure every note, not only those at the bundle's base_pitch
    pca : also measure PCA fitted on the folder's train split (by the bundle's recorded split rule, at the
        base pitch unless ``all_pitches``)

    Returns
    -------
    (the dict of :func:`synth.metrics.summary` with a "pca" list when ``pca``, a phrase describing the notes)
    """
    from synth.bundle import load_bundle

    if split is not None and split not in SPLITS:
        raise ParameterError(f"split {split!r}: expected one of {SPLITS}")
    bundle = load_bundle(bundle_dir)
    params = bundle.params
    notes, what = _bundle_notes(Path(data), split=split, data_description=bundle.metadata.get("data"))
    if not all_pitches:
        kept = [n for n in notes if n[1].get("pitch") == bundle.base_pitch]
        if not kept:
            raise DataError(
                f"no note of the {what} is at the bundle's base pitch {bundle.base_pitch}; use --all-pitches"
            )
        if len(kept) < len(notes):
            what += f", pitch {bundle.base_pitch} only ({len(notes) - len(kept)} other notes skipped)"
        notes = kept
    keys = getattr(bundle, "keys", None)
    if keys is not None:  # a keyboard model encodes and decodes each note at its own key: a trained one
        kept = [n for n in notes if n[1].get("pitch") in keys]
        if not kept:
            raise DataError(f"no note of the {what} is at one of the bundle's trained keys {list(keys)}")
        if len(kept) < len(notes):
            what += f", trained keys only ({len(notes) - len(kept)} notes at other keys skipped)"
        notes = kept
    encoder, decoder = bundle.encoder(), bundle.decoder()
    batch_keys: list[np.ndarray | None] = [None]  # the keys of the batch ``originals`` read last

    def originals(part: slice) -> np.ndarray:
        if keys is not None:
            batch_keys[0] = np.asarray([int(ex["pitch"]) for _, ex in notes[part]], dtype=np.int32)
        return np.stack([_note_features(path, params) for path, _ in notes[part]])

    def reconstruct(x: np.ndarray) -> np.ndarray:
        # measure() reads each batch's originals, then reconstructs that batch
        return decoder.decode(encoder.encode(x, pitch=batch_keys[0]), pitch=batch_keys[0])

    reconstructors: dict[str, Reconstruct] = {"model": reconstruct}
    pca_info: dict[str, int] = {}
    train: list[tuple[Path, dict[str, Any]]] = []
    if pca:
        try:
            train, train_what = _bundle_notes(
                Path(data), split="train", data_description=bundle.metadata.get("data")
            )
        except (ParameterError, DataError) as exc:
            # Not an error of the evaluation asked for: the model's figures stand without the baseline.
            print(f"melsynth evaluate: no PCA baseline: the training notes are unknown ({exc})", file=sys.stderr)
            pca = False
    if pca:
        if not all_pitches:
            train = [n for n in train if n[1].get("pitch") == bundle.base_pitch]

        with tempfile.TemporaryDirectory(prefix="melsynth-pca-") as spill:
            read = _spilled_features([path for path, _ in train], params, folder=Path(spill), progress=progress)
            more, pca_info = pca_reconstructors(
                read, len(train), shape=(params.n_mels, params.frames), latent_size=bundle.latent_size,
                what=f"notes of the {train_what}", progress=progress,
            )
        reconstructors.update(more)
    measured = measure(
        originals,
        reconstructors,
        len(notes),
        params=params,
        batch_size=batch_size,
        desc=f"evaluate {Path(bundle_dir).name}",
        progress=progress,
        heard=heard,
    )
    return with_pca(measured, pca_info), what


# ---------------------------------------------------------------------------------------------- output
def nan_to_none(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts) as None, for JSON."""
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def json_ready(result: dict[str, Any]) -> dict[str, Any]:
    from synth.metrics import SUMMARY_KEYS

    out: dict[str, Any] = {}
    for key in SUMMARY_KEYS:
        value = result[key]
        if key == "notes":
            out[key] = int(value)
        else:
            out[key] = float(value) if math.isfinite(value) else None
    if "heard" in result:
        out["heard"] = {k: (v if k == "notes" else {m: (x if math.isfinite(x) else None) for m, x in v.items()})
                        for k, v in result["heard"].items()}
    if "heard_regions" in result:
        out["heard_regions"] = nan_to_none(result["heard_regions"])
    if "pca" in result:
        out["pca"] = [
            dict(json_ready(row), components=int(row["components"]), train_notes=int(row["train_notes"]))
            for row in result["pca"]
        ]
    return out


def format_table(result: dict[str, Any], *, what: str) -> str:
    """A readable table of one result beside its PCA baselines (when measured) and the paper's best model."""
    columns = [("ours", result)] + [(f"PCA {row['components']}", row) for row in result.get("pca", [])]
    header = "".join(f"{name:>10}" for name, _ in columns)
    lines = [f"{what}: {result['notes']} notes", f"  {'metric':<10}{header} {'paper best':>11}"]
    for key, label in _LABELS:
        cells = "".join(f"{r[key]:>10.4f}" if math.isfinite(r[key]) else f"{'n/a':>10}" for _, r in columns)
        lines.append(f"  {label:<10}{cells} {PAPER_BEST[key]:>11.3f}")
    if result.get("pca"):
        lines.append(f"  (PCA K: the first K principal directions of the same {result['pca'][0]['train_notes']} "
                     "training notes)")
    lines.append(
        "  (paper best: Table IV 'No Dense', NSynth subset at one pitch; lower RMSE, higher others better)"
    )
    heard = result.get("heard")
    if heard:
        lines.append(f"  error as heard (dB over loud bins, {heard['notes']} notes): " + "; ".join(
            f"{'ours' if k == 'model' else k.replace('pca_', 'PCA ')} " + " / ".join(f"{v[m]:.2f}" for m in HEARD_METHODS)
            for k, v in heard.items() if k != "notes") + f" ({' / '.join(HEARD_METHODS)})")
    for source, by_method in result.get("heard_regions", {}).items():
        who = "ours" if source == "model" else source.replace("pca_", "PCA ")
        for method, r in by_method.items():
            lines.append(f"    {who}, {method}, by region (bias / abs dB): " + "; ".join(
                f"{k} {r['bias'][k]:+.1f} / {r['abs'][k]:.1f}" for k in r["bias"]) + f"; top band {r['top_band_ratio']:.2f}")
    return "\n".join(lines)
