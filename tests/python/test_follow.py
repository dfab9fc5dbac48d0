"""Follow mode from Python: a simulated hour on a FakeClock shared by the fake server and the
stream, each chunk exactly once with the fake's exact values, one request per new chunk and none
before it settled, cancel during the wait, restart from the resume token, ``end=None``."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
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
START = (T0 // STEP + 1) * STEP  # aligned: chunk i is [START + i*STEP, START + (i+1)*STEP)
QUERY = "avg:system.cpu.user{*}"


def clear_log_when_idle(server: FakeDatadog) -> None:
    """Forget the request log once no answer is in flight (a closed stream's prefetch may still
    be finishing), so that only the next stream's requests are counted."""
    deadline = time.monotonic() + 5
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    server.clear_log()


def follow_stream(server: FakeDatadog, clock: FakeClock, **options: Any) -> dd.DDStream[dd.Batch]:
    values: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": server.url, "query": QUERY,
        "start": START, "end": None, "granularity": 60, "chunk_seconds": STEP,
        "settle_seconds": SETTLE, "max_retries": 0, "max_in_flight": 1,
    }
    values.update(options)
    return dd.DDStream(clock=clock, **values)


def expected(index: int) -> tuple[Any, Any]:
    lo = START + index * STEP
    ((stamps, values),) = expected_buckets(
        "system.cpu.user", None, None, "avg", "avg", lo, lo + STEP, 60
    ).values()
    return stamps, values


def check_batch(batch: dd.Batch, index: int) -> None:
    stamps, values = expected(index)
    assert batch["chunk_index"] == index
    np.testing.assert_array_equal(batch["timestamps"], stamps)
    np.testing.assert_array_equal(batch["avg"], values)  # NaN where the fake has no point


def test_fake_serves_nothing_past_its_clock(fake: FakeDatadog) -> None:
    clock = FakeClock(START + 150)
    fake.clock = clock
    answer = fake.answer(f"{QUERY}.rollup(avg,60)", START, START + STEP - 1)
    (series,) = answer["series"]
    points = dict(series["pointlist"])
    # Buckets from START + 180 on have not begun; the one holding the clock is partial.
    assert all(points[float((START + k * 60) * 1000)] is None for k in (3, 4))
    assert points[float((START + 120) * 1000)] is not None
    clock.advance(STEP)
    (series,) = fake.answer(f"{QUERY}.rollup(avg,60)", START, START + STEP - 1)["series"]
    assert all(value is not None for _, value in series["pointlist"])


