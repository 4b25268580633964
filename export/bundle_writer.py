"""The export: a run folder -> a checked model bundle folder (see :mod:`synth.bundle.bundle`).

Steps, each printed: load the run's Keras models and its features folder; convert encoder and decoder
with tf2onnx (the decoder with each upsampling folded into the transposed convolution after it, an exact
rewrite at about half the decode time); check parity (ONNX vs the Keras models the run trained, real and
random inputs, max |diff| <= 1e-4) and stop if it fails; encode the training split with the ONNX encoder for the macros (mean, 16 principal components and
their stds); encode the chosen real notes for the presets; take the test metrics (the run's metrics.json,
else measured now through onnxruntime); write everything into a temporary folder, load it with
:func:`synth.bundle.load_bundle` (the engine's own checks), and only then rename it into place.
"""

from __future__ import annotations

import collections
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from export.parity import PARITY_TOLERANCE, check_parity
from export.preset_notes import choose_preset_notes
from export.tiles import TILE_COLUMNS, check_tiles, measure_reach
from synth.atomic import atomic_directory
from synth.bundle import (
    BundleManifest,
    Decoder,
    Encoder,
    PresetSeed,
    load_bundle,
    macros_from_latents,
    write_bundle,
)
from synth.bundle.tiles import TileLayout
from synth.errors import BundleError, DataError, ParameterError
from synth.json_files import read_json_file
from synth.metrics.paper import PAPER_NO_DENSE
from synth.outputs import BUNDLE, check_output_folder
from training.onnx_convert import OPSET, keras_to_onnx

__all__ = ["export_run", "MACRO_COUNT"]

MACRO_COUNT = 16
TILE_FILE = "decoder_tile.onnx"
_BATCH = 16


def _sessions(
    decoder_bytes: bytes, encoder_bytes: bytes, *, latent_shape, mel_shape, probe_pitch: int | None
) -> tuple[Decoder, Encoder]:
    # Parity and encoding run on the CPU provider: the numbers recorded must not depend on a GPU's kernels.
    cpu = ["CPUExecutionProvider"]
    dec = Decoder(
        decoder_bytes,
        name="decoder.onnx",
        input_name="latent",
        output_name="mel",
        input_shape=latent_shape,
        output_shape=mel_shape,
        providers=cpu,
        threads=None,
        probe_pitch=probe_pitch,
    )
    enc = Encoder(
        encoder_bytes,
        name="encoder.onnx",
        input_name="mel",
        output_name="latent",
        input_shape=mel_shape,
        output_shape=latent_shape,
        providers=cpu,
        threads=None,
        probe_pitch=probe_pitch,
    )
    return dec, enc


class _AtKey:
    """A keyboard bundle's decoder fixed at one key, for the checks that decode latents alone (tiles)."""

    def __init__(self, decoder: Decoder, key: int | None) -> None:
        self._decoder, self._key = decoder, key

    def decode(self, latents: np.ndarray) -> np.ndarray:
        return self._decoder.decode(latents, pitch=self._key)


def _tile_decoder(
    keras_decoder, the_run, *, decoder: Decoder, decoder_bytes: bytes, encoder: Encoder, latent_shape: tuple[int, ...],
    notes: np.ndarray, pitch: np.ndarray | None, log,
) -> tuple[str | None, bytes | None, dict | None]:
    """The tile decoder's file name, ONNX bytes and bundle.json entry, proved exact at every window position
    against the whole-note ONNX decoder; (None, None, None) for a model that has no latent time columns. A
    decoder that takes any number of columns (ModelFamily.decodes_any_columns) is its own tile decoder
    (decoder.onnx). A pitch-conditioned one is checked at the first of ``notes``' keys."""
    config, params = the_run.config, the_run.params
    family = config.family
    key = None if pitch is None else int(pitch[0])
    if len(latent_shape) != 3 or latent_shape[1] <= TILE_COLUMNS:  # a dense latent has no time axis
        log("  no tile decoder (the latent has no time columns to window)")
        return None, None, None
    rows, columns, channels = latent_shape
    reach = measure_reach(_AtKey(decoder, key), latent_shape=latent_shape, frames=params.frames)
    try:
        layout = TileLayout(columns=TILE_COLUMNS, total_columns=columns, frames_per_column=params.frames // columns,
                            reach_frames=reach)
    except BundleError as exc:
        log(f"  no tile decoder ({exc})")
        return None, None, None
    window = (rows, TILE_COLUMNS, channels)
    if family.decodes_any_columns:
        tile_file, tile_bytes = "decoder.onnx", decoder_bytes
    else:
        graph, graph_input = family.export_decoder(keras_decoder, config, params=params, columns=TILE_COLUMNS)
        tile_file, tile_bytes = TILE_FILE, keras_to_onnx(
            graph, input_name="latent", input_shape=graph_input, output_name="mel", pitch=family.pitch_conditioned,
            doc=f"melsynth tile decoder ({TILE_COLUMNS} latent columns) of run {Path(the_run.path).name}",
        )
    tile = Decoder(tile_bytes, name=tile_file, input_name="latent", output_name="mel", input_shape=window,
                   output_shape=(params.n_mels, TILE_COLUMNS * layout.frames_per_column),
                   providers=["CPUExecutionProvider"], threads=None, probe_pitch=key)
    rng = np.random.default_rng(1)
    latents = np.concatenate([
        _encode_rows(encoder, notes, np.arange(len(notes)), pitch=pitch),
        rng.standard_normal((8, *latent_shape)).astype(np.float32),
    ])
    parity = check_tiles(_AtKey(decoder, key), _AtKey(tile, key), layout=layout, latents=latents, log=log)
    return tile_file, tile_bytes, {"decoder": tile_file, **layout.to_dict(), "parity": parity}


