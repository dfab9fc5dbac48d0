"""Formulas over named queries, as dashboards write them: memory used as a percentage of the
total per host, a month at one minute through Datadog's v2 endpoint, then the month's figure
per host as one scalar (one value per group) from the scalar endpoint.

    python examples/python/formulas.py            # against the built-in fake Datadog
    DD_API_KEY=... DD_APP_KEY=... python examples/python/formulas.py --real

Needs only numpy (installed with ddstream).
"""

from __future__ import annotations

import sys
import time

import numpy as np

import ddstream as dd
from ddstream.testing import FakeDatadog

QUERIES = {"used": "avg:system.mem.used{*} by {host}", "total": "avg:system.mem.total{*} by {host}"}
FORMULA = "used / total * 100"
DAYS = 30


def run(base_url: str | None) -> int:
    """Stream the formula, print per host its mean and peak; then the scalar. Returns the rows."""
    end = int(time.time()) // 60 * 60
    options = {"queries": QUERIES, "formulas": [FORMULA], "range_start": end - DAYS * 86400,
               "range_end": end, "granularity": 60, "base_url": base_url}
    if base_url is not None:  # the fake accepts any keys
        options.update(api_key="demo-api-key", app_key="demo-app-key")
    cfg = dd.DDStreamConfig(**options)
    values: dict[str, list[np.ndarray]] = {}
    rows = 0
    with dd.DDStream(cfg) as stream:
        chunks = stream.chunk_count
        for batch in stream:
            rows += len(batch["timestamps"])
            for s, tags in enumerate(batch["series_tags"]):
                values.setdefault(tags, []).append(batch["value"][batch["series"] == s])
    print(f"{FORMULA}: {DAYS} days at 60 s, {chunks} chunks (one POST each), {rows} rows")
    print(f"{'host':<12} {'mean %':>8} {'peak %':>8} {'no data':>8}")
    for tags in sorted(values):
        v = np.concatenate(values[tags])
        print(f"{tags:<12} {np.nanmean(v):>8.2f} {np.nanmax(v):>8.2f} {int(np.isnan(v).sum()):>8}")
    # The month in one value per host: the mean of used over the mean of total, cut into weekly
    # pieces (each asked for sums and counts, combined exactly) rather than one long request.
    table = dd.scalar(cfg.copy(chunk_seconds=7 * 86400), aggregator="avg")
    print(f"scalar over the month, {table.chunks} pieces, {table.requests} requests:")
    for tags, value in zip(table.group_tags, table.value, strict=True):
        print(f"{tags:<12} {value:>8.2f}")
    return rows


if __name__ == "__main__":
    if "--real" in sys.argv:
        run(None)
    else:
        with FakeDatadog() as fake:
            total = run(fake.url)
            paths = [r.path for r in fake.query_requests]
        print(f"the fake server answered {paths.count('/api/v2/query/timeseries')} timeseries "
              f"and {paths.count('/api/v2/query/scalar')} scalar requests, {total} rows in all")
