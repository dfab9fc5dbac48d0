"""The fault matrix: every way a server, proxy or network misbehaves (ddstream.testing's fault
modes), and what the client does about it.

Each case runs a four-chunk stream against a FakeDatadog misbehaving in one way and asserts the
outcome: either the data equal the fault-free truth exactly (recovered), or the documented error
(class, message naming the chunk and the cause) — after which the same stream, once the server
behaves, delivers that very chunk and the rest, equal to the truth (no chunk is ever skipped).

``pytest tests/python/test_faults.py -s`` prints the matrix (mode, outcome, retries, seconds).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import GROUPED_QUERY, QUERY, T0, make_config
from ddstream import testing
from ddstream._lib import ffi
from ddstream.testing import FakeDatadog

CHUNK = 3600
CHUNKS = 4
COLUMNS = ("timestamps", "avg", "min", "max", "sum")

Setup = Callable[[FakeDatadog], object]
Doc = dict[str, Any]


def config(server: FakeDatadog, **overrides: Any) -> dd.DDStreamConfig:
    """Four one-hour chunks, quick retries: a fault matrix must run in seconds."""
    values: dict[str, Any] = {
        "range_end": T0 + CHUNKS * CHUNK,
        "chunk_seconds": CHUNK,
        "max_retries": 3,
        "retry_backoff_ms": 10,
        "max_retry_wait_ms": 5000,
        "request_timeout_ms": 5000,
    }
    values.update(overrides)
    return make_config(server, **values)


def snapshot(batch: dd.Batch) -> dict[str, Any]:
    """A batch as plain data that outlives its stream."""
    copy = {name: np.array(batch[name]) for name in COLUMNS}
    copy["chunk_index"] = batch["chunk_index"]
    if "series" in batch:
        tags = batch["series_tags"]
        copy["series"] = [tags[i] for i in batch["series"]]
    return copy


def assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [b["chunk_index"] for b in got] == [b["chunk_index"] for b in want]
    for a, b in zip(got, want):
        for name in COLUMNS:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert a.get("series") == b.get("series")


@pytest.fixture(scope="module")
def truth() -> dict[str, list[dict[str, Any]]]:
    """The fault-free output of each query, from a server that never misbehaves."""
    result = {}
    with FakeDatadog() as server:
        for query in (QUERY, GROUPED_QUERY):
            with dd.DDStream(config(server, query=query)) as stream:
                result[query] = [snapshot(b) for b in stream]
    return result


# -- the answers' JSON, changed -------------------------------------------------------------------


def _bounds(exchange: testing.Exchange) -> tuple[int, int]:
    """The chunk of a request, in ms: [from, to + 1 s)."""
    return int(exchange.params["from"]) * 1000, (int(exchange.params["to"]) + 1) * 1000


def points_outside_the_chunk(doc: Doc, exchange: testing.Exchange) -> Doc:
    start, end = _bounds(exchange)
    for series in doc["series"]:
        series["pointlist"] = (
            [[start - 300_000, 1e9], [start - 60_000, -1e9]]
            + series["pointlist"]
            + [[end, 1e9], [end + 600_000, -1e9]]
        )
    return doc


def points_out_of_order(doc: Doc, exchange: testing.Exchange) -> Doc:
    for series in doc["series"]:
        series["pointlist"].reverse()
    return doc


def points_off_the_grid(doc: Doc, exchange: testing.Exchange) -> Doc:
    doc["series"][0]["pointlist"][2][0] += 1000
    return doc


def status_error(doc: Doc, exchange: testing.Exchange) -> Doc:
    return {"status": "error", "error": "Rollup functions are not supported here", "series": []}


def pointlist_is_a_string(doc: Doc, exchange: testing.Exchange) -> Doc:
    doc["series"][1]["pointlist"] = "[[1, 2]]"
    return doc


def value_is_a_string(doc: Doc, exchange: testing.Exchange) -> Doc:
    doc["series"][0]["pointlist"][3][1] = "0.5"
    return doc


def series_is_an_object(doc: Doc, exchange: testing.Exchange) -> Doc:
    doc["series"] = {"0": doc["series"][0]}
    return doc


def invalid_json(doc: Doc, exchange: testing.Exchange) -> bytes:
    return json.dumps(doc).replace("],", "],,", 1).encode()


def max_rollup_vanishes(doc: Doc, exchange: testing.Exchange) -> Doc:
    doc["series"] = [s for s in doc["series"] if s["query_index"] != 2]
    return doc


def host_vanishes_from_min(doc: Doc, exchange: testing.Exchange) -> Doc:
    doc["series"] = [
        s for s in doc["series"] if not (s["query_index"] == 1 and s["tag_set"] == ["host:host-0"])
    ]
    return doc


def series_multiply_ungrouped(doc: Doc, exchange: testing.Exchange) -> Doc:
    extra = json.loads(json.dumps(doc["series"][0]))
    extra["tag_set"] = ["host:intruder"]
    extra["scope"] = "host:intruder"
    doc["series"].append(extra)
    return doc


def series_repeat_grouped(doc: Doc, exchange: testing.Exchange) -> Doc:
    doc["series"] = doc["series"] + json.loads(json.dumps(doc["series"]))
    return doc


def _nan_column(name: str, host: str | None = None) -> Callable[[list[dict[str, Any]]], None]:
    """How the truth changes when a rollup (of one host) is missing from every answer: NaN."""

    def change(batches: list[dict[str, Any]]) -> None:
        for batch in batches:
            rows = np.ones(len(batch["timestamps"]), dtype=bool)
            if host is not None:
                rows = np.array([tags == host for tags in batch["series"]], dtype=bool)
            batch[name] = np.where(rows, np.nan, batch[name])

    return change


# -- the matrix -----------------------------------------------------------------------------------


@dataclass
class Case:
    """One fault mode. ``error``: the exception class and a regex its message must match (None:
    the data must equal the truth). ``requests``: how many query requests the server must see
    in all (the retries are the requests beyond one per chunk)."""

    setup: Setup
    error: tuple[type[dd.DDStreamError], str] | None = None
    requests: int | None = None
    query: str = QUERY
    options: dict[str, Any] = field(default_factory=dict)
    truth_change: Callable[[list[dict[str, Any]]], None] | None = None
    server_fault: bool = True  # False: the config causes the error, it cannot go away


def _inject(status: int, times: int | None, **kwargs: Any) -> Setup:
    return lambda server: server.inject(status, times=times, **kwargs)


def _add(*faults: testing.Fault) -> Setup:
    def setup(server: FakeDatadog) -> None:
        for fault in faults:
            server.add_fault(fault)

    return setup


def _set(**attributes: Any) -> Setup:
    def setup(server: FakeDatadog) -> None:
        for name, value in attributes.items():
            setattr(server, name, value)

    return setup


RATE_HEADERS = {"x-ratelimit-limit": "100", "x-ratelimit-period": "10",
                "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
FOREVER = None  # a fault for every request

CASES: dict[str, Case] = {
    # Transient: retried, the output is exact.
    "5xx burst (503, 500, 502 HTML)": Case(
        _add(testing.CannedResponse(503), testing.CannedResponse(500),
             testing.CannedResponse(502, html=True)), requests=CHUNKS + 3),
    "408 request timeout": Case(_inject(408, 2), requests=CHUNKS + 2),
    "429 with rate-limit headers": Case(
        _inject(429, 1, headers=RATE_HEADERS), requests=CHUNKS + 1),
    "429 HTML page, reset in Title-Case": Case(
        _inject(429, 1, html=True, headers={"X-RateLimit-Reset": "1"}), requests=CHUNKS + 1),
    "429 HTML page, reset as epoch": Case(
        lambda server: server.inject(429, times=1, html=True,
                                     headers={"X-RATELIMIT-RESET": str(int(time.time()) + 1)}),
        requests=CHUNKS + 1),
    "connection reset mid-body": Case(_add(testing.ResetMidBody(times=2)), requests=CHUNKS + 2),
    "Content-Length longer than body": Case(_add(testing.Truncate(times=2)), requests=CHUNKS + 2),
    "truncated JSON, well framed": Case(
        _add(testing.TruncatedJSON(0.3), testing.TruncatedJSON(0.97)), requests=CHUNKS + 2),
    "connection closed, no answer": Case(_add(testing.Hangup(times=2)), requests=CHUNKS + 2),
    "slow body (completes)": Case(
        _add(testing.SlowBody(chunk=512, pause=0.02, times=2)), requests=CHUNKS),
    "stalled body (low-speed limit)": Case(
        _add(testing.SlowBody(stall=True)), requests=CHUNKS + 1,
        options={"low_speed_limit": 1000, "low_speed_time_ms": 1000}),
    "interval coarser than asked": Case(_set(max_points=40), requests=CHUNKS * 3),
    "points outside the chunk": Case(
        _add(testing.Mutate(points_outside_the_chunk, times=FOREVER)), requests=CHUNKS),
    "points out of order": Case(
        _add(testing.Mutate(points_out_of_order, times=FOREVER)), requests=CHUNKS),
    "a rollup vanishes": Case(
        _add(testing.Mutate(max_rollup_vanishes, times=FOREVER)), requests=CHUNKS,
        truth_change=_nan_column("max")),
    "a series vanishes from one rollup": Case(
        _add(testing.Mutate(host_vanishes_from_min, times=FOREVER)), requests=CHUNKS,
        query=GROUPED_QUERY, truth_change=_nan_column("min", "host:host-0")),
    "points off the grid (read as coarsened)": Case(
        _add(testing.Mutate(points_off_the_grid)), requests=CHUNKS + 2),
    "series repeated (grouped)": Case(
        _add(testing.Mutate(series_repeat_grouped, times=FOREVER)), requests=CHUNKS,
        query=GROUPED_QUERY),
    # Permanent: the precise error, about the first chunk.
    "5xx for ever": Case(
        _inject(503, FOREVER), (dd.ServerError, r"HTTP 503 from Datadog: Service Unavailable "
                                                r"\(after 3 retries\)"), requests=4),
    "429 HTML for ever": Case(
        _inject(429, FOREVER, html=True, headers=RATE_HEADERS),
        (dd.RateLimitError, r"HTTP 429 from Datadog: 429 Too Many Requests \(after 1 retries\)"),
        requests=2, options={"max_retries": 1}),
    "retry-time budget spent": Case(
        _inject(503, FOREVER), (dd.ServerError, r"would exceed max_retry_wait_ms=300"),
        options={"retry_backoff_ms": 200, "max_retry_wait_ms": 300, "max_retries": 10}),
    "403 HTML page": Case(
        _inject(403, FOREVER, html=True), (dd.AuthError, r"HTTP 403 from Datadog: 403 Forbidden"),
        requests=1),
    "slow-loris body (total timeout)": Case(
        _add(testing.SlowBody(chunk=16, pause=0.05, times=FOREVER)),
        # libcurl reports the 400 ms limit as the time it measured: 399 has been seen.
        (dd.RequestTimeoutError,
         r"timed out after (39\d|4\d\d) milliseconds.*\(after 1 retries\)"),
        requests=2, options={"request_timeout_ms": 400, "max_retries": 1}),
    "garbage bytes": Case(
        _add(testing.Garbage(times=FOREVER)), (dd.ProtocolError, r"expected a JSON object, got"),
        requests=1),
    "HTML page with 200": Case(
        _add(testing.Garbage(b"<html><title>Proxy login</title></html>", times=FOREVER)),
        (dd.ProtocolError, r"expected a JSON object, got HTML: Proxy login"), requests=1),
    "empty 200 body": Case(
        _add(testing.Garbage(b"", times=FOREVER)), (dd.ProtocolError, r"empty body"),
        requests=1),
    "invalid JSON": Case(
        _add(testing.Mutate(invalid_json, times=FOREVER)),
        (dd.ProtocolError, r"invalid JSON at byte \d+"), requests=1),
    "truncated JSON for ever": Case(
        _add(testing.TruncatedJSON(times=FOREVER)),
        (dd.NetworkError, r"the answer was cut short: its \d+ bytes of JSON end with \d+ "
                          r"bracket\(s\) still open \(after 3 retries\)"), requests=4),
    "wrong type: pointlist": Case(
        _add(testing.Mutate(pointlist_is_a_string, times=FOREVER)),
        (dd.ProtocolError, r"series\[1\]\.pointlist: expected an array, got string"), requests=1),
    "wrong type: a value": Case(
        _add(testing.Mutate(value_is_a_string, times=FOREVER)),
        (dd.ProtocolError, r"series\[0\]\.pointlist\[3\]\[1\]: expected a number or null, "
                           r"got string"), requests=1),
    "wrong type: series": Case(
        _add(testing.Mutate(series_is_an_object, times=FOREVER)),
        (dd.ProtocolError, r"series: expected an array, got object"), requests=1),
    '200 with "status": "error"': Case(
        _add(testing.Mutate(status_error, times=FOREVER)),
        (dd.QueryError, r"Rollup functions are not supported here"), requests=1),
    "series multiply (ungrouped)": Case(
        _add(testing.Mutate(series_multiply_ungrouped, times=FOREVER)),
        (dd.ProtocolError, r"not grouped but Datadog returned several series"), requests=1),
    "body over max_body_bytes": Case(
        lambda server: None, (dd.ProtocolError, r"exceeded max_body_bytes \(2000 bytes"),
        requests=1, options={"max_body_bytes": 2000}, server_fault=False),
    "gzip bomb (256 MiB)": Case(
        _add(testing.GzipBomb(256 << 20, times=FOREVER)),
        (dd.ProtocolError, r"exceeded max_body_bytes \(1048576 bytes, counted decompressed"),
        requests=1, options={"max_body_bytes": 1 << 20}),
    "many empty groups past max_batch_rows": Case(
        _add(testing.WideAnswer(2000, times=FOREVER)),
        (dd.ProtocolError, r"2000 series x 60 buckets = 120000 rows, more than max_batch_rows "
                           r"\(100000\)"),
        requests=1, query=GROUPED_QUERY, options={"max_batch_rows": 100_000}),
    "redirect to another host": Case(
        _add(testing.Redirect("http://127.0.0.2:9", times=FOREVER)),
        (dd.ServerError, r"HTTP 302: the server redirects elsewhere; redirects are not followed"),
        requests=1),
}

MATRIX: list[tuple[str, str, int, float]] = []


@pytest.fixture(scope="module", autouse=True)
def print_matrix() -> Iterator[None]:
    yield
    if MATRIX:
        width = max(len(row[0]) for row in MATRIX)
        print(f"\n\n{'mode':<{width}}  {'retries':>7}  {'seconds':>7}  outcome")
        for mode, outcome, retries, seconds in MATRIX:
            print(f"{mode:<{width}}  {retries:>7}  {seconds:>7.2f}  {outcome}")


@pytest.mark.parametrize("mode", list(CASES))
def test_fault_mode(mode: str, fake: FakeDatadog, truth: dict[str, list[dict[str, Any]]]) -> None:
    case = CASES[mode]
    want = [dict(batch) for batch in truth[case.query]]
    if case.truth_change is not None:
        case.truth_change(want)
    case.setup(fake)
    got: list[dict[str, Any]] = []
    started = time.monotonic()
    with dd.DDStream(config(fake, query=case.query, **case.options)) as stream:
        if case.error is None:
            got = [snapshot(b) for b in stream]
            elapsed = time.monotonic() - started
            outcome = "exact data"
        else:
            cls, pattern = case.error
            with pytest.raises(cls) as caught:
                next(stream)
            elapsed = time.monotonic() - started
            error = caught.value
            # The error names the chunk (index and UTC range) and the cause...
            first = stream.chunks[0]
            assert (error.chunk_start, error.chunk_end) == first
            assert error.message.startswith("chunk 1 of 4 [2023-11-12T04:14:00Z, "
                                            "2023-11-12T05:14:00Z): "), error.message
            assert re.search(pattern, error.message), error.message
            outcome = f"{cls.__name__}: {error.message.split('): ', 1)[1]}"
            # ...and once the server behaves, the same chunk comes next: nothing skipped.
            requests_at_error = len(fake.query_requests)
            fake.clear_faults()
            if case.server_fault:
                got = [snapshot(b) for b in stream]
            else:
                with pytest.raises(cls):  # the same chunk again, failing the same way
                    next(stream)
                got = [snapshot(b) for b in truth[case.query]]
    requests = len(fake.query_requests) if case.error is None else requests_at_error
    if case.requests is not None:
        assert requests == case.requests, [r.status for r in fake.query_requests]
    if case.error is not None:
        want = [dict(batch) for batch in truth[case.query]]
    assert_same(got, want)
    MATRIX.append((mode, outcome[:110], requests - (CHUNKS if case.error is None else 1), elapsed))


def test_every_fault_class_is_in_the_matrix() -> None:
    """A fault mode added to ddstream.testing without a case here fails this test."""
    covered = {"CannedResponse", "Mutate", "Garbage", "GzipBomb", "Redirect", "ResetMidBody",
               "SlowBody", "Truncate", "TruncatedJSON", "Hangup", "WideAnswer"}
    classes = {name for name in testing.__all__
               if isinstance(getattr(testing, name), type)
               and issubclass(getattr(testing, name), testing.Fault)
               and getattr(testing, name) is not testing.Fault}
    # RandomFaults: test_random_faults_recover; the waits a header asks for (seconds each, too
    # slow for the matrix): test_rate_limit_waits.py; QueryTimeout: the fake's own behaviour in
    # test_fake_query_language.py; QueryTimedOut (its form with a 400; requests split, not
    # retried): test_multi_query.py
    assert classes - covered == {"RandomFaults", "AbsurdReset", "RetryAfter", "QueryTimeout",
                                 "QueryTimedOut"}


def test_random_faults_recover(fake: FakeDatadog, truth: dict[str, list[dict[str, Any]]]) -> None:
    """A seeded mix of the recoverable faults, on most requests: the output is still exact. (No
    429s here: each costs a second of waiting, and the rate-limit tests have their own file.)"""
    kinds = [kind for kind in testing.RECOVERABLE_KINDS if kind != "429"]
    faults = testing.RandomFaults(0.6, seed=7, kinds=kinds, slow_seconds=0.05)
    fake.add_fault(faults)
    cfg = config(fake, query=GROUPED_QUERY, max_retries=10, range_end=T0 + 12 * CHUNK)
    with FakeDatadog() as clean, dd.DDStream(config(clean, query=GROUPED_QUERY,
                                                    range_end=T0 + 12 * CHUNK)) as stream:
        want = [snapshot(b) for b in stream]
    with dd.DDStream(cfg) as stream:
        got = [snapshot(b) for b in stream]
    assert_same(got, want)
    assert sum(faults.counts.values()) >= 8, faults.counts
    # Every fault but a slow (complete) answer costs one retry.
    assert len(fake.query_requests) == 12 + sum(faults.counts.values()) - faults.counts["slow"]


def test_fault_handling_options_reach_the_library() -> None:
    """The knobs the matrix uses: defaults, the C struct, and the checks that name them."""
    defaults = dd.DDStreamConfig().to_native().ptr
    assert (defaults.retry_backoff_ms, defaults.low_speed_limit, defaults.low_speed_time_ms) == (
        500, 1, 30000)
    assert defaults.start_chunk == 0 and defaults.resume_token == ffi.NULL
    native = make_config(retry_backoff_ms=25, low_speed_limit=100, low_speed_time_ms=1500,
                         start_chunk=2, resume_token="dds1-0123456789abcdef-2").to_native()
    c = native.ptr  # valid while native (which owns the strings) lives
    assert (c.retry_backoff_ms, c.low_speed_limit, c.low_speed_time_ms, c.start_chunk) == (
        25, 100, 1500, 2)
    assert ffi.string(c.resume_token) == b"dds1-0123456789abcdef-2"
    for name, value, rule in [
        ("retry_backoff_ms", 0, "between 1 and 3600000"),
        ("low_speed_limit", -1, "0 .off. or positive"),
        ("low_speed_time_ms", 86_400_001, "between 0 and 86400000"),
    ]:
        with pytest.raises(dd.ConfigError, match=f"{name} must be {rule}"):
            dd.DDStream(make_config(**{name: value}))