def _encode_rows(encoder: Encoder, x: np.ndarray, rows: np.ndarray, *, pitch: np.ndarray | None) -> np.ndarray:
    """The latents of ``x[rows]``; a keyboard encoder takes their keys, ``pitch[rows]``."""
    out = [
        encoder.encode(np.asarray(x[rows[i : i + _BATCH]], dtype=np.float32),
                       pitch=None if pitch is None else pitch[rows[i : i + _BATCH]])
        for i in range(0, len(rows), _BATCH)
    ]
    return np.concatenate(out)


def _base_pitch(rows: list[dict[str, Any]], train: np.ndarray, *, given: int | None, log) -> int:
    if given is not None:
        if not isinstance(given, int) or not 0 <= given <= 127:
            raise ParameterError(f"--base-pitch must be a MIDI pitch 0..127, got {given!r}")
        return given
    counts = collections.Counter(int(rows[i]["pitch"]) for i in train.tolist() if "pitch" in rows[i])
    if not counts:
        raise DataError("the training notes carry no pitch; give --base-pitch")
    pitch, n = counts.most_common(1)[0]
    if len(counts) > 1:
        log(
            f"  training notes span pitches {sorted(counts)}; base pitch {pitch} ({n} of {sum(counts.values())} notes)"
        )
    return pitch


def _metrics(run_path: Path, *, features, decoder: Decoder, encoder: Encoder, keys: np.ndarray | None,
             log) -> tuple[dict | None, str]:
    path = run_path / "metrics.json"
    if path.is_file():
        doc = read_json_file(path, what="run metrics", error=DataError)
        if isinstance(doc, dict):
            return doc, f"{path.name} of the run"
    try:
        from synth.metrics import MetricsAccumulator
    except ImportError as exc:
        log(f"  no metrics: {path} is missing and synth.metrics is not available ({exc})")
        return None, "none"
    test = features.splits["test"]
    if test.size == 0:
        return None, "none (empty test split)"
    log(f"  measuring test metrics through onnxruntime on {test.size} notes")
    # Batch by batch: the test split of a large set is never held (the accumulator keeps per-note figures).
    acc = MetricsAccumulator(params=features.params)
    for i in range(0, len(test), _BATCH):
        rows = test[i : i + _BATCH]
        originals = np.asarray(features.x[rows], dtype=np.float32)
        k = None if keys is None else keys[rows]
        acc.add(originals, decoder.decode(encoder.encode(originals, pitch=k), pitch=k))
    return dict(acc.result(), split="test"), "measured at export through onnxruntime"


