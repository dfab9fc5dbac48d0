"""Follow mode with formulas (v2's ``POST /api/v2/query/timeseries``): a FakeClock shared by the
fake server and the stream, every chunk exactly once and exact against ``test_formulas``' numpy
truth, one request per new chunk and none before it settled; the resume token; the chunk cache
under a followed formula; and ``ddstream query --follow --formula`` in real time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, subprocess_env
from ddstream.testing import FakeClock, FakeDatadog
from reference import bucket_starts, expected_buckets
from test_follow import clear_log_when_idle
from test_formulas import DAY, START, A, B, G, truths

FORMULA = "a / b * 100"
STEP = 300  # 5 buckets of 60 s per chunk
SETTLE = 120
# Monday 09:00, inside the truth's 30 days and away from the fake's gaps (Sunday afternoon, the
# daily 05:00-05:10), where a grouped formula's chunk would have no series at all.
FOLLOW_START = START + DAY + 9 * 3600
HOSTS = ("host:h00", "host:h01", "host:h02")


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def follow_stream(server: FakeDatadog, clock: FakeClock, **options: Any) -> dd.DDStream[dd.Batch]:
    values: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": server.url,
        "queries": {"a": A, "b": B}, "formulas": [FORMULA], "follow": True,
        "start": FOLLOW_START, "granularity": G, "chunk_seconds": STEP,
        "settle_seconds": SETTLE, "max_retries": 0, "max_in_flight": 1,
    }
    values.update(options)
    return dd.DDStream(clock=clock, **values)


def check_batch(batch: dd.Batch, index: int) -> None:
    """Chunk ``index``: every host's every bucket, once, the truth's value (NaN included)."""
    lo = FOLLOW_START + index * STEP
    assert batch["chunk_index"] == index
    assert list(batch["series_tags"]) == list(HOSTS)
    truth = truths()[FORMULA]
    grid = bucket_starts(lo, lo + STEP, G)
    for s, tags in enumerate(batch["series_tags"]):
        mask = batch["series"] == s
        np.testing.assert_array_equal(batch["timestamps"][mask], grid)
        np.testing.assert_array_equal(batch["value"][mask], truth[tags][(grid - START) // G],
                                      err_msg=f"chunk {index} {tags}")
        assert (batch["query"][mask] == 0).all()
    assert len(batch["timestamps"]) == len(HOSTS) * len(grid)
    assert not np.isnan(batch["value"]).all()


def asked(server: FakeDatadog) -> list[tuple[int, int, float]]:
    """``(from s, to s, server clock)`` of every v2 request logged, by `from`."""
    out = []
    for record in server.query_requests:
        assert record.path == "/api/v2/query/timeseries" and record.clock is not None
        attributes = json.loads(record.body)["data"]["attributes"]
        out.append((attributes["from"] // 1000, attributes["to"] // 1000, record.clock))
    return sorted(out)


def test_simulated_hour_of_a_formula(fake: FakeDatadog) -> None:
    """Half an hour of history, then an hour in one-minute steps: every chunk once, exact, one
    request each, none before it settled."""
    clock = FakeClock(FOLLOW_START + 6 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock) as stream:
        assert stream.follows and stream.chunk_count == 6
        assert stream.queries == (FORMULA,)
        for index in range(6):
            check_batch(next(stream), index)
        delivered = 6
        for _ in range(60):
            clock.advance(60)  # tells the stream (FakeClock listener)
            due = int((clock() - SETTLE - FOLLOW_START) // STEP)
            if due > delivered:
                check_batch(next(stream), delivered)
                delivered += 1
            assert len(fake.query_requests) == delivered
        assert delivered == 18
    requests = asked(fake)
    assert [lo for lo, _, _ in requests] == [FOLLOW_START + i * STEP for i in range(18)]
    for lo, hi, when in requests:
        assert hi == lo + STEP  # v2's `to` is exclusive: the chunk's end
        assert when >= hi + SETTLE, "a chunk was asked before it settled"


def test_restart_from_the_token_has_no_gap_and_no_duplicate(fake: FakeDatadog) -> None:
    clock = FakeClock(FOLLOW_START + 4 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock) as stream:
        got = [next(stream)["chunk_index"] for _ in range(3)]
        token = stream.resume_token()
    clock.advance(4 * STEP)
    # The first stream may have prefetched chunk 3 (never delivered): let that answer finish
    # before the log starts over, so that only the second stream's requests are counted.
    clear_log_when_idle(fake)
    with follow_stream(fake, clock, resume=token) as again:
        for index in range(3, 8):
            batch = next(again)
            check_batch(batch, index)
            got.append(batch["chunk_index"])
    assert got == list(range(8))
    assert [lo for lo, _, _ in asked(fake)] == [FOLLOW_START + i * STEP for i in range(3, 8)]
    with pytest.raises(dd.ConfigError):  # the token binds the formulas
        follow_stream(fake, clock, resume=token, formulas=["a * 2 / b"])


def test_followed_formula_through_the_cache(fake: FakeDatadog, tmp_path: Path) -> None:
    """The settled history is cached: a second follow stream reads it without a request, and
    fetches only what settled since."""
    clock = FakeClock(FOLLOW_START + 4 * STEP + SETTLE)
    fake.clock = clock
    with follow_stream(fake, clock, cache_dir=str(tmp_path)) as stream:
        for index in range(4):
            check_batch(next(stream), index)
    clock.advance(2 * STEP)
    clear_log_when_idle(fake)
    with follow_stream(fake, clock, cache_dir=str(tmp_path)) as stream:
        for index in range(6):
            check_batch(next(stream), index)
    assert [lo for lo, _, _ in asked(fake)] == [FOLLOW_START + 4 * STEP, FOLLOW_START + 5 * STEP]


def test_cli_query_follow_formula_prints_each_chunk_as_it_settles() -> None:
    """``ddstream query --follow --formula`` in real time: rows come out chunk by chunk, each
    bucket once, the formula's value, until Ctrl-C."""
    with FakeDatadog(raw_interval=1) as server:
        env = subprocess_env(server)
        env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
        start = int(time.time()) // 2 * 2 - 4
        child = subprocess.Popen(
            [sys.executable, "-m", "ddstream", "query", "--formula", "a + b",
             "a=avg:system.cpu.user{*}", "b=avg:system.cpu.system{*}", "--from", str(start),
             "--follow", "--granularity", "1", "--chunk-seconds", "2", "--settle-seconds", "1",
             "--format", "csv"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(1 + 10)]  # header, then 5 chunks
        child.send_signal(signal.SIGINT)
        assert child.wait(10) == 130
    # Ungrouped: no series column; v1's statistics empty, the formula's value last.
    assert lines[0].strip() == "timestamp,query,avg,min,max,sum,value"
    rows = [line.rstrip("\n").split(",") for line in lines[1:]]
    assert [row[0] for row in rows] == [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + k)) for k in range(10)]
    assert {row[1] for row in rows} == {"a + b"}
    assert all(row[2:6] == ["", "", "", ""] for row in rows)
    ((_, a),) = expected_buckets("system.cpu.user", None, None, "avg", "avg", start,
                                 start + 10, 1, raw_interval=1).values()
    ((_, b),) = expected_buckets("system.cpu.system", None, None, "avg", "avg", start,
                                 start + 10, 1, raw_interval=1).values()
    got = np.array([float(row[6]) if row[6] else np.nan for row in rows])
    np.testing.assert_array_equal(got, a + b)
    assert not np.isnan(got).all()
