"""Follow mode from Python: a simulated hour on a FakeClock shared by the fake server and the
stream, each chunk exactly once with the fake's exact values, one request per new chunk and none
before it settled, cancel during the wait, restart from the resume token, ``end=None``."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, T0
from ddstream.testing import FakeClock, FakeDatadog
from reference import expected_buckets

STEP = 300  # 5 buckets of 60 s per chunk
SETTLE = 120
START = (T0 // STEP + 1) * STEP  # aligned: chunk i is [START + i*STEP, START + (i+1)*STEP)
QUERY = "avg:system.cpu.user{*}"


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
    deadline = time.monotonic() + 5
    while fake.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    fake.clear_log()
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
