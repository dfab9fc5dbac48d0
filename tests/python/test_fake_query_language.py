"""The fake Datadog's query language, over real HTTP, against an independent reference.

Each shape of query the fake understands (arithmetic, functions, modifiers, distributions and
percentiles, many sub-queries per request) is asked of a running FakeDatadog and compared, bucket
by bucket and bit for bit, with ``reference_query`` — which composes the expected series from the
documented data contract without parsing anything. Then the errors: what is refused, with a
Datadog-style 400 that says where; URIs over the limit (414); ``Query timed out``; and the
request and sub-query counts the fake keeps.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import reference_query as ref
from test_fake_datadog import DAY, KEYS, MONDAY, get, query, testing

HOUR = 3600
START = MONDAY + 4 * HOUR  # 04:00-06:00 UTC: the daily 05:00-05:10 blackout is inside
END = START + 2 * HOUR
G = 60  # the interval of most cases


@pytest.fixture(scope="module")
def dd() -> Iterator[Any]:
    with testing.FakeDatadog(hosts=5, distribution_metrics={"req.latency", "nodata.dist"}) as f:
        yield f


def answer(server: Any, q: str, start: int = START, end: int = END) -> dict[int, ref.SeriesSet]:
    """The 200 answer to ``q`` over the buckets of ``[start, end)``, as ``{query_index: {tag
    tuple: values}}`` (every bucket present: the fake does not trim by default)."""
    status, body = query(server, q, start, end - 1)
    assert status == 200, body
    out: dict[int, ref.SeriesSet] = {}
    for series in body["series"]:
        values = np.array([math.nan if p[1] is None else p[1] for p in series["pointlist"]])
        stamps = [int(p[0]) // 1000 for p in series["pointlist"]]
        assert stamps == list(range(stamps[0], stamps[0] + len(stamps) * series["interval"],
                                    series["interval"]))  # fmt: skip
        key = tuple(series["tag_set"])
        assert key not in out.setdefault(series["query_index"], {}), "a series answered twice"
        out[series["query_index"]][key] = values
    return out


def assert_series(got: ref.SeriesSet, want: ref.SeriesSet) -> None:
    """Equal bit for bit (NaN for NaN); the fake answers no series that has no value."""
    want = {key: values for key, values in want.items() if not np.isnan(values).all()}
    assert sorted(got) == sorted(want)
    for key, values in want.items():
        np.testing.assert_array_equal(got[key], values, err_msg=f"series {key}")
    assert want, "a case whose expected answer is empty proves little"


def g(metric: str, space: str = "avg", method: str = "avg", by: tuple[str, ...] = (),
      filters: dict[str, str] | None = None, start: int = START, end: int = END,
      interval: int = G) -> ref.SeriesSet:  # fmt: skip
    return ref.gauge(metric, filters, by, space, method, start, end, interval, hosts=5)


def d(statistic: str, by: tuple[str, ...] = (), percentile: Fraction | None = None,
      metric: str = "req.latency", interval: int = G) -> ref.SeriesSet:  # fmt: skip
    return ref.distribution(metric, None, by, statistic, START, END, interval, percentile, hosts=5)


# -- arithmetic -------------------------------------------------------------------------------

ARITHMETIC: dict[str, Any] = {
    "avg:a{*}.rollup(avg,60) / avg:b{*}.rollup(avg,60) * 100": lambda: ref.scalar(
        "*", ref.binary("/", g("a"), g("b")), 100.0
    ),
    "(avg:a{*}.rollup(avg,60) + sum:b{env:prod}.rollup(max,60)) / 2": lambda: ref.scalar(
        "/", ref.binary("+", g("a"), g("b", "sum", "max", filters={"env": "prod"})), 2.0
    ),
    "-avg:a{*}.rollup(min,60)": lambda: ref.negate(g("a", "avg", "min")),
    "1000 - max:a{*}.rollup(60) * 2": lambda: ref.scalar(
        "-", ref.scalar("*", g("a", "max"), 2.0), 1000.0, number_first=True
    ),
    "avg:a{*}.rollup(max,60) - avg:a{*}.rollup(min,60)": lambda: ref.binary(
        "-", g("a", method="max"), g("a", method="min")
    ),
    # grouped with ungrouped: the ungrouped side applies to every group
    "avg:a{*} by {host}.rollup(avg,60) / avg:b{*}.rollup(avg,60)": lambda: ref.binary(
        "/", g("a", by=("host",)), g("b")
    ),
    # grouped with grouped: joined on tag sets
    "sum:a{*} by {env}.rollup(sum,60) - min:b{*} by {env}.rollup(avg,60)": lambda: ref.binary(
        "-", g("a", "sum", "sum", by=("env",)), g("b", "min", by=("env",))
    ),
    # division by a series with empty buckets (the blackout) and by zero
    "avg:a{*}.rollup(avg,60) / (avg:b{*}.rollup(avg,60) - avg:b{*}.rollup(avg,60))": lambda: (
        ref.binary("/", g("a"), ref.binary("-", g("b"), g("b")))
    ),
}


@pytest.mark.parametrize("q", list(ARITHMETIC))
def test_arithmetic(dd: Any, q: str) -> None:
    got = answer(dd, q)
    want = ARITHMETIC[q]()
    if "(avg:b{*}.rollup(avg,60) - avg:b{*}.rollup(avg,60))" in q:  # x / 0: all empty
        assert got == {}
        return
    assert_series(got[0], want)


def test_precedence_and_parentheses(dd: Any) -> None:
    """``a - b * 2`` is ``a - (b * 2)``; ``(a - b) * 2`` differs from it."""
    plain = answer(dd, "avg:a{*}.rollup(avg,60) - avg:b{*}.rollup(avg,60) * 2")[0]
    grouped = answer(dd, "(avg:a{*}.rollup(avg,60) - avg:b{*}.rollup(avg,60)) * 2")[0]
    assert_series(plain, ref.binary("-", g("a"), ref.scalar("*", g("b"), 2.0)))
    assert_series(grouped, ref.scalar("*", ref.binary("-", g("a"), g("b")), 2.0))


# -- modifiers --------------------------------------------------------------------------------


def test_as_count_sums_and_as_rate_averages_by_default(dd: Any) -> None:
    counted = answer(dd, "sum:a{*}.as_count().rollup(60)")[0]
    rated = answer(dd, "sum:a{*}.as_rate().rollup(60)")[0]
    explicit = answer(dd, "sum:a{*}.as_count().rollup(max,60)")[0]
    assert_series(counted, g("a", "sum", "sum"))
    assert_series(rated, g("a", "sum", "avg"))
    assert_series(explicit, g("a", "sum", "max"))


def test_automatic_interval_and_as_count(dd: Any) -> None:
    """No interval anywhere: the automatic one (2 h -> 60 s here, 1 h -> 20 s)."""
    got = answer(dd, "sum:a{*}.as_count()", START, START + HOUR)
    assert_series(got[0], g("a", "sum", "sum", end=START + HOUR, interval=20))


@pytest.mark.parametrize("method", ["zero", "last", "linear"])
@pytest.mark.parametrize("limit", [None, 10, 19, 20, 600])
def test_fill(dd: Any, method: str, limit: int | None) -> None:
    """One host at the raw interval has one-point gaps ((k + i) % 53 == 0): filled when the gap
    (20 s between the values around it) is within the limit; the 10-minute blackout never is."""
    suffix = f".fill({method})" if limit is None else f".fill({method}, {limit})"
    q = "avg:a{host:h01}.rollup(avg,10)" + suffix
    got = answer(dd, q)[0]
    plain = g("a", filters={"host": "h01"}, interval=10)
    want = ref.fill(plain, method, 300 if limit is None else limit, 10)
    assert_series(got, want)
    changed = not np.array_equal(want[()], plain[()], equal_nan=True)
    assert changed == (limit is None or limit >= 20)  # the gaps are 20 s wide
    assert np.isnan(got[()]).sum() >= 60  # the blackout stays empty


def test_fill_null_changes_nothing(dd: Any) -> None:
    got = answer(dd, "avg:a{host:h01}.rollup(avg,10).fill(null)")[0]
    assert_series(got, g("a", filters={"host": "h01"}, interval=10))


def test_modifier_binds_to_its_term(dd: Any) -> None:
    """``a + b.rollup(max, 60)``: only b is rolled up by max; a is averaged on the same grid."""
    got = answer(dd, "avg:a{*} + avg:b{*}.rollup(max,60)")[0]
    assert_series(got, ref.binary("+", g("a"), g("b", method="max")))


@pytest.mark.parametrize("method", ["avg", "sum", "min", "max", "count"])
def test_count_of_a_gauge_counts_reporting_hosts(dd: Any, method: str) -> None:
    """``count:`` on a gauge: hosts with a point at each raw timestamp, then the rollup (each
    host misses one point in 53, and nobody reports in the blackout)."""
    rollup = f".rollup({method},60)"
    got = answer(dd, f"count:a{{*}} by {{env}}{rollup},count:a{{*}}{rollup}")
    for index, by in ((0, ("env",)), (1, ())):
        assert_series(got[index], ref.gauge_count("a", None, by, method, START, END, G, hosts=5))


@pytest.mark.parametrize(
    ("q", "want"),
    [
        ("avg:a{!host:h01} by {host}.rollup(avg,60)",
         lambda: {k: v for k, v in g("a", by=("host",)).items() if k != ("host:h01",)}),
        ("avg:a{env:prod,!host:h00} by {host}.rollup(avg,60)",
         lambda: {k: v for k, v in g("a", by=("host",), filters={"env": "prod"}).items()
                  if k != ("host:h00",)}),
        ("sum:a{!env:prod}.rollup(max,60)",
         lambda: g("a", "sum", "max", filters={"env": "staging"})),
        ("avg:a{host:h0*} by {env}.rollup(avg,60)", lambda: g("a", by=("env",))),
        ("avg:a{host:*3}.rollup(avg,60)", lambda: g("a", filters={"host": "h03"})),
        ("avg:a{env:prod}.weighted().rollup(avg,60)", lambda: g("a", filters={"env": "prod"})),
        ("avg:a{rack:*} by {host}.rollup(avg,60)", lambda: {}),  # no host has a rack tag
        ("avg:a{!rack:*} by {env}.rollup(avg,60)", lambda: g("a", by=("env",))),
        # the keyword form
        ("avg:a{env:prod AND NOT host:h02} by {host}.rollup(avg,60)",
         lambda: {k: v for k, v in g("a", by=("host",), filters={"env": "prod"}).items()
                  if k != ("host:h02",)}),
        ("avg:a{host:h01 OR host:h03} by {host}.rollup(avg,60)",
         lambda: {k: v for k, v in g("a", by=("host",)).items()
                  if k in {("host:h01",), ("host:h03",)}}),
        ("avg:a{(host:h01 OR env:prod) and not host:h04} by {host}.rollup(avg,60)",
         lambda: {k: v for k, v in g("a", by=("host",)).items()
                  if k in {("host:h00",), ("host:h01",), ("host:h02",)}}),
        ("avg:a{host IN (h00, h01,h02) AND env NOT IN (staging)} by {host}.rollup(avg,60)",
         lambda: {k: v for k, v in g("a", by=("host",)).items()
                  if k in {("host:h00",), ("host:h02",)}}),
        ("avg:a{host:ünïcode}.rollup(avg,60)", lambda: {}),
    ],
)  # fmt: skip
def test_scopes(dd: Any, q: str, want: Any) -> None:
    expected = want()
    if not expected:  # nothing selected: no series
        assert answer(dd, q) == {}
        return
    assert_series(answer(dd, q)[0], expected)


# -- functions --------------------------------------------------------------------------------


def _cumsum(v: list[float]) -> list[float]:
    total, out = 0.0, []
    for x in v:
        if math.isnan(x):
            out.append(math.nan)
        else:
            total += x
            out.append(total)
    return out


def _diff(v: list[float]) -> list[float]:
    return [math.nan] + [b - a for a, b in zip(v, v[1:])]


def _log(base: float) -> Any:
    return lambda v: [math.log2(x) if base == 2 and x > 0 else math.log10(x) if x > 0 else math.nan
                      for x in v]  # fmt: skip


FUNCTIONS: dict[str, Any] = {
    "abs": lambda v: [abs(x) for x in v],
    "log2": _log(2),
    "log10": _log(10),
    "cumsum": _cumsum,
    "per_second": lambda v: [x / 60 for x in v],
    "per_minute": lambda v: [x * 60 / 60 for x in v],
    "per_hour": lambda v: [x * 3600 / 60 for x in v],
    "diff": _diff,
    "derivative": lambda v: [x / 60 for x in _diff(v)],
    "monotonic_diff": lambda v: [x if x >= 0 else math.nan for x in _diff(v)],
    "default_zero": lambda v: [0.0 if math.isnan(x) else x for x in v],
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function(dd: Any, name: str) -> None:
    # a - 950: negative values for abs, a zero crossing for the logs (a is 907 + 0..48 + 10 i)
    q = f"{name}(sum:a{{*}} by {{host}}.rollup(avg,60) - 950)"
    inner = ref.scalar("-", g("a", "sum", by=("host",)), 950.0)
    assert_series(answer(dd, q)[0], ref.apply(inner, FUNCTIONS[name]))


@pytest.mark.parametrize("name", ["count_not_null", "count_nonzero"])
def test_counting_functions(dd: Any, name: str) -> None:
    """One series: per bucket, the series with a value (not zero: ``min(a) - 950`` is 0 in some
    buckets, a's raw values being 907 + k % 97 / 2 + 10 i)."""
    inner = ref.scalar("-", g("a", method="min", by=("host",)), 950.0)
    got = answer(dd, f"{name}(avg:a{{*}} by {{host}}.rollup(min,60) - 950)")[0]
    want = ref.across(inner, nonzero=name == "count_nonzero")
    assert_series(got, want)
    if name == "count_nonzero":
        assert not np.array_equal(want[()], ref.across(inner, nonzero=False)[()], equal_nan=True)


def test_exclude_null(dd: Any) -> None:
    """Hosts have no ``rack`` tag: grouped by it they are ``rack:N/A``, which exclude_null drops."""
    assert answer(dd, "exclude_null(avg:a{*} by {rack}.rollup(avg,60))") == {}
    assert_series(answer(dd, "exclude_null(avg:a{*} by {host}.rollup(avg,60))")[0],
                  g("a", by=("host",)))  # fmt: skip
    assert_series(answer(dd, "avg:a{*} by {rack}.rollup(avg,60)")[0],
                  {("rack:N/A",): g("a")[()]})  # fmt: skip


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("clamp_min", lambda v: [max(x, 950.0) if not math.isnan(x) else x for x in v]),
        ("clamp_max", lambda v: [min(x, 950.0) if not math.isnan(x) else x for x in v]),
        ("cutoff_min", lambda v: [math.nan if x < 950.0 else x for x in v]),
        ("cutoff_max", lambda v: [math.nan if x > 950.0 else x for x in v]),
    ],
)
def test_bounding_functions(dd: Any, name: str, fn: Any) -> None:
    q = f"{name}(avg:a{{*}} by {{host}}.rollup(avg,60), 950)"
    assert_series(answer(dd, q)[0], ref.apply(g("a", by=("host",)), fn))


