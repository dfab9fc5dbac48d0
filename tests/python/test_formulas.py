"""Formulas over named queries (Datadog's v2 endpoint) from Python, end to end through the C
library and FakeDatadog's ``POST /api/v2/query/timeseries``.

Every cell is compared with a truth computed independently of the server: the per-query values
of ``reference.py`` combined with numpy (``a / b * 100`` is ``(a / b) * 100``, a NaN operand
gives NaN), so the buckets the fake leaves out of its answer (the daily 05:00-05:10 blackout,
where no host reports) must come back as NaN rows. Also: two formulas in one stream, grouped
formulas, the config errors (pointing at the character), resume tokens, Arrow through pyarrow,
and the ``ddstream query --formula`` command in a subprocess.
"""

from __future__ import annotations

import csv
import functools
import gc
import json
import math
import os
import pickle
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY
from ddstream.testing import FakeDatadog
from reference import bucket_starts, expected_buckets

DAY = 86400
G = 60
# 2026-11-01T00:00:00Z, a Sunday: the ranges below cross daily (and weekly) blackouts.
START = 1_793_491_200
END = START + 3 * DAY
LONG_END = START + 30 * DAY  # the long stream's; every truth is computed over it
A = "avg:v2py.used{*} by {host}"
B = "avg:v2py.total{*}"
C = "max:v2py.load{*} by {host}"
HOSTS = ("host:h00", "host:h01", "host:h02")

Truth = dict[str, npt.NDArray[np.float64]]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def config(fake: FakeDatadog, **changes: Any) -> dd.DDStreamConfig:
    values: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": fake.url,
        "queries": {"a": A, "b": B}, "formulas": ["a / b * 100"],
        "range_start": START, "range_end": END, "granularity": G, "max_retries": 0,
    }
    values.update(changes)
    return dd.DDStreamConfig(**values)


@functools.cache
def per_query(space: str, metric: str, by: tuple[str, ...] | None) -> Truth:
    """The reference's values of one query over [START, LONG_END), by series tags ("" alone)."""
    got = expected_buckets(metric, None, by, space, "avg", START, LONG_END, G)
    return {",".join(key): values for key, (_, values) in got.items()}


@functools.cache
def truths() -> dict[str, Truth]:
    """The expected series of each formula used below."""
    a = per_query("avg", "v2py.used", ("host",))
    b = per_query("avg", "v2py.total", None)[""]
    c = per_query("max", "v2py.load", ("host",))
    return {
        "a / b * 100": {tags: (a[tags] / b) * 100 for tags in a},
        "b": {"": b},
        "a - c": {tags: a[tags] - c[tags] for tags in a},
    }


def check_exact(batches: list[dd.Batch], formulas: list[str], end: int = END) -> int:
    """Every row of ``batches`` against the truth; returns the rows compared. The batches must
    cover every bucket of [START, end) for every expected series (dense, no row twice)."""
    expected = truths()
    grid = bucket_starts(START, end, G)
    seen = {(f, tags): np.zeros(len(grid), dtype=np.int64)
            for f in formulas for tags in expected[f]}
    rows = 0
    for batch in batches:
        assert "avg" in batch and np.isnan(batch["avg"]).all() and np.isnan(batch["sum"]).all()
        assert batch["interval"] == G
        query, series, times = batch["query"], batch["series"], batch["timestamps"]
        for s, tags in enumerate(batch["series_tags"]):
            f = int(batch["series_query"][s])
            mask = series == s
            assert (query[mask] == f).all()
            slots = (times[mask] - grid[0]) // G
            want = expected[formulas[f]][tags][slots]
            np.testing.assert_array_equal(batch["value"][mask], want,
                                          err_msg=f"{formulas[f]} {tags!r}")
            seen[(formulas[f], tags)][slots] += 1
            rows += int(mask.sum())
        assert rows <= sum(len(grid) * len(expected[f]) for f in formulas)
    for key, count in seen.items():
        assert (count == 1).all(), f"{key}: buckets missing or repeated"
    return rows


