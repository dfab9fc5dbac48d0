"""Rate limits: one budget per (server, API key) shared by every stream of the process.

Datadog's query quota is small and per organisation. Streams pace themselves on the
``x-ratelimit-*`` headers (matched in any case, the reset as seconds or as an epoch timestamp,
429 pages in JSON or HTML) so that a pool of streams neither stampedes into 429s nor fails: the
server's request log must show at most one 429 per rate-limit window.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import T0, make_config
from ddstream.testing import FakeDatadog, RequestRecord

CHUNK = 3600


def stream_config(
    server: FakeDatadog, day: int, chunks: int, **overrides: Any
) -> dd.DDStreamConfig:
    """``chunks`` one-hour chunks on day ``day`` after T0 (each stream of a pool its own range)."""
    values: dict[str, Any] = {
        "range_start": T0 + day * 86400,
        "range_end": T0 + day * 86400 + chunks * CHUNK,
        "chunk_seconds": CHUNK,
        "max_retries": 5,
        "max_retry_wait_ms": 30000,
    }
    values.update(overrides)
    return make_config(server, **values)


def read_rows(cfg: dd.DDStreamConfig) -> list[np.ndarray[Any, Any]]:
    with dd.DDStream(cfg) as stream:
        return [np.array(batch["avg"]) for batch in stream]


def four_twenty_nines_per_window(server: FakeDatadog) -> Counter[int]:
    """429s per rate-limit window, from the server's log (the window the answer was decided in)."""
    return Counter(server.rate_window(r.finished) for r in server.query_requests if r.status == 429)