@pytest.mark.parametrize(
    ("q", "shift"),
    [
        ("timeshift(avg:a{*} by {host}.rollup(max,60), -3600)", -HOUR),
        ("timeshift(avg:a{*}.rollup(max,60), 600)", 600),
        ("day_before(avg:a{*}.rollup(max,60))", -DAY),
        ("week_before(avg:a{*}.rollup(max,60))", -7 * DAY),
        ("hour_before(avg:a{*}.rollup(max,60))", -HOUR),
    ],
)
def test_timeshift(dd: Any, q: str, shift: int) -> None:
    """Each bucket gets the value ``shift`` seconds away (a week back is a Monday blackout-free
    early morning... and a Sunday afternoon blackout is elsewhere)."""
    by = ("host",) if "by {host}" in q else ()
    shifted = g("a", method="max", by=by, start=START + shift, end=END + shift)
    got = answer(dd, q)[0]
    assert_series(got, shifted)


@pytest.mark.parametrize(
    "q",
    [
        "top(avg:a{*} by {host}.rollup(avg,60), 2, 'mean', 'desc')",
        "top(avg:a{*} by {host}.rollup(avg,60), 3, 'max', 'asc')",
        "top(sum:a{*} by {host}.rollup(avg,60) * -1, 2, 'last', 'desc')",
        "top(avg:a{*} by {host}.rollup(avg,60), 1, 'area', 'asc')",
        "top(avg:a{*} by {host}.rollup(avg,60), 4, 'l2norm', 'desc')",
        "top5_min(avg:a{*} by {host}.rollup(avg,60))",
        "bottom10_max(avg:a{*} by {env}.rollup(avg,60))",
        "top(avg:a{*} by {host}.rollup(avg,60))",
    ],
)
def test_top(dd: Any, q: str) -> None:
    by = ("env",) if "by {env}" in q else ("host",)
    series = g("a", by=by)
    if "* -1" in q:
        series = ref.scalar("*", g("a", "sum", by=by), -1.0)
    if q.startswith("top5_min"):
        limit, ranking, direction = 5, "min", "desc"
    elif q.startswith("bottom10_max"):
        limit, ranking, direction = 10, "max", "asc"
    elif q == "top(avg:a{*} by {host}.rollup(avg,60))":
        limit, ranking, direction = 10, "mean", "desc"
    else:
        args = q.rsplit(".rollup(avg,60)", 1)[1].strip(" ,)").split(",")
        limit, ranking, direction = int(args[-3]), args[-2].strip(" '"), args[-1].strip(" '")
    want = ref.top(series, limit, ranking, direction, G)
    got = answer(dd, q)[0]
    assert_series(got, want)
    assert len(got) == min(limit, len(series))


