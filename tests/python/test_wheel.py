"""The wheel a user pip-installs on any Linux (scripts/build-wheel.sh, docs/packaging.md): one
py3-none-manylinux wheel for the architecture, which auditwheel accepts, carrying libcurl and its
dependencies (libdeflate linked in) and every bundled component's licence. Installed into a fresh
venv, it streams from the fake Datadog in a process where the system's libcurl and libdeflate
cannot be loaded (empty files bind-mounted over them in a private mount namespace), and the
process's memory map shows libcurl loaded from the wheel's own directory."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, QUERY
from ddstream.testing import FakeDatadog
from tree import (
    clean_env,
    run,
    snapshot,
    system_libraries_by_file_name,
    system_library,
    without_system_libraries,
)

ARCH = platform.machine()
HIDDEN = ["libcurl.so.4", "libdeflate.so.0"]
START = 1_699_747_200 + 3 * 3600  # 2023-11-12T03:00:00Z; one aligned hour at 60 s: 60 buckets
END = START + 3600

# Run by the fresh venv's python with the system libraries hidden.
STREAM_SCRIPT = """
import ctypes, json, sys
unloadable = []
for name in sys.argv[6:]:
    try:
        ctypes.CDLL(name)
    except OSError:
        unloadable.append(name)
import ddstream, ddstream._lib
from ddstream.testing import FakeDatadog
query, start, end, api_key, app_key = sys.argv[1:6]
with FakeDatadog() as fake:
    with ddstream.DDStream(query=query, start=int(start), end=int(end), granularity=60,
                           base_url=fake.url, api_key=api_key, app_key=app_key) as stream:
        batches = list(stream)
with open("/proc/self/maps") as maps:
    mapped = sorted({line.split()[-1] for line in maps if "/lib" in line and ".so" in line})
