"""``ddstream.scalar`` end to end: the C library's cut of a long range, FakeDatadog's
``POST /api/v2/query/scalar``, and a truth computed independently with numpy from the reference
data (``reference.py``): each query's hourly buckets reduced with its aggregator, formulas then
applied on those values (groups joined on equal tags, the ungrouped query applied to each).

Exactness needs the buckets under a piece to be the whole range's: the queries carry
``.rollup(avg, 3600)``, the granularity is 3600, and 40 days stay under the point cap in one
request. Sums and averages of pieces add floats in another order than one request does, so they
are compared to 1e-12 relative; min, max, count and last exactly.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, subprocess_env
from ddstream.testing import FakeDatadog
from ddstream.testing._faults import QueryTimeout, RetryAfter
from reference import expected_buckets

DAY = 86400
G = 3600
START = 1_793_491_200  # 2026-11-01T00:00:00Z: the range crosses daily and weekly blackouts
END = START + 40 * DAY
WEEK = 7 * DAY
PIECES = math.ceil((END - START) / WEEK)  # 6
A = "avg:v2py.used{*} by {host}.rollup(avg, 3600)"
B = "avg:v2py.total{*}.rollup(avg, 3600)"
HOSTS = ("host:h00", "host:h01", "host:h02")
SCALAR_PATH = "/api/v2/query/scalar"
EXACT = ("min", "max", "count", "last")
AGGREGATORS = ("avg", "sum", *EXACT)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def options(fake: FakeDatadog, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": fake.url,
        "queries": {"a": A}, "range_start": START, "range_end": END, "granularity": G,
        "max_retries": 0,
    }
    values.update(changes)
    return values


@functools.cache
def buckets(metric: str, by: tuple[str, ...] | None) -> dict[str, npt.NDArray[np.float64]]:
    got = expected_buckets(metric, None, by, "avg", "avg", START, END, G)
    return {",".join(key): values for key, (_, values) in got.items()}


def reduce(values: npt.NDArray[np.float64], aggregator: str) -> float:
    filled = values[~np.isnan(values)]
    if aggregator == "count":
        return float(filled.size)
    if aggregator == "l2norm":
        return float(np.sqrt(np.sum(filled * filled)))
    return float({"avg": np.mean, "sum": np.sum, "min": np.min, "max": np.max,
                  "last": lambda v: v[-1]}[aggregator](filled))


def truth_a(aggregator: str) -> dict[str, float]:
    return {tags: reduce(v, aggregator) for tags, v in buckets("v2py.used", ("host",)).items()}


def truth_b(aggregator: str) -> float:
    return reduce(buckets("v2py.total", None)[""], aggregator)


def check(table: dd.ScalarTable, want: dict[tuple[int, str], float], aggregators: tuple[str, ...]
          ) -> None:
    got = table.to_dict()
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if all(a in EXACT for a in aggregators):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-12), key


def scalar_requests(fake: FakeDatadog, before: int) -> int:
    return sum(1 for record in fake.requests[before:] if record.path == SCALAR_PATH)


@pytest.mark.parametrize("aggregator", AGGREGATORS)
def test_each_aggregator_split_equals_one_request_and_the_truth(
        fake: FakeDatadog, aggregator: str) -> None:
    before = len(fake.requests)
    split = dd.scalar(aggregator=aggregator, chunk_seconds=WEEK, **options(fake))
    assert scalar_requests(fake, before) == PIECES
    assert (split.chunks, split.requests, split.split_reason) == (PIECES, PIECES, None)
    before = len(fake.requests)
    whole = dd.scalar(aggregator=aggregator, chunk_seconds=END - START, **options(fake))
    assert scalar_requests(fake, before) == 1
    assert whole.chunks == 1 and whole.split_reason is not None
    assert "fits one request" in whole.split_reason
    want = {(0, tags): v for tags, v in truth_a(aggregator).items()}
    assert [t for _, t in want] == list(HOSTS)
    check(split, want, (aggregator,))
    check(whole, want, (aggregator,))
    assert split.group_tags.tolist() == list(HOSTS)
    assert split.formula.tolist() == [0, 0, 0] and split.formulas == (A,)


def test_avg_is_total_sum_over_total_count_not_a_mean_of_means(fake: FakeDatadog) -> None:
    # Weekly blackouts make pieces' counts differ: a mean of the pieces' means would be off.
    table = dd.scalar(aggregator="avg", chunk_seconds=WEEK, **options(fake))
    values = buckets("v2py.used", ("host",))["host:h00"]
    means = [np.nanmean(values[k * WEEK // G:(k + 1) * WEEK // G]) for k in range(PIECES)]
    got = table.to_dict()[(0, "host:h00")]
    assert got == pytest.approx(truth_a("avg")["host:h00"], rel=1e-12)
    assert abs(got - float(np.mean(means))) > 1e-9


@pytest.mark.parametrize("aggregator", ["avg", "sum", "max"])
def test_formulas_grouped_and_ungrouped_are_exact(fake: FakeDatadog, aggregator: str) -> None:
    formulas = ["a / b * 100", "-b + 2 * (b - 1)"]
    opts = options(fake, queries={"a": A, "b": B}, formulas=formulas)
    aggs = {"a": aggregator, "b": "min"}
    split = dd.scalar(aggregator=aggs, chunk_seconds=WEEK, **opts)
    whole = dd.scalar(aggregator=aggs, chunk_seconds=END - START, **opts)
    assert split.chunks == PIECES and whole.chunks == 1
    b = truth_b("min")
    want = {(0, tags): (v / b) * 100 for tags, v in truth_a(aggregator).items()}
    want[(1, "")] = -b + 2 * (b - 1)
    check(split, want, (aggregator, "min"))
    check(whole, want, (aggregator, "min"))
    assert split.formulas == tuple(formulas)
    assert split.formula_text.tolist() == [formulas[0]] * 3 + [formulas[1]]


def test_unsplittable_aggregator_is_one_request_and_says_why(fake: FakeDatadog) -> None:
    before = len(fake.requests)
    table = dd.scalar(aggregator="l2norm", chunk_seconds=WEEK, **options(fake))
    assert scalar_requests(fake, before) == 1
    assert (table.chunks, table.requests) == (1, 1)
    assert table.split_reason == "queries[0] (a): the aggregator l2norm cannot be split exactly"
    want = {(0, tags): v for tags, v in truth_a("l2norm").items()}
    check(table, want, ("sum",))


def test_formula_with_a_function_is_one_request(fake: FakeDatadog) -> None:
    before = len(fake.requests)
    table = dd.scalar(aggregator="max", chunk_seconds=WEEK,
                      **options(fake, queries={"a": A}, formulas=["abs(a) * 2"]))
    assert scalar_requests(fake, before) == 1
    assert table.split_reason == "formulas[0] uses the function abs"
    want = {(0, tags): v * 2 for tags, v in truth_a("max").items()}
    check(table, want, ("max",))


def test_query_timeout_splits_in_halves_with_the_same_answer(fake: FakeDatadog) -> None:
    # One piece asked (chunk_seconds is the range), timed out, then asked in two halves.
    fake.add_fault(QueryTimeout(path=SCALAR_PATH, status=504, times=1))
    before = len(fake.requests)
    table = dd.scalar(aggregator="max", chunk_seconds=END - START, **options(fake))
    assert scalar_requests(fake, before) == 3  # the whole range, then its halves
    assert (table.chunks, table.requests, table.split_reason) == (2, 3, None)
    check(table, {(0, tags): v for tags, v in truth_a("max").items()}, ("max",))


def test_query_timeout_of_an_unsplittable_scalar_is_a_clear_error(fake: FakeDatadog) -> None:
    fake.add_fault(QueryTimeout(path=SCALAR_PATH, status=504, times=1))
    with pytest.raises(dd.DDStreamError) as caught:
        dd.scalar(aggregator="l2norm", **options(fake))
    message = caught.value.message
    assert "Query timed out" in message
    assert "cannot be asked in pieces of time" in message and "l2norm" in message
    assert API_KEY not in message and APP_KEY not in message


def test_timeouts_down_to_one_granularity_are_a_clear_error(fake: FakeDatadog) -> None:
    fake.add_fault(QueryTimeout(path=SCALAR_PATH, status=504, times=None))
    try:
        before = len(fake.requests)
        with pytest.raises(dd.DDStreamError) as caught:
            dd.scalar(aggregator="sum", chunk_seconds=2 * G,
                      **options(fake, range_start=START, range_end=START + 2 * G))
    finally:
        fake.clear_faults()
    assert scalar_requests(fake, before) == 2  # the two hours, then the first hour alone
    message = caught.value.message
    assert f"scalar over [{START}, {START + G}) timed out" in message
    assert "one granularity (3600 s) long: it cannot be split further" in message


def test_429_is_retried(fake: FakeDatadog) -> None:
    fake.add_fault(RetryAfter(0, status=429, path=SCALAR_PATH, times=1))
    before = len(fake.requests)
    table = dd.scalar(aggregator="min", chunk_seconds=END - START,
                      **options(fake, max_retries=2, retry_backoff_ms=1))
    assert scalar_requests(fake, before) == 2
    assert table.requests == 1  # one request, sent twice
    check(table, {(0, tags): v for tags, v in truth_a("min").items()}, ("min",))


@pytest.mark.parametrize(("changes", "aggregator", "expected"), [
    ({"queries": {"a": A, "b": B}, "formulas": ["a / b"]}, {"a": "avg", "b": "p95"},
     "queries[1] (b): the scalar aggregator 'p95' is not one of"),
    ({}, {"z": "avg"}, "aggregator: 'z' is not a query name; the queries are named a"),
    ({"queries": {"a": A, "b": B}, "formulas": ["a / c"]}, "avg",
     "formulas[0]: at character 5: unknown query name 'c'"),
    ({"follow": True}, "avg", "follow: a scalar is one value over a bounded range"),
    ({"statistics": ["avg"]}, "avg", "statistics: a scalar has one value per group"),
])
def test_config_errors_point_at_the_item(fake: FakeDatadog, changes: dict[str, Any],
                                         aggregator: Any, expected: str) -> None:
    before = len(fake.requests)
    with pytest.raises(dd.ConfigError) as caught:
        dd.scalar(aggregator=aggregator, **options(fake, **changes))
    assert expected in caught.value.message
    assert API_KEY not in caught.value.message and APP_KEY not in caught.value.message
    assert len(fake.requests) == before  # refused before any request


def test_no_key_in_an_auth_error(fake: FakeDatadog) -> None:
    wrong = "wrongkey-0123456789abcdef-SECRET"
    with pytest.raises(dd.AuthError) as caught:
        dd.scalar(**options(fake, api_key=wrong))
    text = str(caught.value) + repr(caught.value)
    assert wrong not in text and wrong[:12] not in text and APP_KEY not in text


def test_table_as_pandas_arrow_and_repr(fake: FakeDatadog) -> None:
    table = dd.scalar(aggregator="max", chunk_seconds=WEEK,
                      **options(fake, queries={"a": A, "b": B}, formulas=["a / b * 100", "b"]))
    frame = table.to_pandas()
    assert list(frame.columns) == ["formula", "formula_text", "group_tags", "value"]
    assert frame["group_tags"].tolist() == [*HOSTS, ""]
    np.testing.assert_array_equal(frame["value"].to_numpy(), table.value)
    arrow = table.to_arrow()
    assert arrow.column_names == list(frame.columns)
    assert arrow.column("formula").to_pylist() == [0, 0, 0, 1]
    assert arrow.column("value").to_pylist() == table.value.tolist()
    text = repr(table)
    assert text.startswith(f"ScalarTable(4 rows, {PIECES} chunks)") and "host:h02" in text


def test_ungrouped_formula_without_data_is_one_nan_row(fake: FakeDatadog) -> None:
    table = dd.scalar(aggregator="avg", chunk_seconds=WEEK,
                      **options(fake, queries={"n": "avg:nodata.x{*}.rollup(avg, 3600)"}))
    assert table.group_tags.tolist() == [""] and math.isnan(float(table.value[0]))
    counted = dd.scalar(aggregator="count", chunk_seconds=WEEK,
                        **options(fake, queries={"n": "avg:nodata.x{*}.rollup(avg, 3600)"}))
    assert counted.group_tags.tolist() == [""]


def cli(fake: FakeDatadog, *args: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(fake)
    env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
    return subprocess.run([sys.executable, "-m", "ddstream", "scalar", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


CLI_RANGE = ("--from", str(START), "--to", str(END), "--granularity", str(G),
             "--chunk-seconds", str(WEEK))


def test_cli_writes_csv_and_json(fake: FakeDatadog, tmp_path: Path) -> None:
    out = tmp_path / "ratio.csv"
    done = cli(fake, "--formula", "a / b * 100", "--aggregator", "a=max", "--aggregator", "b=min",
               f"a={A}", f"b={B}", *CLI_RANGE, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert f"3 rows; {PIECES} chunks, {PIECES} requests" in done.stderr
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["formula", "formula_text", "group_tags", "value"]
    b = truth_b("min")
    want = {tags: (v / b) * 100 for tags, v in truth_a("max").items()}
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [("0", "a / b * 100", t) for t in HOSTS]
    for row in rows[1:]:
        assert float(row[3]) == want[row[2]]
    out_json = tmp_path / "one.json"
    done = cli(fake, "--aggregator", "l2norm", A, *CLI_RANGE, "-o", str(out_json), "-q")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    document = json.loads(out_json.read_text())
    assert document["chunks"] == 1 and "l2norm cannot be split" in document["split_reason"]
    got = {row["group_tags"]: row["value"] for row in document["rows"]}
    assert got == pytest.approx(truth_a("l2norm"), rel=1e-12)


def test_cli_bad_aggregator_is_a_usage_error(fake: FakeDatadog) -> None:
    done = cli(fake, "--aggregator", "p95", A, *CLI_RANGE)
    assert done.returncode == 2
    assert "queries[0] (q0): the scalar aggregator 'p95'" in done.stderr
    assert API_KEY not in done.stderr and APP_KEY not in done.stderr


def test_keywords_take_human_times(fake: FakeDatadog) -> None:
    opts = options(fake)
    del opts["range_start"], opts["range_end"]
    table = dd.scalar(aggregator="max", start="2026-11-01T00:00:00Z",
                      end="2026-12-11T00:00:00Z", chunk_seconds=WEEK, **opts)
    assert table.chunks == PIECES
    check(table, {(0, tags): v for tags, v in truth_a("max").items()}, ("max",))
    with pytest.raises(dd.ConfigError, match="range_start"):
        dd.scalar(start="the day before", **opts)
    with pytest.raises(TypeError, match="not both"):
        dd.scalar(dd.DDStreamConfig(**options(fake)), start="-1d")
