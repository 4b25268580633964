"""``melsynth info --bundle DIR [--json]``: describe a model bundle (after checking it fully)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_arguments", "run", "bundle_info"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="model bundle folder (e.g. presets/default)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def bundle_info(path: str) -> dict[str, Any]:
    """Load and check the bundle at ``path``; its description plus the onnxruntime provider it gets."""
    from synth.commands.bundle_loading import load_bundle_for_command as load_bundle

    bundle = load_bundle(path)
    info = bundle.describe()
    info["provider"] = bundle.decoder().provider
    return info


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        # Parity differences are ~1e-7: fixed-point would show them as 0.0000.
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def _text(info: dict[str, Any]) -> str:
    c = info["spectrogram"]
    lines = [
        f"bundle       {info['path']}",
        f"format       {info['format']}",
        f"contract     {c['sample_rate']} Hz, n_fft {c['n_fft']}, {c['window']} {c['win_length']}, hop "
        f"{c['hop_length']}, {c['n_mels']} mels {c['fmin']:g}..{c['fmax']:g} Hz ({c['mel_norm']}), "
        f"{c['frames']} frames, {c['db_min']:g}..{c['db_max']:g} dB",
        f"latent       {'x'.join(map(str, info['latent_shape']))} = {info['latent_size']} values",
        f"base pitch   {info['base_pitch']}",
        "keys         " + ("one pitch: other keys move its partials" if not info.get("keys") else
                           f"{len(info['keys'])} trained, {info['keys'][0]}..{info['keys'][-1]} "
                           f"({', '.join(map(str, info['keys']))}); between them the nearest key's decode is moved"),
        f"provider     {info['provider']}",
        f"bundle hash  {info['bundle_hash']}",
    ]
    for name, digest in info["sha256"].items():
        lines.append(f"sha256       {name} {digest}")
    metrics = info.get("metrics")
    if isinstance(metrics, dict) and metrics:
        shown = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        lines.append("metrics      " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
        keys = ("rmse", "ssim", "precision", "recall", "f1")
        for row in metrics.get("pca") or []:
            lines.append(f"  PCA {row.get('components')}  " + ", ".join(f"{k} {_fmt(row.get(k))}" for k in keys)
                         + f" (fitted on the same {row.get('train_notes')} training notes)")
        paper = metrics.get("paper")
        if isinstance(paper, dict):
            lines.append("  paper      " + ", ".join(f"{k} {_fmt(paper.get(k))}" for k in keys)
                         + f" ({paper.get('model')}, {paper.get('data')})")
    else:
        lines.append("metrics      none recorded")
    parity = info.get("parity")
    if isinstance(parity, dict) and parity:
        shown = {k: v for k, v in parity.items() if not isinstance(v, (dict, list))}
        lines.append("parity       " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    else:
        lines.append("parity       none recorded")
    macros = info["macros"]
    lines.append(
        f"macros       {macros['components']} components, stds "
        + " ".join(f"{s:.3g}" for s in macros["stds"][:8])
        + (" ..." if macros["components"] > 8 else "")
    )
    presets = info["presets"]
    lines.append(f"presets      {len(presets)}")
    for name, source in presets.items():
        note = source.get("note_str", source.get("description", "")) if isinstance(source, dict) else ""
        lines.append(f"  {name:<40} {note}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = bundle_info(args.bundle)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(_text(info))
    return 0
