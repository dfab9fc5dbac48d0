"""The Python examples that are not seed snippets, run as a user would (a subprocess each),
against the built-in fake Datadog they start themselves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def _run(name: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "DDSTREAM_"))}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_duckdb_example() -> None:
    out = _run("duckdb_example.py")
    hosts = {line.split()[0] for line in out.splitlines()[1:-1]}
    assert hosts == {"host:h00", "host:h01", "host:h02"}
    assert re.search(r"^\d+ rows from 1 chunk\(s\)$", out, re.M), out


def test_pandas_resample_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "cpu.png"
    out = _run("pandas_plot.py", str(png))
    # 7 days at 300 s for 3 hosts; hourly means over 7 days (168 or 169 hours) x 3 hosts
    match = re.search(r"^(\d+) rows, (\d+) hours x 3 hosts", out, re.M)
    assert match, out
    assert int(match.group(1)) in (3 * 2016, 3 * 2017)
    assert int(match.group(2)) in (168, 169)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_polars_example() -> None:
    out = _run("polars_example.py")
    for host in ("host:h00", "host:h01", "host:h02"):
        assert host in out
    assert len(re.findall(r"host:h0\d ┆ 144[01] ┆", out)) == 3, out  # 1440 (or 1441) rows each


def test_several_queries_example() -> None:
    out = _run("several_queries.py")
    # A week at 300 s is 2016 (or 2017) buckets: 2 chunks (1500-point cap), one request each for
    # all five queries (20 sub-queries), where a stream per query would send 10.
    assert "5 queries, 2 chunks: 2 requests (5.0x fewer than a stream per query: 10)" in out, out
    assert "the fake server answered 2 requests" in out
    series = {"avg:system.cpu.user{*} by {host}": 3, "max:system.load.1{*} by {host}": 3,
              "avg:system.mem.used{*}": 1, "sum:trace.http.request.hits{env:prod}": 1,
              "avg:system.disk.in_use{*} by {host}": 3}
    for query, count in series.items():
        match = re.search(rf"^{re.escape(query)}\s+(\d+)\s+(\d+)\s", out, re.M)
        assert match, out
        assert int(match.group(1)) == count and int(match.group(2)) in (2016 * count,
                                                                        2017 * count), out


def test_formulas_example() -> None:
    out = _run("formulas.py")
    # A month at 60 s for 3 hosts, dense (the fake's gaps are NaN rows); one POST per chunk.
    head = re.search(r"^used / total \* 100: 30 days at 60 s, (\d+) chunks \(one POST each\), "
                     r"(\d+) rows$", out, re.M)
    assert head, out
    chunks, rows = int(head.group(1)), int(head.group(2))
    assert rows == 3 * 30 * 1440 and chunks >= 29  # each chunk under the 1500-point cap
    tail = re.search(r"answered (\d+) timeseries and (\d+) scalar requests, (\d+) rows", out)
    assert tail and (int(tail.group(1)), int(tail.group(3))) == (chunks, rows), out
    hosts = re.findall(r"^(host:h0\d)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$", out, re.M)
    assert [h[0] for h in hosts] == ["host:h00", "host:h01", "host:h02"], out
    for _, mean, peak, missing in hosts:
        assert 0 < float(mean) < float(peak) < 100 and 0 < int(missing) < 30 * 1440 // 10
    # The scalar: weekly pieces (5 for 30 days), a request each, one value per host; the mean of
    # used over the mean of total is near the mean of the ratio, not equal to it.
    scalar = re.search(r"scalar over the month, (\d+) pieces, (\d+) requests:\n"
                       r"((?:host:h0\d\s+[\d.]+\n){3})", out)
    assert scalar and scalar.group(1) == scalar.group(2) == tail.group(2) == "5", out
    values = [float(line.split()[1]) for line in scalar.group(3).splitlines()]
    for value, (_, mean, _, _) in zip(values, hosts, strict=True):
        assert abs(value - float(mean)) < 0.5
