"""The layout's rules that a reader relies on, checked on the source: libraries never import the command
modules, and synth/ never imports TensorFlow (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("synth", "training", "export")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports at run time, at any level of nesting (``from . import x`` resolved against
    it); imports under ``if TYPE_CHECKING:`` are for type checkers only and are left out."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def module_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (each import resolved to the longest module name it names)."""
    mods = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in mods.items():
        deps = set()
        for imported in imports_of(path):
            parts = imported.split(".")
            target = next((".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in mods), None)
            if target is not None and target != name and not name.startswith(target + "."):
                deps.add(target)  # (a module reaching its own package's __init__ is not a cycle of ideas)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
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


def test_no_import_cycle():
    """Every arrow points down (function-level imports included): a cycle is two ideas that need each other."""
    assert cycles(module_graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
