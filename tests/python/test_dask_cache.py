"""ddstream.dask with the chunk cache: the partitions of a read or an export, on two worker
*processes*, share one cache folder (as shared storage would), a second run sends no request
and gives the same rows, and several workers writing the same entries at once leave exact
entries; ``ddstream export`` keeps the cache by default, like ``ddstream query``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dask.dataframe", reason="ddstream.dask needs dask[dataframe]")
distributed = pytest.importorskip("distributed", reason="ddstream.dask's cluster needs distributed")

import dask  # noqa: E402
import pandas as pd  # noqa: E402

import ddstream.dask as ddd  # noqa: E402
from conftest import API_KEY, APP_KEY, T0, subprocess_env  # noqa: E402
from ddstream._cache import cache_usage  # noqa: E402
from ddstream.testing import FakeDatadog  # noqa: E402
from test_dask import GRANULARITY, _worker_env, normalise, single_process  # noqa: E402

DAY = 86400
QUERIES = ["avg:system.cpu.user{*} by {host}", "max:system.load.1{env:prod} by {host}",
           "avg:dask.metric1{*}", "sum:dask.requests{*} by {env}", "avg:nodata.metric{*}"]
START, END = T0, T0 + 4 * DAY  # 1152 buckets of 300 s: one chunk a query


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  dashboard_address=None, env=_worker_env()) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def read(server: FakeDatadog, folder: Path, **options: Any) -> Any:
    return ddd.read_metrics(QUERIES, START, END, granularity=GRANULARITY, base_url=server.url,
                            chunk_seconds=DAY, chunks_per_partition=1, cache_dir=str(folder),
                            **options)


def test_partitions_share_one_cache_folder(client: Any, fake: FakeDatadog,
                                           tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    expected = single_process(fake, QUERIES, START, END)
    fake.clear_log()
    df = read(fake, folder)
    assert df.npartitions == len(QUERIES) * 4
    first = df.compute()
    assert len(fake.query_requests) == df.npartitions
    # Both worker processes wrote into the one folder: an entry a chunk.
    assert cache_usage(folder).entries == df.npartitions
    pd.testing.assert_frame_equal(normalise(first), expected)
    fake.clear_log()
    again = read(fake, folder).compute()
    assert fake.requests == []
    pd.testing.assert_frame_equal(normalise(again), expected)
    # Several queries a partition pack other requests: their own entries, then none again.
    packed = read(fake, folder, queries_per_partition=len(QUERIES)).compute()
    assert len(fake.query_requests) == 4
    fake.clear_log()
    pd.testing.assert_frame_equal(
        normalise(read(fake, folder, queries_per_partition=len(QUERIES)).compute()), expected)
    assert fake.requests == []
    pd.testing.assert_frame_equal(normalise(packed), expected)


def test_workers_writing_the_same_entries_at_once(client: Any, tmp_path: Path) -> None:
    """Four reads of the same partitions in one compute: every partition is read by several
    threads of two processes at the same moment, each storing the same entries (a slow fake
    keeps them in flight together). Every result is exact, and so is every entry after."""
    folder = tmp_path / "raced"
    with FakeDatadog(latency=0.2) as slow:
        expected = single_process(slow, QUERIES[:2], START, START + DAY)
        slow.clear_log()
        # max_in_flight differs (it changes no request) so that Dask does not merge the reads.
        reads = [ddd.read_metrics(QUERIES[:2], START, START + DAY, granularity=GRANULARITY,
                                  base_url=slow.url, cache_dir=str(folder), budget=False,
                                  max_in_flight=1 + i)
                 for i in range(4)]
        results = dask.compute(*reads)
        assert len(slow.query_requests) > 2, "the reads did not overlap"
        for frame in results:
            pd.testing.assert_frame_equal(normalise(frame), expected)
        assert cache_usage(folder).entries == 2
        slow.clear_log()
        after = reads[0].compute()
        assert slow.requests == []
        pd.testing.assert_frame_equal(normalise(after), expected)
    assert not [p for p in folder.rglob("*") if p.is_file() and ".tmp" in p.name]


def test_export_parquet_with_the_cache(client: Any, fake: FakeDatadog, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    kwargs: dict[str, Any] = {"granularity": GRANULARITY, "base_url": fake.url,
                              "chunk_seconds": DAY, "cache_dir": str(folder)}
    ddd.export_parquet(QUERIES, START, END, tmp_path / "one", **kwargs)
    assert len(fake.query_requests) == len(QUERIES) * 4
    fake.clear_log()
    ddd.export_parquet(QUERIES, START, END, tmp_path / "two", **kwargs)  # a new folder of files
    assert fake.requests == []
    pd.testing.assert_frame_equal(normalise(pd.read_parquet(tmp_path / "two")),
                                  normalise(pd.read_parquet(tmp_path / "one")))


def test_cli_export_caches_by_default(tmp_path: Path) -> None:
    queries_file = tmp_path / "queries.txt"
    queries_file.write_text("\n".join(QUERIES[:2]) + "\n")
    xdg = tmp_path / "xdg"
    with FakeDatadog() as server:
        env = subprocess_env(server)
        env.update({"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY, "XDG_CACHE_HOME": str(xdg)})
        if os.environ.get("DDSTREAM_LIBRARY"):
            env["DDSTREAM_LIBRARY"] = os.environ["DDSTREAM_LIBRARY"]

        def export(out: str, *extra: str) -> None:
            cmd = [sys.executable, "-m", "ddstream", "export", str(queries_file), "--to-parquet",
                   str(tmp_path / out), "--from", str(START), "--to", str(START + DAY),
                   "--granularity", str(GRANULARITY), "--workers", "1", "-q", *extra]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr

        export("a")
        assert len(server.query_requests) == 2
        assert cache_usage(xdg / "ddstream").entries == 2
        server.clear_log()
        export("b")
        assert server.requests == []
        export("c", "--no-cache")
        assert len(server.query_requests) == 2
        server.clear_log()
        export("d", "--cache-dir", str(tmp_path / "mine"))
        export("e", "--cache-dir", str(tmp_path / "mine"))
        assert len(server.query_requests) == 2
        assert cache_usage(tmp_path / "mine").entries == 2
        expected = single_process(server, QUERIES[:2], START, START + DAY)
    for out in "abcde":
        pd.testing.assert_frame_equal(normalise(pd.read_parquet(tmp_path / out)), expected)

