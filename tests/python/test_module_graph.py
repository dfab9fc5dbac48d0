"""The package's import graph is a DAG, and docs/design-notes.md's module map matches the tree.

The graph counts every import that runs, function-level ones included, and leaves out those
under ``if TYPE_CHECKING:`` (read by type checkers only). A cycle means two modules that cannot
be read, tested or changed one at a time; the shared part belongs in a module below both.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ddstream as dd
from imports import imported_name, runtime_imports

PACKAGE = Path(dd.__file__).resolve().parent
SOURCE = Path(__file__).resolve().parents[2] / "python" / "ddstream"
DESIGN_NOTES = Path(__file__).resolve().parents[2] / "docs" / "design-notes.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def ddstream_imports(path: Path) -> set[str]:
    """The ddstream modules ``path`` imports when it runs (not for type checkers only)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in runtime_imports(path):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ddstream"))
            continue
        else:
            target = imported_name(node)
        if target.startswith("ddstream"):
            found.add(target)
            if isinstance(node, ast.ImportFrom):  # "from . import errors": maybe a submodule
                found.update(f"{target}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in ddstream_imports(path) if m in modules and m != name
               # a package's __init__ runs before its modules: importing the package itself
               # from inside it is not an edge back
               and not name.startswith(m + ".")}
        for name, path in modules.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_graph_is_a_dag() -> None:
    edges = graph()
    assert "ddstream._native" in edges["ddstream._stream"]  # the graph sees real imports
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_module_map_matches_the_tree() -> None:
    """Every module has one line in the map, and the map names no module that is gone."""
    text = DESIGN_NOTES.read_text(encoding="utf-8")
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    mapped = set(re.findall(r"^[-*] `(ddstream[\w.]*)`", section, flags=re.MULTILINE))
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    assert sorted(modules - mapped) == [], "modules missing from the module map"
    assert sorted(mapped - modules) == [], "the module map names modules that do not exist"