# -- distributions and percentiles ------------------------------------------------------------


@pytest.mark.parametrize("space", ["avg", "sum", "min", "max", "count"])
def test_distribution_space_aggregators(dd: Any, space: str) -> None:
    got = answer(dd, f"{space}:req.latency{{*}} by {{env}}.rollup(60)")[0]
    assert_series(got, d(space, ("env",)))


@pytest.mark.parametrize("p", ["p0", "p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99", "p100"])
def test_percentiles(dd: Any, p: str) -> None:
    got = answer(dd, f"{p}:req.latency{{*}}.rollup(60)")[0]
    assert_series(got, d("percentile", percentile=Fraction(p[1:])))


@pytest.mark.parametrize("method", ["min", "max", "sum", "avg", "count"])
def test_distribution_rollup_method_has_no_effect(dd: Any, method: str) -> None:
    """As on Datadog: ``.rollup(min, 60)`` on a distribution answers the avg (no rollup method),
    and the same for every method — the numbers of ``avg:…rollup(60)`` every time."""
    got = answer(dd, f"avg:req.latency{{*}}.rollup({method},60)")[0]
    assert_series(got, d("avg"))
    assert_series(answer(dd, f"p99:req.latency{{*}} by {{host}}.rollup({method},60)")[0],
                  d("percentile", ("host",), Fraction(99)))  # fmt: skip


