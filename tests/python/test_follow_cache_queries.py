"""Follow mode and the chunk cache with several queries in one stream, and the two together
(issue 16, "both work with several queries"): a FakeClock shared by the fake server and the
stream, every value checked against ``reference.py``, every request counted at the fake.

The queries' sub-queries are packed into several requests a chunk (a small
``max_subqueries_per_request``), so "one chunk" means "the packed requests of one chunk", as
``explain`` lists them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, T0, subprocess_env
from ddstream.testing import FakeClock, FakeDatadog
from reference import expected_buckets

STEP = 300  # 5 buckets of 60 s per chunk
SETTLE = 120
START = (T0 // STEP + 1) * STEP
STATISTICS = ("avg", "min", "max", "sum")
# (space, metric, by): ungrouped and grouped, other aggregators; the fake knows them all.
SHAPES = (("avg", "system.cpu.user", ()), ("max", "follow.metric1", ()),
          ("sum", "follow.metric2", ("host",)))
QUERIES = [f"{space}:{metric}{{*}}" + (f" by {{{','.join(by)}}}" if by else "")
           for space, metric, by in SHAPES]
PER_REQUEST = 5  # 3 queries x 4 statistics = 12 sub-queries: 3 requests a chunk


def options(server: FakeDatadog, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": server.url, "queries": QUERIES,
        "start": START, "end": None, "granularity": 60, "chunk_seconds": STEP,
        "settle_seconds": SETTLE, "max_retries": 0, "max_in_flight": 1,
        "max_subqueries_per_request": PER_REQUEST,
    }
    values.update(overrides)
    return values


def requests_per_chunk() -> int:
    report = dd.explain(queries=QUERIES, range_start=START, range_end=START + STEP,
                        granularity=60, chunk_seconds=STEP,
                        max_subqueries_per_request=PER_REQUEST)
    return len(report["requests"])


def check_batch(batch: dd.Batch, index: int) -> None:
    """Chunk ``index`` of the three queries, every statistic, exactly the fake's values."""
    lo = START + index * STEP
    assert batch["chunk_index"] == index
    query = np.asarray(batch["query"])
    tags = batch["series_tags"]
    series = np.asarray(batch["series"])
    rows = 0
    for q, (space, metric, by) in enumerate(SHAPES):
        for stat in STATISTICS:
            truth = expected_buckets(metric, None, list(by), space, stat, lo, lo + STEP, 60)
            for key, (stamps, values) in truth.items():
                name = ",".join(key)
                mine = [i for i, t in enumerate(tags) if t == name]
                picked = (query == q) & np.isin(series, mine)
                np.testing.assert_array_equal(batch["timestamps"][picked], stamps)
                np.testing.assert_array_equal(batch[stat][picked], values)  # type: ignore[literal-required]
                if stat == "avg":
                    rows += len(stamps)
    assert len(batch["timestamps"]) == rows, "rows that no query's truth accounts for"


def chunk_starts(server: FakeDatadog) -> list[int]:
    return sorted(r.from_ts for r in server.query_requests if r.from_ts is not None)


# -- follow mode ------------------------------------------------------------------------------


def test_follow_several_queries(fake: FakeDatadog) -> None:
    """History, then new chunks as the clock moves: each chunk once, exact for every query,
    the packed requests of one chunk per new chunk, none before it settled."""
    packed = requests_per_chunk()
    assert packed == 3
    clock = FakeClock(START + 3 * STEP + SETTLE)
    fake.clock = clock
    with dd.DDStream(clock=clock, **options(fake)) as stream:
        assert stream.follows and stream.chunk_count == 3
        for index in range(3):
            check_batch(next(stream), index)
        assert len(fake.query_requests) == 3 * packed
        for index in range(3, 8):
            clock.advance(STEP)
            check_batch(next(stream), index)
            assert len(fake.query_requests) == (index + 1) * packed
    assert chunk_starts(fake) == sorted(START + i * STEP for i in range(8) for _ in range(packed))
    for record in fake.query_requests:
        assert record.clock is not None and record.to_ts is not None
        assert record.clock >= record.to_ts + 1 + SETTLE, "a chunk was asked before it settled"


