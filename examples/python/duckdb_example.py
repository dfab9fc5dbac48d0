"""A SQL aggregate over a live stream with DuckDB: hourly figures per host, straight from the
Arrow C stream of the C library (no copy of the columns, no pandas in between).

    python examples/python/duckdb_example.py            # against the built-in fake Datadog
    DD_API_KEY=... DD_APP_KEY=... python examples/python/duckdb_example.py --real

Needs duckdb and pyarrow (pip install 'ddstream[duckdb,arrow]').
"""

from __future__ import annotations

import sys
import time

import duckdb

import ddstream as dd
from ddstream.testing import FakeDatadog

SQL = """
select series as host,
       time_bucket(interval 1 hour, timestamp) as hour,
       round(avg(avg), 2) as mean,
       max(max) as peak,
       count(*) - count(avg) as missing
from stream
group by all
order by host, hour
"""


def run(base_url: str | None) -> None:
    end = int(time.time())
    cfg = dd.DDStreamConfig(
        query="avg:system.cpu.user{*} by {host}",
        range_start=end - 6 * 3600,
        range_end=end,
        granularity=60,
        base_url=base_url,
    )
    if base_url is not None:  # the fake accepts any keys
        cfg.api_key, cfg.app_key = "demo-api-key", "demo-app-key"
    stream = dd.DDStream(cfg)
    rows = duckdb.sql(SQL).fetchall()  # DuckDB reads `stream` through __arrow_c_stream__
    print(f"{'host':<12} {'hour (UTC)':<20} {'mean':>8} {'peak':>8} {'missing':>8}")
    for host, hour, mean, peak, missing in rows:
        print(f"{host:<12} {hour:%Y-%m-%d %H:%M}     {mean:>8} {peak:>8} {missing:>8}")
    print(f"{len(rows)} rows from {stream.chunk_count} chunk(s)")


if __name__ == "__main__":
    if "--real" in sys.argv:
        run(None)
    else:
        with FakeDatadog() as fake:
            run(fake.url)
