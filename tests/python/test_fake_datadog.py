"""Tests of the fake Datadog server itself, over real HTTP (urllib / http.client only).

They need neither the compiled library nor the ``ddstream`` binding: when
``import ddstream.testing`` fails (library not built), the ``testing`` directory is loaded on its
own.
"""

from __future__ import annotations

import gzip
import http.client
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from reference import expected_buckets

_TESTING_DIR = Path(__file__).resolve().parents[2] / "python" / "ddstream" / "testing"
_STANDALONE = "ddstream_testing_standalone"


def _load_testing() -> ModuleType:
    """``ddstream.testing``, or the same files loaded standalone if the package cannot import."""
    try:
        import ddstream.testing as packaged
    except (ImportError, OSError, RuntimeError):  # the binding needs the compiled library
        pass
    else:
        return packaged
    if _STANDALONE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            _STANDALONE,
            _TESTING_DIR / "__init__.py",
            submodule_search_locations=[str(_TESTING_DIR)],
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_STANDALONE] = module
        spec.loader.exec_module(module)
    return sys.modules[_STANDALONE]


testing: Any = _load_testing()

DAY = 86400
MONDAY = 1_699_833_600  # 2023-11-13 00:00 UTC, a Monday (a plain day: only the 05:00 blackout)
SUNDAY = MONDAY - DAY  # 2023-11-12, with the 12:00-18:00 blackout
API = "test-api-key-0123456789"
APP = "test-app-key-9876543210"
KEYS = {"DD-API-KEY": API, "DD-APPLICATION-KEY": APP}


@pytest.fixture
def dd() -> Iterator[Any]:
    with testing.FakeDatadog() as server:
        yield server


def get(
    server: Any,
    path: str,
    params: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = KEYS,
) -> tuple[int, Any, bytes]:
    """``(status, headers, body)`` of a GET, whatever the status."""
    url = server.url + path
    if params is not None:
        url += "?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def query(server: Any, q: str, from_ts: int, to_ts: int, **kwargs: Any) -> tuple[int, Any]:
    """``(status, parsed JSON body)`` of ``/api/v1/query``."""
    status, _, body = get(
        server, "/api/v1/query", {"from": from_ts, "to": to_ts, "query": q}, **kwargs
    )
    return status, json.loads(body)


