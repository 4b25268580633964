"""Compute the features folder (see :mod:`training.datasets.features`) from an NSynth-format folder."""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path

import numpy as np

from synth.atomic import atomic_directory, atomic_write_text
from synth.errors import DataError
from synth.outputs import FEATURES, check_output_folder
from synth.spectrogram import SpectrogramParams, log_mel
from training.datasets.features import sha256_file
from training.datasets.nsynth_format import read_examples, read_note_audio
from training.datasets.splits import make_splits

__all__ = ["compute_features", "SILENT_PEAK_DB"]

# A note whose loudest mel bin is below this is silent for our purposes (16-bit dither sits near -90 dB).
SILENT_PEAK_DB = -80.0


def _note_features(args: tuple[Path, str, SpectrogramParams]) -> np.ndarray:
    audio_dir, note_str, params = args
    path = audio_dir / f"{note_str}.wav"
    y = read_note_audio(path, sample_rate=params.sample_rate)
    x = log_mel(y, params=params, name=str(path))
    peak_db = params.db_min + float(x.max()) * (params.db_max - params.db_min)
    if peak_db < SILENT_PEAK_DB:
        raise DataError(f"{path}: silent note (loudest mel bin {peak_db:.1f} dB < {SILENT_PEAK_DB} dB)")
    return x


def compute_features(
    src: str | Path, *, out: str | Path, params: SpectrogramParams | None = None, split: str = "instrument",
    seed: int = 0, workers: int | None = None, force: bool = False, progress: bool = True,
) -> Path:
    """Turn an NSynth-format folder into a features folder.

    Every note is checked (readable, at the contract's rate, finite, not silent) before anything is kept;
    the first bad note stops the run with an error naming the file, and ``out`` is left untouched.

    Returns
    -------
    Path of the features folder, holding features.npy (N, n_mels, frames) float32, index.json,
    spectrogram.json, splits.json and checksums.json.
    """
    from tqdm import tqdm

    src, out = Path(src), Path(out)
    params = params or SpectrogramParams()
    # `dataset features D --out D --force` would replace the dataset by its own features.
    check_output_folder(out, kind=FEATURES, force=force, inputs=[src])
    examples = read_examples(src)
    audio_dir = src / "audio"
    if not audio_dir.is_dir():
        raise DataError(f"{audio_dir}: missing audio folder")
    names = sorted(examples)
    rows = [dict(examples[n]) for n in names]
    for row in rows:
        row.setdefault("dataset_source", "nsynth")
        if "instrument_str" not in row:
            row["instrument_str"] = row["note_str"].rsplit("-", 2)[0]
    splits = make_splits(rows, rule=split, seed=seed)

    with atomic_directory(out, kind=FEATURES, force=force, inputs=[src]) as tmp:
        npy = tmp / "features.npy"
        x = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32,
                                      shape=(len(rows), params.n_mels, params.frames))
        workers = workers or os.cpu_count() or 1
        jobs = [(audio_dir, n, params) for n in names]
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            it = pool.map(_note_features, jobs, chunksize=8)
            for i, feat in enumerate(tqdm(it, total=len(jobs), desc="features", unit="note",
                                          disable=not progress)):
                x[i] = feat
        x.flush()
        del x
        params.save(tmp / "spectrogram.json")
        atomic_write_text(tmp / "index.json", json.dumps({"source": str(src.resolve()), "rows": rows}, indent=1) + "\n")
        atomic_write_text(tmp / "splits.json", json.dumps({"rule": split, "seed": seed, **splits}) + "\n")
        atomic_write_text(tmp / "checksums.json", json.dumps({"features.npy": sha256_file(npy)}, indent=1) + "\n")
    return out
