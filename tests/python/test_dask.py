"""ddstream.dask on a real cluster: a distributed.LocalCluster of two worker *processes* (each
loads libddstream) against FakeDatadog on 127.0.0.1, with a rate limit.

One cluster serves the module (starting one takes a couple of seconds); the test that kills a
worker runs last. Keys reach the workers through their environment only, and the tests check
they are nowhere in the task graph, the workers' logs or the scheduler's.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("dask.dataframe", reason="ddstream.dask needs dask[dataframe]")
distributed = pytest.importorskip("distributed", reason="ddstream.dask's cluster needs distributed")

import cloudpickle  # noqa: E402
import pandas as pd  # noqa: E402

import ddstream as dd  # noqa: E402
import ddstream.dask as ddd  # noqa: E402
from conftest import API_KEY, APP_KEY, T0, make_config, subprocess_env  # noqa: E402
from ddstream.dask._parquet import MANIFEST  # noqa: E402
from ddstream.testing import FakeDatadog  # noqa: E402

DAY = 86400
GRANULARITY = 300  # 7 days = 2016 buckets = 2 requests per query (1500-point cap)
# 20 queries: grouped and ungrouped, one that matches no host (no series at all).
QUERIES = [f"avg:dask.metric{i}{{*}}" for i in range(14)] + [
    "avg:system.cpu.user{*} by {host}",
    "max:system.load.1{env:prod} by {host}",
    "sum:dask.requests{*} by {env}",
    "avg:system.mem.used{env:staging}",
    "avg:system.cpu.user{host:nosuch} by {host}",
    "avg:nodata.metric{*}",
]
RATE_LIMIT = (16, 2.0)


def _worker_env() -> dict[str, str]:
    env = {"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY}
    package_parent = str(Path(dd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    if os.environ.get("DDSTREAM_LIBRARY"):
        env["DDSTREAM_LIBRARY"] = os.environ["DDSTREAM_LIBRARY"]
    return env


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  dashboard_address=None, env=_worker_env()) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def limited() -> Iterator[FakeDatadog]:
    with FakeDatadog(rate_limit=RATE_LIMIT, cache_size=4096) as server:
        yield server


@pytest.fixture
def keys_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys in this (the client's) process too: a graph that captured them would show."""
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)


def single_process(server: FakeDatadog, queries: list[str], start: int, end: int) -> pd.DataFrame:
    """The rows of the single-process path: one DDStream per query, batch by batch."""
    rows: list[pd.DataFrame] = []
    for query in queries:
        with dd.DDStream(query=query, start=start, end=end, granularity=GRANULARITY,
                         base_url=server.url, api_key=API_KEY, app_key=APP_KEY) as stream:
            for batch in stream:
                n = len(batch["timestamps"])
                tags = batch.get("series_tags")
                series = [tags[i] for i in batch["series"]] if tags is not None else [""] * n
                rows.append(pd.DataFrame({
                    "query": [query] * n,
                    "timestamp": pd.to_datetime(batch["timestamps"], unit="s", utc=True),
                    "series": series,
                    **{c: np.array(batch[c]) for c in ("avg", "min", "max", "sum")},
                }))
    return normalise(pd.concat(rows, ignore_index=True))


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop="timestamp" not in frame.index.names)
    out = out.astype({"query": str, "series": str, "timestamp": "datetime64[ns, UTC]"})
    out = out[list(ddd.COLUMNS)]
    return out.sort_values(["query", "series", "timestamp"], kind="stable").reset_index(drop=True)


def query_statuses(server: FakeDatadog) -> Counter[int]:
    return Counter(r.status for r in server.query_requests)


# ------------------------------------------------------------------------------- the plan


