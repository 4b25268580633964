"""The layout's rules that a reader relies on, checked on the source: libraries never import the command
modules, synth/ never imports TensorFlow, and every import in synth/ points down its table of layers
(function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("synth", "training", "export")


def imports_of(path: Path, *, package: str | None = None, annotations: bool = False) -> set[str]:
    """Every module a file imports at run time, at any level of nesting (``from . import x`` resolved against
    it); imports under ``if TYPE_CHECKING:`` are for type checkers only and are left out unless
    ``annotations``. ``package``: the package the file stands in for (a probe outside the tree); by default
    the one its path in the tree names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if not annotations and isinstance(node, ast.If) and isinstance(node.test, ast.Name) and \
                node.test.id == "TYPE_CHECKING":
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


def module_graph(*, annotations: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules it imports (each import resolved to the longest module name it names;
    with ``annotations``, those under ``if TYPE_CHECKING:`` too)."""
    mods = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in mods.items():
        deps = set()
        for imported in imports_of(path, annotations=annotations):
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
    probe = tmp_path / "_probe_for_the_layout_test.py"  # outside the tree: the suite never writes into synth/
    probe.write_text("def f():\n    from synth.commands.evaluate import run\n    import tensorflow\n"
                     "if TYPE_CHECKING:\n    from synth.engine import Engine\n")
    assert {"synth.commands.evaluate", "tensorflow"} <= imports_of(probe, package="synth")
    assert "synth.engine" not in imports_of(probe, package="synth")
    assert "synth.engine" in imports_of(probe, package="synth", annotations=True)


def test_no_import_cycle():
    """Every arrow points down (function-level imports and those for annotations only included): a cycle is
    two ideas that need each other, even when one of them only names the other's type."""
    assert cycles(module_graph(annotations=True)) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# synth/'s layers, lowest first (docs/ARCHITECTURE.md draws the same table): a module imports its own layer and
# those below it, never one above. The engine is the deterministic core that offline rendering drives as well;
# the host (threads, rings, outputs, priorities, the recorder, the live session) is what playing live adds
# around it, so the engine never imports the host: what it needs from live playing is handed to it.
SYNTH_LAYERS = (
    ("contract", ("synth", "synth.spectrogram", "synth.errors", "synth.json_files", "synth.numpy_files",
                  "synth.atomic", "synth.outputs", "synth.native_stderr", "synth.data")),
    ("model files", ("synth.bundle",)),
    ("DSP", ("synth.inversion", "synth.metrics")),
    ("vocabulary", ("synth.control",)),
    ("engine", ("synth.engine",)),
    ("host", ("synth.host",)),
    ("I/O", ("synth.osc", "synth.midi", "synth.render", "synth.web")),
    ("measuring", ("synth.benchmarks",)),
    ("commands", ("synth.commands", "synth.cli")),
)


def layer_of(module: str) -> int | None:
    """The index in :data:`SYNTH_LAYERS` of the layer holding ``module`` (its longest listed prefix), or None.
    ``"synth"`` names the package's ``__init__`` only, not everything under it."""
    best = None
    for index, (_, prefixes) in enumerate(SYNTH_LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "synth" and module.startswith(prefix + "."))
            if inside and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def layer_violations(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """synth module -> the modules it imports from a layer above its own (or "no layer" when it sits in none of
    :data:`SYNTH_LAYERS`: a new folder takes its place in the table before it takes imports)."""
    found: dict[str, list[str]] = {}
    for module, deps in graph.items():
        if module.split(".")[0] != "synth":
            continue
        own = layer_of(module)
        if own is None:
            found[module] = ["no layer"]
            continue
        above = sorted(d for d in deps if d.split(".")[0] == "synth" and (layer_of(d) or 0) > own)
        if above:
            found[module] = above
    return found


def test_every_import_in_synth_points_down_its_layers():
    assert layer_violations(module_graph()) == {}


def test_the_engine_never_imports_the_host():
    """Said on its own because it is the line the host's folder exists for: the engine renders offline too."""
    graph = module_graph()
    assert {m: sorted(d for d in deps if d.startswith("synth.host"))
            for m, deps in graph.items() if m.startswith("synth.engine") and any(d.startswith("synth.host")
                                                                                 for d in deps)} == {}


def test_the_layer_checker_catches_the_engine_importing_the_host(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from synth.host.ring import SampleRing\n    from synth.control import messages\n")
    graph = {"synth.engine.probe": {m for m in imports_of(probe, package="synth.engine")
                                    if m in ("synth.host.ring", "synth.control.messages")},
             "synth.elsewhere": set()}
    assert layer_violations(graph) == {"synth.engine.probe": ["synth.host.ring"], "synth.elsewhere": ["no layer"]}


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