def test_simulated_hour(fake: FakeDatadog) -> None:
    """Half an hour of history, then an hour in one-minute steps: every chunk once, exact,
    one request each, none early, delivered promptly once settled."""
    clock = FakeClock(START + 6 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock) as stream:
        assert stream.follows and stream.chunk_count == 6
        for index in range(6):
            check_batch(next(stream), index)
        assert stream.progress() == 1.0
        delivered, worst = 6, 0.0
        for _ in range(60):
            clock.advance(60)  # tells the stream (FakeClock listener)
            advanced = time.monotonic()
            due = int((clock() - SETTLE - START) // STEP)
            if due > delivered:
                check_batch(next(stream), delivered)
                worst = max(worst, time.monotonic() - advanced)
                delivered += 1
            assert len(fake.query_requests) == delivered
        assert delivered == 18
        assert worst < 1.0, f"settle to delivery took {worst:.3f} s"
        for record in fake.query_requests:
            assert record.clock is not None and record.to_ts is not None
            # to_ts is the chunk's last second: its end is to_ts + 1
            assert record.clock >= record.to_ts + 1 + SETTLE, "a chunk was asked before it settled"


def test_cancel_during_the_wait_returns_at_once(fake: FakeDatadog) -> None:
    clock = FakeClock(START + SETTLE)  # nothing settled yet
    fake.clock = clock
    stream = follow_stream(fake, clock)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            next(stream)
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    cancelled = time.monotonic()
    stream.cancel()
    reader.join(5)
    took = time.monotonic() - cancelled
    assert not reader.is_alive()
    assert isinstance(outcome[0], dd.CancelledError)
    assert took < 0.2, f"cancel took {took:.3f} s"
    closing = time.monotonic()
    stream.close()
    assert time.monotonic() - closing < 0.2
    assert fake.query_requests == []


def test_restart_from_the_token_has_no_gap_and_no_duplicate(fake: FakeDatadog) -> None:
    clock = FakeClock(START + 4 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock) as stream:
        got = [next(stream)["chunk_index"] for _ in range(3)]
        token = stream.resume_token()
    clock.advance(4 * STEP)
    # The first stream may have prefetched chunk 3 (never delivered): let that answer finish
    # before the log starts over, so that only the second stream's requests are counted.
    clear_log_when_idle(fake)
    with follow_stream(fake, clock, resume=token, end=None) as again:
        for index in range(3, 8):
            batch = next(again)
            check_batch(batch, index)
            got.append(batch["chunk_index"])
    assert got == list(range(8))
    starts = sorted(r.from_ts for r in fake.query_requests if r.from_ts is not None)
    assert starts == [START + i * STEP for i in range(3, 8)], "a chunk was fetched twice"


def test_follow_keyword_and_plan(fake: FakeDatadog) -> None:
    clock = FakeClock(START + 3 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock, end=None, follow=True) as stream:
        assert stream.has_next() and stream.follows
        assert [next(stream)["chunk_index"] for _ in range(3)] == [0, 1, 2]
        assert stream.has_next()
    cfg = dd.DDStreamConfig(api_key=API_KEY, app_key=APP_KEY, query=QUERY, range_start=START,
                            range_end=START + 7 * STEP + 30, chunk_seconds=STEP, follow=True)
    plan = dd.DDStream.plan(cfg)
    assert len(plan) == 7 and plan[-1] == (START + 6 * STEP, START + 7 * STEP)
    with pytest.raises(dd.ConfigError, match="settle_seconds"):
        dd.DDStream.plan(cfg.copy(settle_seconds=-1))


def test_progress_and_counts(fake: FakeDatadog) -> None:
    clock = FakeClock(START + 4 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock) as stream:
        batch = next(stream)
        assert not batch["is_last"]
        assert 0.0 < stream.progress() < 1.0
        for _ in range(3):
            next(stream)
        assert math.isclose(stream.progress(), 1.0)


# -- the Parquet export of a followed query ------------------------------------------------------


def read_folder(folder: Path) -> Any:
    """The folder as DuckDB reads it while it grows: hive partitions, hidden temporaries skipped."""
    import duckdb

    return duckdb.sql(
        f"SELECT date, timestamp, avg FROM read_parquet('{folder}/**/*.parquet', "
        "hive_partitioning=true) ORDER BY timestamp"
    ).fetchall()


def export_options(server: FakeDatadog, clock: FakeClock) -> dict[str, Any]:
    return {"api_key": API_KEY, "app_key": APP_KEY, "base_url": server.url, "start": START,
            "granularity": 60, "chunk_seconds": STEP, "settle_seconds": SETTLE,
            "max_retries": 0, "clock": clock}


def check_rows(rows: list[Any], chunks: int) -> None:
    """Every bucket of the first ``chunks`` chunks once, with the fake's value."""
    stamps = [int(r[1].timestamp()) for r in rows]
    assert stamps == [START + 60 * k for k in range(chunks * 5)], "a gap or a duplicate"
    want = np.concatenate([expected(i)[1] for i in range(chunks)])
    np.testing.assert_array_equal(np.array([np.nan if r[2] is None else r[2] for r in rows]), want)
    assert all(str(r[0]) == _day(int(r[1].timestamp())) for r in rows)


def _day(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


@pytest.mark.parametrize("partition", ["chunk", "day"])
def test_export_grows_readable_and_resumes(fake: FakeDatadog, tmp_path: Path,
                                           partition: str) -> None:
    import polars as pl

    from ddstream._follow_export import STATE_FILE, FollowExport

    clock = FakeClock(START + 2 * STEP + SETTLE)
    fake.clock = clock
    folder = tmp_path / "out"
    export = FollowExport(QUERY, folder, partition=partition, **export_options(fake, clock))
    report = export.run(max_chunks=2)
    assert report.chunks == 2
    check_rows(read_folder(folder), 2)
    # It grows while readers read it: each simulated chunk adds rows, nothing else changes.
    seen = 2
    for _ in range(3):
        clock.advance(STEP)
        export.run(max_chunks=1)
        seen += 1
        check_rows(read_folder(folder), seen)
        frame = pl.scan_parquet(f"{folder}/**/*.parquet", hive_partitioning=True).collect()
        assert frame.height == seen * 5 and frame["timestamp"].is_unique().all()
    assert not [p for p in folder.rglob(".*") if p.name != STATE_FILE], "a temporary was left"
    if partition == "chunk":
        assert len(list(folder.rglob("chunk-*.parquet"))) == seen
    else:
        assert len(list(folder.rglob("day.parquet"))) == 1
    # A crash after a file but before the state: the state is one chunk behind. The restart
    # writes that chunk again under the same name (chunk) or in place of its rows (day).
    state = json.loads((folder / STATE_FILE).read_text())
    behind = dict(state, resume_token=state["resume_token"].rsplit("-", 1)[0] + f"-{seen - 1}")
    (folder / STATE_FILE).write_text(json.dumps(behind))
    clock.advance(STEP)
    FollowExport(QUERY, folder, partition=partition, **export_options(fake, clock)).run(2)
    check_rows(read_folder(folder), seen + 1)
    # Another query in the same folder is refused, not mixed in.
    with pytest.raises(dd.ConfigError, match="query"):
        FollowExport("max:system.cpu.user{*}", folder, partition=partition,
                     **export_options(fake, clock)).run(1)


def test_export_stop_during_the_wait(fake: FakeDatadog, tmp_path: Path) -> None:
    from ddstream._follow_export import FollowExport

    clock = FakeClock(START + STEP + SETTLE)
    fake.clock = clock
    export = FollowExport(QUERY, tmp_path, **export_options(fake, clock))
    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(export.run()))
    runner.start()
    deadline = time.monotonic() + 5
    while not list(tmp_path.rglob("chunk-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # now waiting for chunk 1 to settle
    stopped = time.monotonic()
    export.stop()
    runner.join(5)
    assert not runner.is_alive() and time.monotonic() - stopped < 0.5
    assert result[0].chunks == 1


def test_cli_export_follow_while_reading_and_after_a_restart(tmp_path: Path) -> None:
    """The real command in real time (1 s buckets, 2 s chunks, settled after 1 s): DuckDB reads
    the folder while it grows; Ctrl-C and a rerun continue with no gap and no duplicate."""
    with FakeDatadog(raw_interval=1) as server:
        env = subprocess_env(server)
        env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
        queries = tmp_path / "q.txt"
        queries.write_text(QUERY + "\n")
        folder = tmp_path / "out"
        start = int(time.time()) // 2 * 2 - 6
        command = [sys.executable, "-m", "ddstream", "export", str(queries), "--to-parquet",
                   str(folder), "--follow", "--from", str(start), "--granularity", "1",
                   "--chunk-seconds", "2", "--settle-seconds", "1", "-q"]

        def run_until(files: int) -> None:
            child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            try:
                while time.monotonic() < deadline:
                    written = len(list(folder.rglob("chunk-*.parquet")))
                    if written >= files:
                        break
                    assert child.poll() is None, child.stderr.read() if child.stderr else ""
                    if written:
                        read_folder(folder)  # readable while the command writes
                    time.sleep(0.05)
            finally:
                child.send_signal(signal.SIGINT)
                assert child.wait(10) == 130

        run_until(4)
        run_until(7)
        import duckdb

        rows = duckdb.sql(f"SELECT timestamp, avg FROM read_parquet('{folder}/**/*.parquet') "
                          "ORDER BY timestamp").fetchall()
        stamps = [int(r[0].timestamp()) for r in rows]
        assert stamps == list(range(start, start + len(stamps))) and len(stamps) >= 14
        ((_, values),) = expected_buckets("system.cpu.user", None, None, "avg", "avg", start,
                                          start + len(stamps), 1, raw_interval=1).values()
        got = np.array([np.nan if r[1] is None else r[1] for r in rows])
        np.testing.assert_array_equal(got, values)


def test_cli_query_follow_prints_each_chunk_as_it_settles() -> None:
    """``ddstream query --follow`` in real time: rows come out chunk by chunk (flushed), each
    bucket once, until Ctrl-C."""
    with FakeDatadog(raw_interval=1) as server:
        env = subprocess_env(server)
        env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
        start = int(time.time()) // 2 * 2 - 4
        child = subprocess.Popen(
            [sys.executable, "-m", "ddstream", "query", QUERY, "--from", str(start), "--follow",
             "--granularity", "1", "--chunk-seconds", "2", "--settle-seconds", "1",
             "--format", "csv"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(1 + 10)]  # header, then 5 chunks
        child.send_signal(signal.SIGINT)
        assert child.wait(10) == 130
        stamps = [line.split(",")[0] for line in lines[1:]]
        assert stamps == [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + k))
                          for k in range(10)]


def test_arrow_iteration_follows_too(fake: FakeDatadog) -> None:
    clock = FakeClock(START + 2 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock, enable_arrow=True) as stream:
        first = [next(stream).chunk_index for _ in range(2)]
        clock.advance(STEP)
        assert [*first, next(stream).chunk_index] == [0, 1, 2]
    assert len(fake.query_requests) == 3


def test_cli_query_follow_refuses_a_file_it_could_never_finish(tmp_path: Path) -> None:
    from ddstream import cli

    out = tmp_path / "rows.csv"
    code = cli.main(["query", QUERY, "--follow", "-o", str(out), "--base-url",
                     "http://127.0.0.1:9"])
    assert code == cli.EXIT_USAGE and not out.exists()