def test_partitions_are_slices_of_the_plan() -> None:
    start, end = T0, T0 + 7 * DAY + 1234  # unaligned both ends
    parts = ddd.plan_parts(QUERIES[:2], start, end, granularity=60, chunks_per_partition=3)
    for query in QUERIES[:2]:
        plan = dd.DDStream.plan(make_config(query=query, range_start=start, range_end=end))
        mine = [p for p in parts if p.query == query]
        own = [dd.DDStream.plan(p.config().copy(api_key=API_KEY, app_key=APP_KEY)) for p in mine]
        assert [c for chunks in own for c in chunks] == plan
        assert [(p.first_chunk, p.last_chunk) for p in mine] == [
            (i, min(i + 2, len(plan) - 1)) for i in range(0, len(plan), 3)]
    assert len({p.file_name for p in parts}) == len(parts)


def test_bad_arguments_are_refused_before_any_work() -> None:
    with pytest.raises(TypeError, match="DD_API_KEY"):
        ddd.read_metrics(QUERIES[:1], T0, T0 + DAY, api_key=API_KEY)
    with pytest.raises(ValueError, match="only once"):
        ddd.read_metrics([QUERIES[0], QUERIES[0]], T0, T0 + DAY)
    with pytest.raises(TypeError, match="set by read_metrics"):
        ddd.read_metrics(QUERIES[:1], T0, T0 + DAY, range_start=0)
    with pytest.raises(dd.ConfigError):
        ddd.read_metrics(QUERIES[:1], T0, T0 + DAY, granularity=0)


def test_meta_matches_computed_partitions(module_fake: FakeDatadog, keys_here: None) -> None:
    """Without a cluster (Dask's threads, this process): dtypes of meta and data agree."""
    df = ddd.read_metrics([QUERIES[0], QUERIES[14], QUERIES[18]], T0, T0 + 7 * DAY,
                          granularity=GRANULARITY, base_url=module_fake.url,
                          chunks_per_partition=1)
    assert list(df.columns) == list(ddd.COLUMNS)
    assert df.npartitions == 6 and not df.known_divisions
    for i in (0, 2, 4):  # ungrouped, grouped, grouped without any series (empty)
        part = df.get_partition(i).compute(scheduler="sync")
        assert part.dtypes.to_dict() == df._meta.dtypes.to_dict()
        assert part.index.dtype == df._meta.index.dtype
    assert len(df.get_partition(4).compute(scheduler="sync")) == 0
    one = ddd.read_metrics(QUERIES[14], T0, T0 + 7 * DAY, granularity=GRANULARITY,
                           base_url=module_fake.url, index="timestamp", chunks_per_partition=1)
    assert one.known_divisions and one.npartitions == 2
    first = one.get_partition(0).compute(scheduler="sync")
    assert first.dtypes.to_dict() == one._meta.dtypes.to_dict()
    assert first.index.dtype == one._meta.index.dtype and first.index.is_monotonic_increasing
    assert one.divisions[0] <= first.index[0] and first.index[-1] < one.divisions[1]
    assert one.compute(scheduler="sync").index.max() == one.divisions[-1]


def test_partitions_of_several_queries(keys_here: None) -> None:
    """queries_per_partition=N: each partition reads N queries as one stream, packed into one
    request per chunk, and its frame's query column says which query each row belongs to."""
    queries = [QUERIES[0], QUERIES[14], QUERIES[15], QUERIES[16], QUERIES[17], QUERIES[18]]
    start, end = T0, T0 + 7 * DAY
    with FakeDatadog(cache_size=4096) as fake:
        parts = ddd.plan_parts(queries, start, end, granularity=GRANULARITY,
                               chunks_per_partition=1, queries_per_partition=4,
                               base_url=fake.url)
        assert [p.queries for p in parts] == [tuple(queries[:4])] * 2 + [tuple(queries[4:])] * 2
        assert parts[0].config().queries == queries[:4] and parts[0].config().query == ""
        assert parts[2].file_name != parts[0].file_name
        with pytest.raises(ValueError, match="queries"):
            _ = parts[0].query
        df = ddd.read_metrics(queries, start, end, granularity=GRANULARITY, base_url=fake.url,
                              chunks_per_partition=1, queries_per_partition=4)
        assert df.npartitions == 4 and list(df.columns) == list(ddd.COLUMNS)
        got = df.compute(scheduler="sync")
        # 2 chunks x (16 sub-queries, then 8): one request each, where one query a partition
        # takes one request per query and chunk.
        answered = [r for r in fake.query_requests if r.status == 200]
        assert len(answered) == 4
        assert sorted(r.query.count(".rollup(") for r in answered if r.query) == [8, 8, 16, 16]
        expected = single_process(fake, queries, start, end)
        by_time = ddd.read_metrics(queries[:4], start, end, granularity=GRANULARITY,
                                   base_url=fake.url, chunks_per_partition=1,
                                   queries_per_partition=4, index="timestamp")
        assert by_time.known_divisions and by_time.npartitions == 2
        first = by_time.get_partition(0).compute(scheduler="sync")
        assert first.index.is_monotonic_increasing
        assert first.dtypes.to_dict() == by_time._meta.dtypes.to_dict()
    assert got.dtypes.to_dict() == df._meta.dtypes.to_dict()
    assert set(got["query"].astype(str)) == set(queries) - {QUERIES[18]}  # no host: no rows
    pd.testing.assert_frame_equal(normalise(got), expected)