def _pca_metrics(the_run, features, *, latent_size: int, log) -> list[dict[str, Any]]:
    """The test-split metrics of PCA fitted on the rows the run trained on (k = min(latent, notes), and 128)."""
    from training.fit import training_rows
    from training.pca_baseline import pca_test_metrics

    train = training_rows(features, seed=the_run.config.schedule.seed, limit=the_run.fit.get("limit"))
    return pca_test_metrics(features, train_rows=train, latent_size=latent_size, log=log)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _versions() -> dict[str, str]:
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    import synth

    return {
        "melsynth": synth.__version__,
        "tensorflow": tf.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _load_inputs(
    run: str | Path, *, features: str | Path | None, base_pitch: int | None, log
) -> tuple[Any, Any, np.ndarray, int, np.ndarray | None]:
    """(the run, its features folder checked against the run's spectrogram contract, the training rows, the
    base pitch, and for a pitch-conditioned family the MIDI key of every row of the folder). A keyboard
    bundle's base pitch (the key its presets are encoded at) is 60 when it trained there, else its middle key."""
    from training.datasets.features import load_features
    from training.fit import note_pitches
    from training.run import load_run

    the_run = load_run(run)
    feats_path = Path(features) if features is not None else Path(str(the_run.data.get("path", "")))
    if not feats_path.is_dir():
        raise DataError(f"features folder {feats_path} of the run is missing (give --features DIR)")
    feats = load_features(feats_path)
    the_run.params.require_equal(feats.params, what=f"features folder {feats_path}")
    the_run.check_same_notes(feats, split="test")  # the bundle's recorded metrics are its test split's
    train = feats.subset("train")
    note_keys = note_pitches(feats, family=the_run.config.family)
    if note_keys is None:
        return the_run, feats, train, _base_pitch(feats.rows, train, given=base_pitch, log=log), None
    keys = sorted({int(k) for k in note_keys[train]})
    pitch = base_pitch if base_pitch is not None else (60 if 60 in keys else keys[len(keys) // 2])
    if pitch not in keys:
        raise ParameterError(f"--base-pitch {pitch}: a keyboard bundle's base pitch must be one of its trained keys {keys}")
    log(f"  keyboard model trained on keys {keys}; presets encoded at {pitch}")
    return the_run, feats, train, pitch, note_keys


def _keras_models(the_run, *, log) -> tuple[Any, Any, tuple[int, ...]]:
    """(Keras encoder, Keras decoder, latent shape) of the run's best weights; BundleError if they disagree."""
    log("  loading the Keras models (best weights)")
    _, keras_encoder, keras_decoder = the_run.models()
    latent_shape = tuple(int(d) for d in keras_encoder.output.shape[1:])
    decoder_input = keras_decoder.inputs[0]  # a pitch-conditioned decoder's second input is the key
    if tuple(int(d) for d in decoder_input.shape[1:]) != latent_shape:
        raise BundleError(
            f"encoder output {latent_shape} and decoder input {decoder_input.shape} differ"
        )
    return keras_encoder, keras_decoder, latent_shape


def _convert(
    the_run, keras_encoder, keras_decoder, *, latent_shape: tuple[int, ...], mel_shape: tuple[int, int], log
) -> tuple[bytes, bytes]:
    """The ONNX bytes of (decoder, encoder): the decoder in the form its family exports (the paper's family:
    each upsampling folded into the transposed convolution after it, about half the decode time; the patch
    families: one graph over any number of latent columns); parity checks it against the Keras decoder."""
    family = the_run.config.family
    graph_decoder, graph_input = family.export_decoder(keras_decoder, the_run.config, params=the_run.params)
    notes = family.export_notes(the_run.config)
    log(f"  converting with tf2onnx (opset {OPSET})" + "".join(f"; {note}" for note in notes))
    name = Path(the_run.path).name
    keyed = family.pitch_conditioned
    decoder_bytes = keras_to_onnx(graph_decoder, input_name="latent", input_shape=graph_input, output_name="mel",
                                  doc=f"melsynth decoder of run {name}", pitch=keyed)
    encoder_bytes = keras_to_onnx(keras_encoder, input_name="mel", input_shape=mel_shape, output_name="latent",
                                  doc=f"melsynth encoder of run {name}", pitch=keyed)
    return decoder_bytes, encoder_bytes


def _parity(
    feats, train: np.ndarray, *, keras_encoder, keras_decoder, decoder: Decoder, encoder: Encoder,
    tolerance: float, pitch: np.ndarray | None, log,
) -> tuple[dict[str, Any], np.ndarray]:
    """(the ONNX-vs-Keras parity record, the rows it checked: up to 16 real notes spread over the test split,
    else the training split); :func:`check_parity` stops the export when it fails."""
    log("  checking parity (ONNX vs Keras)")
    check_rows = feats.splits["test"] if feats.splits["test"].size else train
    check_rows = np.unique(check_rows[np.linspace(0, len(check_rows) - 1, min(16, len(check_rows))).astype(int)])
    parity = check_parity(
        keras_encoder=keras_encoder,
        keras_decoder=keras_decoder,
        onnx_encoder=encoder,
        onnx_decoder=decoder,
        notes=np.asarray(feats.x[check_rows], dtype=np.float32),
        tolerance=tolerance,
        log=log,
        pitch=None if pitch is None else pitch[check_rows],
    )
    return parity, check_rows


def _presets(feats, *, encoder: Encoder, pitch: int, keys: np.ndarray | None, presets_per_family: int,
             log) -> tuple[list[Any], np.ndarray]:
    """The real notes made into presets and their latents."""
    peaks = np.array([float(np.max(feats.x[i])) for i in range(len(feats.rows))])
    notes = choose_preset_notes(feats.rows, peaks, feats.splits, per_family=presets_per_family, pitch=pitch)
    if not notes:
        raise DataError(f"{feats.path}: no audible note to make a preset from")
    latents = _encode_rows(encoder, feats.x, np.array([n.row for n in notes]), pitch=keys)
    families = sorted({n.note.get("instrument_family_str", "?") for n in notes})
    log(f"  {len(notes)} presets from {len(families)} families: {', '.join(families)}")
    return notes, latents


def _bundle_metrics(
    the_run, feats, *, decoder: Decoder, encoder: Encoder, latent_shape: tuple[int, ...], keys: np.ndarray | None,
    log
) -> tuple[dict | None, str]:
    """(test metrics with the PCA baseline's and the paper's beside them, or None; where they came from)."""
    metrics, metrics_source = _metrics(
        Path(the_run.path), features=feats, decoder=decoder, encoder=encoder, keys=keys, log=log
    )
    if metrics is not None:
        metrics = dict(metrics, pca=_pca_metrics(the_run, feats, latent_size=int(np.prod(latent_shape)), log=log),
                       paper={"model": "no_dense (Table IV)", "data": "NSynth, random split", **PAPER_NO_DENSE})
    return metrics, metrics_source


def _manifest(
    the_run, *, latent_shape: tuple[int, ...], pitch: int, metrics: dict, metrics_source: str, parity: dict,
    presets: int, tiles_meta: dict | None, keys: list[int] | None,
) -> BundleManifest:
    """bundle.json's contents but the hashes (the bundle writer computes them from the files)."""
    return BundleManifest(
        params=the_run.params,
        latent_shape=tuple(latent_shape),
        base_pitch=pitch,
        sha256={},
        keys=None if keys is None else tuple(keys),
        # JSON-ready copies: the figures are numpy scalars.
        tiles=_jsonable(tiles_meta),
        training_config=_jsonable(the_run.config.to_dict()),
        data=_jsonable(the_run.data),
        metrics=_jsonable(metrics),
        parity=_jsonable(parity),
        described=_jsonable({
            "training_run": {"path": str(the_run.path), "fit": the_run.fit, "status": the_run.status},
            "metrics_source": metrics_source,
            "presets": presets,
            "exported": {
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "onnx_opset": OPSET,
                "decoder_graph": the_run.config.family.export_notes(the_run.config),
                **_versions(),
            },
        }),
    )


def _write_bundle(
    out: Path, *, force: bool, inputs: tuple[str | Path | None, ...], onnx: dict[str, bytes], macros,
    notes: list[Any], latents: np.ndarray, manifest: BundleManifest,
) -> BundleManifest:
    """Write the bundle into a temporary folder, load it with the engine's own checks, and only then rename it
    to ``out``: nothing half-written appears under that name, and only what :mod:`synth.outputs` lets a
    bundle replace is replaced."""
    seeds = [PresetSeed(name=note.name, latent=latent, source=_jsonable(dict(note.note, split=note.split, row=note.row)))
             for note, latent in zip(notes, latents, strict=True)]
    with atomic_directory(out, kind=BUNDLE, force=force, inputs=inputs) as tmp:
        written = write_bundle(tmp, manifest=manifest, onnx=onnx, macros=macros, presets=seeds)
        # The engine's own checks, before the folder appears under its name.
        check = load_bundle(tmp)
        check.decoder(providers=["CPUExecutionProvider"]).decode(
            np.stack([p.latent for p in check.presets.values()])[:4],
            pitch=None if check.keys is None else check.base_pitch,
        )
    return written


def export_run(
    run: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    base_pitch: int | None = None,
    presets_per_family: int = 2,
    features: str | Path | None = None,
    parity_tolerance: float = PARITY_TOLERANCE,
    log: Callable[[str], None] = print,
) -> Path:
    """Export the run folder ``run`` to the bundle folder ``out``; returns ``out``.

    Parameters
    ----------
    force : replace an earlier bundle (or an empty folder) at ``out``; anything else there, a folder of bundles
        or the run itself, is refused before any work (:mod:`synth.outputs`)
    base_pitch : override the pitch of the training notes (their most common pitch)
    presets_per_family : instruments per family made into presets (each at velocities 127 and 50, nearest)
    features : the features folder, if it moved since training (default: the run's recorded path)
    parity_tolerance : largest accepted |Keras - ONNX|; the bundle is not written when exceeded

    Raises :class:`BundleError` (conversion, parity, a bundle the loader refuses), :class:`DataError`
    (run or features missing or corrupt), :class:`ParameterError` (bad arguments; :class:`OutputError` for an ``out``
    that exists or may not be replaced).
    """
    out = Path(out)
    # Before any work: --force replaces an earlier bundle (or an empty folder), never the run or the features
    # it is made from (`export --run R --out R --force` once deleted the run) nor a folder of bundles.
    inputs = (run, features)
    check_output_folder(out, kind=BUNDLE, force=force, inputs=inputs)
    if not isinstance(presets_per_family, int) or presets_per_family < 1:
        raise ParameterError(f"--presets-per-family must be a positive integer, got {presets_per_family!r}")

    log(f"melsynth export: run {run}")
    the_run, feats, train, pitch, note_keys = _load_inputs(run, features=features, base_pitch=base_pitch, log=log)
    keys = None if note_keys is None else sorted({int(k) for k in note_keys[train]})
    mel_shape = (the_run.params.n_mels, the_run.params.frames)
    keras_encoder, keras_decoder, latent_shape = _keras_models(the_run, log=log)
    decoder_bytes, encoder_bytes = _convert(
        the_run, keras_encoder, keras_decoder, latent_shape=latent_shape, mel_shape=mel_shape, log=log
    )
    decoder, encoder = _sessions(decoder_bytes, encoder_bytes, latent_shape=latent_shape, mel_shape=mel_shape,
                                 probe_pitch=None if keys is None else pitch)

    parity, check_rows = _parity(
        feats, train, keras_encoder=keras_encoder, keras_decoder=keras_decoder, decoder=decoder, encoder=encoder,
        tolerance=parity_tolerance, pitch=note_keys, log=log,
    )
    tile_file, tile_bytes, tiles_meta = _tile_decoder(
        keras_decoder, the_run, decoder=decoder, decoder_bytes=decoder_bytes, encoder=encoder, latent_shape=latent_shape,
        notes=np.asarray(feats.x[check_rows], dtype=np.float32),
        pitch=None if note_keys is None else note_keys[check_rows], log=log,
    )

    log(f"  encoding {train.size} training notes for the macros")
    macros = macros_from_latents(_encode_rows(encoder, feats.x, train, pitch=note_keys), count=MACRO_COUNT)
    notes, latents = _presets(feats, encoder=encoder, pitch=pitch, keys=note_keys,
                              presets_per_family=presets_per_family, log=log)
    metrics, metrics_source = _bundle_metrics(
        the_run, feats, decoder=decoder, encoder=encoder, latent_shape=latent_shape, keys=note_keys, log=log
    )
    onnx = {"decoder.onnx": decoder_bytes, "encoder.onnx": encoder_bytes}
    if tile_file is not None:
        onnx.setdefault(tile_file, tile_bytes)
    manifest = _manifest(
        the_run, latent_shape=latent_shape, pitch=pitch, metrics=metrics, metrics_source=metrics_source,
        parity=parity, presets=len(notes), tiles_meta=tiles_meta, keys=keys,
    )
    written = _write_bundle(out, force=force, inputs=(*inputs, feats.path), onnx=onnx, macros=macros, notes=notes,
                            latents=latents, manifest=manifest)
    bundle_hash = written.bundle_hash
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(
        f"melsynth export: wrote {out} ({size / 1e6:.1f} MB, {len(notes)} presets, bundle hash {bundle_hash[:12]}, "
        f"parity max |diff| {parity['max_abs']:.1e})"
    )
    return out
