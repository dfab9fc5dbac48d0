"""Several requests in flight (``max_in_flight``): they overlap, and nothing else changes.

The server sees up to ``max_in_flight`` query requests at once (after the first answer: a stream
sends one request alone until one succeeds), the batches come in chunk order with exactly the
data of one request at a time, an error of chunk k is delivered when the caller reaches chunk k
and the next call fetches chunk k again, and cancel and close stay prompt with several transfers
in flight.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import GROUPED_QUERY, QUERY, make_config
from ddstream.testing import CannedResponse, Exchange, FakeDatadog

CHUNK = 10800  # 8 chunks over the day of make_config
COLUMNS = ("timestamps", "avg", "min", "max", "sum")


def _read(fake: FakeDatadog, **options: Any) -> list[dd.Batch]:
    fake.clear_log()
    with dd.DDStream(make_config(fake, chunk_seconds=CHUNK, **options)) as stream:
        return list(stream)


def _assert_same(a: list[dd.Batch], b: list[dd.Batch]) -> None:
    assert len(a) == len(b) == 8
    for x, y in zip(a, b):
        assert x["chunk_index"] == y["chunk_index"]
        for column in COLUMNS:
            np.testing.assert_array_equal(np.asarray(x[column]), np.asarray(y[column]))
        assert x.get("series_tags") == y.get("series_tags")
        if x.get("series") is not None or y.get("series") is not None:
            np.testing.assert_array_equal(np.asarray(x["series"]), np.asarray(y["series"]))


@pytest.mark.parametrize("query", [QUERY, GROUPED_QUERY], ids=["ungrouped", "grouped"])
def test_requests_overlap_and_the_output_is_unchanged(fake: FakeDatadog, query: str) -> None:
    fake.latency = 0.1
    one = _read(fake, query=query, max_in_flight=1)
    assert fake.max_concurrency == 1
    assert len(fake.query_requests) == 8
    four = _read(fake, query=query, max_in_flight=4)
    assert fake.max_concurrency == 4
    assert len(fake.query_requests) == 8  # each chunk asked for once
    assert [b["chunk_index"] for b in four] == list(range(8))
    _assert_same(one, four)


def test_without_prefetch_one_request_at_a_time(fake: FakeDatadog) -> None:
    fake.latency = 0.05
    batches = _read(fake, enable_prefetch=False, max_in_flight=8)
    assert [b["chunk_index"] for b in batches] == list(range(8))
    assert fake.max_concurrency == 1


def test_max_in_flight_is_checked() -> None:
    for bad in (0, 33):
        message = f"max_in_flight must be between 1 and 32, got {bad}"
        with pytest.raises(dd.ConfigError, match=message):
            dd.DDStream(make_config(max_in_flight=bad))


class _FailChunk(CannedResponse):
    """A 500 for the request of one chunk only (the others are answered normally)."""

    def __init__(self, start: int) -> None:
        super().__init__(500, times=1)
        self.start = start

    def matches(self, exchange: Exchange) -> bool:
        return super().matches(exchange) and exchange.params.get("from") == str(self.start)


def test_an_error_waits_for_its_chunk_and_the_chunk_is_fetched_again(fake: FakeDatadog) -> None:
    reference = _read(fake, max_in_flight=1)
    chunks = dd.DDStream.plan(make_config(fake, chunk_seconds=CHUNK))
    fake.add_fault(_FailChunk(chunks[3][0]))
    fake.latency = 0.05
    fake.clear_log()
    cfg = make_config(fake, chunk_seconds=CHUNK, max_in_flight=4, prefetch_chunks=8)
    with dd.DDStream(cfg) as stream:
        got = [stream.next_batch() for _ in range(3)]
        assert stream.next_batch() is None
        assert "chunk 4 of 8" in stream.last_error() and "HTTP 500" in stream.last_error()
        got += list(stream)  # chunk 4 again, then the rest: nothing skipped or repeated
    assert [b["chunk_index"] for b in got if b is not None] == list(range(8))
    _assert_same(reference, [b for b in got if b is not None])
    froms = sorted(r.from_ts for r in fake.query_requests)
    assert froms == sorted([s for s, _ in chunks] + [chunks[3][0]])  # one retry, of chunk 4


def _wait_in_flight(fake: FakeDatadog, n: int) -> None:
    deadline = time.monotonic() + 10
    while fake.in_flight < n:
        assert time.monotonic() < deadline, f"never {n} requests in flight ({fake.in_flight})"
        time.sleep(0.005)


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_cancel_and_close_with_several_in_flight(fake: FakeDatadog, how: str) -> None:
    cfg = make_config(fake, chunk_seconds=CHUNK, max_in_flight=4, prefetch_chunks=8,
                      request_timeout_ms=60000)
    with dd.DDStream(cfg) as stream:
        assert stream.next_batch() is not None  # the first answer opens the other slots
        fake.latency = 5.0
        stream.seek(0)  # drops what was prefetched: four requests go out at once
        _wait_in_flight(fake, 4)
        result: dict[str, Any] = {}

        def blocked() -> None:
            result["batch"] = stream.next_batch()  # None: cancelled or closed meanwhile
            result["at"] = time.monotonic()

        caller = threading.Thread(target=blocked, daemon=True)
        caller.start()
        time.sleep(0.1)
        assert caller.is_alive()
        t0 = time.monotonic()
        if how == "cancel":
            stream.cancel()
        else:
            stream.close()
        done = time.monotonic() - t0
        caller.join(5)
        assert not caller.is_alive()
        assert result["at"] - t0 < 0.2, f"next_batch returned {result['at'] - t0:.3f} s after {how}"
        assert done < 0.2, f"{how} took {done:.3f} s with four requests in flight"
        assert result.get("batch") is None
        assert "cancelled" in stream.last_error() or "closed" in stream.last_error()