def test_value_only_query_gets_a_value_column(keys_here: None) -> None:
    own_rollup = "max:system.load.1{*} by {host}.rollup(min, 300)"  # one value per bucket
    queries = [QUERIES[0], own_rollup]
    with FakeDatadog() as fake:
        for per_partition in (1, 2):
            df = ddd.read_metrics(queries, T0, T0 + 2 * DAY, granularity=GRANULARITY,
                                  base_url=fake.url, queries_per_partition=per_partition)
            assert list(df.columns) == [*ddd.COLUMNS, "value"]
            got = df.compute(scheduler="sync")
            assert got.dtypes.to_dict() == df._meta.dtypes.to_dict()
            mine = got[got["query"] == own_rollup]
            other = got[got["query"] == QUERIES[0]]
            assert other["value"].isna().all() and mine[["avg", "min", "max", "sum"]].isna().all(
                axis=None)
            with dd.DDStream(query=own_rollup, start=T0, end=T0 + 2 * DAY,
                             granularity=GRANULARITY, base_url=fake.url) as stream:
                alone = np.concatenate([b["value"] for b in stream])
            assert mine["value"].notna().any()
            np.testing.assert_array_equal(mine["value"].to_numpy(), alone)


def test_export_of_several_queries_per_file(tmp_path: Path, keys_here: None) -> None:
    queries = [QUERIES[0], QUERIES[14], QUERIES[17]]
    out = tmp_path / "export"
    with FakeDatadog() as fake:
        kwargs: dict[str, Any] = {"granularity": GRANULARITY, "base_url": fake.url,
                                  "queries_per_partition": 3, "budget": False}
        with dask_config_sync():
            report = ddd.export_parquet(queries, T0, T0 + 7 * DAY, out, **kwargs)
            again = ddd.export_parquet(queries, T0, T0 + 7 * DAY, out, **kwargs)
        expected = single_process(fake, queries, T0, T0 + 7 * DAY)
    assert (report.written, report.skipped) == (1, 0) and (again.written, again.skipped) == (0, 1)
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert list(manifest["queries"].values()) == [queries]
    pd.testing.assert_frame_equal(normalise(pd.read_parquet(out)), expected)


def dask_config_sync() -> Any:
    import dask

    return dask.config.set(scheduler="sync")


# ------------------------------------------------------------------------------- the cluster