def test_distribution_in_arithmetic(dd: Any) -> None:
    got = answer(dd, "p99:req.latency{*}.rollup(60) / avg:req.latency{*}.rollup(60)")[0]
    assert_series(got, ref.binary("/", d("percentile", percentile=Fraction(99)), d("avg")))


def test_distribution_without_data(dd: Any) -> None:
    assert answer(dd, "p99:nodata.dist{*}.rollup(60),avg:nodata.dist{*}.rollup(60)") == {}


@pytest.mark.parametrize("q", ["p99:a{*}", "p50:a{*} + avg:b{*}", "p90:a{*}.rollup(avg,60)"])
def test_percentile_of_a_gauge_is_refused(dd: Any, q: str) -> None:
    status, body = query(dd, q, START, END)
    assert status == 400
    (message,) = body["errors"]
    assert message.startswith("Error parsing query: ")
    assert "distribution" in message and "'a'" in message


# -- many sub-queries per request -------------------------------------------------------------


def test_many_subqueries_in_one_request(dd: Any) -> None:
    """35 sub-queries of mixed shapes in one request: each series comes back under its own
    ``query_index`` with the right values; the fake counts 35 sub-queries for it."""
    shapes: list[tuple[str, ref.SeriesSet]] = []
    for n in range(7):
        metric = f"m{n}"
        shapes += [
            (f"avg:{metric}{{*}}.rollup(avg,60)", g(metric)),
            (f"max:{metric}{{*}} by {{host}}.rollup(min,60)", g(metric, "max", "min", ("host",))),
            (f"per_second(sum:{metric}{{*}}.as_count().rollup(60))",
             ref.apply(g(metric, "sum", "sum"), lambda v: [x / 60 for x in v])),
            (f"avg:{metric}{{*}}.rollup(avg,60) * 2 + 1",
             ref.scalar("+", ref.scalar("*", g(metric), 2.0), 1.0)),
            (f"p90:req.latency{{env:prod}}.rollup(60) - {n}",
             ref.scalar("-", ref.distribution("req.latency", {"env": "prod"}, None, "percentile",
                                              START, END, G, Fraction(90), hosts=5), float(n))),
        ]  # fmt: skip
    assert len(shapes) == 35
    dd.clear_log()
    got = answer(dd, ",".join(q for q, _ in shapes))
    assert sorted(got) == list(range(35))
    for index, (_, want) in enumerate(shapes):
        assert_series(got[index], want)
    assert dd.subqueries_per_request == [35]
    counts = dd.request_counts()
    assert counts["requests"] == 1 and counts["subqueries"] == 35
    assert counts["max_subqueries"] == 35
    assert counts["max_uri_bytes"] == dd.query_requests[0].uri_bytes > 35 * 30