def spend_the_window(server: FakeDatadog) -> None:
    """Another client (another process, say) uses up the current window."""
    limit = server.rate_limit[0] if server.rate_limit else 0
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(limit):
        connection.request("GET", f"/api/v1/query?from={T0}&to={T0 + 59}&query=avg:m%7B*%7D",
                           headers={"DD-API-KEY": "another", "DD-APPLICATION-KEY": "client"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    connection.close()


def test_a_pool_of_streams_shares_one_budget() -> None:
    """Ten streams in a thread pool, 20 requests, 6 allowed per second: no 429 at all, the data
    exact."""
    with FakeDatadog() as clean:
        want = [read_rows(stream_config(clean, day, 2)) for day in range(10)]
    with FakeDatadog(rate_limit=(6, 1.0)) as server:
        with ThreadPoolExecutor(10) as pool:
            got = list(pool.map(lambda day: read_rows(stream_config(server, day, 2)), range(10)))
        statuses = [r.status for r in server.query_requests]
        per_window = Counter(server.rate_window(r.finished) for r in server.query_requests)
    for a, b in zip(got, want):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    assert statuses.count(429) == 0, per_window
    assert len(statuses) == 20
    assert max(per_window.values()) <= 6


@pytest.mark.parametrize(
    "style",
    [
        {},
        {"rate_limit_html": True, "rate_limit_header_case": "upper",
         "rate_limit_reset_epoch": True},
    ],
    ids=["json", "html+UPPER+epoch"],
)
def test_no_429_storm_when_the_window_is_already_spent(style: dict[str, Any]) -> None:
    """Another client has spent the window before our ten streams start: one request finds out
    (one 429, whatever its body and header style), the others wait for the reset with it."""
    with FakeDatadog(rate_limit=(5, 1.0), **style) as server:
        spend_the_window(server)
        with ThreadPoolExecutor(10) as pool:
            rows = list(pool.map(lambda day: read_rows(stream_config(server, day, 1)), range(10)))
        storms = four_twenty_nines_per_window(server)
        requests = server.query_requests
    assert all(len(r) == 1 and len(r[0]) == 60 for r in rows)
    assert sum(storms.values()) >= 1, "the window was spent: the first request must see a 429"
    assert max(storms.values()) == 1, storms
    assert len(requests) == 5 + 10 + sum(storms.values())


def test_a_spent_window_pauses_later_streams_too() -> None:
    """What one stream learnt (the window is spent) holds for a stream opened afterwards: it waits
    instead of collecting its own 429."""
    with FakeDatadog(rate_limit=(3, 1.0)) as server:
        assert len(read_rows(stream_config(server, 0, 3))) == 3  # spends the window
        assert len(read_rows(stream_config(server, 1, 1))) == 1  # must wait for the next one
        statuses = [r.status for r in server.query_requests]
        per_window = Counter(server.rate_window(r.finished) for r in server.query_requests)
    assert statuses == [200, 200, 200, 200]
    assert max(per_window.values()) <= 3


def test_budgets_are_per_server() -> None:
    """Pacing for one server (its window spent) does not hold up streams to another."""
    with FakeDatadog(rate_limit=(2, 30.0)) as slow, FakeDatadog() as fast:
        spend_the_window(slow)
        blocked = dd.DDStream(stream_config(slow, 0, 1, max_retry_wait_ms=60000))
        try:
            # One 429 teaches the budget that the window ends in ~30 s: the stream then waits.
            waiting = threading.Thread(target=blocked.next_batch, daemon=True)
            waiting.start()
            while len(slow.query_requests) < 3:
                waiting.join(0.01)
            rows: list[Any] = []
            reader = threading.Thread(
                target=lambda: rows.extend(read_rows(stream_config(fast, 0, 3))), daemon=True
            )
            reader.start()
            reader.join(10)
            assert not reader.is_alive(), "the other server's stream was held up"
            assert len(rows) == 3
            assert waiting.is_alive(), "the stream to the spent server should still be waiting"
            assert [r.status for r in slow.query_requests] == [200, 200, 429]
        finally:
            blocked.close()
            waiting.join(5)
        assert not waiting.is_alive()


def test_retry_budget_bounds_a_429_wait(fake: FakeDatadog) -> None:
    """A 429 whose reset is further away than max_retry_wait_ms fails at once, saying why; the
    next call waits for the window (pacing is not a retry) and then succeeds."""
    fake.inject(429, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"})
    cfg = make_config(fake, range_end=T0 + 3600, max_retries=5, max_retry_wait_ms=500)
    with dd.DDStream(cfg) as stream:
        with pytest.raises(dd.RateLimitError, match=r"HTTP 429 .*would exceed "
                                                    r"max_retry_wait_ms=500"):
            next(stream)
        assert len(fake.query_requests) == 1
        batch = stream.next_batch()
        assert batch is not None and batch["chunk_index"] == 0
    records: list[RequestRecord] = fake.query_requests
    assert [r.status for r in records] == [429, 200]
    assert records[1].started - records[0].finished >= 0.95


def test_validate_does_not_sit_out_a_spent_window() -> None:
    """A stream waits for the window (that is its job); a one-off validate() whose window is spent
    for longer than max_retry_wait_ms says so at once, without sending the query."""
    with FakeDatadog(rate_limit=(1, 30.0)) as server:
        assert len(read_rows(stream_config(server, 0, 1))) == 1  # spends the window
        message = dd.DDStream.validate(stream_config(server, 1, 1, max_retry_wait_ms=500))
        assert message is not None
        assert re.search(r"the rate-limit window is spent and resets in \d+ ms, later than "
                         r"max_retry_wait_ms=500 allows", message), message
        assert [r.status for r in server.query_requests] == [200]


def test_a_window_is_used_to_its_last_slot_with_several_requests_in_flight() -> None:
    """Four fetchers in flight at once (answers take 80 ms) and 12 requests per 3 s window: the
    first window carries all 12 (none left unused because the estimate counted an in-flight
    request the server had already counted), the second the 6 left, and no request is refused."""
    with FakeDatadog(rate_limit=(12, 3.0), latency=0.08) as server:
        rows = read_rows(stream_config(server, 0, 18, max_in_flight=4, prefetch_chunks=4))
        statuses = [r.status for r in server.query_requests]
        per_window = Counter(server.rate_window(r.finished) for r in server.query_requests)
        peak = server.max_concurrency
    assert len(rows) == 18
    assert statuses.count(429) == 0, per_window
    assert peak >= 3, f"the requests were not in flight together (peak {peak})"
    assert [per_window[w] for w in sorted(per_window)] == [12, 6], per_window