def test_cluster_gives_the_single_process_rows_within_the_budget(
        client: Any, limited: FakeDatadog, module_fake: FakeDatadog, keys_here: None) -> None:
    start, end = T0, T0 + 7 * DAY
    expected = single_process(module_fake, QUERIES, start, end)
    df = ddd.read_metrics(QUERIES, start, end, granularity=GRANULARITY, base_url=limited.url,
                          chunks_per_partition=1, max_retries=5)
    limited.clear_log()
    began = time.monotonic()
    got = df.compute()
    elapsed = time.monotonic() - began
    requests = limited.query_requests
    pd.testing.assert_frame_equal(normalise(got), expected)
    statuses = query_statuses(limited)
    answered = Counter((r.query, r.from_ts, r.to_ts) for r in requests if r.status == 200)
    assert len(answered) == df.npartitions == 40 and set(answered.values()) == {1}
    per_window = Counter(limited.rate_window(r.started) for r in requests if r.status == 429)
    assert all(n <= 1 for n in per_window.values()), per_window
    print(f"\nLocalCluster 2 processes x 2 threads: {len(got)} rows, {len(requests)} requests, "
          f"{statuses.get(429, 0)} x 429, {elapsed:.2f} s (limit {RATE_LIMIT[0]} per "
          f"{RATE_LIMIT[1]:.0f} s)")


def test_keys_stay_out_of_graphs_and_logs(client: Any, module_fake: FakeDatadog,
                                          keys_here: None) -> None:
    df = ddd.read_metrics(QUERIES[:3], T0, T0 + DAY, granularity=GRANULARITY,
                          base_url=module_fake.url, log_level=4)
    graph = dict(df.__dask_graph__())
    blobs = [cloudpickle.dumps(graph), pickle.dumps(df.__dask_graph__())]
    assert df.sum(numeric_only=True).compute()["sum"] > 0
    logs = [str(client.get_worker_logs()), str(client.get_scheduler_logs()),
            str(client.run(lambda: os.environ.get("DDSTREAM_BASE_URL")))]
    for key in (API_KEY, APP_KEY):
        for blob in blobs:
            assert key.encode() not in blob
        for text in logs:
            assert key not in text


def test_plain_to_parquet_with_partition_on(client: Any, module_fake: FakeDatadog,
                                            tmp_path: Path) -> None:
    queries = [QUERIES[0], QUERIES[14], QUERIES[17]]
    df = ddd.read_metrics(queries, T0, T0 + 2 * DAY, granularity=GRANULARITY,
                          base_url=module_fake.url)
    df.to_parquet(tmp_path / "out", partition_on=["query"])
    back = pd.read_parquet(tmp_path / "out")
    assert sorted(back["query"].astype(str).unique()) == sorted(queries)
    pd.testing.assert_frame_equal(normalise(back),
                                  single_process(module_fake, queries, T0, T0 + 2 * DAY))