def test_answer_fields_of_an_expression(dd: Any) -> None:
    _, body = query(dd, "avg:a{*} by {host}.rollup(avg,60) / 2,sum:b{*}", START, END - 1)
    first = [s for s in body["series"] if s["query_index"] == 0]
    assert {tuple(s["tag_set"]) for s in first} == {(f"host:h0{i}",) for i in range(5)}
    for series in first:
        assert series["interval"] == 60
        assert series["expression"] == "avg:a{*} by {host}.rollup(avg,60) / 2"
        assert series["scope"] == series["tag_set"][0]
        assert series["length"] == len(series["pointlist"]) == 120
    assert body["group_by"] == ["host"]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("avg:a{*} +", "character 11"),
        ("avg:a{*} * (avg:b{*}", "missing ')'"),
        ("abs(avg:a{*}, 2)", "abs() takes 1 arguments"),
        ("timeshift(avg:a{*})", "timeshift() takes 2 arguments"),
        ("timeshift(avg:a{*}, 'x')", "must be a number"),
        ("top(avg:a{*}, 5, 'median')", "unknown ranking 'median'"),
        ("top(avg:a{*}, 5, 'mean', 'up')", "unknown direction 'up'"),
        ("top(avg:a{*}, 0)", "1 to 1000"),
        ("frobnicate(avg:a{*})", "unknown function 'frobnicate' at character 1"),
        ("abs(2)", "must be a metric query"),
        ("1 + 2", "has no metric"),
        ("avg:a{*}.as_count().as_rate()", "repeated or contradicted"),
        ("avg:a{*}.rollup(avg).rollup(max)", "repeated or contradicted"),
        ("avg:a{*}.fill(cubic)", "unknown fill method 'cubic'"),
        ("avg:a{*}.fill(zero, 601)", "out of range"),
        ("avg:a{*}.as_count(1)", "takes no arguments"),
        ("avg:a{*}.rollp(avg)", "unknown modifier '.rollp'"),
        ("(avg:a{*} + avg:b{*}).rollup(max)", "must follow a metric term"),
        ("abs(avg:a{*}).rollup(max)", "must follow a metric term"),
        ("p100.5:req.latency{*}", "unknown space aggregator 'p100.5'"),
        ("avg:a{*} avg:b{*}", "unexpected text after the end of the expression at character 10"),
        ("avg:a{*}\n", "control character"),
        ("avg:a{env:prod AND (host:h01}", "unbalanced '}' at character 29"),
        ("avg:a{env:prod AND}", "expected a tag filter"),
        ("avg:a{host IN h01}", "expected '(' after IN"),
        ("avg:a{host NOT h01}", "expected key:value or 'key IN (…)'"),
        ("avg:a{env:prod OR $x}", "unexpected '$x'"),
        ("avg:a{*}, , avg:b{*}", "sub-query 1 is empty"),
    ],
)
def test_parse_errors_say_what_and_where(dd: Any, bad: str, needle: str) -> None:
    status, body = query(dd, bad, START, END)
    assert status == 400
    (message,) = body["errors"]
    assert message.startswith("Error parsing query: ")
    assert needle in message, message


