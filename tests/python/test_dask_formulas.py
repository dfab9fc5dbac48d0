"""``ddstream.dask.read_metrics`` and ``export_parquet`` with formulas over named queries
(Datadog's v2 endpoint), on Dask's in-process schedulers against FakeDatadog.

Every cell is compared with a truth computed independently of the server (``reference.py``'s
per-query values combined with numpy, as tests/python/test_formulas.py does), so a row that is
missing, repeated, mislabelled or shifted across a partition boundary fails. The cluster (the
scheduler's request budget) with formulas is in test_dask.py.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("dask.dataframe", reason="ddstream.dask needs dask[dataframe]")

import dask
import pandas as pd

import ddstream as dd
import ddstream.dask as ddd
from conftest import API_KEY, APP_KEY
from ddstream.dask._parquet import MANIFEST
from ddstream.testing import FakeDatadog
from reference import bucket_starts, expected_buckets

DAY = 86400
G = 60
# 2026-11-01T00:00:00Z, a Sunday; the range starts off the grid and crosses daily blackouts
# (05:00-05:10, no host reports: NaN rows the fake leaves out of its answers).
START = 1_793_491_200 + 17
END = START + 2 * DAY
A = "avg:v2dask.used{*} by {host}"
B = "avg:v2dask.total{*}"
C = "max:v2dask.load{*} by {host}"
NAMED = {"a": A, "b": B, "c": C}
FORMULAS = ["a / b * 100", "b", "a - c"]
V2_PATH = "/api/v2/query/timeseries"

Truth = dict[str, npt.NDArray[np.float64]]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


@pytest.fixture(autouse=True)
def keys_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The readers (Dask's threads, this process) take the keys from the environment."""
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)


@functools.cache
def per_query(space: str, metric: str, by: tuple[str, ...] | None) -> Truth:
    got = expected_buckets(metric, None, by, space, "avg", START, END, G)
    return {",".join(key): values for key, (_, values) in got.items()}


@functools.cache
def truths() -> dict[str, Truth]:
    a = per_query("avg", "v2dask.used", ("host",))
    b = per_query("avg", "v2dask.total", None)[""]
    c = per_query("max", "v2dask.load", ("host",))
    return {
        "a / b * 100": {tags: (a[tags] / b) * 100 for tags in a},
        "b": {"": b},
        "a - c": {tags: a[tags] - c[tags] for tags in a},
        # api="v2" without formulas: each query is its own formula, labelled by its text
        A: dict(a),
        B: {"": b},
    }