def test_follow_several_queries_restarts_from_its_token(fake: FakeDatadog) -> None:
    clock = FakeClock(START + 2 * STEP + SETTLE)
    fake.clock = clock
    with dd.DDStream(clock=clock, **options(fake)) as stream:
        got = [next(stream)["chunk_index"] for _ in range(2)]
        token = stream.resume_token()
    clock.advance(3 * STEP)
    fake.clear_log()
    with dd.DDStream(clock=clock, resume=token, **options(fake)) as again:
        for index in range(2, 5):
            batch = next(again)
            check_batch(batch, index)
            got.append(batch["chunk_index"])
    assert got == list(range(5))
    assert chunk_starts(fake) == sorted(START + i * STEP for i in range(2, 5) for _ in range(3))


# -- the chunk cache --------------------------------------------------------------------------


def copies(stream: dd.DDStream[dd.Batch], count: int | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for batch in stream:
        out.append({k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in batch.items()})
        if count is not None and len(out) == count:
            break
    return out


def assert_same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], np.ndarray):
                assert np.array_equal(x[key], y[key], equal_nan=x[key].dtype.kind == "f"), key
            else:
                assert x[key] == y[key], key


def test_cache_several_queries_second_run_sends_nothing(fake: FakeDatadog, tmp_path: Path) -> None:
    settled = dict(options(fake, cache_dir=str(tmp_path)), end=START + 4 * STEP)
    with dd.DDStream(**settled) as stream:
        first = copies(stream)
    assert len(fake.query_requests) == 4 * requests_per_chunk()
    for index, batch in enumerate(first):
        check_batch(batch, index)  # type: ignore[arg-type]
    fake.clear_log()
    with dd.DDStream(**settled) as stream:
        second = copies(stream)
        assert stream.progress() == 1.0
    assert fake.requests == []
    assert_same(first, second)


def test_cache_judges_settled_by_the_streams_clock(fake: FakeDatadog, tmp_path: Path) -> None:
    """A range whose last chunk ended within the settle horizon of the stream's clock (though
    long ago by the system's): that chunk is fetched every time, never stored; the rest is."""
    clock = FakeClock(START + 4 * STEP + SETTLE // 2)
    fake.clock = clock
    bounded = dict(options(fake, cache_dir=str(tmp_path)), end=START + 4 * STEP, follow=False)
    with dd.DDStream(clock=clock, **bounded) as stream:
        copies(stream)
    fake.clear_log()
    with dd.DDStream(clock=clock, **bounded) as stream:
        copies(stream)
    assert chunk_starts(fake) == [START + 3 * STEP] * requests_per_chunk()
    clock.advance(SETTLE)  # now it has settled: stored by this run, read by the next
    for _ in range(2):
        fake.clear_log()
        with dd.DDStream(clock=clock, **bounded) as stream:
            copies(stream)
    assert fake.requests == []


def test_restarted_follow_stream_reads_its_history_from_the_cache(fake: FakeDatadog,
                                                                  tmp_path: Path) -> None:
    packed = requests_per_chunk()
    clock = FakeClock(START + 4 * STEP + SETTLE)
    fake.clock = clock
    cached = options(fake, cache_dir=str(tmp_path))
    with dd.DDStream(clock=clock, **cached) as stream:
        first = copies(stream, 4)
        clock.advance(STEP)
        first += copies(stream, 1)
    assert len(fake.query_requests) == 5 * packed
    # The restart (no token: from the start again) reads chunks 0..4 from the cache, then
    # fetches only the new ones.
    clock.advance(2 * STEP)
    fake.clear_log()
    with dd.DDStream(clock=clock, **cached) as again:
        second = copies(again, 5)
        assert fake.requests == [], "settled history was fetched again"
        for index in (5, 6):
            check_batch(next(again), index)
        clock.advance(STEP)
        check_batch(next(again), 7)
    assert_same(first, second)
    assert chunk_starts(fake) == sorted(START + i * STEP for i in (5, 6, 7) for _ in range(packed))


# -- the command line -------------------------------------------------------------------------


def test_cli_query_follow_of_several_queries() -> None:
    """``ddstream query --follow Q1 Q2`` in real time: every bucket of every query once, chunk
    by chunk, with the query column."""
    first, second = "avg:system.cpu.user{*}", "max:system.load.1{*}"
    with FakeDatadog(raw_interval=1) as server:
        env = subprocess_env(server)
        env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
        start = int(time.time()) // 2 * 2 - 4
        child = subprocess.Popen(
            [sys.executable, "-m", "ddstream", "query", first, second, "--from", str(start),
             "--follow", "--granularity", "1", "--chunk-seconds", "2", "--settle-seconds", "1",
             "--format", "csv", "--no-cache"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        header = child.stdout.readline().strip().split(",")
        lines = [child.stdout.readline().strip().split(",") for _ in range(4 * 4)]  # 4 chunks
        child.send_signal(signal.SIGINT)
        assert child.wait(10) == 130
    assert header[:2] == ["timestamp", "query"]
    stamp = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + k)) for k in range(8)]
    want = [[stamp[2 * c + k], query] for c in range(4) for query in (first, second)
            for k in range(2)]
    assert [line[:2] for line in lines] == want


