"""The layout's rules that a reader relies on, checked on the source: libraries never import the command
modules, and synth/ never imports TensorFlow (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("synth", "training", "export")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any level of nesting (``from . import x`` resolved against it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


def library_files():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if "/commands/" in rel or rel == "synth/cli.py":
                continue
            yield rel, path


def test_no_library_module_imports_a_command_module():
    commands = ("synth.commands", "training.commands", "export.commands", "synth.cli")
    offenders = {rel: sorted(m for m in imports_of(path) if m == "synth.cli" or m.startswith(commands))
                 for rel, path in library_files()}
    assert not {k: v for k, v in offenders.items() if v}


def test_synth_never_imports_tensorflow():
    offenders = {}
    for path in sorted((REPO / "synth").rglob("*.py")):
        bad = sorted(m for m in imports_of(path) if m.split(".")[0] in ("tensorflow", "keras", "tf2onnx", "training"))
        rel = path.relative_to(REPO).as_posix()
        if bad and not rel.startswith("synth/commands/"):
            offenders[rel] = bad
    # synth/commands may reach into training/ for the commands that train (lazily); the library never does.
    assert not offenders


def test_the_checker_sees_nested_imports(tmp_path):
    probe = REPO / "synth" / "_probe_for_the_layout_test.py"
    probe.write_text("def f():\n    from synth.commands.evaluate import run\n    import tensorflow\n")
    try:
        assert {"synth.commands.evaluate", "tensorflow"} <= imports_of(probe)
    finally:
        probe.unlink()
