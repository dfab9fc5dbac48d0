"""The user's original guide, run as written: every Python snippet is a file in examples/python/
(identical to the guide except ``import ddstream as dd``), run in a child process against a
FakeDatadog that the C library finds through DDSTREAM_BASE_URL.

The guide's Arrow snippet (``cfg.enable_arrow = True``, iterating IPC bytes) is seed_arrow.py:
with enable_arrow each item is a ``ddstream.ArrowBatch``, the IPC bytes the guide reads and a
record batch at once (docs/arrow.md).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import EXAMPLES, subprocess_env
from ddstream.testing import FakeDatadog

SEED_IMPORT = "import ddstream as dd"


def run_example(name: str, server: FakeDatadog) -> str:
    path = EXAMPLES / name
    proc = subprocess.run(
        [sys.executable, str(path)],
        env=subprocess_env(server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    print(proc.stdout)
    return proc.stdout


def test_examples_use_the_package_import() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("seed_*.py"))
    assert names == [
        "seed_arrow.py",
        "seed_batch_data.py",
        "seed_config.py",
        "seed_iterate_for.py",
        "seed_iterate_while.py",
        "seed_threads.py",
    ]
    for name in names:
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        lines = text.splitlines()
        assert SEED_IMPORT in lines
        assert "import _ddstream as dd" not in lines


def test_config_and_creation(fake: FakeDatadog) -> None:
    out = run_example("seed_config.py", fake)
    # 24 hours in 4-hour chunks, 1-minute buckets: 6 chunks.
    assert "stream ready: 6 chunks, credentials valid" in out
    paths = [r.path for r in fake.requests]
    assert "/api/v1/validate" in paths  # validate() asked the server


def test_range_for(fake: FakeDatadog) -> None:
    out = run_example("seed_iterate_for.py", fake)
    counts = [int(n) for n in re.findall(r"^(\d+) points$", out, re.MULTILINE)]
    assert counts == [240] * 6  # 1440 one-minute buckets in 4-hour chunks
    assert sum(counts) == 1440


def test_has_next_loop(fake: FakeDatadog) -> None:
    out = run_example("seed_iterate_while.py", fake)
    assert "Error:" not in out
    counts = [int(n) for n in re.findall(r"^(\d+) points$", out, re.MULTILINE)]
    assert sum(counts) == 1440
    progress = re.findall(r"^ progress: (\d+)%$", out, re.MULTILINE)
    assert progress, out
    assert [int(p) for p in progress] == sorted(int(p) for p in progress)
    assert progress[-1] == "100"


def test_batch_data(fake: FakeDatadog) -> None:
    out = run_example("seed_batch_data.py", fake)
    # numpy's mean/max propagate NaN: a chunk holding the fake's daily 10-minute gap prints nan.
    assert re.search(r"^Mean CPU: (\d+\.\d\d|nan)%$", out, re.MULTILINE), out
    assert re.search(r"^Peak CPU: (\d+\.\d\d|nan)%$", out, re.MULTILINE), out
    assert len(fake.query_requests) >= 1


def test_thread_pool(fake: FakeDatadog) -> None:
    out = run_example("seed_threads.py", fake)
    # The last hour at the default 60 s granularity: 60 buckets for each query.
    assert "avg:system.cpu.user{*}: 60 points" in out
    assert "avg:system.mem.used{*}: 60 points" in out
    queries = {r.query for r in fake.query_requests}
    assert any(q is not None and q.startswith("avg:system.mem.used{*}") for q in queries)
    assert any(q is not None and q.startswith("avg:system.cpu.user{*}") for q in queries)


@pytest.mark.parametrize("name", ["seed_config.py", "seed_iterate_for.py"])
def test_examples_report_auth_errors(name: str) -> None:
    """With keys the server refuses, the guide's validate() path raises with a clear message."""
    with FakeDatadog(api_keys=["the-only-good-key"]) as server:
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / name)],
            env=subprocess_env(server),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode != 0
    assert "Invalid credentials" in proc.stderr
    assert "YOUR_DD_API_KEY" not in proc.stderr


def test_arrow_support(fake: FakeDatadog) -> None:
    out = run_example("seed_arrow.py", fake)
    schemas = out.split("timestamp: ")[1:]
    assert len(schemas) == 6  # one IPC stream per 4-hour chunk of the day
    for schema in schemas:
        assert schema.startswith("timestamp[s, tz=UTC] not null")
        for column in ("avg", "min", "max", "sum"):
            assert f"\n{column}: double" in schema
        assert "ddstream.chunk_start:" in schema
    assert len(fake.query_requests) == 6
