"""Packaging: the sdist and the wheel build from the repository, and install into clean venvs.

What a user gets from ``pip install .`` (the wheel: libddstream inside the package, the header the
binding reads, every module, the ``ddstream`` command) and from ``pip install`` of the sdist on a
machine with only a C compiler and libcurl's development files (pip fetches meson-python, meson
and ninja into an isolated build environment and builds the library). Each install goes into a
fresh venv without system site packages, and streams real data from the fake Datadog there.

The sdist and the wheel are built once per module, with the build tools of this interpreter's
environment (no isolation: no index access needed for that part). Installing them needs the
package index for numpy and cffi (and, for the sdist, the build tools).

Both are built from a snapshot of the working tree as a fresh clone has it (``tree.snapshot``:
meson-python's sdist archives the last commit, so building from the developer's tree would test
yesterday's sdist against today's wheel). The wheel anyone can install on Linux (retagged,
repaired by auditwheel) is tested in test_wheel.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, QUERY
from ddstream.testing import FakeDatadog
from tree import build_env, clean_env, git, run, snapshot

REPO = Path(__file__).resolve().parents[2]

# One aligned hour at 60 s: exactly 60 buckets.
START = 1_699_747_200 + 3 * 3600  # 2023-11-12T03:00:00Z
END = START + 3600
START_ISO = "2023-11-12T03:00:00Z"
END_ISO = "2023-11-12T04:00:00Z"
ROWS = 60

# Run by a clean venv's python: starts its own FakeDatadog (so ddstream.testing must work from the
# installed package), streams one hour, and reports the data and where everything was loaded from.
STREAM_SCRIPT = """
import json, sys
import ddstream, ddstream._lib
from ddstream.testing import FakeDatadog

query, start, end, api_key, app_key = sys.argv[1:6]
with FakeDatadog() as fake:
    with ddstream.DDStream(query=query, start=int(start), end=int(end), granularity=60,
                           base_url=fake.url, api_key=api_key, app_key=app_key) as stream:
        batches = list(stream)
