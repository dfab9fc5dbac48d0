"""The chunk cache with formulas (v2's ``POST /api/v2/query/timeseries``): real files, a real
FakeDatadog counting the requests, every value against ``test_formulas``' numpy truth.

A second run sends nothing and gives the same batches and Arrow; a chunk not settled by the
stream's clock (a FakeClock) is fetched again and never stored, until it settles; a v1 and a v2
stream over the same metric keep one entry each per chunk (the key holds method, path and body);
bad entries are logged misses that the fetch replaces; and ``ddstream query --formula`` caches.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, subprocess_env
from ddstream.testing import FakeClock, FakeDatadog
from test_cache import assert_same, corrupt, entries, run
from test_formulas import DAY, START, A, B, G, check_exact, config

# 2 chunks a day of 720 buckets (no split), none wholly inside the fake's Sunday gap (where a
# grouped formula has no series, and so no row).
HALF = DAY // 2
END = START + 2 * DAY
FORMULA = "a / b * 100"
TIMESERIES = "/api/v2/query/timeseries"


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def cached(fake: FakeDatadog, folder: Path, **changes: Any) -> dd.DDStreamConfig:
    values: dict[str, Any] = {"range_end": END, "chunk_seconds": HALF,
                              "cache_dir": str(folder)}
    values.update(changes)
    return config(fake, **values)


def chunk_starts(fake: FakeDatadog) -> list[int]:
    """The `from` (s) of every v2 request logged, sorted."""
    return sorted(json.loads(r.body)["data"]["attributes"]["from"] // 1000
                  for r in fake.query_requests)


def test_second_run_makes_no_request_and_gives_the_same(fake: FakeDatadog,
                                                        tmp_path: Path) -> None:
    cfg = cached(fake, tmp_path, max_in_flight=4, prefetch_chunks=4)
    first, first_progress = run(cfg)
    assert [r.path for r in fake.requests] == [TIMESERIES] * 4
    assert len(entries(tmp_path)) == 4
    assert check_exact(first, [FORMULA], END) == 3 * 2 * DAY // G  # 3 hosts
    fake.clear_log()
    second, second_progress = run(cfg)
    assert fake.requests == []
    assert_same(first, second)
    assert second_progress == first_progress
    fetched, _ = run(cfg.copy(cache_dir=None))
    assert len(fake.query_requests) == 4
    assert_same(first, fetched)
    pytest.importorskip("pyarrow")
    fake.clear_log()
    with dd.DDStream(cfg) as stream:
        cached_table = stream.to_arrow().read_all()
    assert fake.requests == []
    with dd.DDStream(cfg.copy(cache_dir=None)) as stream:
        fetched_table = stream.to_arrow().read_all()
    assert cached_table.equals(fetched_table)
    assert cached_table.num_rows == sum(len(b["timestamps"]) for b in first)
    # No key in the folder, neither in names nor in files.
    for path in tmp_path.rglob("*"):
        assert API_KEY not in path.name
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes()
            assert APP_KEY.encode() not in path.read_bytes()


def test_unsettled_last_chunk_is_refetched_not_stored(fake: FakeDatadog, tmp_path: Path) -> None:
    """The stream's clock (shared with the fake) 100 s after the range: its last chunk has not
    settled (300 s), so each run asks for it again and nothing stores it, until it settles."""
    end = END
    clock = FakeClock(end + 100)
    fake.clock = clock
    cfg = cached(fake, tmp_path)
    with dd.DDStream(cfg, clock=clock) as stream:
        first = list(stream.batches())
    assert chunk_starts(fake) == [START + k * HALF for k in range(4)]
    assert len(entries(tmp_path)) == 3
    assert check_exact(first, [FORMULA], end) == 3 * 2 * DAY // G
    for _ in range(2):
        fake.clear_log()
        with dd.DDStream(cfg, clock=clock) as stream:
            again = list(stream.batches())
        assert chunk_starts(fake) == [end - HALF]
        assert len(entries(tmp_path)) == 3
        assert_same(first, again)
    clock.advance(200)  # settled now: fetched once more, and kept
    fake.clear_log()
    with dd.DDStream(cfg, clock=clock) as stream:
        assert_same(first, list(stream.batches()))
    assert chunk_starts(fake) == [end - HALF]
    assert len(entries(tmp_path)) == 4
    fake.clear_log()
    with dd.DDStream(cfg, clock=clock) as stream:
        assert_same(first, list(stream.batches()))
    assert fake.requests == []


def test_v1_and_v2_over_one_metric_never_share_an_entry(fake: FakeDatadog,
                                                        tmp_path: Path) -> None:
    v2 = cached(fake, tmp_path, queries={"b": B}, formulas=None, api="v2")
    v1 = cached(fake, tmp_path, queries=None, formulas=None, query=B)
    v2_first, _ = run(v2)
    v1_first, _ = run(v1)
    assert [r.path for r in fake.requests] == [TIMESERIES] * 4 + ["/api/v1/query"] * 4
    assert len(entries(tmp_path)) == 8
    fake.clear_log()
    v1_again, _ = run(v1)
    v2_again, _ = run(v2)
    assert fake.requests == []
    assert_same(v1_first, v1_again)
    assert_same(v2_first, v2_again)
    # The same data by both endpoints (v1's avg is v2's value), each from its own entries.
    v1_avg = np.concatenate([b["avg"] for b in v1_again])
    v2_value = np.concatenate([b["value"] for b in v2_again])
    np.testing.assert_array_equal(v1_avg, v2_value)
    assert not np.isnan(v2_value).all()


def test_bad_entries_are_logged_misses_and_replaced(fake: FakeDatadog, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    cfg = cached(fake, tmp_path, log_level=2)
    first, _ = run(cfg)
    kinds = ["zero-length", "truncated", "flipped byte", "garbage"]
    for path, how in zip(entries(tmp_path), kinds, strict=True):
        corrupt(path, how)
    fake.clear_log()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ddstream"):
        again, _ = run(cfg)
    assert len(fake.query_requests) == len(kinds)
    assert_same(first, again)
    warnings = [r.getMessage() for r in caplog.records if "not a valid entry" in r.getMessage()]
    assert len(warnings) == len(kinds), warnings
    for text in warnings:
        assert API_KEY not in text and APP_KEY not in text
    fake.clear_log()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ddstream"):
        third, _ = run(cfg)
    assert fake.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert_same(first, third)


def test_cli_query_formula_with_cache_dir(fake: FakeDatadog, tmp_path: Path) -> None:
    env = subprocess_env(fake)
    env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
    folder = tmp_path / "cache"
    outputs = []
    for k in range(2):
        out = tmp_path / f"out{k}.csv"
        proc = subprocess.run(
            [sys.executable, "-m", "ddstream", "query", "--formula", FORMULA, f"a={A}", f"b={B}",
             "--from", str(START), "--to", str(END), "--chunk-seconds", str(HALF),
             "--cache-dir", str(folder), "-o", str(out), "-q"],
            env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_text())
        assert len(fake.query_requests) == 4  # the first run's: the second sends none
        assert len(entries(folder)) == 4
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 1 + 3 * 2 * DAY // G