print(json.dumps({
    "unloadable": unloadable,
    "package": ddstream.__file__,
    "library": str(ddstream._lib.LIBRARY_PATH),
    "mapped": mapped,
    "timestamps": [int(t) for b in batches for t in b["timestamps"]],
    "avg": [float(v) for b in batches for v in b["avg"]],
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clone = snapshot(tmp_path_factory.mktemp("clone"), with_venv=True)
    out = tmp_path_factory.mktemp("wheelhouse")
    # A user's shell: nothing activated, and no sbin directories on PATH (where ldconfig lives).
    path = os.pathsep.join(d for d in clean_env()["PATH"].split(os.pathsep)
                           if not d.rstrip("/").endswith("sbin"))
    result = run(["scripts/build-wheel.sh", out], cwd=clone, env=clean_env(PATH=path),
                 timeout=900)
    built = Path(result.stdout.strip().splitlines()[-1])
    assert built.parent == out and built.is_file(), result.stdout
    return built


def test_one_py3_none_manylinux_wheel_auditwheel_accepts(wheel: Path, tmp_path: Path) -> None:
    match = re.fullmatch(rf"ddstream-{re.escape(dd.__version__)}-py3-none-"
                         rf"(manylinux_(\d+)_(\d+)_{ARCH})\.whl", wheel.name)
    assert match, wheel.name
    platform_tag = match.group(1)
    assert [p.name for p in wheel.parent.iterdir()] == [wheel.name]
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        dist_info = next(n.split("/", 1)[0] for n in names if n.endswith(".dist-info/WHEEL"))
        tags = [line.split(":", 1)[1].strip()
                for line in whl.read(f"{dist_info}/WHEEL").decode().splitlines()
                if line.startswith("Tag:")]
        library = tmp_path / "libddstream.so"
        library.write_bytes(whl.read("ddstream/libddstream.so"))
    assert tags and all(t.startswith("py3-none-manylinux_") for t in tags), tags
    assert f"py3-none-{platform_tag}" in tags

    # auditwheel: from the set-up's venv, like the build script's.
    shown = run([Path(sys.executable).parent / "auditwheel", "show", wheel], cwd=tmp_path).stdout
    assert f'consistent with the following platform tag: "{platform_tag}"' in " ".join(
        shown.split()), shown

    # libcurl is the wheel's own copy, found through the RPATH; libdeflate is linked in.
    dynamic = run(["readelf", "-d", library], cwd=tmp_path).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", dynamic)
    assert any(re.fullmatch(r"libcurl-[0-9a-f]{8}\.so\.4.*", n) for n in needed), needed
    assert not any(n.startswith(("libcurl.so", "libdeflate")) for n in needed), needed
    assert re.search(r"\((RUNPATH|RPATH)\).*\[\$ORIGIN/\.\./ddstream\.libs\]", dynamic), dynamic
    assert any(n.startswith("ddstream.libs/libcurl-") for n in names)
    assert not any("libdeflate" in n for n in names if n.startswith("ddstream.libs/"))


def _owner(library: Path) -> str:
    for candidate in (library, Path(str(library).removeprefix("/usr"))):
        result = run(["sh", "-c", f"dpkg-query -S {candidate} || true"], cwd=Path("/")).stdout
        if result.strip():
            return result.split(":", 1)[0].strip()
    raise AssertionError(f"no Debian package owns {library}")


def test_wheel_carries_the_licence_of_everything_inside(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        dist_info = next(n.split("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(f"{dist_info}/METADATA").decode().splitlines()
        licences = f"{dist_info}/licenses/"
        read = {n[len(licences):]: whl.read(n).decode("utf-8", "replace")
                for n in names if n.startswith(licences) and not n.endswith("/")}
    assert "License-Expression: Apache-2.0 AND MIT" in metadata
    # Every licence file is declared (PEP 639) and every declared one is there.
    declared = {line.split(":", 1)[1].strip() for line in metadata
                if line.startswith("License-File:")}
    assert declared == set(read)
    # The project, and what is compiled into libddstream.
    assert "Apache License" in read["LICENSE"]
    assert "MIT" in read["libddstream/vendor/cjson/LICENSE"] or \
        "Permission is hereby granted" in read["libddstream/vendor/cjson/LICENSE"]
    assert "Apache License" in read["libddstream/vendor/nanoarrow/LICENSE"]
    assert "Apache Arrow" in read["libddstream/vendor/nanoarrow/NOTICE"]
    assert "libdeflate" in read["bundled/libdeflate/copyright"]
    # Each library auditwheel copied: the licence of the system package it was copied from.
    bundled = sorted(n.split("/", 1)[1] for n in names
                     if n.startswith("ddstream.libs/") and not n.endswith("/"))
    assert len(bundled) >= 2 and any(b.startswith("libcurl-") for b in bundled), bundled
    system = system_libraries_by_file_name()
    for copy in bundled:
        # auditwheel names a copy after the original with a hash before the first dot.
        original = re.sub(r"-[0-9a-f]{8}(?=\.)", "", copy, count=1)
        assert original in system, f"{copy}: no {original} on this system"
        package = _owner(system[original])
        assert f"bundled/{package}/copyright" in read, (copy, package)
        assert len(read[f"bundled/{package}/copyright"]) > 100


def test_fresh_venv_streams_without_the_system_libraries(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel], cwd=tmp_path,
        timeout=600)
    for name in HIDDEN:
        assert system_library(name).is_file()  # present on the machine, hidden below
    hide = without_system_libraries(HIDDEN, tmp_path / "empty")
    result = run([*hide, python, "-c", STREAM_SCRIPT, QUERY, str(START), str(END), API_KEY,
                  APP_KEY, *HIDDEN], cwd=tmp_path)
    assert API_KEY not in result.stdout + result.stderr
    got = json.loads(result.stdout)
    assert got["unloadable"] == HIDDEN  # the machine state the test promises
    site = next((venv / "lib").glob("python3*/site-packages")).resolve()
    assert Path(got["package"]).resolve().is_relative_to(site)
    assert Path(got["library"]).resolve() == site / "ddstream" / "libddstream.so"
    curl = [m for m in got["mapped"] if "/libcurl" in m]
    assert curl and all(Path(m).parent == site / "ddstream.libs" for m in curl), got["mapped"]
    assert not [m for m in got["mapped"] if "libdeflate" in m], got["mapped"]
    # (Python's own ssl module may map the system's libssl: that one is not libcurl's.)
    assert not [m for m in got["mapped"] if m.startswith(("/usr/lib", "/lib"))
                and re.search(r"/lib(curl|nghttp2|deflate)", m)], got["mapped"]
    assert any(re.search(r"/ddstream\.libs/libssl-[0-9a-f]{8}", m) for m in got["mapped"])

    with FakeDatadog() as fake:
        cfg = dd.DDStreamConfig(query=QUERY, range_start=START, range_end=END, granularity=60,
                                base_url=fake.url, api_key=API_KEY, app_key=APP_KEY)
        with dd.DDStream(cfg) as stream:
            want = list(stream)
    assert len(got["timestamps"]) == 60
    np.testing.assert_array_equal(got["timestamps"],
                                  np.concatenate([b["timestamps"] for b in want]))
    np.testing.assert_array_equal(np.array(got["avg"]), np.concatenate([b["avg"] for b in want]))

    # The command works there too.
    version = run([*hide, venv / "bin" / "ddstream", "--version"], cwd=tmp_path)
    assert version.stdout.strip() == f"ddstream {dd.__version__}"