print(json.dumps({
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "module": ddstream.__file__,
    "library": str(ddstream._lib.LIBRARY_PATH),
    "header": str(ddstream._lib.HEADER_PATH),
    "rows": sum(len(b["timestamps"]) for b in batches),
    "timestamps": [int(t) for b in batches for t in b["timestamps"]],
    "avg": [float(v) for b in batches for v in b["avg"]],
}))
"""


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path


def _clean_env(**extra: str) -> dict[str, str]:
    return clean_env(**extra)


def _run(args: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run(args, cwd, env, timeout)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def dists(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Dists:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, source],
         cwd=out, env=build_env())
    # What `pip install .` does in a fresh clone, but keeping the wheel.
    _run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
          "-w", out, source], cwd=out, env=build_env())
    sdists = sorted(out.glob("ddstream-*.tar.gz"))
    wheels = sorted(out.glob("ddstream-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(p.name for p in out.iterdir())
    return Dists(sdist=sdists[0], wheel=wheels[0])


def _new_venv(path: Path) -> Path:
    """A fresh venv (no system site packages, no packages beyond pip); returns its bin dir."""
    _run([sys.executable, "-m", "venv", "--clear", path], cwd=path.parent)
    return path / "bin"


def _pip_install(bindir: Path, target: Path, cwd: Path) -> None:
    _run([bindir / "python", "-m", "pip", "install", "-q", target], cwd=cwd, timeout=600)


def _expected() -> dict[str, Any]:
    """The same hour streamed in this process (from the tree or install under test)."""
    with FakeDatadog() as fake:
        cfg = dd.DDStreamConfig(query=QUERY, range_start=START, range_end=END, granularity=60,
                                base_url=fake.url, api_key=API_KEY, app_key=APP_KEY)
        with dd.DDStream(cfg) as stream:
            batches = list(stream)
    return {
        "timestamps": np.concatenate([b["timestamps"] for b in batches]),
        "avg": np.concatenate([b["avg"] for b in batches]),
    }


def _check_stream_in_venv(venv: Path, bindir: Path, cwd: Path) -> None:
    # cwd is outside the repo, so `python -c` cannot pick up python/ddstream from it.
    result = _run([bindir / "python", "-c", STREAM_SCRIPT, QUERY, str(START), str(END),
                   API_KEY, APP_KEY], cwd=cwd)
    assert API_KEY not in result.stdout + result.stderr
    assert APP_KEY not in result.stdout + result.stderr
    got = json.loads(result.stdout)
    site = Path(got["prefix"]).resolve()
    assert site == venv.resolve() and got["prefix"] != got["base_prefix"]
    for key in ("module", "library", "header"):
        assert Path(got[key]).resolve().is_relative_to(site), (key, got[key])
    assert Path(got["library"]).name == "libddstream.so"
    assert Path(got["header"]).name == "ddstream.h"
    assert got["rows"] == ROWS
    want = _expected()
    np.testing.assert_array_equal(np.array(got["timestamps"]), want["timestamps"])
    np.testing.assert_array_equal(np.array(got["avg"], dtype=np.float64), want["avg"])
    assert np.isfinite(want["avg"]).any()


def test_sdist_holds_everything_the_build_needs(source: Path, dists: Dists) -> None:
    stem = dists.sdist.name[: -len(".tar.gz")]
    with tarfile.open(dists.sdist) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
        pkg_info = tar.extractfile(f"{stem}/PKG-INFO")
        assert pkg_info is not None
        metadata = pkg_info.read().decode()
    committed = git(["ls-tree", "-r", "--name-only", "HEAD"], cwd=source).splitlines()
    needed = {f for f in committed
              if f.split("/", 1)[0] in ("include", "libddstream", "python")
              or f in ("meson.build", "meson.options", "pyproject.toml", "README.md")}
    assert {"include/ddstream.h", "libddstream/meson.build", "python/meson.build",
            "libddstream/vendor/cjson/cJSON.c"} <= needed
    assert needed - names == set()
    assert "PKG-INFO" in names
    assert f"Version: {dd.__version__}" in metadata.splitlines()


def test_wheel_holds_the_library_header_modules_and_command(source: Path,
                                                            dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as whl:
        names = set(whl.namelist())
        dist_info = next(n.split("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
        metadata = whl.read(f"{dist_info}/METADATA").decode().splitlines()
    package = source / "python" / "ddstream"
    modules = {"ddstream/" + p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    assert "ddstream/testing/_server.py" in modules
    assert modules - names == set()
    assert {"ddstream/libddstream.so", "ddstream/ddstream.h", "ddstream/py.typed"} <= names
    assert "[console_scripts]" in entry_points
    assert "ddstream = ddstream.cli:main" in entry_points.splitlines()
    assert f"Version: {dd.__version__}" in metadata
    requires = {line.split(":", 1)[1].strip().split(">")[0].split(" ")[0]
                for line in metadata if line.startswith("Requires-Dist:") and "extra" not in line}
    assert {"numpy", "cffi"} <= requires


def test_wheel_library_exports_only_ddstream_symbols(dists: Dists, tmp_path: Path) -> None:
    nm = shutil.which("nm")
    assert nm is not None, "nm (binutils, installed with the C compiler) is needed"
    so = tmp_path / "libddstream.so"
    with zipfile.ZipFile(dists.wheel) as whl:
        so.write_bytes(whl.read("ddstream/libddstream.so"))
    out = _run([nm, "-D", "--defined-only", so], cwd=tmp_path).stdout
    symbols = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert {"ddstream_open", "ddstream_next", "ddstream_close", "ddstream_version"} <= symbols
    assert {s for s in symbols if not s.startswith("ddstream_")} == set()


def test_wheel_installs_into_a_clean_venv_and_streams(dists: Dists, fake: FakeDatadog,
                                                      tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    bindir = _new_venv(venv)
    _pip_install(bindir, dists.wheel, cwd=tmp_path)
    _check_stream_in_venv(venv, bindir, cwd=tmp_path)

    version = _run([bindir / "ddstream", "--version"], cwd=tmp_path)
    assert version.stdout.strip() == f"ddstream {dd.__version__}"

    env = _clean_env(DDSTREAM_BASE_URL=fake.url, DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
    result = _run([bindir / "ddstream", "query", QUERY, "--from", START_ISO, "--to", END_ISO,
                   "--format", "jsonl", "-q"], cwd=tmp_path, env=env)
    assert API_KEY not in result.stdout + result.stderr
    assert APP_KEY not in result.stdout + result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == ROWS
    assert rows[0]["timestamp"] == START_ISO and rows[-1]["timestamp"] == "2023-11-12T03:59:00Z"
    assert fake.requests and all(r.path.startswith("/api/v1/query") for r in fake.requests)
    want = _expected()
    got_avg = np.array([np.nan if r["avg"] is None else r["avg"] for r in rows], dtype=float)
    np.testing.assert_array_equal(got_avg, want["avg"])


def test_sdist_builds_and_installs_with_build_isolation(dists: Dists, tmp_path: Path) -> None:
    # pip builds in an isolated environment with meson-python, meson and ninja from the index:
    # the route of a machine with only a C compiler and libcurl's development files.
    venv = tmp_path / "venv"
    bindir = _new_venv(venv)
    _pip_install(bindir, dists.sdist, cwd=tmp_path)
    _check_stream_in_venv(venv, bindir, cwd=tmp_path)
    assert (bindir / "ddstream").is_file()
