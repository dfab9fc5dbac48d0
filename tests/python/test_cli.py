"""The ``ddstream`` command end to end, as a subprocess, against the fake Datadog server.

Every export is read back and compared with what the library streams for the same range, so a
format that drops, reorders or rounds anything fails here.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ddstream as dd
from ddstream._timespec import parse_time
from ddstream.testing import FakeDatadog

# An aligned Sunday, so the range holds the fake data's empty buckets (nulls in every format).
START = 1_699_747_200 + 3 * 3600  # 2023-11-12T03:00:00Z
END = START + 4 * 3600
START_ISO = "2023-11-12T03:00:00Z"
END_ISO = "2023-11-12T07:00:00Z"


@pytest.fixture
def server() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={"cli-api"}, app_keys={"cli-app"}) as fake:
        yield fake


def _env(fake: FakeDatadog, **extra: str) -> dict[str, str]:
    env = dict(os.environ, DDSTREAM_BASE_URL=fake.url, DD_API_KEY="cli-api", DD_APP_KEY="cli-app")
    env.update(extra)
    return env


def _cli(fake: FakeDatadog, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ddstream", *args], env=_env(fake, **extra),
                          capture_output=True, text=True, timeout=120, check=False)


def _expected(fake: FakeDatadog, query: str) -> list[tuple[str, str, list[float]]]:
    """(ISO timestamp, series tags, [avg, min, max, sum]) rows as the library streams them."""
    cfg = dd.DDStreamConfig(api_key="cli-api", app_key="cli-app", base_url=fake.url, query=query,
                            range_start=START, range_end=END, granularity=60, chunk_seconds=3600)
    rows = []
    for batch in dd.DDStream(cfg):
        tags = batch.get("series_tags")
        for i, ts in enumerate(batch["timestamps"].tolist()):
            iso = dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            series = tags[batch["series"][i]] if tags is not None else ""
            rows.append((iso, series, [float(batch[c][i]) for c in ("avg", "min", "max", "sum")]))
    return rows


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _assert_rows_equal(got: list[tuple[str, str, list[float]]],
                       want: list[tuple[str, str, list[float]]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[0] == w[0] and g[1] == w[1], (g, w)
        assert all(_same(x, y) for x, y in zip(g[2], w[2])), (g, w)
    assert any(math.isnan(r[2][0]) for r in want), "the range must include empty buckets"


def _query_args(query: str, fmt: str, out: Path) -> list[str]:
    return ["query", query, "--from", START_ISO, "--to", END_ISO, "--chunk-seconds", "3600",
            "--format", fmt, "-o", str(out)]


@pytest.mark.parametrize("query", ["avg:system.cpu.user{*}", "avg:system.cpu.user{*} by {host}"])
def test_csv_export_reads_back_equal(server: FakeDatadog, tmp_path: Path, query: str) -> None:
    out = tmp_path / "cpu.csv"
    result = _cli(server, *_query_args(query, "csv", out))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cpu.csv.partial").exists()
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        grouped = "by" in query
        assert reader.fieldnames == ["timestamp", *(["series"] if grouped else []),
                                     "avg", "min", "max", "sum"]
        got = [(r["timestamp"], r.get("series", ""),
                [float(r[c]) if r[c] else math.nan for c in ("avg", "min", "max", "sum")])
               for r in reader]
    _assert_rows_equal(got, _expected(server, query))
    assert len(server.query_requests) == 4 + 4  # 4 chunks by the CLI, 4 by the reference read


def test_jsonl_export_reads_back_equal(server: FakeDatadog, tmp_path: Path) -> None:
    query = "avg:system.cpu.user{*} by {host}"
    out = tmp_path / "cpu.jsonl"
    result = _cli(server, *_query_args(query, "jsonl", out))
    assert result.returncode == 0, result.stderr
    got = []
    for line in out.read_text().splitlines():
        row = json.loads(line)
        got.append((row["timestamp"], row["series"],
                    [math.nan if row[c] is None else row[c] for c in ("avg", "min", "max", "sum")]))
    _assert_rows_equal(got, _expected(server, query))


def test_table_to_stdout(server: FakeDatadog) -> None:
    result = _cli(server, "query", "avg:system.cpu.user{*}", "--from", START_ISO, "--to",
                  START_ISO.replace("03:00", "03:05"), "--format", "table")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["timestamp", "avg", "min", "max", "sum"]
    assert [line.split()[0] for line in lines[1:]] == [
        f"2023-11-12T03:0{m}:00Z" for m in range(5)
    ]
    assert "ETA" not in result.stderr, "no progress bar into a pipe"


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_arrow_formats_read_back_equal(server: FakeDatadog, tmp_path: Path, fmt: str) -> None:
    import pyarrow as pa  # installed by the test set-up (requirements-dev.txt)
    import pyarrow.parquet as pq

    query = "avg:system.cpu.user{*} by {host}"
    out = tmp_path / f"cpu.{fmt}"
    result = _cli(server, *_query_args(query, fmt, out))
    assert result.returncode == 0, result.stderr
    if fmt == "parquet":
        table = pq.read_table(out)
    else:
        table = pa.ipc.open_stream(out.read_bytes()).read_all()
    # Parquet has no seconds unit: pyarrow stores timestamp[s] as milliseconds.
    unit = "ms" if fmt == "parquet" else "s"
    assert str(table.schema.field("timestamp").type) == f"timestamp[{unit}, tz=UTC]"
    seconds = table.column("timestamp").cast(pa.timestamp("s", tz="UTC"))
    stamps = seconds.cast(pa.int64()).to_pylist()
    series = [str(s) for s in table.column("series").to_pylist()]
    values = {c: table.column(c).to_pylist() for c in ("avg", "min", "max", "sum")}
    columns = ("avg", "min", "max", "sum")
    got = [(dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), series[i],
            [math.nan if values[c][i] is None else values[c][i] for c in columns])
           for i, t in enumerate(stamps)]
    _assert_rows_equal(got, _expected(server, query))


def test_progress_bar_on_a_terminal(server: FakeDatadog, tmp_path: Path) -> None:
    import pty

    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "ddstream", *_query_args(
        "avg:system.cpu.user{*}", "csv", tmp_path / "p.csv")], env=_env(server),
        stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            seen += chunk
    assert proc.wait(timeout=30) == 0
    os.close(controller)
    text = seen.decode(errors="replace")
    assert "4/4 chunks" in text and "ETA" in text and "points" in text, text


def test_validate_and_exit_codes(server: FakeDatadog) -> None:
    ok = _cli(server, "validate")
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    bad_key = _cli(server, "validate", DD_API_KEY="wrong-key-0123456789")
    assert bad_key.returncode == 3
    assert "AuthError" in bad_key.stderr and "Traceback" not in bad_key.stderr
    assert "wrong-key-0123456789" not in bad_key.stderr
    # Valid to the library's parser, refused by the server (the fake lacks this function).
    server_refuses = "robust_trend(avg:m{*})"
    bad_query = _cli(server, "query", server_refuses, "--from", "-1h", "-o", os.devnull)
    assert bad_query.returncode == 6, bad_query.stderr
    assert len(bad_query.stderr.strip().splitlines()) == 1
    bad_config = _cli(server, "query", "avg:m{*}", "--granularity", "0")
    assert bad_config.returncode == 2 and "granularity" in bad_config.stderr
    bad_time = _cli(server, "query", "avg:m{*}", "--from", "yesterday-ish")
    assert bad_time.returncode == 2 and "yesterday-ish" in bad_time.stderr
    no_pipe_parquet = _cli(server, "query", "avg:m{*}", "--format", "parquet")
    assert no_pipe_parquet.returncode == 2


def test_plan_and_batch_bounds_from_the_command_line(server: FakeDatadog) -> None:
    """The library's messages say "raise max_chunks" / "max_batch_rows": the CLI can."""
    span = ["--from", START_ISO, "--to", END_ISO, "--chunk-seconds", "3600", "--format", "csv"]
    refused = _cli(server, "query", "avg:system.cpu.user{*}", *span, "--max-chunks", "2")
    assert refused.returncode == 2, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "max_chunks (2)" in refused.stderr and "Traceback" not in refused.stderr
    raised = _cli(server, "query", "avg:system.cpu.user{*}", *span, "--max-chunks", "1000")
    assert raised.returncode == 0, raised.stderr
    assert len(raised.stdout.strip().splitlines()) > 2
    wide = _cli(server, "query", "avg:system.cpu.user{*} by {host}", *span,
                "--max-batch-rows", "10")
    assert wide.returncode == 7, wide.stderr  # a protocol error: the chunk's batch is too big
    assert "max_batch_rows (10)" in wide.stderr


