"""The chunk cache: the second run of a 30-day export of 10 metrics.

    python -m bench.cache_rerun [--quick] [--latency SECONDS]

Starts FakeDatadog in this process (every answer delayed by ``--latency``, 100 ms by default, a
round trip to Datadog's API) and exports 10 single-query streams of 30 days at 60 s, the fewest
requests Datadog's point cap allows (29 chunks each), one stream per metric in a pool of threads:

* ddstream, first run, into an empty cache folder (every chunk fetched and stored);
* ddstream, second run, same folder (target: 0 requests);
* ddstream without a cache (what a rerun costs without it);
* the same three as ONE stream of the 10 queries (``queries=``), whose sub-queries are packed
  into 2 requests a chunk instead of 10 (its own cache folder: other requests, other entries);
* the official clients, datadog-api-client and datadogpy, one metric after the other, which have
  no cache and fetch everything again (bench/requirements.txt; skipped when not installed).

Every run's points, non-null values and their sum must agree (bench.client.Tally), so a run that
lost or repeated data is caught. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.client import ROLLUPS, Tally, make_datadog_api_client, make_datadogpy
from bench.harness import rollup_query
from bench.scenarios import DAY, RANGE_END

API_KEY = "bench-api-key"
APP_KEY = "bench-app-key"
GRANULARITY = 60


def queries(n: int) -> list[str]:
    return [f"avg:bench.cache.metric{i}{{*}}" for i in range(n)]


def ddstream_run(url: str, metrics: list[str], days: int, cache_dir: str | None) -> Tally:
    """One stream per metric, all at once in a thread pool; the batches folded into one tally
    in metric order (the sums do not depend on which thread finished first)."""
    import ddstream

    def one(query: str) -> Tally:
        tally = Tally()
        cfg = ddstream.DDStreamConfig(query=query, range_start=RANGE_END - days * DAY,
                                      range_end=RANGE_END, granularity=GRANULARITY,
                                      base_url=url, api_key=API_KEY, app_key=APP_KEY,
                                      cache_dir=cache_dir)
        with ddstream.DDStream(cfg) as stream:
            for batch in stream:
                tally.batches += 1
                tally.add(batch["timestamps"], [batch[name] for name in ROLLUPS])
        return tally

    with concurrent.futures.ThreadPoolExecutor(len(metrics)) as pool:
        tallies = list(pool.map(one, metrics))
    return merge(tallies)


def ddstream_multi_run(url: str, metrics: list[str], days: int, cache_dir: str | None) -> Tally:
    """One stream of all the metrics: every chunk's sub-queries packed into few requests."""
    import ddstream

    tally = Tally()
    cfg = ddstream.DDStreamConfig(queries=metrics, range_start=RANGE_END - days * DAY,
                                  range_end=RANGE_END, granularity=GRANULARITY, base_url=url,
                                  api_key=API_KEY, app_key=APP_KEY, cache_dir=cache_dir)
    with ddstream.DDStream(cfg) as stream:
        for batch in stream:
            tally.batches += 1
            tally.add(batch["timestamps"], [batch[name] for name in ROLLUPS])
    return tally


def merge(tallies: list[Tally]) -> Tally:
    total = Tally()
    for t in tallies:
        total.batches += t.batches
        total.points += t.points
        total.nonnull += t.nonnull
        total.value_sum += t.value_sum
        total.ts_sum += t.ts_sum
    return total