def test_formula_over_30_days_is_exact_with_gaps_as_nan(fake: FakeDatadog) -> None:
    before = len(fake.requests)
    with dd.DDStream(config(fake, range_end=LONG_END)) as stream:
        assert stream.queries == ("a / b * 100",)
        batches = list(stream.batches())
    assert len(batches) > 1  # several chunks: the plan keeps each under the point cap
    paths = [record.path for record in fake.requests[before:]]
    assert paths == ["/api/v2/query/timeseries"] * len(batches)  # one POST a chunk, no v1
    rows = check_exact(batches, ["a / b * 100"], LONG_END)
    for batch in batches:
        # The four statistics share one column in C: read-only, so a write cannot leak across.
        assert not any(batch[k].flags.writeable for k in ("avg", "min", "max", "sum"))
        assert batch["value"].flags.writeable
    assert rows == 30 * 3 * DAY // G
    values = np.concatenate([b["value"] for b in batches])
    # The blackouts (left out of the fake's answer) are NaN rows; most buckets have a value.
    blackout = np.concatenate([(b["timestamps"] % DAY >= 5 * 3600)
                               & (b["timestamps"] % DAY < 5 * 3600 + 600) for b in batches])
    assert blackout.sum() == 30 * 3 * 10 and np.isnan(values[blackout]).all()
    assert np.isfinite(values).sum() > 0.9 * len(values)


def test_a_statistic_alone_keeps_its_batch_alive_after_close(fake: FakeDatadog) -> None:
    # A v2 batch's min, max and sum are views of its avg (one C column): each must still own
    # the C batch on its own, after the dict, the other columns and the stream are gone.
    with dd.DDStream(config(fake)) as stream:
        batch = stream.next_batch()
    assert batch is not None
    n = len(batch["timestamps"])
    views = [batch[k] for k in ("avg", "min", "max", "sum")]
    assert len({id(v) for v in views}) == 4  # four arrays, as before, over one memory
    assert all(np.shares_memory(views[0], v) for v in views[1:])
    column = views[3]
    owner = column
    while not hasattr(owner, "_owner"):  # array -> array -> the C batch's interface object
        owner = owner.base
    box = weakref.ref(owner._owner)
    del batch, views, owner
    gc.collect()
    assert box() is not None
    assert column.shape == (n,) and np.isnan(column).all()
    with pytest.raises(ValueError, match="read-only"):
        column[0] = 1.0
    del column
    gc.collect()
    assert box() is None  # the last view gone, the batch is freed


def test_two_formulas_and_a_grouped_one(fake: FakeDatadog) -> None:
    formulas = ["a / b * 100", "b", "a - c"]
    cfg = config(fake, queries={"a": A, "b": B, "c": C}, formulas=formulas, chunk_seconds=DAY)
    with dd.DDStream(cfg) as stream:
        assert stream.queries == tuple(formulas)
        batches = list(stream.batches())
    assert len(batches) == 3
    first = batches[0]
    # Rows by formula, then tags, then time; a grouped formula's series per host.
    assert first["series_tags"] == [*HOSTS, "", *HOSTS]
    assert first["series_query"].tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert (np.diff(first["query"]) >= 0).all()
    assert check_exact(batches, formulas) == 3 * 7 * DAY // G


