"""Optional dependencies (pyarrow, pandas, polars, DuckDB, dask, distributed): imported on first
use, and a missing one named with the extra that installs it, wherever ddstream needs it.

Each case runs a fresh interpreter in which the optional packages cannot be imported (a finder
that refuses them), so the errors are the ones a user without the extra sees.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ddstream as dd
from imports import imported_name, runtime_imports

PACKAGE = Path(dd.__file__).resolve().parent
OPTIONAL = {"pyarrow", "pandas", "polars", "duckdb", "dask", "distributed"}

_BLOCK = """
import json, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
"""


def run_without(code: str, blocked: set[str] = OPTIONAL) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD")}
    env["PYTHONPATH"] = str(PACKAGE.parent)
    return subprocess.run([sys.executable, "-c", _BLOCK.format(blocked=blocked) + code], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_each_lazy_module_names_its_extra_when_missing() -> None:
    # Private on purpose: the lazy modules are the binding's own plumbing, tested one by one.
    code = """
import ddstream._dependencies as deps
before = set(sys.modules)
out = {}
for name in ("pyarrow", "pyarrow_parquet", "pandas", "polars", "duckdb", "dask",
             "dask_dataframe", "distributed", "distributed_plugin"):
    try:
        getattr(getattr(deps, name), "anything")
    except ImportError as exc:
        out[name] = str(exc)
out["imported"] = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in {blocked!r})
print(json.dumps(out))
""".replace("{blocked!r}", repr(OPTIONAL))
    proc = run_without(code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    expected = {
        "pyarrow": "arrow", "pyarrow_parquet": "arrow", "pandas": "pandas", "polars": "polars",
        "duckdb": "duckdb", "dask": "dask", "dask_dataframe": "dask", "distributed": "dask",
        "distributed_plugin": "dask",
    }
    for name, extra in expected.items():
        assert out[name].endswith(f": pip install 'ddstream[{extra}]'"), (name, out[name])
        assert " needs " in out[name], out[name]
    assert out["imported"] == []


def test_lazy_module_imports_on_first_use_only() -> None:
    code = """
import ddstream
from ddstream import _dependencies as deps
print(json.dumps(["pyarrow" in sys.modules, repr(deps.pyarrow)]))
deps.pyarrow.schema([])
print(json.dumps(["pyarrow" in sys.modules, repr(deps.pyarrow)]))
"""
    proc = run_without(code, blocked=set())
    assert proc.returncode == 0, proc.stderr
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first == [False, "<lazy module 'pyarrow' (not yet imported)>"]
    assert second == [True, "<lazy module 'pyarrow' (loaded)>"]


def test_public_entry_points_say_what_to_install() -> None:
    code = """
import ddstream as dd
from ddstream.cli import main
import os
os.environ.update(DD_API_KEY="api-key-1", DD_APP_KEY="app-key-1",
                  DDSTREAM_BASE_URL="http://127.0.0.1:9")
cfg = dd.DDStreamConfig(query="avg:x{*}", range_start=0, range_end=600, enable_prefetch=False)
for what, call in (("to_arrow", lambda: dd.DDStream(cfg).to_arrow()),
                   ("to_pandas", lambda: dd.DDStream(cfg).to_pandas()),
                   ("write_ipc", lambda: dd.DDStream(cfg).write_ipc("/dev/null")),
                   ("ddstream.dask", lambda: __import__("ddstream.dask"))):
    try:
        call()
        print(what, "no error")
    except ImportError as exc:
        print(what, exc)
sys.exit(main(["query", "avg:x{*}", "--format", "parquet", "-o", "/dev/null"]))
"""
    proc = run_without(code)
    lines = proc.stdout.splitlines()
    arrow = "ddstream's Arrow output needs pyarrow: pip install 'ddstream[arrow]'"
    assert lines[:3] == [f"to_arrow {arrow}", f"to_pandas {arrow}", f"write_ipc {arrow}"]
    assert lines[3] == ("ddstream.dask ddstream.dask needs dask[dataframe] (and distributed for a "
                        "cluster): pip install 'ddstream[dask]'")
    assert proc.returncode == 2, proc.stderr  # EXIT_USAGE
    assert "--format parquet needs pyarrow: pip install 'ddstream[arrow]'" in proc.stderr


def optional_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, package)`` of each optional package ``path`` imports when it runs."""
    found: list[tuple[int, str]] = []
    for node in runtime_imports(path):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [imported_name(node)])
        found.extend((node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in OPTIONAL)
    return found


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py")
                                         if p.name != "_dependencies.py"),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_optional_packages_are_imported_only_through_dependencies(path: Path) -> None:
    """One place decides how an optional package is imported and what a missing one says."""
    direct = optional_imports(path)
    assert direct == [], f"{path.name}: import these through ddstream._dependencies: {direct}"
