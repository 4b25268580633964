"""A keyboard bundle measured key by key, beside linear baselines fitted per key (issue 28).

Two tables, on a features folder with notes at several keys (split by instrument, so the measured notes are
of instruments no model or baseline saw):

- **Per key** (each of ``keys``): the split's notes at that key, reconstructed (encoded and decoded at their
  own key) by the keyboard bundle through onnxruntime, and by two linear baselines fitted on the training
  notes at that key only: PCA of whole notes (k = min(latent size, notes - 1)) and the patch code's PCA start
  (one 8192-value patch per half second, k = the bundle's latent values per column), the linear model the
  keyboard family starts from made per key. With ``default`` (a one-pitch bundle), that bundle too at its own
  pitch. RMSE, SSIM, F1 (:func:`synth.metrics.summary`) and, with ``heard``, the error as heard.
- **Across keys**: for each instrument and velocity of the split with a note at ``source`` (60) and at key
  k, the source note encoded at ``source`` and decoded at k, against the real note at k: RMSE, SSIM, F1 and
  the sustain spectrum error (dB; :func:`synth.benchmarks.suites.transposition.spectrum_error_db`, the
  measure of bench/bench_transposition.py, where the transposed recording and today's engine stand beside
  it through real audio). Beside it the linear baseline across keys, ``aligned_patch_pca``: the per-key
  patch PCAs, the source key's coefficients mapped to the key's by least squares over the training pairs
  (one instrument and velocity at both keys), column by column.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import DataError, ParameterError

__all__ = ["evaluate_keyboard", "format_keyboard_tables", "KEYS", "SOURCE_KEY"]

KEYS = (36, 48, 60, 72, 84)
SOURCE_KEY = 60
_BATCH = 16


class _PatchBasis:
    """The patch code's PCA start fitted on the notes of one key (read by slices, a batch at a time):
    ``coefficients`` of notes [shape=(N * C, k)] and notes ``from_coefficients``, each half-second patch on the
    first ``k`` directions."""

    def __init__(self, x_train: Any, *, patch_frames: int, k: int, what: str) -> None:
        from training.model.patch import patch_pca

        self.patch_frames = patch_frames
        self.shape = tuple(x_train.shape[1:])
        self.mean, self.vt, _ = patch_pca(x_train, patch_frames=patch_frames, k=k, what=what)

    def coefficients(self, x: np.ndarray) -> np.ndarray:
        from training.model.patch import note_patches

        return (note_patches(x, patch_frames=self.patch_frames) - self.mean) @ self.vt.T

    def from_coefficients(self, c: np.ndarray) -> np.ndarray:
        n_mels, frames = self.shape
        out = np.clip(self.mean + c @ self.vt, 0.0, 1.0)
        return out.reshape(-1, frames, n_mels).transpose(0, 2, 1)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.from_coefficients(self.coefficients(x))


def _coefficients(basis: _PatchBasis, notes: Any) -> np.ndarray:
    """``basis.coefficients`` of ``notes`` (read by slices), :data:`_BATCH` notes at a time."""
    return np.concatenate([basis.coefficients(notes[i : i + _BATCH]) for i in range(0, len(notes), _BATCH)])


def _pairs(notes: list[dict[str, Any]], pitch: np.ndarray, rows: np.ndarray, a: int, b: int) -> np.ndarray:
    """[shape=(P, 2)] rows (at key ``a``, at key ``b``) of one instrument and velocity, among ``rows``."""
    by_note: dict[tuple[str, int], dict[int, int]] = collections.defaultdict(dict)
    for row in rows.tolist():
        note = notes[row]
        by_note[(str(note.get("instrument_str")), int(note.get("velocity", -1)))][int(pitch[row])] = row
    pairs = [(by[a], by[b]) for by in by_note.values() if a in by and b in by]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def _cross_key(feats: Any, pairs: np.ndarray, way, *, params: Any) -> dict[str, Any]:
    """RMSE, SSIM, F1 and the sustain spectrum error of ``way`` (notes at the source key -> notes at the
    target key) against the real notes at the target key, over ``pairs``."""
    from synth.benchmarks.suites.transposition import spectrum_error_db, sustain_spectrum
    from synth.metrics import MetricsAccumulator

    acc = MetricsAccumulator(params=params)
    spectra = []
    for i in range(0, len(pairs), _BATCH):
        x_src = np.asarray(feats.x[pairs[i : i + _BATCH, 0]], dtype=np.float32)
        x_dst = np.asarray(feats.x[pairs[i : i + _BATCH, 1]], dtype=np.float32)
        out = np.clip(np.asarray(way(x_src), dtype=np.float32), 0.0, 1.0)
        acc.add(x_dst, out)
        spectra.extend(spectrum_error_db(sustain_spectrum(a, params=params), sustain_spectrum(b, params=params))
                       for a, b in zip(x_dst, out, strict=True))
    return dict(acc.result(), spectrum_error_db=float(np.mean(spectra)))


def _default_training_instruments(bundle: Any, feats: Any, pitch: np.ndarray) -> set[str] | None:
    """The instruments a one-pitch ``bundle`` was trained on, found by splitting this features folder's notes at
    its pitch by the rule and seed its bundle.json records, when that split has the sizes it records (the same
    notes); None when it cannot be told."""
    from synth.data.splits import make_splits

    data = bundle.metadata.get("data") or {}
    sizes, rule, seed = data.get("split_sizes"), data.get("split_rule"), data.get("split_seed")
    if not isinstance(sizes, dict) or rule != "instrument" or not isinstance(seed, int):
        return None
    rows = [feats.rows[r] for r in np.flatnonzero(pitch == bundle.base_pitch).tolist()]
    split = make_splits(rows, rule=rule, seed=seed)
    if {name: len(split[name]) for name in split} != sizes:
        return None
    return {str(rows[i].get("instrument_str")) for i in split["train"]}


def _measure_paired(feats: Any, at: np.ndarray, both: dict[str, Any], *, params: Any, progress: bool, desc: str
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both reconstructors' metrics on the notes ``at``, and keyboard - default per note, paired, with a 95 %
    bootstrap interval over instruments (:func:`synth.metrics.paired.paired_difference`) for each metric."""
    from synth.metrics import MetricsAccumulator
    from synth.metrics.evaluation import batches
    from synth.metrics.paired import paired_difference

    accs = {name: MetricsAccumulator(params=params) for name in both}
    for part in batches(len(at), _BATCH, desc=desc, progress=progress):
        x = np.ascontiguousarray(feats.x[at[part]], dtype=np.float32)
        for name, reconstruct in both.items():
            accs[name].add(x, np.clip(np.asarray(reconstruct(x), dtype=np.float32), 0.0, 1.0))
    notes = {name: acc.per_note() for name, acc in accs.items()}
    instruments = np.asarray([str(feats.rows[r].get("instrument_str")) for r in at.tolist()])
    paired = {metric: paired_difference(notes["keyboard"][metric], notes["default"][metric],
                                        groups=instruments).as_dict() for metric in ("rmse", "ssim", "f1")}
    return {name: acc.result() for name, acc in accs.items()}, paired


