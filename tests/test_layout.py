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


def test_training_never_imports_export():
    """export builds on training (a fitted run becomes a bundle); training reaching up into export is the arrow
    that made the two one tangle (it once imported export.onnx_convert for its timing benchmarks)."""
    offenders = {rel: sorted(m for m in imports_of(path) if m.split(".")[0] == "export")
                 for rel, path in ((p.relative_to(REPO).as_posix(), p) for p in sorted((REPO / "training").rglob("*.py")))}
    assert not {k: v for k, v in offenders.items() if v}


# What a command module may give the rest of the code: its console entry points.
COMMAND_ENTRY_POINTS = {"add_arguments", "run", "main"}


def command_module_uses(paths) -> dict[str, list[str]]:
    """file -> what it imports from a command module beyond its entry points (library logic living in a command
    module: the next caller would have to reach into the CLI for it). Command modules importing each other's
    helpers (``synth/commands/bundle_loading.py``) stay inside the CLI and are not counted."""
    found: dict[str, list[str]] = {}
    for path in paths:
        rel = path.relative_to(REPO).as_posix()
        if "/commands/" in rel or rel.endswith("/commands.py") or rel == "synth/cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module.startswith("synth.commands") or node.module.endswith(".commands")
                    and node.module.split(".")[0] in ("training", "export")):
                extra = [a.name for a in node.names if a.name not in COMMAND_ENTRY_POINTS]
                if extra:
                    found.setdefault(rel, []).extend(f"{node.module}.{n}" for n in extra)
            elif isinstance(node, ast.Import):
                extra = [a.name for a in node.names if a.name.startswith("synth.commands.")]
                if extra:
                    found.setdefault(rel, []).extend(extra)
    return found


def _python_files():
    for folder in (*PACKAGES, "tests", "bench", "examples"):
        yield from sorted((REPO / folder).rglob("*.py"))


def test_no_library_logic_lives_in_a_command_module():
    """Command modules hold arguments, calls and printing: whatever else code (tests included) needs from one
    belongs in a library module (evaluate_bundle moved to synth/metrics, run_all to synth/benchmarks)."""
    assert command_module_uses(_python_files()) == {}


def test_the_command_module_checker_sees_a_reach_into_the_cli(tmp_path):
    probe = REPO / "tests" / "_probe_command_reach.py"
    probe.write_text("from synth.commands.evaluate import run, format_table\nimport synth.commands.bench\n")
    try:
        found = command_module_uses([probe])
        assert found == {"tests/_probe_command_reach.py": ["synth.commands.evaluate.format_table",
                                                          "synth.commands.bench"]}
    finally:
        probe.unlink()


ADDRESS_TABLE_SIZE = 3  # three addresses in one literal make a table of them


def address_tables(paths) -> dict[str, int]:
    """file -> the line of its first literal (tuple, list, set, dict keys) holding ADDRESS_TABLE_SIZE or more
    of the vocabulary's addresses: a second address table, which drifts from the vocabulary's (README's copy
    once lost two addresses). Lists of addresses that do not exist (the fuzzer's) are not tables of them."""
    from synth.control.vocabulary import CONTROLS

    known = {c.address for c in CONTROLS}
    found: dict[str, int] = {}
    for path in paths:
        rel = path.relative_to(REPO).as_posix()
        if rel == "synth/control/vocabulary.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)) and items is not None:
                addresses = {i.value for i in items if isinstance(i, ast.Constant) and i.value in known}
                if len(addresses) >= ADDRESS_TABLE_SIZE:
                    found.setdefault(rel, node.lineno)
    return found


def test_the_vocabulary_is_the_only_address_table_in_the_code():
    libraries = [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    assert address_tables(libraries) == {}


def test_the_address_table_checker_finds_one():
    probe = REPO / "tests" / "_probe_address_table.py"
    probe.write_text('ADDRESSES = ("/synth/note/on", "/synth/note/off", "/synth/gain")\nONE = ["/synth/xy"]\n')
    try:
        assert address_tables([probe]) == {"tests/_probe_address_table.py": 1}
    finally:
        probe.unlink()


def test_no_document_keeps_its_own_table_of_addresses():
    """Markdown tables of the engine's commands live only in docs/OSC.md's generated section (the vocabulary
    writes it); README and the other documents link to it. (Tables of replies, which say what comes back,
    are not copies of it.)"""
    import re

    from synth.control.messages import Command
    from synth.control.vocabulary import CONTROLS

    commands = {c.address for c in CONTROLS if issubclass(c.message, Command)}
    offenders = {}
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text()
        if path.name == "OSC.md":
            text = re.sub(r"<!-- generated: messages -->.*?<!-- end generated -->", "", text, flags=re.S)
        rows = [line for line in text.splitlines()
                if (m := re.match(r"\|\s*`(/synth/[^`\s]*)", line)) and m.group(1) in commands]
        if len(rows) >= ADDRESS_TABLE_SIZE:
            offenders[path.name] = rows[:2]
    assert offenders == {}
