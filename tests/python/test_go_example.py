"""C and Go users' route: `meson install` the library, header and ddstream.pc into a prefix, then
build the Go (cgo) example and the C example with `pkg-config ddstream` alone, and stream from the
fake Datadog server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ddstream.testing import FakeDatadog

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    """A build tool from this interpreter's environment (the set-up's venv), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is part of the set-up (scripts/setup.sh)"
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A prefix holding the installed C library; the environment that finds it."""
    root = tmp_path_factory.mktemp("c-install")
    build, prefix = root / "build", root / "prefix"
    meson = _tool("meson")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run([meson, "setup", str(build), f"-Dprefix={prefix}", "-Dtests=false"],
                   cwd=REPO, env=env, check=True, capture_output=True)
    subprocess.run([meson, "install", "-C", str(build)], env=env, check=True, capture_output=True)
    pc = next(prefix.rglob("ddstream.pc"))
    libdir = pc.parent.parent
    env.update(PKG_CONFIG_PATH=str(pc.parent), LD_LIBRARY_PATH=str(libdir),
               GOCACHE=str(root / "gocache"), GOPATH=str(root / "gopath"), GOFLAGS="-mod=mod",
               GOTOOLCHAIN="local")
    assert (prefix / "include" / "ddstream.h").is_file()
    return prefix, env


def _run(program: list[str], env: dict[str, str], fake: FakeDatadog, *args: str) -> str:
    run_env = dict(env, DDSTREAM_BASE_URL=fake.url, DD_API_KEY="go-api", DD_APP_KEY="go-app")
    result = subprocess.run([*program, *args], env=run_env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_go_example_with_pkg_config(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = installed
    go = shutil.which("go")
    assert go, "Debian's golang-go is part of the set-up (scripts/setup.sh)"
    binary = tmp_path / "stream"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=REPO / "examples" / "go", env=env,
                   check=True, capture_output=True)
    with FakeDatadog(hosts=3) as fake:
        out = _run([str(binary)], env, fake, "avg:system.cpu.user{*} by {host}", "7200", "60")
        assert "series=3" in out
        assert re.search(r"^done: 1 batches, 360 rows", out, re.M), out


def test_c_example_with_pkg_config(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    _, env = installed
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ddstream"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    binary = tmp_path / "stream_example"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", str(REPO / "examples/c/stream_example.c"),
                    *flags, "-lm", "-o", str(binary)], env=env, check=True)
    with FakeDatadog() as fake:
        out = _run([str(binary)], env, fake, "avg:system.cpu.user{*}", "3600", "60")
        assert re.search(r"^done: 1 batches, 60 rows", out, re.M), out