def test_uri_limit_answers_414(dd: Any) -> None:
    q = ",".join(f"avg:metric.{n:03d}{{*}}.rollup(avg,60)" for n in range(40))
    dd.clear_log()
    dd.max_uri_bytes = 1000
    try:
        status, _, body = get(dd, "/api/v1/query", {"from": START, "to": END - 1, "query": q})
        assert status == 414
        assert json.loads(body) == {"errors": ["Request-URI Too Long"]}
        small = ",".join(testing.split_top_level(q)[:5])
        status, _, _ = get(dd, "/api/v1/query", {"from": START, "to": END - 1, "query": small})
        assert status == 200
    finally:
        dd.max_uri_bytes = None
    over, under = dd.query_requests
    assert over.uri_bytes > 1000 >= under.uri_bytes
    assert (over.subqueries, under.subqueries) == (40, 5)


def test_query_timeout_over_a_subquery_count(dd: Any) -> None:
    """``QueryTimeout(max_subqueries=N)``: requests with more than N sub-queries get Datadog's
    200 ``"status": "error"`` answer, the others their real answer, for ever."""
    fault = dd.add_fault(testing.QueryTimeout(max_subqueries=3))
    try:
        for count, timed_out in [(4, True), (3, False), (10, True), (1, False), (4, True)]:
            q = ",".join(f"avg:a{n}{{*}}.rollup(avg,60)" for n in range(count))
            status, body = query(dd, q, START, END - 1)
            assert status == 200
            if timed_out:
                assert body["status"] == "error" and body["error"] == "Query timed out"
                assert body["series"] == []
            else:
                assert body["status"] == "ok"
                assert sorted({s["query_index"] for s in body["series"]}) == list(range(count))
        assert fault.served == 3
    finally:
        dd.clear_faults()