def _key_rows(pitch: np.ndarray, rows: np.ndarray, key: int) -> np.ndarray:
    return rows[pitch[rows] == key]


def evaluate_keyboard(
    *, features: str | Path, bundle: str | Path, default: str | Path | None = None, keys=KEYS,
    source: int = SOURCE_KEY, split: str = "test", heard: int = 0, progress: bool = True,
) -> dict[str, Any]:
    """The per-key and cross-key tables (see the module docstring) as one JSON-ready dict.

    Raises
    ------
    ParameterError for a bundle that is not a keyboard bundle or keys it was not trained on; DataError for a
    features folder from another contract or without notes at a key.
    """
    from synth.bundle import load_bundle
    from synth.metrics.evaluation import measure
    from synth.metrics.pca import fit_pca
    from training.datasets.features import load_features
    from training.fit.notes import note_pitches
    from training.model.families import FAMILIES

    model = load_bundle(bundle)
    if model.keys is None:
        raise ParameterError(f"{bundle}: not a keyboard bundle (bundle.json names no trained keys)")
    missing = [k for k in (*keys, source) if k not in model.keys]
    if missing:
        raise ParameterError(f"keys {missing} are not among the bundle's trained keys {list(model.keys)}")
    feats = load_features(features)
    model.params.require_equal(feats.params, what=f"features folder {feats.path}")
    pitch = note_pitches(feats, family=FAMILIES["keyboard"])
    encoder, decoder = model.encoder(), model.decoder()
    params = model.params
    rows, train = feats.subset(split), feats.subset("train")
    latent_size = int(np.prod(model.latent_shape))
    patch_frames = params.frames // model.latent_shape[1]
    per_column = model.latent_shape[-1]

    one_pitch = load_bundle(default) if default is not None else None
    per_key: dict[str, Any] = {}
    bases: dict[int, _PatchBasis] = {}
    for key in keys:
        at, fit_at = _key_rows(pitch, rows, key), _key_rows(pitch, train, key)
        if at.size == 0 or fit_at.size < 2:
            raise DataError(f"{feats.path}: no {split} notes or too few training notes at key {key}")
        if progress:
            print(f"key {key}: fitting the per-key baselines on {fit_at.size} training notes", file=sys.stderr)
        # Both baselines stream the key's training notes (NoteRows): a batch of them in memory, not the split.
        x_train = feats.notes(fit_at)
        pca = fit_pca(x_train, components=min(latent_size, len(x_train) - 1), name=f"training notes at {key}")
        bases[key] = _PatchBasis(x_train, patch_frames=patch_frames, k=per_column, what=f"patch PCA at {key}")
        reconstructors = {
            "keyboard": lambda x, k=key: decoder.decode(encoder.encode(x, pitch=k), pitch=k),
            "pca_per_key": pca.reconstruct,
            "patch_pca_per_key": bases[key].reconstruct,
        }
        if one_pitch is not None and key == one_pitch.base_pitch and one_pitch.keys is None:
            enc1, dec1 = one_pitch.encoder(), one_pitch.decoder()
            reconstructors["default"] = lambda x, e=enc1, d=dec1: d.decode(e.encode(x))
        measured = measure(lambda part, at=at: feats.x[at[part]], reconstructors, len(at), params=params,
                           batch_size=_BATCH, desc=f"key {key}", progress=progress, heard=heard)
        per_key[str(key)] = {name: measured[name] for name in reconstructors}
        per_key[str(key)]["train_notes"] = int(fit_at.size)
        if "heard" in measured:
            per_key[str(key)]["heard"] = measured["heard"]
        if "default" in reconstructors:
            # The default's own training instruments may be among this split's: measure both models again on
            # the notes of instruments neither trained on, so the comparison at its pitch is like for like.
            seen = _default_training_instruments(one_pitch, feats, pitch)
            if seen is not None:
                fresh = at[[str(feats.rows[r].get("instrument_str")) not in seen for r in at.tolist()]]
                if fresh.size:
                    both = {name: reconstructors[name] for name in ("keyboard", "default")}
                    again, paired = _measure_paired(feats, fresh, both, params=params, progress=progress,
                                                    desc=f"key {key}, unseen by both")
                    per_key[str(key)]["unseen_by_default"] = {
                        **{name: again[name] for name in both}, "keyboard_minus_default": paired,
                        "instruments": len({feats.rows[r].get("instrument_str") for r in fresh.tolist()}),
                        "excluded_instruments": sorted({str(feats.rows[r].get("instrument_str"))
                                                        for r in at.tolist()} & seen)}

    # Across keys: the pairs (source row, key row) of one instrument and velocity, in the split and in training.
    cross: dict[str, Any] = {}
    aligned: dict[str, Any] = {}
    for key in keys:
        if key == source:
            continue
        pairs = _pairs(feats.rows, pitch, rows, source, key)
        if not pairs.size:
            raise DataError(f"{feats.path}: no {split} instrument has notes at both {source} and {key}")
        # The linear baseline across keys: the key-60 note's patch coefficients mapped to the key's by least
        # squares over the training pairs (column by column), decoded by the key's patch PCA.
        fit_pairs = _pairs(feats.rows, pitch, train, source, key)
        c_src = _coefficients(bases[source], feats.notes(fit_pairs[:, 0]))
        c_dst = _coefficients(bases[key], feats.notes(fit_pairs[:, 1]))
        mapping = np.linalg.lstsq(c_src, c_dst, rcond=None)[0]
        ways = {
            "keyboard": lambda x, k=key: decoder.decode(encoder.encode(x, pitch=source), pitch=k),
            "aligned_patch_pca": lambda x, k=key, m=mapping: bases[k].from_coefficients(
                bases[source].coefficients(x) @ m),
        }
        for name, way in ways.items():
            measured = _cross_key(feats, pairs, way, params=params)
            (cross if name == "keyboard" else aligned)[str(key)] = measured
        if progress:
            print(f"key {source} -> {key}: {len(pairs)} test pairs, {len(fit_pairs)} training pairs", file=sys.stderr)
    return {
        "bundle": str(bundle), "features": str(feats.path), "split": split, "keys": list(keys), "source": source,
        "latent_size": latent_size, "per_key": per_key, "cross_key": cross, "cross_key_aligned_patch_pca": aligned,
        "default": None if default is None else str(default),
    }


