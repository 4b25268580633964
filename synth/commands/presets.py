"""``melsynth presets list|show NAME|remove NAME|save NAME --bundle DIR``: the presets of a model bundle.

``remove`` deletes exactly one file, ``<bundle>/presets/<NAME>.json``, after checking the name (no path
separators, no ``..``); it does not need the other presets to be valid, so a broken preset can be removed.

``save NAME --score take.json [--at SECONDS]`` keeps a sound found while playing: the latent the engine
decoded at that moment of a take (``melsynth serve --log-osc take.json``), replayed from the take's latent
commands (:mod:`synth.render.capture`), written atomically as ``<bundle>/presets/<NAME>.json``. Everything
(the name, the score, the moment) is checked before the file is written.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("list", help="list the presets")
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = actions.add_parser("show", help="show one preset")
    p.add_argument("name", help="preset name")
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p.add_argument("--json", action="store_true", help="print JSON (the preset file's content)")
    p = actions.add_parser("remove", help="delete one preset file")
    p.add_argument("name", help="preset name")
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p = actions.add_parser("save", help="save the sound a take had at a moment as a preset")
    p.add_argument("name", help="preset name (A-Z a-z 0-9 _ . -, up to 100 characters)")
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p.add_argument("--score", required=True, metavar="FILE.json",
                   help="the take: a score, e.g. what melsynth serve --log-osc wrote")
    p.add_argument("--at", type=float, default=None, metavar="SECONDS",
                   help="the moment, in seconds from the take's start (default: after its last message)")
    p.add_argument("--preset", default=None, dest="start_preset", metavar="NAME",
                   help="the preset the take started on (serve --preset; default the bundle's first)")
    p.add_argument("--force", action="store_true", help="replace an existing preset of that name")


def _list(args: argparse.Namespace) -> int:
    from synth.commands.bundle_loading import load_bundle_for_command as load_bundle

    bundle = load_bundle(args.bundle)
    if args.json:
        print(json.dumps({name: p.source for name, p in sorted(bundle.presets.items())}, indent=2))
        return 0
    for name, preset in sorted(bundle.presets.items()):
        note = preset.source.get("note_str", preset.source.get("description", ""))
        print(f"{name:<40} {note}")
    for file, reason in sorted(bundle.broken_presets.items()):
        print(f"{file:<40} BROKEN: {reason}")
    if not bundle.presets:
        print(f"no presets in {bundle.presets_dir}")
    return 0


def _show(args: argparse.Namespace) -> int:
    import numpy as np

    from synth.commands.bundle_loading import load_bundle_for_command as load_bundle

    bundle = load_bundle(args.bundle)
    preset = bundle.preset(args.name)
    if args.json:
        print(json.dumps(preset.to_dict()))
        return 0
    z = preset.latent.astype(np.float64)
    coords = bundle.macros.coordinates(z)
    print(f"name         {preset.name}")
    print(f"file         {bundle.presets_dir / (preset.name + '.json')}")
    print(f"bundle hash  {preset.bundle_hash}")
    print(
        f"latent       {'x'.join(map(str, z.shape))}, norm {np.linalg.norm(z):.4g}, "
        f"min {z.min():.4g}, max {z.max():.4g}"
    )
    print("macros       " + " ".join(f"{c:+.2f}" for c in coords[:8]) + " (standard deviations)")
    for key, value in preset.source.items():
        print(f"source       {key}: {value}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from pathlib import Path

    from synth.bundle import BUNDLE_JSON, PRESETS_DIR, validate_preset_name
    from synth.errors import BundleError, PresetError

    name = validate_preset_name(args.name)
    bundle = Path(args.bundle)
    if not (bundle / BUNDLE_JSON).is_file():
        raise BundleError(f"{bundle}: not a model bundle (no {BUNDLE_JSON})")
    directory = bundle / PRESETS_DIR
    path = directory / f"{name}.json"
    # The name check already excludes separators; this makes sure no link redirects the deletion.
    if directory.is_symlink() or path.parent.resolve() != directory.resolve():
        raise PresetError(f"{path}: not inside {directory}")
    if not (path.is_file() or path.is_symlink()):
        raise PresetError(f"no preset {name!r} in {directory}")
    path.unlink()
    print(f"removed {path}")
    return 0


def _save(args: argparse.Namespace) -> int:
    from synth.bundle import save_preset, validate_preset_name
    from synth.commands.bundle_loading import load_bundle_for_command as load_bundle
    from synth.commands.bundle_loading import refuse_existing_preset
    from synth.render.capture import capture_latent
    from synth.render.score import load_score, score_spec

    name = validate_preset_name(args.name)
    bundle = load_bundle(args.bundle)
    refuse_existing_preset(bundle, name, force=args.force)
    score = load_score(args.score, spec=score_spec(bundle))
    captured = capture_latent(bundle, score, at=args.at, initial_preset=args.start_preset)
    source = {"description": f"{args.score} {captured.describe()}", "score": str(args.score),
              "at_seconds": captured.seconds, "state": captured.label, "macros": list(captured.macros)}
    path = save_preset(bundle, bundle.make_preset(name, captured.latent, source=source), overwrite=args.force)
    applied = f"{captured.messages} of its {len(score)} messages applied"
    print(f"wrote preset {name!r} ({source['description']}; {applied}) to {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "show": _show, "remove": _remove, "save": _save}[args.action](args)
