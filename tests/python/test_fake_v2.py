"""The fake Datadog's v2 endpoints over real HTTP, against the independent reference.

``POST /api/v2/query/timeseries``: named queries and formulas evaluated bucket by bucket and
compared bit for bit with ``reference_query`` (which parses nothing), empty buckets omitted from
``times`` (and only those), ``to`` exclusive, the interval coarsened silently over the point cap,
the recorded error bodies, ``application/vnd.api+json``, auth and rate-limit headers as v1.
``POST /api/v2/query/scalar``: one value per group, per aggregator.
"""

from __future__ import annotations

import json
import math
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import reference_query as ref
from test_fake_datadog import KEYS, MONDAY, testing

HOUR = 3600
START = MONDAY + 4 * HOUR  # 04:00-06:00 UTC: the daily 05:00-05:10 blackout is inside
END = START + 2 * HOUR
G = 60


@pytest.fixture(scope="module")
def dd() -> Iterator[Any]:
    with testing.FakeDatadog(hosts=5) as server:
        yield server


def post(
    server: Any, path: str, payload: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """``(status, headers, parsed JSON)`` of a POST, whatever the status."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", **(KEYS if headers is None else headers)},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def body(
    queries: dict[str, str],
    formulas: list[str] | None = None,
    start: int = START,
    end: int = END,
    interval: int = G,
    kind: str = "timeseries",
    aggregator: str | None = None,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "from": start * 1000,
        "to": end * 1000,
        "queries": [
            {"data_source": "metrics", "query": q, "name": name}
            | ({"aggregator": aggregator} if aggregator else {})
            for name, q in queries.items()
        ],
    }
    if kind == "timeseries":
        attributes["interval"] = interval * 1000
    if formulas is not None:
        attributes["formulas"] = [{"formula": f} for f in formulas]
    return {"data": {"type": f"{kind}_request", "attributes": attributes}}


def timeseries(server: Any, payload: Any) -> tuple[list[int], dict[int, ref.SeriesSet]]:
    """``(times in s, {query_index: {tags: values aligned with times}})`` of a 200 answer."""
    status, headers, answer = post(server, "/api/v2/query/timeseries", payload)
    assert status == 200, answer
    assert headers["Content-Type"] == "application/vnd.api+json"
    attributes = answer["data"]["attributes"]
    assert answer["data"]["type"] == "timeseries_response"
    times = [t // 1000 for t in attributes["times"]]
    assert all(t % 1000 == 0 for t in attributes["times"])
    out: dict[int, ref.SeriesSet] = {}
    assert len(attributes["values"]) == len(attributes["series"])
    for series, row in zip(attributes["series"], attributes["values"], strict=True):
        assert len(row) == len(times)
        key = tuple(series["group_tags"])
        values = np.array([math.nan if v is None else v for v in row], dtype=np.float64)
        assert key not in out.setdefault(series["query_index"], {})
        out[series["query_index"]][key] = values
    return times, out


def g(metric: str, by: tuple[str, ...] = (), space: str = "avg", method: str = "avg",
      start: int = START, end: int = END, interval: int = G) -> ref.SeriesSet:  # fmt: skip
    return ref.gauge(metric, None, by, space, method, start, end, interval, hosts=5)


def on_times(want: ref.SeriesSet, times: list[int], start: int = START,
             interval: int = G) -> ref.SeriesSet:  # fmt: skip
    """The reference (dense from ``start``) at the answered times only."""
    index = [(t - start) // interval for t in times]
    return {key: values[index] for key, values in want.items() if not np.isnan(values).all()}


def expected_times(*sets: ref.SeriesSet, start: int = START, interval: int = G) -> list[int]:
    """The buckets where at least one series has a value: v2 omits the others."""
    filled: set[int] = set()
    for series in sets:
        for values in series.values():
            filled.update(start + int(j) * interval for j in np.flatnonzero(~np.isnan(values)))
    return sorted(filled)


def assert_sets(got: ref.SeriesSet, want: ref.SeriesSet) -> None:
    assert sorted(got) == sorted(want)
    for key, values in want.items():
        np.testing.assert_array_equal(got[key], values, err_msg=f"series {key}")
    assert want, "a case whose expected answer is empty proves little"


def test_formula_over_two_queries(dd: Any) -> None:
    payload = body({"a": "avg:a{*} by {host}", "b": "avg:b{*}"}, ["a / b * 100"])
    times, got = timeseries(dd, payload)
    want = ref.scalar("*", ref.binary("/", g("a", ("host",)), g("b")), 100.0)
    assert times == expected_times(want)
    # The 05:00-05:10 blackout: ten empty buckets, omitted rather than nulled.
    assert len(times) == 120 - 10
    assert START + HOUR in range(START, END) and START + HOUR not in times
    assert list(got) == [0]
    assert_sets(got[0], on_times(want, times))


def test_several_formulas_and_functions(dd: Any) -> None:
    payload = body(
        {"a": "sum:a{*} by {env}", "b": "max:b{*}.rollup(max)"},
        ["a - b", "per_second(b)", "-a"],
    )
    times, got = timeseries(dd, payload)
    a, b = g("a", ("env",), "sum"), g("b", (), "max", "max")
    wants = [ref.binary("-", a, b), ref.scalar("/", b, 60.0), ref.negate(a)]
    assert times == expected_times(*wants)
    assert sorted(got) == [0, 1, 2]
    for index, want in enumerate(wants):
        assert_sets(got[index], on_times(want, times))


def test_without_formulas_each_query_is_answered(dd: Any) -> None:
    times, got = timeseries(dd, body({"x": "avg:a{*}", "y": "min:b{*} by {host}"}))
    wants = [g("a"), g("b", ("host",), "min")]
    assert times == expected_times(*wants)
    for index, want in enumerate(wants):
        assert_sets(got[index], on_times(want, times))


def test_to_is_exclusive_and_from_rounds_up(dd: Any) -> None:
    times, _ = timeseries(dd, body({"a": "avg:a{*}"}, start=START, end=START + 600))
    assert times == [START + 60 * k for k in range(10)]
    payload = body({"a": "avg:a{*}"}, start=START, end=START + 600)
    payload["data"]["attributes"]["from"] += 1  # 1 ms after a boundary: the next bucket first
    payload["data"]["attributes"]["to"] += 1  # 1 ms after one: that bucket included
    times, _ = timeseries(dd, payload)
    assert times == [START + 60 * k for k in range(1, 11)]


def test_coarsened_silently_over_the_point_cap(dd: Any) -> None:
    """Two days at 60 s is 2880 buckets: the answer is on 120 s, with no interval field."""
    start, end = MONDAY, MONDAY + 2 * 86400
    status, _, answer = post(dd, "/api/v2/query/timeseries",
                             body({"a": "avg:a{*}"}, start=start, end=end))  # fmt: skip
    assert status == 200
    times = [t // 1000 for t in answer["data"]["attributes"]["times"]]
    assert "interval" not in json.dumps(answer)
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {120, 720}  # the blackouts
    want = g("a", start=start, end=end, interval=120)
    assert times == expected_times(want, start=start, interval=120)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["data"]["attributes"].update({"from": START, "to": END}),
         "Queries before 2010 are invalid"),
        (lambda p: p["data"]["attributes"]["queries"][0].update({"query": "abs(avg:a{*})"}),
         "Functions are not supported in metrics data source field. Use the formulas payload."),
        (lambda p: p["data"]["attributes"]["queries"][0].update({"query": "avg:a{*} / 2"}),
         "Functions are not supported in metrics data source field. Use the formulas payload."),
        (lambda p: p["data"].update({"type": "timeseries"}),
         'API input validation failed: Invalid type. Expected "timeseries_request".'),
        (lambda p: p["data"]["attributes"].update({"formulas": [{"formula": "a + c"}]}),
         "Unknown query name 'c'"),
        (lambda p: p["data"]["attributes"]["queries"][0].update({"query": "avg:a{"}),
         "Error parsing query 'a'"),
    ],
)  # fmt: skip
def test_recorded_errors(dd: Any, mutate: Any, message: str) -> None:
    payload = body({"a": "avg:a{*}"}, ["a"])
    mutate(payload)
    status, headers, answer = post(dd, "/api/v2/query/timeseries", payload)
    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert answer == {"errors": [message]} or message in answer["errors"][0]


def test_not_json_and_auth(dd: Any) -> None:
    status, _, answer = post(dd, "/api/v2/query/timeseries", b"{not json")
    assert status == 400 and "API input validation failed" in answer["errors"][0]
    status, _, _ = post(dd, "/api/v2/query/timeseries", body({"a": "avg:a{*}"}), headers={})
    assert status == 403
    only_api = {"DD-API-KEY": KEYS["DD-API-KEY"]}
    status, _, _ = post(dd, "/api/v2/query/timeseries", body({"a": "avg:a{*}"}), only_api)
    assert status == 401


def test_rate_limit_headers_and_request_log() -> None:
    with testing.FakeDatadog(rate_limit=(2, 3600)) as server:
        payload = body({"a": "avg:a{*}"})
        statuses = []
        for _ in range(3):
            status, headers, _ = post(server, "/api/v2/query/timeseries", payload)
            statuses.append(status)
        assert statuses == [200, 200, 429]
        assert headers["x-ratelimit-limit"] == "2"
        records = server.query_requests
        assert [r.path for r in records] == ["/api/v2/query/timeseries"] * 3
        assert records[0].method == "POST"
        assert json.loads(records[0].body) == payload


@pytest.mark.parametrize("aggregator", ["avg", "min", "max", "sum", "last", "count"])
def test_scalar_one_value_per_group(dd: Any, aggregator: str) -> None:
    payload = body({"a": "avg:a{*} by {host}"}, kind="scalar", aggregator=aggregator)
    status, headers, answer = post(dd, "/api/v2/query/scalar", payload)
    assert status == 200, answer
    assert headers["Content-Type"] == "application/vnd.api+json"
    columns = answer["data"]["attributes"]["columns"]
    assert [c["type"] for c in columns] == ["group", "number"]
    want = g("a", ("host",))
    assert [tuple(tags) for tags in columns[0]["values"]] == sorted(want)
    reduce = {
        "avg": lambda v: float(np.mean(v)),
        "min": lambda v: float(np.min(v)),
        "max": lambda v: float(np.max(v)),
        "sum": lambda v: float(np.sum(v)),
        "last": lambda v: float(v[-1]),
        "count": lambda v: float(len(v)),
    }[aggregator]
    expected = [reduce(want[key][~np.isnan(want[key])]) for key in sorted(want)]
    assert columns[1]["values"] == expected


def test_the_clock_bounds_timeseries_and_scalar_as_v1() -> None:
    """With a clock, raw points at or after now do not exist on v2 either: the answer over
    [START, END) at a bucket boundary ``now`` is the answer over [START, now) of a fake without
    a clock, a bucket holding now is the partial one v1 gives, and moving the clock changes the
    answer to the same body (the answer cache keys on it)."""
    now = START + 30 * 60
    clock = testing.FakeClock(now)
    payload = body({"a": "avg:a{*} by {host}", "b": "avg:b{*}"}, ["a / b * 100"])
    scalar_payload = body({"a": "avg:a{*} by {host}"}, kind="scalar", aggregator="sum")
    with testing.FakeDatadog(hosts=5, clock=clock) as server:
        times, got = timeseries(server, payload)
        _, _, scalar_answer = post(server, "/api/v2/query/scalar", scalar_payload)
        # A bucket holding now: v2 has what v1 has of it, and nothing after it.
        clock.advance(30)
        partial_times, partial = timeseries(server, payload)
        v1_a = server.answer("avg:a{*} by {host}.rollup(avg,60)", START, END - 1)
        v1_b = server.answer("avg:b{*}.rollup(avg,60)", START, END - 1)
        clock.set(END + 300)
        later_times, later = timeseries(server, payload)
    with testing.FakeDatadog(hosts=5) as unbounded:
        cut_times, cut = timeseries(
            unbounded, body(payload_queries(payload), ["a / b * 100"], end=now)
        )
        _, _, cut_scalar = post(
            unbounded,
            "/api/v2/query/scalar",
            body({"a": "avg:a{*} by {host}"}, kind="scalar", aggregator="sum", end=now),
        )
        full_times, full = timeseries(unbounded, payload)
    assert times == cut_times and times[-1] == now - G and len(times) == 30
    assert_sets(got[0], cut[0])
    assert scalar_answer == cut_scalar
    want = ref.scalar("*", ref.binary("/", g("a", ("host",)), g("b")), 100.0)
    assert_sets(got[0], on_times(want, times))
    assert partial_times == [*times, now]
    stamp = float(now * 1000)
    (b_series,) = v1_b["series"]
    v1_formula = {
        tuple(s["tag_set"]): dict(s["pointlist"])[stamp] / dict(b_series["pointlist"])[stamp] * 100
        for s in v1_a["series"]
    }
    assert sorted(partial[0]) == sorted(v1_formula) and len(v1_formula) == 5
    for key, values in partial[0].items():
        np.testing.assert_array_equal(values[:-1], got[0][key])
        assert values[-1] == v1_formula[key], key
    assert later_times == full_times and len(full_times) == 120 - 10
    assert_sets(later[0], full[0])
    # The bucket holding the clock was partial: later, whole, it differs.
    index = later_times.index(now)
    assert any(partial[0][key][-1] != later[0][key][index] for key in later[0])


def payload_queries(payload: dict[str, Any]) -> dict[str, str]:
    return {q["name"]: q["query"] for q in payload["data"]["attributes"]["queries"]}


def test_scalar_arithmetic_formula_on_each_query_reduced_with_its_own_aggregator(dd: Any) -> None:
    payload = body({"a": "avg:a{*} by {host}", "b": "avg:b{*}"}, kind="scalar",
                   formulas=["a / b * 100", "a / 0", "-b", "abs(a)"])
    payload["data"]["attributes"]["queries"][0]["aggregator"] = "max"
    payload["data"]["attributes"]["queries"][1]["aggregator"] = "min"
    status, _, answer = post(dd, "/api/v2/query/scalar", payload)
    assert status == 200, answer
    columns = answer["data"]["attributes"]["columns"]
    a, b = g("a", ("host",)), g("b")[()]
    hosts = sorted(a)
    assert [tuple(tags) for tags in columns[0]["values"]] == [(), *hosts]
    b_min = float(np.nanmin(b))
    ratio = {key: float(np.nanmax(a[key])) / b_min * 100 for key in hosts}
    assert [c["name"] for c in columns[1:]] == ["a / b * 100", "a / 0", "-b", "abs(a)"]
    assert columns[1]["values"] == [None, *[ratio[key] for key in hosts]]
    assert columns[2]["values"] == [None] * (len(hosts) + 1)  # x / 0 has no value
    assert columns[3]["values"] == [-b_min, *[None] * len(hosts)]
    # A formula with a function is computed on the buckets, reduced with its first query's.
    assert columns[4]["values"] == [None, *[float(np.nanmax(np.abs(a[key]))) for key in hosts]]


def test_scalar_l2norm_and_area(dd: Any) -> None:
    for aggregator in ("l2norm", "area"):
        payload = body({"a": "avg:a{*} by {host}"}, kind="scalar", aggregator=aggregator)
        status, _, answer = post(dd, "/api/v2/query/scalar", payload)
        assert status == 200, answer
        want = g("a", ("host",))
        filled = [want[key][~np.isnan(want[key])] for key in sorted(want)]
        expected = ([float(np.sqrt(np.sum(v * v))) for v in filled] if aggregator == "l2norm"
                    else [float(v.sum() * 60) for v in filled])
        assert answer["data"]["attributes"]["columns"][1]["values"] == expected
