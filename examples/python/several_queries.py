"""Several queries in one stream: a dashboard's worth of metrics, a week at 5 minutes, fetched
with a request per chunk for all of them instead of one per query, then summed up per query
with DuckDB over the stream's Arrow ``query`` column.

    python examples/python/several_queries.py            # against the built-in fake Datadog
    DD_API_KEY=... DD_APP_KEY=... python examples/python/several_queries.py --real

Needs duckdb and pyarrow (pip install 'ddstream[duckdb,arrow]').
"""

from __future__ import annotations

import sys
import time

import duckdb

import ddstream as dd
from ddstream.testing import FakeDatadog

QUERIES = [
    "avg:system.cpu.user{*} by {host}",
    "max:system.load.1{*} by {host}",
    "avg:system.mem.used{*}",
    "sum:trace.http.request.hits{env:prod}",
    "avg:system.disk.in_use{*} by {host}",
]

SQL = """
select query, count(distinct series) as series, count(*) as rows,
       round(avg(avg), 2) as mean, max(max) as peak
from stream
group by query
order by query
"""


def run(base_url: str | None) -> int:
    """Stream the queries; print the per-query summary and the requests; return the rows."""
    end = int(time.time())
    cfg = dd.DDStreamConfig(queries=QUERIES, range_start=end - 7 * 86400, range_end=end,
                            granularity=300, base_url=base_url)
    if base_url is not None:  # the fake accepts any keys
        cfg.api_key, cfg.app_key = "demo-api-key", "demo-app-key"
    plan = dd.explain(cfg.copy(api_key=None, app_key=None))
    stream = dd.DDStream(cfg)
    rows = duckdb.sql(SQL).fetchall()  # DuckDB reads `stream` through __arrow_c_stream__
    print(f"{'query':<40} {'series':>6} {'rows':>6} {'mean':>9} {'peak':>9}")
    for query, series, count, mean, peak in rows:
        print(f"{query:<40} {series:>6} {count:>6} {mean:>9} {peak:>9}")
    chunks = stream.chunk_count  # the plan of one query: more queries, never more chunks
    requests = chunks * plan["requests_per_chunk"]
    one_each = chunks * len(QUERIES)  # a stream per query: a request per query and chunk
    print(f"{len(QUERIES)} queries, {chunks} chunks: {requests} requests "
          f"({one_each / requests:.1f}x fewer than a stream per query: {one_each})")
    return sum(count for _, _, count, _, _ in rows)


if __name__ == "__main__":
    if "--real" in sys.argv:
        run(None)
    else:
        with FakeDatadog() as fake:
            total = run(fake.url)
            sent = len(fake.query_requests)
        print(f"the fake server answered {sent} requests, {total} rows in all")
