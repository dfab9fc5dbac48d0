"""What a Python file imports when it runs: for the tests that check how modules depend on
each other (test_module_graph.py) and on optional packages (test_dependencies.py)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ImportNode = ast.Import | ast.ImportFrom | ast.Call


def runtime_imports(path: Path) -> Iterator[ImportNode]:
    """The import statements and ``importlib.import_module("...")`` calls of ``path`` that run,
    function-level ones included; those under ``if TYPE_CHECKING:`` (read by type checkers only)
    are left out."""

    def visit(node: ast.AST) -> Iterator[ImportNode]:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                yield from visit(statement)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Call)) and _imports(node):
            yield node
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")))


def _imports(node: ImportNode) -> bool:
    """An import statement, or an ``import_module`` call with a literal name."""
    if not isinstance(node, ast.Call):
        return True
    return (ast.unparse(node.func).endswith("import_module") and bool(node.args)
            and isinstance(node.args[0], ast.Constant))


def imported_name(node: ImportNode) -> str:
    """The absolute module name an import names (``""`` for a relative one: see the caller)."""
    if isinstance(node, ast.Import):
        return node.names[0].name
    if isinstance(node, ast.ImportFrom):
        return node.module or "" if node.level == 0 else ""
    return str(node.args[0].value) if isinstance(node.args[0], ast.Constant) else ""
