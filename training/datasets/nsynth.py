"""Select notes from a real NSynth split (folder or TFRecord) into a new NSynth-format folder.

A folder split is ``nsynth-{train,valid,test}/examples.json`` + ``audio/<note_str>.wav``; the TFRecord form
``nsynth-{split}.tfrecord`` carries the same fields plus ``audio`` (64000 floats in [-1, 1]). Reading TFRecords
needs TensorFlow (the ``train`` extra); folders need only soundfile.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_directory
from synth.data.nsynth_format import FAMILIES, SOURCES, read_examples, write_examples, write_note_audio
from synth.errors import DataError
from synth.outputs import NSYNTH_DATASET, check_output_folder

__all__ = ["select_nsynth", "iter_tfrecord"]


def _matches(rec: dict[str, Any], *, pitch, families, sources, velocities) -> bool:
    if pitch is not None and rec.get("pitch") != pitch:
        return False
    if families and rec.get("instrument_family_str") not in families:
        return False
    if sources and rec.get("instrument_source_str") not in sources:
        return False
    return not (velocities and rec.get("velocity") not in velocities)


def iter_tfrecord(path: Path) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
    """Yield (record, audio) from an NSynth TFRecord file."""
    try:
        from training.quiet_tensorflow import import_tensorflow

        tf = import_tensorflow()
    except ModuleNotFoundError:
        raise DataError(f"{path}: reading TFRecords needs TensorFlow (pip install 'melsynth[train]')") from None
    ints = ["note", "instrument", "pitch", "velocity", "sample_rate", "instrument_family", "instrument_source"]
    strs = ["note_str", "instrument_str", "instrument_family_str", "instrument_source_str"]
    spec = {k: tf.io.FixedLenFeature([], tf.int64) for k in ints}
    spec.update({k: tf.io.FixedLenFeature([], tf.string) for k in strs})
    spec["qualities"] = tf.io.VarLenFeature(tf.int64)
    spec["audio"] = tf.io.VarLenFeature(tf.float32)
    try:
        for raw in tf.data.TFRecordDataset(str(path)):
            ex = tf.io.parse_single_example(raw, spec)
            rec = {k: int(ex[k].numpy()) for k in ints}
            rec.update({k: ex[k].numpy().decode() for k in strs})
            rec["qualities"] = [int(q) for q in tf.sparse.to_dense(ex["qualities"]).numpy()]
            rec["qualities_str"] = []
            yield rec, tf.sparse.to_dense(ex["audio"]).numpy().astype(np.float32)
    except tf.errors.OpError as exc:
        raise DataError(f"{path}: not a readable NSynth TFRecord ({exc.message.splitlines()[0]})") from None


def select_nsynth(
    src: str | Path, *, out: str | Path, pitch: int | None = 60, families: list[str] | None = None,
    sources: list[str] | None = None, velocities: list[int] | None = None, force: bool = False,
) -> int:
    """Copy the notes of ``src`` that match the filters into the NSynth-format folder ``out``.

    Returns the number of notes selected (zero is an error: nothing is written).
    """
    src, out = Path(src), Path(out)
    for fam in families or []:
        if fam not in FAMILIES:
            raise DataError(f"family {fam!r}: expected one of {FAMILIES}")
    for s in sources or []:
        if s not in SOURCES:
            raise DataError(f"source {s!r}: expected one of {SOURCES}")
    check_output_folder(out, kind=NSYNTH_DATASET, force=force, inputs=[src])
    filt = {"pitch": pitch, "families": families, "sources": sources, "velocities": velocities}
    chosen: dict[str, dict] = {}
    with atomic_directory(out, kind=NSYNTH_DATASET, force=force, inputs=[src]) as tmp:
        (tmp / "audio").mkdir()
        if src.is_file():
            for rec, audio in iter_tfrecord(src):
                if _matches(rec, **filt):
                    rec["dataset_source"] = "nsynth"
                    write_note_audio(tmp / "audio" / f"{rec['note_str']}.wav", audio, sample_rate=rec["sample_rate"])
                    chosen[rec["note_str"]] = rec
        else:
            examples = read_examples(src)
            for key, rec in examples.items():
                if _matches(rec, **filt):
                    wav = src / "audio" / f"{key}.wav"
                    if not wav.is_file():
                        raise DataError(f"{wav}: missing audio file for note {key}")
                    shutil.copyfile(wav, tmp / "audio" / f"{key}.wav")
                    chosen[key] = dict(rec, dataset_source=rec.get("dataset_source", "nsynth"))
        if not chosen:
            raise DataError(f"{src}: no note matches the selection {filt}")
        write_examples(tmp, chosen)
    return len(chosen)