def peer_run(make: Callable[[dict[str, Any]], Any], url: str, metrics: list[str], days: int,
             chunks: list[tuple[int, int]]) -> Tally:
    """An official client over the same chunks, one metric after the other (they have no
    streams to run side by side; each request waits for its answer)."""
    tallies = []
    for query in metrics:
        spec = {"url": url, "api_key": API_KEY, "app_key": APP_KEY,
                "rollup_query": rollup_query(query, GRANULARITY), "chunks": chunks}
        tally = Tally()
        make(spec)(tally)
        tallies.append(tally)
    return merge(tallies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_rerun", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 days instead of 30")
    parser.add_argument("--metrics", type=int, default=10, help="streams (default 10)")
    parser.add_argument("--latency", type=float, default=0.1,
                        help="seconds added to every answer (default 0.1)")
    args = parser.parse_args(argv)
    import ddstream
    from ddstream._cache import cache_usage
    from ddstream.testing import FakeDatadog

    days = 3 if args.quick else 30
    metrics = queries(args.metrics)
    probe = ddstream.DDStreamConfig(query=metrics[0], range_start=RANGE_END - days * DAY,
                                    range_end=RANGE_END, granularity=GRANULARITY,
                                    api_key=API_KEY, app_key=APP_KEY)
    chunks = [tuple(c) for c in ddstream.DDStream.plan(probe)]
    rows: list[tuple[str, int, float, Tally]] = []
    with tempfile.TemporaryDirectory(prefix="ddstream-bench-cache-") as folder, \
            tempfile.TemporaryDirectory(prefix="ddstream-bench-cache-multi-") as multi_folder, \
            FakeDatadog(latency=args.latency, cache_size=4096, cache_bytes=1 << 30) as fake:

        def measure(name: str, run: Callable[[], Tally]) -> None:
            fake.clear_log()
            t0 = time.perf_counter()
            tally = run()
            rows.append((name, len(fake.query_requests), time.perf_counter() - t0, tally))

        url = fake.url
        # Untimed: the fake renders each answer once and keeps it (cache_size, and cache_bytes
        # for both sets of answers, ~20 MB: a smaller bound evicted one set while the other was
        # served, and the next timed run paid for rendering again), so every timed run below is
        # served alike.
        ddstream_run(url, metrics, days, None)
        ddstream_multi_run(url, metrics, days, None)
        n = len(metrics)
        measure(f"ddstream, {n} streams, first run (cache empty)",
                lambda: ddstream_run(url, metrics, days, folder))
        measure(f"ddstream, {n} streams, second run (cache warm)",
                lambda: ddstream_run(url, metrics, days, folder))
        measure(f"ddstream, {n} streams, no cache",
                lambda: ddstream_run(url, metrics, days, None))
        measure(f"ddstream, one {n}-query stream, first run (cache empty)",
                lambda: ddstream_multi_run(url, metrics, days, multi_folder))
        measure(f"ddstream, one {n}-query stream, second run (cache warm)",
                lambda: ddstream_multi_run(url, metrics, days, multi_folder))
        measure(f"ddstream, one {n}-query stream, no cache",
                lambda: ddstream_multi_run(url, metrics, days, None))
        for name, make in (("datadog-api-client", make_datadog_api_client),
                           ("datadogpy", make_datadogpy)):
            try:
                make({"url": url, "api_key": API_KEY, "app_key": APP_KEY,
                      "rollup_query": "", "chunks": []})
            except ImportError:
                print(f"({name} is not installed: pip install -r bench/requirements.txt)")
                continue
            measure(f"{name} (no cache: fetches again)",
                    lambda make=make: peer_run(make, url, metrics, days, chunks))
        usage = cache_usage(folder)
        multi_usage = cache_usage(multi_folder)

    first = rows[0]
    print(f"\n{args.metrics} metrics x {days} d at {GRANULARITY} s, {len(chunks)} chunks each "
          f"(+{args.latency * 1000:g} ms per answer); cache after the runs: {usage.entries} "
          f"entries, {usage.bytes / 2**20:.1f} MiB ({args.metrics} streams), "
          f"{multi_usage.entries} entries, {multi_usage.bytes / 2**20:.1f} MiB (one stream)\n")
    print("| run | requests | wall s | wall vs first run | same data |")
    print("|---|---|---|---|---|")
    for name, requests, wall, tally in rows:
        same = tally.as_dict() == first[3].as_dict() or (
            tally.points == first[3].points and tally.nonnull == first[3].nonnull
            and abs(tally.value_sum - first[3].value_sum) <= 1e-9 * abs(first[3].value_sum))
        print(f"| {name} | {requests} | {wall:.2f} | {wall / first[2]:.3f}x | "
              f"{'yes' if same else 'NO'} |")
    return 0 if all(r[3].points == first[3].points for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
