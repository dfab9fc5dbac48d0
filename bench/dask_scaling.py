"""ddstream.dask scaling: throughput against the number of workers, and pacing under a limit.

    python bench/dask_scaling.py [--quick]

Starts FakeDatadog in this process and a distributed.LocalCluster of worker *processes* (one
thread each, the reads' default four requests in flight per partition), and reads the same
queries with 1, 2 and 4 workers:

* latency: every answer takes 300 ms, no rate limit. The work is I/O-bound, so throughput
  should grow with the workers (the C library's fetchers wait without the GIL; the machine's
  cores do not limit it).
* limit: 4 workers under a rate limit of L requests per P seconds (20 ms per answer). The floor
  is the time the limit itself imposes on N requests from a fresh window: the last of them can go
  out at the start of window ceil(N / L), so floor = (ceil(N / L) - 1) x P + one answer. The
  cluster shares one budget held by the scheduler; "x floor" says how close it gets.

Prints one Markdown table. Keys are placeholders (the fake accepts any) passed to the workers
through their environment, as in production.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

# Runnable from a checkout (python bench/dask_scaling.py) with PYTHONPATH=python, or installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

DAY = 86400
T0 = 1_699_747_200  # 2023-11-12T00:00:00Z


def run(workers: int, queries: list[str], days: int, fake: Any) -> tuple[int, float, int]:
    import distributed

    import ddstream.dask as ddd

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        client.wait_for_workers(workers)
        df = ddd.read_metrics(queries, T0, T0 + days * DAY, granularity=60, base_url=fake.url,
                              max_retries=5)
        # Warm-up outside the timing: each worker loads libddstream and registers the budget.
        client.run(lambda: __import__("ddstream.dask._read"))
        fake.clear_log()
        if fake.rate_limit is not None:
            fake.rate_limit = fake.rate_limit  # a fresh window from now
        began = time.monotonic()
        rows = len(df)
        elapsed = time.monotonic() - began
    statuses = Counter(r.status for r in fake.query_requests)
    return rows, elapsed, statuses.get(429, 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer queries (a smoke run)")
    args = parser.parse_args()
    os.environ.setdefault("DD_API_KEY", "bench-api-key")
    os.environ.setdefault("DD_APP_KEY", "bench-app-key")
    from ddstream.testing import FakeDatadog

    n_queries = 4 if args.quick else 16
    queries = [f"avg:bench.dask.metric{i}{{*}}" for i in range(n_queries)]
    lines = ["| scenario | workers | requests | 429s | wall s | requests/s | |",
             "|---|---|---|---|---|---|---|"]
    base = None
    with FakeDatadog(latency=0.3, cache_size=4096, raw_interval=60) as fake:
        for workers in (1, 2, 4):
            _rows, elapsed, n429 = run(workers, queries, 14, fake)
            requests = len(fake.query_requests)
            rate = requests / elapsed
            base = base or rate
            lines.append(f"| 300 ms per answer, no limit, {n_queries} queries x 14 d | {workers} "
                         f"| {requests} | {n429} | {elapsed:.2f} | {rate:.1f} "
                         f"| {rate / base:.2f}x 1 worker |")
    limit, period = (20, 5.0) if args.quick else (30, 5.0)
    with FakeDatadog(latency=0.02, rate_limit=(limit, period), cache_size=4096,
                     raw_interval=60) as fake:
        _rows, elapsed, n429 = run(4, queries, 7, fake)
        requests = len(fake.query_requests)
        answered = requests - n429
        floor = (math.ceil(answered / limit) - 1) * period + 0.02
        lines.append(f"| {limit} requests / {period:.0f} s, {n_queries} queries x 7 d | 4 "
                     f"| {requests} | {n429} | {elapsed:.2f} | {requests / elapsed:.1f} "
                     f"| {elapsed / floor:.2f}x floor ({floor:.2f} s) |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