@pytest.mark.parametrize("status", [200, 500, 504])
def test_query_timeout_for_the_next_requests(dd: Any, status: int) -> None:
    dd.add_fault(testing.QueryTimeout(status=status, times=2))
    try:
        bodies = [query(dd, "avg:a{*}.rollup(avg,60)", START, END - 1) for _ in range(3)]
    finally:
        dd.clear_faults()
    for got_status, body in bodies[:2]:
        assert got_status == status
        if status == 200:
            assert (body["status"], body["error"]) == ("error", "Query timed out")
        else:
            assert body == {"errors": ["Query timed out"]}
    assert bodies[2][0] == 200 and bodies[2][1]["status"] == "ok"


def test_query_timeout_over_a_span(dd: Any) -> None:
    """``min_seconds``: one sub-query over a long enough range times out as well."""
    dd.add_fault(testing.QueryTimeout(max_subqueries=2, min_seconds=HOUR, status=504))
    try:
        q = "avg:a{*}.rollup(avg,60)"
        long_status, long_body = query(dd, q, START, START + HOUR - 1)
        short_status, short_body = query(dd, q, START, START + HOUR - 2)
        many_status, _ = query(dd, ",".join([q] * 3), START, START + 60)
    finally:
        dd.clear_faults()
    assert (long_status, long_body) == (504, {"errors": ["Query timed out"]})
    assert short_status == 200 and short_body["status"] == "ok"
    assert many_status == 504