def points(series: Mapping[str, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A series' pointlist as (seconds int64, values float64 with NaN)."""
    stamps = np.array([p[0] for p in series["pointlist"]], dtype=np.float64)
    values = np.array([np.nan if p[1] is None else p[1] for p in series["pointlist"]])
    assert np.all(stamps % 1000 == 0)
    return (stamps // 1000).astype(np.int64), values


def only(body: Mapping[str, Any]) -> Mapping[str, Any]:
    assert len(body["series"]) == 1, body["series"]
    series: Mapping[str, Any] = body["series"][0]
    return series


# -- shape, alignment, nulls -------------------------------------------------------------------


def test_response_shape(dd: Any) -> None:
    status, body = query(dd, "avg:system.cpu.user{*}.rollup(avg,60)", MONDAY, MONDAY + 600)
    assert status == 200
    assert body["status"] == "ok"
    assert body["res_type"] == "time_series"
    assert body["query"] == "avg:system.cpu.user{*}.rollup(avg,60)"
    assert (body["from_date"], body["to_date"]) == (MONDAY * 1000, (MONDAY + 600) * 1000)
    assert body["group_by"] == []
    assert body["message"] == ""
    assert body["resp_version"] == 1
    series = only(body)
    assert series["metric"] == series["display_name"] == "system.cpu.user"
    assert series["scope"] == "*"
    assert series["tag_set"] == []
    assert series["aggr"] == "avg"
    assert series["query_index"] == 0
    assert series["interval"] == 60
    assert series["unit"] == [None, None]
    assert series["length"] == len(series["pointlist"]) == 11


def test_buckets_aligned_and_to_inclusive(dd: Any) -> None:
    t0, t1 = MONDAY + 3600, MONDAY + 3600 + 600  # both multiples of 60
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", t0 + 1, t1)
    series = only(body)
    stamps, values = points(series)
    # first boundary at or after `from`; the last bucket is the one containing `to`
    assert stamps[0] == t0 + 60
    assert stamps[-1] == t1
    assert np.array_equal(np.diff(stamps), np.full(len(stamps) - 1, 60))
    assert series["start"] == (t0 + 60) * 1000
    assert series["end"] == (t1 + 60 - 1) * 1000
    assert not np.isnan(values).any()
    # `to` inside a bucket still returns that bucket
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", t0, t1 + 59)
    stamps, _ = points(only(body))
    assert (stamps[0], stamps[-1]) == (t0, t1)
    # a range with no boundary in it: no series
    status, body = query(dd, "avg:m{*}.rollup(avg,60)", t0 + 1, t0 + 59)
    assert status == 200
    assert body["series"] == []


def test_float_and_integer_timestamps(dd: Any) -> None:
    _, _, raw = get(dd, "/api/v1/query", {"from": MONDAY, "to": MONDAY + 60, "query": "avg:m{*}"})
    assert f"[{MONDAY * 1000}.0,".encode() in raw
    dd.float_timestamps = False
    _, _, raw = get(dd, "/api/v1/query", {"from": MONDAY, "to": MONDAY + 60, "query": "avg:m{*}"})
    assert f"[{MONDAY * 1000},".encode() in raw
    assert f"[{MONDAY * 1000}.0,".encode() not in raw


def test_null_buckets_in_blackouts(dd: Any) -> None:
    five = MONDAY + 5 * 3600
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", five - 300, five + 900)
    stamps, values = points(only(body))
    empty = (stamps >= five) & (stamps < five + 600)
    assert empty.sum() == 10
    assert np.isnan(values[empty]).all()
    assert not np.isnan(values[~empty]).any()
    # coarser: the weekly blackout, Sundays 12:00-18:00, empties whole hours
    _, body = query(dd, "sum:m{*} by {host}.rollup(max,3600)", SUNDAY, SUNDAY + DAY - 1)
    for series in body["series"]:
        stamps, values = points(series)
        hours = (stamps - SUNDAY) // 3600
        assert np.isnan(values[(hours >= 12) & (hours < 18)]).all()
        assert not np.isnan(values[(hours < 12) | (hours >= 18)]).any()


def test_trim_empty_edges(dd: Any) -> None:
    five = MONDAY + 5 * 3600
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", five, five + 1200)
    stamps, values = points(only(body))
    assert stamps[0] == five
    assert np.isnan(values[0])
    dd.trim_empty_edges = True
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", five, five + 1200)
    series = only(body)
    stamps, values = points(series)
    assert stamps[0] == five + 600
    assert series["start"] == (five + 600) * 1000
    assert series["length"] == len(stamps) == 11
    assert not np.isnan(values).any()
    # entirely inside the blackout: no series at all
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", five, five + 540)
    assert body["series"] == []


def test_nodata_metric_and_unmatched_scope(dd: Any) -> None:
    for q in ("avg:nodata.metric{*}.rollup(avg,60)", "avg:m{host:nope}", "avg:m{service:x}"):
        status, body = query(dd, q, MONDAY, MONDAY + 3600)
        assert status == 200
        assert body["status"] == "ok"
        assert body["series"] == []
    _, body = query(dd, "avg:error.rate{*}", MONDAY, MONDAY + 3600)  # not special
    assert len(body["series"]) == 1


# -- intervals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "interval"),
    [(3600, 20), (4 * 3600, 60), (DAY, 300), (2 * DAY, 600), (7 * DAY, 3600), (30 * DAY, 14400)],
)
def test_automatic_interval(dd: Any, span: int, interval: int) -> None:
    _, body = query(dd, "avg:m{*}", MONDAY, MONDAY + span)
    series = only(body)
    assert series["interval"] == interval
    assert 150 <= series["length"] <= 300
    stamps, _ = points(series)
    assert np.all(stamps % interval == 0)


def test_rollup_without_interval_keeps_method(dd: Any) -> None:
    _, body = query(dd, "avg:m{*}.rollup(count)", MONDAY, MONDAY + 3600)
    series = only(body)
    assert series["interval"] == 20
    _, values = points(series)
    assert set(values.tolist()) <= {1.0, 2.0}


def test_point_cap_coarsens_interval(dd: Any) -> None:
    t0, t1 = MONDAY, MONDAY + 2 * DAY  # 2881 buckets at 60 s
    _, body = query(dd, "max:m{*}.rollup(max,60)", t0, t1)
    series = only(body)
    assert series["interval"] == 120
    assert series["length"] == 1441
    stamps, values = points(series)
    assert np.all(np.diff(stamps) == 120)
    ref_stamps, ref_values = expected_buckets("m", None, None, "max", "max", t0, t1 + 1, 120)[()]
    assert np.array_equal(stamps, ref_stamps)
    assert np.array_equal(values, ref_values, equal_nan=True)
    # exactly 1500 points is still allowed
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", t0, t0 + 1499 * 60)
    assert only(body)["interval"] == 60
    assert only(body)["length"] == 1500
    # a smaller cap, set while running
    dd.max_points = 100
    _, body = query(dd, "avg:m{*}.rollup(sum,300)", t0, t0 + DAY)
    assert only(body)["interval"] == 900
    # beyond the ladder: whole days
    dd.max_points = 10
    _, body = query(dd, "avg:m{*}.rollup(avg,60)", t0 - 30 * DAY, t0)
    interval = only(body)["interval"]
    assert interval % DAY == 0
    assert interval >= 2 * DAY
    assert only(body)["length"] <= 10
    assert testing.bucket_grid(t0 - 30 * DAY, t0, interval - DAY)[1] > 10  # the smallest that fits


def test_interval_helpers() -> None:
    assert testing.bucket_grid(61, 180, 60) == (120, 2)
    assert testing.bucket_grid(61, 119, 60) == (120, 0)
    assert testing.auto_interval(0, 3600) == 20
    assert testing.capped_interval(0, 2 * DAY, 60) == 120
    assert testing.capped_interval(0, 2 * DAY, 45) == 120
    assert testing.capped_interval(0, 600, 1) == 1


# -- multi-queries, groups, scopes -------------------------------------------------------------


def test_multi_query_indexes(dd: Any) -> None:
    q = ",".join(
        f"avg:m{{env:prod,host:h00}}.rollup({m}, 60)" for m in ("avg", "min", "max", "sum")
    )
    _, body = query(dd, q, MONDAY, MONDAY + 3600)
    by_index = {s["query_index"]: s for s in body["series"]}
    assert sorted(by_index) == [0, 1, 2, 3]
    assert all(s["scope"] == "env:prod,host:h00" for s in body["series"])
    avg, low, high, total = (points(by_index[i])[1] for i in range(4))
    ok = ~np.isnan(avg)
    assert ok.sum() > 50
    assert np.all(low[ok] <= avg[ok])
    assert np.all(avg[ok] <= high[ok])
    assert np.all(total[ok] >= high[ok])


def test_group_by_host(dd: Any) -> None:
    _, body = query(dd, "avg:m{*} by {host}.rollup(avg,60)", MONDAY, MONDAY + 600)
    assert body["group_by"] == ["host"]
    tag_sets = [s["tag_set"] for s in body["series"]]
    assert sorted(tag_sets) == [["host:h00"], ["host:h01"], ["host:h02"]]
    assert tag_sets != sorted(tag_sets)  # clients must not rely on the order
    for series in body["series"]:
        assert series["scope"] == series["tag_set"][0]
        assert series["aggr"] == "avg"


def test_group_by_two_keys_and_filter(dd: Any) -> None:
    _, body = query(dd, "sum:m{env:prod} by {env,host}.rollup(sum,300)", MONDAY, MONDAY + 3600)
    assert body["group_by"] == ["env", "host"]
    got = {tuple(s["tag_set"]): s["scope"] for s in body["series"]}
    assert got == {
        ("env:prod", "host:h00"): "env:prod,host:h00",
        ("env:prod", "host:h02"): "env:prod,host:h02",
    }
    _, body = query(dd, "sum:m{*} by {env}", MONDAY, MONDAY + 3600)
    assert sorted(s["scope"] for s in body["series"]) == ["env:prod", "env:staging"]
    _, body = query(dd, "max:m{env:staging}", MONDAY, MONDAY + 3600)
    series = only(body)
    assert (series["scope"], series["tag_set"]) == ("env:staging", [])


def test_scope_filter_selects_hosts(dd: Any) -> None:
    _, body = query(dd, "avg:m{host:h01}.rollup(avg,10)", MONDAY + 100, MONDAY + 200)
    _, values = points(only(body))
    k = np.arange(MONDAY + 100, MONDAY + 210, 10) // 10
    expected = testing.metric_base("m") + (k % 97) * 0.5 + 10.0
    expected[(k + 1) % 53 == 0] = np.nan
    assert np.array_equal(values, expected, equal_nan=True)


def test_dataset_raw_points() -> None:
    dataset = testing.Dataset(hosts=4, raw_interval=10)
    assert dataset.host_tags(3) == {"host": "h03", "env": "staging"}
    assert dataset.groups([("env", "prod")], ["host"]) == {("host:h00",): [0], ("host:h02",): [2]}
    stamps, values = dataset.raw_points("m", 2, MONDAY + 5 * 3600 - 1000, MONDAY + 5 * 3600 + 1000)
    k = np.arange(MONDAY + 5 * 3600 - 1000, MONDAY + 5 * 3600 + 1000, 10) // 10
    t = k * 10
    keep = ((k + 2) % 53 != 0) & ~((t >= MONDAY + 5 * 3600) & (t < MONDAY + 5 * 3600 + 600))
    assert np.array_equal(stamps, t[keep])
    assert np.array_equal(values, (testing.metric_base("m") + (k % 97) * 0.5 + 20.0)[keep])
    assert len(dataset.raw_points("nodata.m", 0, MONDAY, MONDAY + 600)[0]) == 0


def test_answer_cache_is_bounded() -> None:
    with testing.FakeDatadog(cache_size=2) as server:
        bodies = [
            get(server, "/api/v1/query", {"from": 0, "to": t, "query": "avg:m{*}"})[2]
            for t in (600, 1200, 1800, 600)
        ]
        assert bodies[0] == bodies[3]
        assert len(server._cache) == 2


def test_null_aggr_option(dd: Any) -> None:
    dd.null_aggr = True
    _, body = query(dd, "max:m{*}", MONDAY, MONDAY + 600)
    assert only(body)["aggr"] is None


# -- transport ---------------------------------------------------------------------------------


def test_gzip(dd: Any) -> None:
    params = urllib.parse.urlencode({"from": MONDAY, "to": MONDAY + DAY, "query": "avg:m{*}"})
    connection = http.client.HTTPConnection("127.0.0.1", dd.port, timeout=10)
    try:
        connection.request("GET", f"/api/v1/query?{params}", headers=KEYS)
        plain = connection.getresponse()
        plain_body = plain.read()
        assert plain.getheader("Content-Encoding") is None
        connection.request(
            "GET", f"/api/v1/query?{params}", headers={**KEYS, "Accept-Encoding": "gzip"}
        )
        zipped = connection.getresponse()
        zipped_body = zipped.read()
    finally:
        connection.close()
    assert zipped.getheader("Content-Encoding") == "gzip"
    assert int(zipped.getheader("Content-Length") or -1) == len(zipped_body) < len(plain_body)
    assert gzip.decompress(zipped_body) == plain_body
    records = dd.requests
    assert [r.accept_gzip for r in records] == [False, True]
    assert records[0].connection_id == records[1].connection_id  # keep-alive


def test_keep_alive_across_errors(dd: Any) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", dd.port, timeout=10)
    try:
        for path in ("/api/v1/query?from=1&to=2", "/nowhere", "/api/v1/validate", "/api/v1/query"):
            connection.request("GET", path, headers=KEYS)
            response = connection.getresponse()
            response.read()
    finally:
        connection.close()
    ids = {r.connection_id for r in dd.requests}
    assert len(ids) == 1
    assert [r.status for r in dd.requests] == [400, 404, 200, 400]
    get(dd, "/api/v1/validate")
    assert dd.requests[-1].connection_id not in ids


def test_rate_limit_headers_lower_case(dd: Any) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", dd.port, timeout=10)
    try:
        connection.request("GET", "/api/v1/query?from=0&to=60&query=avg:m%7B*%7D", headers=KEYS)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 200
    names = [name for name, _ in response.getheaders()]
    expected = [f"x-ratelimit-{n}" for n in ("limit", "period", "remaining", "reset", "name")]
    assert all(name in names for name in expected), names  # exactly lower case
    headers = dict(response.getheaders())
    assert headers["x-ratelimit-name"] == "query"
    assert int(headers["x-ratelimit-remaining"]) == int(headers["x-ratelimit-limit"]) - 1
    assert 0 < int(headers["x-ratelimit-reset"]) <= int(headers["x-ratelimit-period"])


def test_rate_limit_429() -> None:
    with testing.FakeDatadog(rate_limit=(3, 30.0)) as server:
        remaining = []
        for _ in range(3):
            status, headers, _ = get(
                server, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"}
            )
            assert status == 200
            remaining.append(int(headers["x-ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        status, headers, body = get(
            server, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"}
        )
        assert status == 429
        assert json.loads(body) == {
            "errors": ["Rate limit of 3 requests in 30 seconds reached. Please try again later."]
        }
        assert headers["x-ratelimit-remaining"] == "0"
        assert headers["x-ratelimit-limit"] == "3"
        assert headers["x-ratelimit-period"] == "30"
        assert 1 <= int(headers["x-ratelimit-reset"]) <= 30
        # auth failures do not use the budget; a new limit opens a new window
        server.rate_limit = (1, 0.3)
        assert (
            get(server, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"}, headers={})[0]
            == 403
        )
        assert get(server, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"})[0] == 200
        assert get(server, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"})[0] == 429
        time.sleep(0.35)
        assert get(server, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"})[0] == 200


# -- faults ------------------------------------------------------------------------------------


def test_injected_faults(dd: Any) -> None:
    params = {"from": MONDAY, "to": MONDAY + 60, "query": "avg:m{*}"}
    dd.inject(503, times=2)
    dd.inject(429, html=True, headers={"x-ratelimit-reset": "1"})
    dd.inject(500, '{"errors": [{"status": "500", "title": "boom"}]}')
    statuses = []
    for _ in range(5):
        status, headers, body = get(dd, "/api/v1/query", params)
        statuses.append(status)
        if status == 429:
            assert headers["Content-Type"].startswith("text/html")
            assert body.startswith(b"<html>")
            assert headers["x-ratelimit-reset"] == "1"
        elif status == 503:
            assert json.loads(body) == {"errors": ["Service Unavailable"]}
        elif status == 500:
            assert json.loads(body)["errors"][0]["title"] == "boom"
    assert statuses == [503, 503, 429, 500, 200]
    assert [r.status for r in dd.requests] == statuses
    assert dd.pending_faults == []


def test_injected_fault_path_delay_and_gzip(dd: Any) -> None:
    dd.inject(401, path="/api/v1/validate", delay=0.2)
    started = time.monotonic()
    status, _, _ = get(dd, "/api/v1/validate")
    assert status == 401
    assert time.monotonic() - started >= 0.2
    assert get(dd, "/api/v1/validate")[0] == 200
    dd.inject(502, b"bad gateway", content_type="text/plain", times=None)
    for _ in range(3):
        status, headers, body = get(
            dd, "/api/v1/query", {}, headers={**KEYS, "Accept-Encoding": "gzip"}
        )
        assert status == 502
        assert headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == b"bad gateway"
    dd.clear_faults()
    assert get(dd, "/api/v1/query", {"from": 0, "to": 1, "query": "avg:m{*}"})[0] == 200


class _Truncate(testing.Fault):  # type: ignore[misc]
    """The real answer, cut in the middle (the connection then closes)."""

    def respond(self, exchange: Any) -> None:
        response = exchange.real_response()
        exchange.write_head(
            response.status,
            {"Content-Type": response.content_type, "Content-Length": str(len(response.body))},
        )
        exchange.write(response.body[: len(response.body) // 2])
        exchange.close_connection()


class _Hangup(testing.Fault):  # type: ignore[misc]
    def respond(self, exchange: Any) -> None:
        exchange.close_connection()


def test_custom_faults(dd: Any) -> None:
    dd.add_fault(_Truncate())
    dd.add_fault(_Hangup())
    path = "/api/v1/query?from=0&to=3600&query=avg:m%7B*%7D"
    connection = http.client.HTTPConnection("127.0.0.1", dd.port, timeout=10)
    connection.request("GET", path, headers=KEYS)
    with pytest.raises(http.client.IncompleteRead):
        connection.getresponse().read()
    connection.close()
    connection = http.client.HTTPConnection("127.0.0.1", dd.port, timeout=10)
    connection.request("GET", path, headers=KEYS)
    with pytest.raises(http.client.RemoteDisconnected):
        connection.getresponse()
    connection.close()
    assert [r.status for r in dd.requests] == [200, 0]
    assert get(dd, "/api/v1/query", {"from": 0, "to": 3600, "query": "avg:m{*}"})[0] == 200


class _Broken(testing.Fault):  # type: ignore[misc]
    def respond(self, exchange: Any) -> None:
        raise ValueError("a bug in a fault")


def test_a_bug_answers_500_and_is_logged(dd: Any, caplog: pytest.LogCaptureFixture) -> None:
    dd.add_fault(_Broken())
    status, _, body = get(dd, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"})
    assert (status, json.loads(body)) == (500, {"errors": ["Internal Server Error"]})
    assert "a bug in a fault" in caplog.text
    assert get(dd, "/api/v1/query", {"from": 0, "to": 60, "query": "avg:m{*}"})[0] == 200


def test_latency_and_max_concurrency(dd: Any) -> None:
    dd.latency = 0.3
    statuses: list[int] = []

    def worker() -> None:
        statuses.append(query(dd, "avg:m{*}", MONDAY, MONDAY + 3600)[0])

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert statuses == [200, 200]
    assert 0.3 <= elapsed < 0.58  # the two requests overlapped (in turn: >= 0.6)
    assert dd.max_concurrency == 2
    first, second = dd.requests
    assert first.finished - first.started >= 0.3
    assert second.started < first.finished
    assert first.connection_id != second.connection_id
    dd.clear_log()
    assert dd.requests == []
    assert dd.max_concurrency == 0
    assert get(dd, "/api/v1/validate")[0] == 200  # latency is for queries only
    assert dd.max_concurrency == 0


# -- auth, errors, the log ---------------------------------------------------------------------


def test_auth() -> None:
    secret, app = "SECRET-API-KEY-42", "SECRET-APP-KEY-43"
    with testing.FakeDatadog(api_keys=[secret], app_keys=[app]) as server:
        params = {"from": 0, "to": 60, "query": "avg:m{*}"}
        cases = [
            ({}, 403, "Forbidden"),
            ({"DD-APPLICATION-KEY": app}, 403, "Forbidden"),
            ({"DD-API-KEY": "wrong-api-key", "DD-APPLICATION-KEY": app}, 403, "Forbidden"),
            ({"DD-API-KEY": secret}, 401, "Unauthorized"),
            ({"DD-API-KEY": secret, "DD-APPLICATION-KEY": "wrong-app"}, 403, "Forbidden"),
        ]
        for headers, status, message in cases:
            got, response_headers, body = get(server, "/api/v1/query", params, headers=headers)
            assert (got, json.loads(body)) == (status, {"errors": [message]})
            assert "x-ratelimit-limit" in response_headers
            for key in (secret, app, "wrong-api-key", "wrong-app"):
                assert key.encode() not in body
                assert key not in str(response_headers)
        ok = {"DD-API-KEY": secret, "DD-APPLICATION-KEY": app}
        assert get(server, "/api/v1/query", params, headers=ok)[0] == 200
        # keys in the URL are noticed (and refused without the headers), never stored
        status, _, body = get(server, "/api/v1/query", {**params, "api_key": secret}, headers={})
        assert status == 403
        assert secret.encode() not in body
        record = server.requests[-1]
        assert record.keys_in_url
        assert not record.api_key_sent
        assert record.params["api_key"] == "<redacted>"
        assert all(secret not in repr(r) and app not in repr(r) for r in server.requests)
        # validate checks the API key only
        assert get(server, "/api/v1/validate", headers={"DD-API-KEY": secret})[0] == 200
        assert get(server, "/api/v1/validate", headers={"DD-API-KEY": "nope"})[0] == 403


def test_validate(dd: Any) -> None:
    status, _, body = get(dd, "/api/v1/validate", headers={"DD-API-KEY": API})
    assert (status, json.loads(body)) == (200, {"valid": True})
    status, _, body = get(dd, "/api/v1/validate", headers={})
    assert (status, json.loads(body)) == (403, {"errors": ["Forbidden"]})


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"to": 60, "query": "avg:m{*}"}, "'from'"),
        ({"from": 0, "query": "avg:m{*}"}, "'to'"),
        ({"from": 0, "to": 60}, "'query'"),
        ({"from": "1.5", "to": 60, "query": "avg:m{*}"}, "'from'"),
        ({"from": 0, "to": "soon", "query": "avg:m{*}"}, "'to'"),
        ({"from": 60, "to": 0, "query": "avg:m{*}"}, "before"),
    ],
)
def test_bad_parameters(dd: Any, params: dict[str, object], needle: str) -> None:
    status, _, body = get(dd, "/api/v1/query", params)
    assert status == 400
    (message,) = json.loads(body)["errors"]
    assert needle in message


@pytest.mark.parametrize(
    "bad",
    [
        "system.cpu",
        "avg:m",
        "avg:m{*",
        "avg:m{*}}",
        "median:m{*}",
        "avg:{*}",
        "avg:m{}",
        "avg:m{host}",
        "avg:m{*}.rollup(median,60)",
        "avg:m{*}.rollup(avg,0)",
        "avg:m{*}.rollup(avg,1.5)",
        "avg:m{*}.rollup(avg,60,1)",
        "avg:m{*} by {}",
        "avg:m{*} by {host,host}",
        "avg:m{*}.as_count(1)",  # the modifier takes no argument (as_count() itself is fine now)
        "avg:m{*} / ",  # arithmetic is understood now; an operand missing is still an error
        "avg:m{*},",
        "avg:m{*},,avg:n{*}",
    ],
)
def test_parse_errors(dd: Any, bad: str) -> None:
    status, body = query(dd, bad, 0, 3600)
    assert status == 400
    (message,) = body["errors"]
    assert message.startswith("Error parsing query: ")


def test_parser_accepts_spacing_and_commas_in_braces() -> None:
    (a, b) = testing.parse_query(
        " sum : my.metric { env:prod , host:h01 } by { host , env } . rollup( count , 300 ) ,"
        "max:other{*}"
    )
    assert (a.space, a.metric, a.filters) == (
        "sum",
        "my.metric",
        (("env", "prod"), ("host", "h01")),
    )
    assert (a.by, a.rollup_method, a.rollup_seconds, a.index) == (("host", "env"), "count", 300, 0)
    assert (b.metric, b.scope_text, b.method, b.rollup_seconds, b.index) == (
        "other",
        "*",
        "avg",
        None,
        1,
    )


def test_not_found(dd: Any) -> None:
    status, _, body = get(dd, "/api/v2/query/timeseries")
    assert (status, json.loads(body)) == (404, {"errors": ["Not found"]})
    request = urllib.request.Request(
        dd.url + "/api/v1/query", data=b"{}", headers=KEYS, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    caught.value.close()


def test_request_log(dd: Any) -> None:
    request = urllib.request.Request(
        dd.url + f"/api/v1/query?from={MONDAY}&to={MONDAY + 60}&query=avg:m%7B*%7D",
        headers={**KEYS, "User-Agent": "ddstream-test/1.0"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    (record,) = dd.requests
    assert record.path == "/api/v1/query"
    assert record.params == {"from": str(MONDAY), "to": str(MONDAY + 60), "query": "avg:m{*}"}
    assert (record.query, record.from_ts, record.to_ts) == ("avg:m{*}", MONDAY, MONDAY + 60)
    assert record.status == 200
    assert record.started <= record.finished
    assert record.api_key_sent
    assert record.app_key_sent
    assert not record.keys_in_url
    assert not record.accept_gzip
    assert record.user_agent == "ddstream-test/1.0"
    assert record.connection_id > 0
    assert record.method == "GET"
    assert dd.query_requests == [record]
    with pytest.raises(AttributeError):
        record.status = 500


# -- the data against the independent reference ------------------------------------------------


@pytest.mark.parametrize(
    ("space", "method", "granularity", "by", "filters", "start", "end"),
    [
        ("avg", "avg", 60, None, None, MONDAY + 17, MONDAY + 25 * 3600),
        ("avg", "sum", 60, None, None, MONDAY - 3 * 3600 + 1, MONDAY + 9 * 3600),
        ("avg", "min", 300, ["host"], None, MONDAY, MONDAY + 5 * DAY),
        ("max", "max", 15, ["env"], None, MONDAY + 5 * 3600 - 7, MONDAY + 5 * 3600 + 5000),
        ("sum", "count", 3600, None, {"env": "prod"}, SUNDAY, SUNDAY + 2 * DAY),
        ("min", "avg", 7, ["env", "host"], None, MONDAY + 1, MONDAY + 10000),
        ("avg", "avg", 10, None, {"host": "h01"}, MONDAY + 4 * 3600, MONDAY + 6 * 3600),
        ("avg", "sum", 1, None, None, MONDAY + 5, MONDAY + 1300),
        ("sum", "avg", 14400, ["host"], None, SUNDAY - 30 * DAY, SUNDAY),
    ],
)
def test_reference_matches_server(
    dd: Any,
    space: str,
    method: str,
    granularity: int,
    by: list[str] | None,
    filters: dict[str, str] | None,
    start: int,
    end: int,
) -> None:
    scope = ",".join(f"{k}:{v}" for k, v in (filters or {}).items()) or "*"
    grouping = f" by {{{','.join(by)}}}" if by else ""
    q = f"{space}:some.metric{{{scope}}}{grouping}.rollup({method},{granularity})"
    status, body = query(dd, q, start, end - 1)
    assert status == 200
    expected = expected_buckets("some.metric", filters, by, space, method, start, end, granularity)
    got = {tuple(s["tag_set"]): s for s in body["series"]}
    assert set(got) <= set(expected)
    assert expected
    for key, (stamps, values) in expected.items():
        if key not in got:
            assert np.isnan(values).all()
            continue
        assert got[key]["interval"] == granularity
        got_stamps, got_values = points(got[key])
        assert np.array_equal(got_stamps, stamps)
        assert np.array_equal(got_values, values, equal_nan=True)  # bit for bit


def _brute_force(
    space: str, method: str, start: int, end: int, granularity: int
) -> list[float | None]:
    """A third implementation: per point, exact fractions, for a tiny range (3 hosts, 10 s)."""
    import zlib

    base = zlib.crc32(b"m") % 1000
    out: list[float | None] = []
    for bucket in range(-(-start // granularity) * granularity, end, granularity):
        aggregated = []
        for t in range(-(-bucket // 10) * 10, bucket + granularity, 10):
            k = t // 10
            day, week = t % DAY, t % (7 * DAY)
            if (
                5 * 3600 <= day < 5 * 3600 + 600
                or 3 * DAY + 12 * 3600 <= week < 3 * DAY + 18 * 3600
            ):
                continue
            here = [Fraction(base) + Fraction(k % 97, 2) + 10 * i for i in range(3) if (k + i) % 53]
            if here:
                spaces = {"avg": sum(here) / len(here), "sum": sum(here), "min": min(here)}
                aggregated.append(spaces.get(space, max(here)))
        if not aggregated:
            out.append(None)
            continue
        times = {
            "avg": sum(aggregated) / len(aggregated),
            "sum": sum(aggregated),
            "min": min(aggregated),
            "max": max(aggregated),
            "count": Fraction(len(aggregated)),
        }
        out.append(float(times[method]))  # Fraction -> float is correctly rounded
    return out


@pytest.mark.parametrize(
    ("space", "method"), [("avg", "avg"), ("avg", "sum"), ("sum", "avg"), ("avg", "max")]
)
def test_reference_against_brute_force(space: str, method: str) -> None:
    start, end, granularity = MONDAY + 5 * 3600 - 1234, MONDAY + 5 * 3600 + 2000, 70
    expected = _brute_force(space, method, start, end, granularity)
    _, values = expected_buckets("m", None, None, space, method, start, end, granularity)[()]
    assert [None if np.isnan(v) else float(v) for v in values] == expected
    assert None in expected


def test_answer_matches_http_body(dd: Any) -> None:
    q = "avg:m{*} by {host}.rollup(avg,60),sum:m{*}"
    _, body = query(dd, q, MONDAY, MONDAY + 7200)
    assert body == json.loads(json.dumps(dd.answer(q, MONDAY, MONDAY + 7200)))


# -- life cycle and the command ----------------------------------------------------------------


def test_start_stop_restart_same_port() -> None:
    server = testing.FakeDatadog()
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    port = server.port
    assert server.url == f"http://127.0.0.1:{port}"
    assert get(server, "/api/v1/validate")[0] == 200
    server.stop()
    server.stop()
    server.start()
    try:
        assert server.port == port
        assert get(server, "/api/v1/validate")[0] == 200
    finally:
        server.stop()


def test_module_entry_point() -> None:
    if testing.__name__ != "ddstream.testing":
        pytest.skip("the ddstream package does not import here (library not built)")
    process = subprocess.Popen(
        [sys.executable, "-m", "ddstream.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        request = urllib.request.Request(url + "/api/v1/validate", headers=KEYS)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_command_line() -> None:
    # Loads the directory standalone, as ``python <dir>`` would (the binding may not import here).
    script = (
        "import importlib, importlib.util, sys\n"
        f"d = {str(_TESTING_DIR)!r}\n"
        f"spec = importlib.util.spec_from_file_location({_STANDALONE!r}, d + '/__init__.py',"
        " submodule_search_locations=[d])\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "sys.modules[spec.name] = m\n"
        "spec.loader.exec_module(m)\n"
        f"sys.exit(importlib.import_module({_STANDALONE + '.__main__'!r}).main(sys.argv[1:]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, "--port", "0", "--latency", "0.05", "--rate-limit", "5/60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(
            url + "/api/v1/query?from=0&to=60&query=avg:m%7B*%7D", headers=KEYS
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["x-ratelimit-limit"] == "5"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