def format_keyboard_tables(result: dict[str, Any]) -> str:
    """The two tables as markdown."""
    keys = [str(k) for k in result["keys"]]
    names = sorted({n for by in result["per_key"].values() for n in by if isinstance(by[n], dict)
                    and "rmse" in by[n]}, key=lambda n: ("keyboard", "default", "pca_per_key",
                                                         "patch_pca_per_key").index(n))
    lines = [f"Per key ({result['split']} split: notes of unseen instruments, reconstructed at their own key):", "",
             "| model | " + " | ".join(f"key {k} RMSE / SSIM / F1" for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name in names:
        cells = []
        for k in keys:
            r = result["per_key"][k].get(name)
            cells.append("-" if r is None else f"{r['rmse']:.4f} / {r['ssim']:.3f} / {r['f1']:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for k in keys:
        fair = result["per_key"][k].get("unseen_by_default")
        if fair:
            lines += ["", f"At key {k}, on the {fair['instruments']} instruments neither model trained on (the default "
                          f"trained on {', '.join(fair['excluded_instruments'])}):", ""]
            for name in ("keyboard", "default"):
                r = fair[name]
                lines.append(f"- {name}: {r['rmse']:.4f} / {r['ssim']:.3f} / {r['f1']:.3f}")
            for metric, d in (fair.get("keyboard_minus_default") or {}).items():
                lines.append(f"- keyboard - default, {metric}, paired over {d['notes']} notes: {d['mean']:+.4f} "
                             f"({d['confidence']:.0%} interval over {d['groups']} instruments {d['low']:+.4f} .. "
                             f"{d['high']:+.4f})")
    lines += ["", f"Across keys (the key-{result['source']} note encoded, decoded at each key, against the real "
                  "note there):", "",
              "| key | model | RMSE | SSIM | F1 | sustain spectrum error (dB) | pairs |",
              "|---|---|---|---|---|---|---|"]
    for k in result["cross_key"]:
        for name, table in (("keyboard", result["cross_key"]), ("aligned_patch_pca",
                                                                 result.get("cross_key_aligned_patch_pca", {}))):
            if k in table:
                r = table[k]
                lines.append(f"| {k} | {name} | {r['rmse']:.4f} | {r['ssim']:.3f} | {r['f1']:.3f} | "
                             f"{r['spectrum_error_db']:.2f} | {r['notes']} |")
    return "\n".join(lines)