def test_cluster_reads_formulas_within_the_budget(client: Any, limited: FakeDatadog,
                                                  module_fake: FakeDatadog,
                                                  keys_here: None) -> None:
    """Formulas (v2 POSTs) take their leases from the same budget: the cluster's rows are the
    single-process stream's, every chunk answered once, at most one 429 a window."""
    named = {"a": QUERIES[14], "b": QUERIES[0]}
    formulas = ["a / b", "b * 2"]
    start, end = T0, T0 + 7 * DAY
    options: dict[str, Any] = {"formulas": formulas, "granularity": GRANULARITY,
                               "chunk_seconds": DAY // 4}
    rows: list[pd.DataFrame] = []
    with dd.DDStream(queries=named, start=start, end=end, base_url=module_fake.url,
                     api_key=API_KEY, app_key=APP_KEY, **options) as stream:
        for batch in stream:
            tags = np.array(batch["series_tags"], dtype=object)
            rows.append(pd.DataFrame({
                "query": np.array(formulas, dtype=object)[batch["query"]],
                "timestamp": pd.to_datetime(batch["timestamps"], unit="s", utc=True),
                "series": tags[batch["series"]] if len(batch["series"]) else [],
                "value": np.array(batch["value"]),
            }))
    expected = pd.concat(rows, ignore_index=True)
    df = ddd.read_metrics(named, start, end, base_url=limited.url, chunks_per_partition=1,
                          max_retries=5, **options)
    limited.clear_log()
    got = df.compute()
    requests = [r for r in limited.requests if r.path == "/api/v2/query/timeseries"]
    assert len(requests) == len(limited.requests)  # no v1 request
    assert list(got.columns) == [*ddd.COLUMNS, "value"]

    def by_key(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[["query", "timestamp", "series", "value"]].astype(
            {"query": str, "series": str, "timestamp": "datetime64[ns, UTC]"})
        return out.sort_values(["query", "series", "timestamp"]).reset_index(drop=True)

    assert len(got) > 0
    pd.testing.assert_frame_equal(by_key(got), by_key(expected))
    answered = Counter(r.body for r in requests if r.status == 200)
    assert len(answered) == df.npartitions > RATE_LIMIT[0] and set(answered.values()) == {1}
    per_window = Counter(limited.rate_window(r.started) for r in requests if r.status == 429)
    assert all(n <= 1 for n in per_window.values()), per_window
    print(f"\nformulas on the cluster: {len(got)} rows, {len(requests)} requests, "
          f"{sum(per_window.values())} x 429")


def test_export_resumes_after_a_killed_worker(client: Any, tmp_path: Path) -> None:
    """Kill a worker process mid-export; the rerun writes only what is missing and the files
    hold every row exactly once."""
    queries = QUERIES[:8] + QUERIES[14:16]
    start, end = T0, T0 + 7 * DAY
    out = tmp_path / "export"
    with FakeDatadog(latency=0.25) as slow:
        kwargs: dict[str, Any] = {"granularity": GRANULARITY, "base_url": slow.url,
                                  "chunks_per_partition": 1, "max_in_flight": 1}
        first: dict[str, Any] = {}

        def export() -> None:
            try:
                first["report"] = ddd.export_parquet(queries, start, end, out, **kwargs)
            except Exception as exc:
                first["error"] = exc

        runner = threading.Thread(target=export)
        runner.start()
        deadline = time.monotonic() + 20
        while len(list(out.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = client.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        runner.join(60)
        assert not runner.is_alive()
        before = {p.name for p in out.glob("part-*.parquet")}
        assert len(before) >= 3
        slow.clear_log()
        slow.latency = 0.0
        report = ddd.export_parquet(queries, start, end, out, **kwargs)
        fetched = {(r.query, r.from_ts) for r in slow.query_requests if r.status == 200}
        expected = single_process(slow, queries, start, end)
    parts = ddd.plan_parts(queries, start, end, **kwargs)
    assert report.written + report.skipped == len(parts) == 20
    assert report.skipped == len(before)
    # Nothing already on disk was fetched again.
    redone = {p.file_name for p in parts
              if any(q == p.query and p.start <= f < p.end for q, f in fetched)}
    assert not redone & before
    assert sorted(p.name for p in out.glob("part-*.parquet")) == sorted(report.files)
    back = pd.read_parquet(out)
    assert report.rows == len(back) == len(expected)
    pd.testing.assert_frame_equal(normalise(back), expected)
    assert (out / MANIFEST).is_file()
    with pytest.raises(dd.ConfigError, match="other"):
        ddd.export_parquet(queries[:3], start, end, out, **kwargs)


def test_cli_export(tmp_path: Path) -> None:
    queries_file = tmp_path / "queries.txt"
    queries_file.write_text("# two queries\n" + QUERIES[0] + "\n\n" + QUERIES[14] + "\n")
    with FakeDatadog() as server:
        env = subprocess_env(server)
        env.update({"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY})
        if os.environ.get("DDSTREAM_LIBRARY"):
            env["DDSTREAM_LIBRARY"] = os.environ["DDSTREAM_LIBRARY"]
        cmd = [sys.executable, "-m", "ddstream", "export", str(queries_file), "--to-parquet",
               str(tmp_path / "out"), "--from", str(T0), "--to", str(T0 + DAY),
               "--granularity", str(GRANULARITY), "--workers", "2"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "2 partitions written, 0 already there" in proc.stderr
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "0 partitions written, 2 already there" in again.stderr
        for key in (API_KEY, APP_KEY):
            assert key not in proc.stderr + proc.stdout + again.stderr
        expected = single_process(server, [QUERIES[0], QUERIES[14]], T0, T0 + DAY)
    pd.testing.assert_frame_equal(normalise(pd.read_parquet(tmp_path / "out")), expected)