def test_failed_export_leaves_no_file(server: FakeDatadog, tmp_path: Path) -> None:
    out = tmp_path / "never.csv"
    result = _cli(server, "query", "avg:system.cpu.user{*}", "--from", "-2h", "-o", str(out),
                  DD_APP_KEY="wrong-app-key")
    assert result.returncode == 3
    assert not out.exists() and not (tmp_path / "never.csv.partial").exists()


def test_relative_times_and_demo(server: FakeDatadog) -> None:
    result = _cli(server, "query", "avg:system.cpu.user{*}", "--from", "-36h", "--to", "now",
                  "--format", "jsonl", "-q")
    assert result.returncode == 0, result.stderr
    # 36 h at 60 s = 2160 buckets (2161 when "now" is not on a minute boundary): two requests.
    assert len(result.stdout.splitlines()) in (2160, 2161)
    assert len(server.query_requests) == 2
    demo = _cli(server, "demo", "--hours", "2")
    assert demo.returncode == 0, demo.stderr
    assert "done:" in demo.stdout


def test_parse_time() -> None:
    now = 1_800_000_000.5
    assert parse_time("now", now=now) == 1_800_000_000
    assert parse_time("-7d", now=now) == 1_800_000_000 - 7 * 86400
    assert parse_time("-36h", now=now) == 1_800_000_000 - 36 * 3600
    assert parse_time("now-90m", now=now) == 1_800_000_000 - 5400
    assert parse_time("-1.5h", now=now) == 1_800_000_000 - 5400
    assert parse_time("1700000000") == 1_700_000_000
    assert parse_time("2023-11-12T03:00:00Z") == START
    assert parse_time("2023-11-12 05:00:00+02:00") == START
    assert parse_time("2023-11-12T03:00:00") == START  # naive means UTC
    assert parse_time(dt.date(2023, 11, 12)) == 1_699_747_200
    assert parse_time(dt.datetime(2023, 11, 12, 3, tzinfo=dt.timezone.utc)) == START
    assert parse_time(np.int64(5).item()) == 5
    for bad in ("yesterday", "-7x", "", "2023-13-01"):
        with pytest.raises(ValueError, match="not a time"):
            parse_time(bad)
    with pytest.raises(ValueError, match="not a time"):
        parse_time(True)
