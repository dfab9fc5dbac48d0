"""The C example, compiled the way a user would (the public header and the shared library that
ship inside the installed package, nothing else) and run against the fake Datadog server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import ddstream
from ddstream.testing import FakeDatadog

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "c" / "stream_example.c"


def _library_dir() -> Path:
    """Where libddstream.so and ddstream.h are: the package, or a dev build's override."""
    override = os.environ.get("DDSTREAM_LIBRARY")
    if override:
        return Path(override).resolve().parent
    return Path(ddstream.__file__).resolve().parent


def _header_dir() -> Path:
    package = Path(ddstream.__file__).resolve().parent
    return package if (package / "ddstream.h").is_file() else REPO / "include"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is part of the set-up"
    lib_dir = _library_dir()
    out = tmp_path_factory.mktemp("c-example") / "stream_example"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", str(EXAMPLE), f"-I{_header_dir()}",
         f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-l:libddstream.so", "-lm", "-o", str(out)],
        check=True,
    )
    return out


def _run(example: Path, fake: FakeDatadog, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DDSTREAM_BASE_URL=fake.url, DD_API_KEY="c-api", DD_APP_KEY="c-app")
    return subprocess.run([str(example), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_c_example_streams_a_day(example: Path) -> None:
    with FakeDatadog() as fake:
        result = _run(example, fake, "avg:system.cpu.user{*}", "86400", "60")
        assert result.returncode == 0, result.stderr
        # A day at 60 s fits one automatic chunk: 1440 buckets, one request.
        assert re.search(r"^done: 1 batches, 1440 rows", result.stdout, re.M), result.stdout
        assert len([r for r in fake.requests if r.path == "/api/v1/query"]) == 1


def test_c_example_grouped_and_error(example: Path) -> None:
    with FakeDatadog(hosts=4) as fake:
        result = _run(example, fake, "avg:system.cpu.user{*} by {host}", "7200", "60")
        assert result.returncode == 0, result.stderr
        assert "series=4" in result.stdout
        assert re.search(r"^done: 1 batches, 480 rows", result.stdout, re.M), result.stdout
        # A query the library's parser accepts and the server refuses (a function the fake does
        # not have): the server's 400, named as such.
        bad = _run(example, fake, "robust_trend(avg:system.cpu.user{*})", "3600", "60")
        assert bad.returncode == 1
        assert "query rejected" in bad.stderr and "HTTP 400" in bad.stderr, bad.stderr
        # One that is not a query at all never reaches the server: the config error points at
        # the character.
        malformed = _run(example, fake, "avg:system.cpu.user{host:a", "3600", "60")
        assert malformed.returncode == 1
        assert "invalid configuration" in malformed.stderr, malformed.stderr
        assert "expected '}'" in malformed.stderr and "^" in malformed.stderr, malformed.stderr


@pytest.fixture(scope="module")
def formula_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is part of the set-up"
    lib_dir = _library_dir()
    out = tmp_path_factory.mktemp("c-formula-example") / "formula_example"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", str(EXAMPLE.with_name("formula_example.c")),
         f"-I{_header_dir()}", f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-l:libddstream.so", "-lm",
         "-o", str(out)],
        check=True,
    )
    return out


def test_c_formula_example_streams_and_scalars(formula_example: Path) -> None:
    used, total = "avg:system.mem.used{*} by {host}", "avg:system.mem.total{*} by {host}"
    with FakeDatadog() as fake:
        env = dict(os.environ, DDSTREAM_BASE_URL=fake.url, DD_API_KEY="c-api",
                   DD_APP_KEY="c-app", DDSTREAM_EXAMPLE_SECONDS=str(2 * 86400))
        result = subprocess.run([str(formula_example), "a / b * 100", f"a={used}", f"b={total}"],
                                env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        paths = [r.path for r in fake.query_requests]
        bad = subprocess.run([str(formula_example), "a / c", f"a={used}"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    chunks = int(re.search(r"^a / b \* 100: (\d+) chunks$", result.stdout, re.M).group(1))
    # Two days at 60 s: two chunks under the point cap, one POST each, then one scalar request.
    assert chunks == 2 and paths == ["/api/v2/query/timeseries"] * 2 + ["/api/v2/query/scalar"]
    series = re.findall(r"^series (host:h0\d)\s+rows=(\d+) with_value=(\d+) mean=([\d.]+)$",
                        result.stdout, re.M)
    assert [s[0] for s in series] == ["host:h00", "host:h01", "host:h02"], result.stdout
    scalars = dict(re.findall(r"^scalar (host:h0\d)\s+([\d.]+)$", result.stdout, re.M))
    for host, rows, valued, mean in series:
        # Dense on the grid: every bucket a row, the fake's gaps without a value.
        assert int(rows) == 2 * 1440 and 0 < int(valued) < int(rows)
        # The scalar is mean(a) / mean(b) * 100, near the mean of the ratio, not equal to it.
        assert abs(float(scalars[host]) - float(mean)) < 0.5
    assert "scalar: 3 rows from 1 request(s)" in result.stdout
    # A formula naming a query it was not given never reaches the server.
    assert bad.returncode == 1 and "unknown query name 'c'" in bad.stderr and "^" in bad.stderr