def test_query_timeout_arguments() -> None:
    with pytest.raises(ValueError, match="max_subqueries"):
        testing.QueryTimeout(max_subqueries=-1)
    with pytest.raises(ValueError, match="min_seconds"):
        testing.QueryTimeout(min_seconds=60)
    assert testing.QueryTimeout().remaining == 1
    assert testing.QueryTimeout(max_subqueries=35).remaining is None
    assert testing.count_subqueries("avg:a{x:1,y:2} by {a,b},top(b{*}, 5, 'mean', 'desc')") == 2


def test_command_line_options() -> None:
    """``python -m ddstream.testing --distribution M --max-uri-bytes N --timeout-over K``."""
    if testing.__name__ != "ddstream.testing":
        pytest.skip("the ddstream package does not import here (library not built)")
    argv = ["--port", "0", "--distribution", "req.latency", "--max-uri-bytes", "400",
            "--timeout-over", "2"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "ddstream.testing", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()

        def ask(q: str) -> tuple[int, Any]:
            params = urllib.parse.urlencode({"from": START, "to": START + 599, "query": q})
            request = urllib.request.Request(f"{url}/api/v1/query?{params}", headers=KEYS)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, json.loads(error.read())

        status, body = ask("p99:req.latency{*}.rollup(60),avg:a{*}")
        assert status == 200 and {s["query_index"] for s in body["series"]} == {0, 1}
        status, body = ask("avg:a{*},avg:b{*},avg:c{*}")
        assert (status, body["error"]) == (200, "Query timed out")
        status, body = ask("avg:" + "x" * 400 + "{*}")
        assert (status, body) == (414, {"errors": ["Request-URI Too Long"]})
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]


def test_random_queries_parse_or_say_why() -> None:
    """Seeded token soup, and real queries cut or spliced at random: every one is answered or
    refused with a QueryError, never another exception (a 500 from the server)."""
    import random

    fake = testing.FakeDatadog(hosts=2, distribution_metrics={"d"})
    tokens = ["avg", "sum", "min", "max", "count", "p99", "p99.9", ":", "a", "d", "m.x", "{", "}",
              "*", "host:h01", "!env:prod", "host:h*", ",", " by ", "(", ")", "+", "-", "*", "/",
              "2", "0", "1.5e3", ".rollup(", ".as_count()", ".fill(", "linear", "60", "'mean'",
              "'desc'", "abs", "top", "timeshift", "per_second", "top5_max", "default_zero", "."]
    seeds = ["avg:a{*} by {host}.rollup(max,60) / sum:d{env:prod}.rollup(60) * 100",
             "top(p99:d{*} by {host}.rollup(60), 5, 'max', 'asc'),abs(-avg:a{*}.fill(zero, 60))",
             "timeshift(cumsum(count:a{!host:h00}.as_count()), -3600) - 1"]  # fmt: skip
    rng = random.Random(14)
    answered = refused = 0
    messages: list[str] = []
    for case in range(3000):
        if case % 2:
            q = "".join(rng.choice(tokens) for _ in range(rng.randint(1, 14)))
        else:
            seed = rng.choice(seeds)
            cut = sorted(rng.sample(range(len(seed) + 1), 2))
            q = seed[: cut[0]] + rng.choice(tokens) + seed[cut[1] :]
        try:
            fake.answer(q, START, START + 1800)
        except testing.QueryError as error:
            messages.append(str(error))
            refused += 1
        else:
            answered += 1
    assert answered >= 20 and refused >= 2000, (answered, refused)  # both kinds were tried
    assert all(message.startswith("Error parsing query: ") for message in messages)