def test_api_v2_without_formulas_each_query_is_its_own(fake: FakeDatadog) -> None:
    cfg = config(fake, queries=[B], formulas=None, api="v2", range_end=START + DAY)
    with dd.DDStream(cfg) as stream:
        assert stream.queries == (B,)
        batch = next(stream.batches())
    want = per_query("avg", "v2py.total", None)[""][: DAY // G]
    np.testing.assert_array_equal(batch["value"], want)
    assert batch["query"].tolist() == [0] * (DAY // G)


def test_config_errors_point_at_the_character(fake: FakeDatadog) -> None:
    before = len(fake.requests)
    with pytest.raises(dd.ConfigError) as info:
        dd.DDStream(config(fake, formulas=["a / c"]))
    assert "formulas[0]: at character 5: unknown query name 'c'" in str(info.value)
    assert str(info.value).endswith("\n  a / c\n      ^")  # the caret under the 'c'
    with pytest.raises(dd.ConfigError, match=r"queries\[0\] \(a\): at character 1:"):
        dd.DDStream(config(fake, queries={"a": "per_second(avg:m{*})", "b": B}))
    with pytest.raises(dd.ConfigError, match="formulas need the v2 endpoint"):
        dd.DDStream(config(fake, api="v1"))
    with pytest.raises(dd.ConfigError, match="statistics do not apply to v2"):
        dd.DDStream(config(fake, statistics=["avg"]))
    with pytest.raises(dd.ConfigError, match="query_names are for formulas"):
        dd.DDStream(config(fake, formulas=None))  # named queries, but v1
    with pytest.raises(dd.ConfigError, match="api: unknown value 'v3'"):
        dd.DDStream(config(fake, api="v3"))
    with pytest.raises(dd.ConfigError, match="formulas: the list is empty"):
        dd.DDStream(config(fake, formulas=[]))
    with pytest.raises(TypeError, match="formulas must be a list"):
        dd.DDStream(config(fake, formulas="a / b"))
    with pytest.raises(TypeError, match=r"queries\['b'\] must be a str"):
        dd.DDStream(config(fake, queries={"a": A, "b": 3}))
    assert len(fake.requests) == before  # all refused before any request


def test_config_fields_compare_copy_and_pickle() -> None:
    cfg = dd.DDStreamConfig(queries={"a": A, "b": B}, formulas=("a / b * 100",), api="v2")
    assert cfg == dd.DDStreamConfig(queries={"a": A, "b": B}, formulas=["a / b * 100"], api="v2")
    assert cfg != cfg.copy(queries={"b": B, "a": A})  # the order is the names' order
    assert cfg != cfg.copy(queries=[A, B])
    assert cfg != cfg.copy(api="auto")
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    text = repr(cfg)
    assert "formulas=('a / b * 100',)" in text and "api='v2'" in text and "'a': " in text
    native = cfg.to_native()
    assert native.ptr.api == 2 and native.ptr.formula_count == 1 and native.ptr.query_count == 2
    assert dd.DDStreamConfig().to_native().ptr.api == 0
    assert dd.DDStreamConfig(query=B, api="v1").to_native().ptr.api == 1


def test_resume_token_continues_the_formula_stream(fake: FakeDatadog) -> None:
    cfg = config(fake, chunk_seconds=DAY // 2)
    with dd.DDStream(cfg) as stream:
        it = stream.batches()
        first = [next(it), next(it)]
        token = stream.resume_token()
        rest = list(it)
    with dd.DDStream(cfg, resume=token) as resumed:
        again = list(resumed.batches())
    assert [b["chunk_index"] for b in again] == [b["chunk_index"] for b in rest] == [2, 3, 4, 5]
    for x, y in zip(again, rest):
        np.testing.assert_array_equal(x["value"], y["value"])
    assert check_exact(first + again, ["a / b * 100"]) == 3 * 3 * DAY // G
    with pytest.raises(dd.ConfigError):  # the token binds the formulas
        dd.DDStream(cfg.copy(formulas=["a * 2 / b"]), resume=token)


def test_arrow_carries_the_formulas_in_the_query_dictionary(fake: FakeDatadog) -> None:
    pa = pytest.importorskip("pyarrow")
    formulas = ["a / b * 100", "b"]
    cfg = config(fake, formulas=formulas, range_end=START + DAY)
    with dd.DDStream(cfg) as stream:
        dicts = list(stream.batches())
    with dd.DDStream(cfg) as stream:
        table = stream.to_arrow().read_all()
    assert isinstance(table, pa.Table)
    assert {"timestamp", "query", "series", "value"} <= set(table.column_names)
    query = table.column("query").combine_chunks()
    assert pa.types.is_dictionary(query.type)
    assert query.dictionary.to_pylist() == formulas
    assert query.indices.to_numpy().tolist() == np.concatenate(
        [b["query"] for b in dicts]).tolist()
    value = table.column("value").to_numpy(zero_copy_only=False)
    want = np.concatenate([b["value"] for b in dicts])
    # Arrow's nulls are the dict batches' NaN.
    np.testing.assert_array_equal(np.where(np.isnan(want), np.nan, want),
                                  np.asarray(value, dtype=np.float64))
    assert table.column("value").null_count == int(np.isnan(want).sum())


def cli(fake: FakeDatadog, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "DDSTREAM_BASE_URL")}
    env.update(DDSTREAM_BASE_URL=fake.url, DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
    package_parent = str(Path(dd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "ddstream", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_formula_csv_is_exact(fake: FakeDatadog, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    proc = cli(fake, "query", "--formula", "a / b * 100", "--formula", "b", f"a={A}", f"b={B}",
               "--from", str(START), "--to", str(START + DAY), "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    header, body = table[0], table[1:]
    assert header == ["timestamp", "query", "series", "avg", "min", "max", "sum", "value"]
    assert len(body) == 4 * DAY // G
    expected = truths()
    for row in body:
        t = int(np.datetime64(row[0].rstrip("Z"), "s").astype(np.int64))
        want = expected[row[1]][row[2]][(t - START) // G]
        got = float(row[7]) if row[7] else math.nan
        assert got == want or (math.isnan(got) and math.isnan(want)), row
        assert row[3:7] == ["", "", "", ""]
    assert {row[1] for row in body} == {"a / b * 100", "b"}


def test_cli_formula_usage_errors(fake: FakeDatadog) -> None:
    proc = cli(fake, "query", "--formula", "a * 2", A, "--from", str(START), "-q")
    assert proc.returncode == 2 and "NAME=QUERY" in proc.stderr
    proc = cli(fake, "query", "--formula", "a / x", f"a={A}", "--from", str(START), "-q")
    assert proc.returncode == 2 and "unknown query name 'x'" in proc.stderr
    assert "\n  a / x\n      ^" in proc.stderr
    proc = cli(fake, "explain", "--formula", "a / x", f"a={A}")
    assert proc.returncode == 2 and "unknown query name 'x'" in proc.stderr
    proc = cli(fake, "query", "--api", "v1", "--formula", "a", f"a={A}", "--from", str(START))
    assert proc.returncode == 2 and "formulas need the v2 endpoint" in proc.stderr


def test_dask_reads_formulas_over_a_list_as_the_stream_does(
        fake: FakeDatadog, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dask.dataframe")
    from ddstream.dask import read_metrics

    monkeypatch.setenv("DD_API_KEY", API_KEY)  # dask's readers take the keys from here
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    # A list of queries keeps its names q0, q1, ... for the formulas, as in DDStreamConfig.
    # Half-day chunks: none falls wholly in the Sunday afternoon gap, where a grouped formula
    # has no series (and so no rows) at all.
    frame = read_metrics([A, B], START, START + DAY, base_url=fake.url, formulas=["q0 / q1 * 100"],
                         chunk_seconds=DAY // 2, chunks_per_partition=1, max_retries=0)
    assert frame.npartitions == 2
    got = frame.compute(scheduler="sync")
    assert set(got["query"].astype(str)) == {"q0 / q1 * 100"}
    want = truths()["a / b * 100"]
    assert sorted(got["series"].astype(str).unique()) == sorted(want) == list(HOSTS)
    for tags, rows in got.groupby("series", observed=True):
        np.testing.assert_array_equal(rows["value"].to_numpy(), want[str(tags)][: DAY // G])


def test_polars_and_duckdb_show_the_formula_texts(fake: FakeDatadog) -> None:
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    formulas = ["a / b * 100", "b"]
    cfg = config(fake, formulas=formulas, range_end=START + DAY)
    frame = pl.DataFrame(dd.DDStream(cfg))
    counts = dict(frame.group_by("query").len().iter_rows())
    assert counts == {"a / b * 100": 3 * DAY // G, "b": DAY // G}
    stream = dd.DDStream(cfg)
    # DuckDB finds the stream by its name in this frame (a replacement scan of the Arrow stream).
    rows = duckdb.sql("select query, count(value), max(value) from stream "
                      "group by query order by query").fetchall()
    assert stream.queries == tuple(formulas)  # what the query dictionary holds
    b = per_query("avg", "v2py.total", None)[""][: DAY // G]
    assert rows[1] == ("b", int(np.isfinite(b).sum()), float(np.nanmax(b)))
    assert rows[0][0] == "a / b * 100"


def test_cli_formula_parquet_names_the_formulas(fake: FakeDatadog, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    proc = cli(fake, "query", "--formula", "a / b * 100", f"a={A}", f"b={B}", "--from",
               str(START), "--to", str(START + DAY), "--format", "parquet", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert set(table.column("query").to_pylist()) == {"a / b * 100"}
    assert table.num_rows == 3 * DAY // G
    expected = truths()["a / b * 100"]
    tags = table.column("series").to_pylist()
    got = np.asarray(table.column("value").to_numpy(zero_copy_only=False), dtype=np.float64)
    times = table.column("timestamp").cast("int64").to_numpy()
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
    unit = per_second[table.schema.field("timestamp").type.unit]
    slots = (times // unit - START) // G
    want = np.array([expected[t][k] for t, k in zip(tags, slots.tolist())])
    np.testing.assert_array_equal(got, want)


def test_validate_posts_the_v2_request_it_will_send(fake: FakeDatadog) -> None:
    """A stream of formulas is validated with what it sends: one bucket of its v2 POST, every
    named query and formula in it, so that the v2 endpoint's refusal shows before streaming."""
    fake.clear_log()
    assert dd.DDStream.validate(config(fake)) is None
    validate, post = fake.requests
    assert (validate.method, validate.path) == ("GET", "/api/v1/validate")
    assert (post.method, post.path) == ("POST", "/api/v2/query/timeseries")
    attributes = json.loads(post.body)["data"]["attributes"]
    assert attributes["to"] - attributes["from"] == attributes["interval"] == G * 1000
    assert attributes["from"] == START * 1000
    assert [(q["name"], q["query"]) for q in attributes["queries"]] == [("a", A), ("b", B)]
    assert attributes["formulas"] == [{"formula": "a / b * 100"}]
    # A formula the client's grammar accepts and the server refuses: the server's words.
    refused = dd.DDStream.validate(config(fake, queries={"a": A},
                                          formulas=["anomalies(a, 'basic', 2)"]))
    assert refused is not None and "HTTP 400" in refused and "anomalies" in refused
    with pytest.raises(dd.AuthError) as caught:
        dd.DDStream.check(config(fake, app_key="not-an-app-key"))
    assert "not-an-app-key" not in str(caught.value) and API_KEY not in str(caught.value)


def test_cli_validate_formulas(fake: FakeDatadog) -> None:
    fake.clear_log()
    proc = cli(fake, "validate", "--formula", "a / b * 100", f"a={A}", f"b={B}")
    assert proc.returncode == 0, proc.stderr
    assert "the formulas are accepted" in proc.stdout
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/api/v1/validate"), ("POST", "/api/v2/query/timeseries")]
    assert json.loads(fake.requests[1].body)["data"]["attributes"]["formulas"] == [
        {"formula": "a / b * 100"}]
    refused = cli(fake, "validate", "--formula", "anomalies(a, 'basic', 2)", "a=avg:v2py.used{*}")
    assert refused.returncode != 0 and "HTTP 400" in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    fake.clear_log()
    for args, message in ((("--formula", "a"), "NAME=QUERY"), ((f"a={A}",), "--formula"),
                          (("--formula", "a / x", f"a={A}"), "unknown query name 'x'")):
        proc = cli(fake, "validate", *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    assert fake.requests == []  # usage and config errors send nothing
