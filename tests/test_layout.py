"""The codebase's own rules: no import cycle between rsearch's modules, no test hook in them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rsearch"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The rsearch modules `path` imports anywhere in it (function-local imports too: a cycle
    through a deferred import is still two modules that cannot be understood apart).
    `from a import b` imports package a (its __init__ runs and may import more), and a.b too
    where that is a module."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.update({base, submodule})
    return {name for name in found if name in modules and name != own}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path [a, b, ..., a], or None (depth-first, three colours)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_relative_and_submodule_imports_are_resolved():
    graph = import_graph()
    # Known edges, so that the cycle test cannot pass on an empty graph.
    assert {"rsearch.train.config", "rsearch.metrics", "rsearch"} <= graph["rsearch.tune.trial"]
    assert "rsearch.space.fields" in graph["rsearch.space.space"]


def test_no_import_cycle_between_rsearch_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_test_hook_in_production_code():
    hooks = ("nan_at_step", "RSEARCH_INJECT")
    found = [
        f"{path.relative_to(ROOT)}: {hook}"
        for path in PACKAGE.rglob("*.py")
        for hook in hooks
        if hook in path.read_text()
    ]
    assert not found, found


def test_every_command_is_described_by_its_docstring_with_examples(capsys):
    """`rsearch --help` lists each command by its docstring's first paragraph; `rsearch NAME
    --help` shows the whole docstring, examples included."""
    import importlib

    from rsearch.cli import COMMANDS, main

    assert main(["--help"]) == 0
    listing = " ".join(capsys.readouterr().out.split())
    for name in COMMANDS:
        doc = importlib.import_module(f"rsearch.commands.{name}").__doc__
        summary = " ".join(doc.split("\n\n")[0].split()).split(": ", 1)[1].rstrip(".")
        assert summary in listing
        assert main([name, "--help"]) == 0
        page = capsys.readouterr().out
        assert "examples:\n  rsearch " + name in page and f"`rsearch {name}`" not in page