@pytest.mark.parametrize("partition", ["chunk", "day"])
def test_export_follow_of_several_queries(fake: FakeDatadog, tmp_path: Path,
                                          partition: str) -> None:
    """The Parquet export of several queries: one stream, the query column per row, exact
    values; a restart resumes; another set of queries in the folder is refused."""
    import duckdb

    from ddstream._follow_export import FollowExport

    clock = FakeClock(START + 2 * STEP + SETTLE)
    fake.clock = clock
    folder = tmp_path / "out"
    settings: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": fake.url, "start": START,
        "granularity": 60, "chunk_seconds": STEP, "settle_seconds": SETTLE, "max_retries": 0,
        "clock": clock, "partition": partition, "max_subqueries_per_request": PER_REQUEST,
    }
    assert FollowExport(QUERIES, folder, **settings).run(max_chunks=2).chunks == 2
    clock.advance(STEP)
    assert FollowExport(QUERIES, folder, **settings).run(max_chunks=1).chunks == 1
    assert len(fake.query_requests) == 3 * requests_per_chunk()
    rows = duckdb.sql(
        f"SELECT query, epoch(timestamp)::BIGINT, series, avg, min, max, sum FROM "
        f"read_parquet('{folder}/**/*.parquet', hive_partitioning=true)").fetchall()
    got = {(r[0], r[1], r[2]): r[3:] for r in rows}
    assert len(got) == len(rows), "a row written twice"
    want: dict[tuple[str, int, str | None], list[float]] = {}
    for text, (space, metric, by) in zip(QUERIES, SHAPES, strict=True):
        for stat in STATISTICS:
            truth = expected_buckets(metric, None, list(by), space, stat, START, START + 3 * STEP,
                                     60)
            for key, (stamps, values) in truth.items():
                for stamp, value in zip(stamps, values, strict=True):
                    row = (text, int(stamp), ",".join(key) if by else None)
                    want.setdefault(row, []).append(float(value))
    assert got.keys() == want.keys()
    for row, values in want.items():
        mine = [np.nan if v is None else v for v in got[row]]
        np.testing.assert_array_equal(mine, values, err_msg=str(row))
    with pytest.raises(dd.ConfigError, match="quer"):
        FollowExport(QUERIES[:2], folder, **settings).run(1)


def test_cli_export_follow_takes_a_file_of_several_queries(tmp_path: Path) -> None:
    with FakeDatadog(raw_interval=1) as server:
        env = subprocess_env(server)
        env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
        listed = tmp_path / "q.txt"
        listed.write_text("\n".join(QUERIES) + "\n")
        folder = tmp_path / "out"
        start = int(time.time()) // 2 * 2 - 6
        child = subprocess.Popen(
            [sys.executable, "-m", "ddstream", "export", str(listed), "--to-parquet", str(folder),
             "--follow", "--from", str(start), "--granularity", "1", "--chunk-seconds", "2",
             "--settle-seconds", "1", "-q", "--no-cache"],
            env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        try:
            while len(list(folder.rglob("chunk-*.parquet"))) < 3 and time.monotonic() < deadline:
                assert child.poll() is None, child.stderr.read() if child.stderr else ""
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGINT)
            assert child.wait(10) == 130
    import duckdb

    counts = dict(duckdb.sql(
        f"SELECT query, count(DISTINCT timestamp) FROM read_parquet('{folder}/**/*.parquet') "
        "GROUP BY query").fetchall())
    assert set(counts) == set(QUERIES)
    assert len(set(counts.values())) == 1 and min(counts.values()) >= 6