def check_exact(frame: pd.DataFrame, labels: list[str]) -> int:
    """Every row against the truth, every expected (label, series, bucket) exactly once."""
    expected = truths()
    grid = bucket_starts(START, END, G)
    assert set(frame["query"].astype(str)) == set(labels)
    rows = 0
    for (label, tags), group in frame.groupby(["query", "series"], observed=True, sort=False):
        naive = group["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = naive.to_numpy().astype("datetime64[s]").astype(np.int64)
        slots = (seconds - grid[0]) // G
        assert np.array_equal(seconds, grid[0] + slots * G) and np.array_equal(
            slots, np.arange(len(grid))), (
            f"{label} {tags!r}: buckets missing, repeated or out of order")
        np.testing.assert_array_equal(group["value"].to_numpy(), expected[str(label)][str(tags)],
                                      err_msg=f"{label} {tags!r}")
        rows += len(group)
    assert rows == len(frame) == len(grid) * sum(len(expected[f]) for f in labels)
    return rows


def read(fake: FakeDatadog, **changes: Any) -> Any:
    kwargs: dict[str, Any] = {"formulas": FORMULAS, "granularity": G, "base_url": fake.url,
                              "chunk_seconds": DAY // 2, "chunks_per_partition": 3,
                              "max_retries": 0}
    kwargs.update(changes)
    queries = kwargs.pop("queries", NAMED)
    return ddd.read_metrics(queries, START, END, **kwargs)


def v2_requests(fake: FakeDatadog, since: int) -> list[Any]:
    return [r for r in fake.requests[since:] if r.path == V2_PATH]


def test_formulas_grouped_and_not_are_exact_across_partitions(fake: FakeDatadog) -> None:
    before = len(fake.requests)
    df = read(fake)
    assert len(fake.requests) == before  # planning sends nothing
    plan = dd.DDStream.plan(dd.DDStreamConfig(queries=NAMED, formulas=FORMULAS, range_start=START,
                                              range_end=END, granularity=G,
                                              chunk_seconds=DAY // 2))
    assert len(plan) == 4 and df.npartitions == 2  # 3 chunks, then 1
    assert list(df.columns) == [*ddd.COLUMNS, "value"]
    got = df.compute(scheduler="sync")
    assert got.dtypes.to_dict() == df._meta.dtypes.to_dict()
    assert got["query"].dtype == ddd.empty_frame()["query"].dtype  # v1's query column dtype
    assert check_exact(got, FORMULAS) == 7 * len(bucket_starts(START, END, G))
    assert got[["avg", "min", "max", "sum"]].isna().all(axis=None)
    sent = v2_requests(fake, before)
    assert len(sent) == len(plan) == len(fake.requests) - before  # one POST a chunk, no v1
    # Each partition's frame alone: the same dtypes as meta, its own rows only.
    first = df.get_partition(0).compute(scheduler="sync")
    assert first.dtypes.to_dict() == df._meta.dtypes.to_dict()
    assert first["timestamp"].max() < pd.Timestamp(plan[3][0], unit="s", tz="UTC")


def test_one_formula_indexed_by_time_and_threads(fake: FakeDatadog) -> None:
    df = read(fake, formulas=["a - c"], queries={"a": A, "c": C}, index="timestamp")
    assert df.known_divisions and df.npartitions == 2
    assert df.divisions[0] == pd.Timestamp(bucket_starts(START, END, G)[0], unit="s", tz="UTC")
    with dask.config.set(scheduler="threads"):
        got = df.compute()
    assert got.index.is_monotonic_increasing
    assert got.dtypes.to_dict() == df._meta.dtypes.to_dict()
    assert check_exact(got.reset_index(), ["a - c"]) == 3 * len(bucket_starts(START, END, G))


def test_api_v2_without_formulas_labels_rows_by_query(fake: FakeDatadog) -> None:
    for queries, per in (([A, B], 1), ({"x": A, "y": B}, 2)):
        df = read(fake, queries=queries, formulas=None, api="v2", queries_per_partition=per)
        assert df.npartitions == 4 // per
        got = df.compute(scheduler="sync")
        assert got.dtypes.to_dict() == df._meta.dtypes.to_dict()
        check_exact(got, [A, B])


def test_parquet_export_of_formulas_resumes(fake: FakeDatadog, tmp_path: Path) -> None:
    out = tmp_path / "export"
    kwargs: dict[str, Any] = {"formulas": FORMULAS, "granularity": G, "base_url": fake.url,
                              "chunk_seconds": DAY // 2, "chunks_per_partition": 2,
                              "budget": False}
    with dask.config.set(scheduler="sync"):
        report = ddd.export_parquet(NAMED, START, END, out, **kwargs)
        before = len(fake.requests)
        again = ddd.export_parquet(NAMED, START, END, out, **kwargs)
    assert len(fake.requests) == before  # every file found: nothing read again
    assert (report.written, report.skipped) == (2, 0) and (again.written, again.skipped) == (0, 2)
    frame = pd.read_parquet(out)
    assert report.rows == len(frame)
    check_exact(frame, FORMULAS)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert list(manifest["queries"].values()) == [{"queries": NAMED, "formulas": FORMULAS}]
    # Other formulas over the same queries are another export, not files to mix with these.
    with pytest.raises(dd.ConfigError, match="holds an export with other queries"):
        ddd.export_parquet(NAMED, START, END, out,
                           **{**kwargs, "formulas": [*FORMULAS[:2], "a + c"]})
    v1 = ddd.plan_parts([A], START, END, granularity=G, chunk_seconds=DAY // 2)
    v2 = ddd.plan_parts({"a": A}, START, END, granularity=G, chunk_seconds=DAY // 2, api="v2")
    assert v1[0].query_hash != v2[0].query_hash
    assert v2[0].query_hash != ddd.plan_parts({"a": A}, START, END, granularity=G,
                                              chunk_seconds=DAY // 2,
                                              formulas=["a * 2"])[0].query_hash


def test_bad_formula_reads_are_refused_before_any_request(fake: FakeDatadog) -> None:
    before = len(fake.requests)
    with pytest.raises(dd.ConfigError, match=r"formulas\[0\]: at character 5: unknown query "
                                             r"name 'z'"):
        read(fake, formulas=["a / z"])
    with pytest.raises(ValueError, match="queries_per_partition: with formulas"):
        read(fake, queries_per_partition=2)
    with pytest.raises(dd.ConfigError, match="formulas need the v2 endpoint"):
        read(fake, api="v1")
    with pytest.raises(dd.ConfigError, match="query_names are for formulas"):
        read(fake, formulas=None)  # named queries read over v1
    with pytest.raises(ValueError, match="each formula may appear only once"):
        read(fake, formulas=["b", "b", "a - c"])
    with pytest.raises(TypeError, match="formulas must be a list"):
        read(fake, formulas="a / b")
    with pytest.raises(TypeError, match="DD_API_KEY"):
        read(fake, api_key=API_KEY)
    assert len(fake.requests) == before
