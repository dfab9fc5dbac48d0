"""C and Go users' route, exactly as the README says: its shell lines under "## Go" and "## C" run
verbatim in a fresh clone, in a shell with nothing activated (no venv on PATH, no
LD_LIBRARY_PATH, no PKG_CONFIG_PATH but the README's own), with HOME a temporary directory so that
"$HOME/.local" is a fresh prefix. scripts/install-lib.sh installs the library with a ddstream.pc
whose Libs carry an rpath; the programs built from it must then run against the fake Datadog
server without any loader set-up."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ddstream.testing import FakeDatadog
from tree import REPO, build_env, clean_env, run, snapshot


def readme_shell_lines(section: str) -> str:
    """The ```sh blocks of one "## <section>" of README.md, joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {section}' section"
    blocks = re.findall(r"^```sh\n(.*?)^```", match.group(1), re.M | re.S)
    assert blocks, f"README.md's '## {section}' section has no sh block"
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("clone"), with_venv=True)


@pytest.fixture(scope="module")
def go_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gocache")


def _run_readme(section: str, clone: Path, home: Path, fake: FakeDatadog,
                **extra: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(HOME=str(home), DDSTREAM_BASE_URL=fake.url, DD_API_KEY="readme-api",
                    DD_APP_KEY="readme-app", **extra)
    return run(["bash", "-euo", "pipefail", "-c", readme_shell_lines(section)], cwd=clone,
               env=env, timeout=600)


def _readme_prefix_holds_the_library(home: Path) -> None:
    lib = home / ".local" / "lib"
    assert (lib / "libddstream.so.0").is_file() and (home / ".local/include/ddstream.h").is_file()
    pc = (lib / "pkgconfig" / "ddstream.pc").read_text()
    assert re.search(r"^Libs: .*-Wl,-rpath,\$\{libdir\}", pc, re.M), pc


def test_readme_go_lines_run_verbatim(clone: Path, go_cache: Path, tmp_path: Path) -> None:
    assert shutil.which("go"), "Debian's golang-go is part of the full set-up (scripts/setup.sh)"
    home = tmp_path / "home"
    home.mkdir()
    with FakeDatadog(hosts=3) as fake:
        # Go's caches are not the README's business; sharing one keeps the test quick.
        result = _run_readme("Go", clone, home, fake, GOCACHE=str(go_cache),
                             GOTOOLCHAIN="local")
        queries = [r for r in fake.requests if r.path == "/api/v1/query"]
    _readme_prefix_holds_the_library(home)
    # The README's default: one day of avg:system.cpu.user{*} at 60 s, one automatic chunk.
    assert re.search(r"^done: 1 batches, 1440 rows", result.stdout, re.M), result.stdout
    assert len(queries) == 1


def test_readme_c_lines_run_verbatim(clone: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with FakeDatadog(hosts=3) as fake:
        result = _run_readme("C", clone, home, fake)
    _readme_prefix_holds_the_library(home)
    assert re.search(r"^done: 1 batches, 60 rows", result.stdout, re.M), result.stdout
    # The program found the library through the rpath from ddstream.pc, not a loader variable.
    dynamic = run(["readelf", "-d", clone / "stream_example"], cwd=clone).stdout
    assert re.search(rf"(RUNPATH|RPATH).*\[{re.escape(str(home / '.local' / 'lib'))}\]",
                     dynamic), dynamic


def test_install_lib_rejects_a_missing_prefix(clone: Path) -> None:
    result = subprocess.run(["scripts/install-lib.sh"], cwd=clone, env=clean_env(),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "usage: scripts/install-lib.sh PREFIX" in result.stderr


@pytest.mark.parametrize(("options", "rpath"), [
    (["-Dprefix=/opt/ddstream"], True),
    (["-Dprefix=/usr"], False),  # the loader searches there; distributions forbid rpaths
    (["-Dprefix=/usr", "-Dpkgconfig_rpath=enabled"], True),
    (["-Dprefix=/opt/ddstream", "-Dpkgconfig_rpath=disabled"], False),
])
def test_pkgconfig_rpath_follows_the_prefix(clone: Path, tmp_path: Path, options: list[str],
                                            rpath: bool) -> None:
    build = tmp_path / "build"
    run([Path(sys.executable).parent / "meson", "setup", build, "-Dtests=false", *options],
        cwd=clone, env=build_env())
    libs = next(line for line in (build / "meson-private" / "ddstream.pc").read_text().splitlines()
                if line.startswith("Libs:"))
    assert ("-Wl,-rpath,${libdir}" in libs) == rpath, libs
