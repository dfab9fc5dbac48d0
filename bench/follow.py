"""Follow mode: requests per new chunk, latency from settle to delivery, memory over many chunks.

    .venv/bin/python bench/follow.py                  # after scripts/install.sh; under a minute
    .venv/bin/python bench/follow.py --chunks 2000    # a shorter long run

Two runs against a FakeDatadog sharing a FakeClock with the stream (``DDStream(..., clock=)``,
``FakeDatadog(clock=)``), so simulated time costs no real time:

* **hour**: half an hour of history, then a simulated hour in 10-second steps at 60 s buckets in
  60 s chunks, settled after 120 s. Every step that makes no chunk due must send no request;
  every chunk that becomes due must cost exactly one. Latency is the real time from the clock
  step that settled a chunk (the stream is told through ``clock_changed``) to ``next()``
  returning its batch.
* **hour, 10 queries**: the same hour with ONE stream of 10 queries (``queries=``): their 40
  sub-queries are packed into 2 requests a chunk, so every due chunk must cost exactly 2.
* **long**: ``--chunks`` chunks (default 10,000), one clock step per chunk; the process's
  resident memory (``VmRSS``) is printed at the start, after 10 % (warm), at 50 % and at the
  end. The fake runs in this process (it must read the same clock), with its answer cache and
  its request log kept small, so what grows would be the stream's.

Prints a Markdown table and exits 1 when a target is missed (one request per chunk, none early).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if "ddstream" not in sys.modules:
    try:
        import ddstream  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(_REPO / "python"))

import ddstream as dd  # noqa: E402
from ddstream.testing import FakeClock, FakeDatadog  # noqa: E402

START = 1_699_747_200  # 2023-11-12T00:00:00Z
QUERY = "avg:system.cpu.user{*}"
SEVERAL = [f"avg:bench.follow.metric{i}{{*}}" for i in range(10)]
SETTLE = 120


def rss_mib() -> float:
    """Resident memory now (not the peak), MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_stream(server: FakeDatadog, clock: FakeClock, step: int,
                queries: list[str] | None = None) -> dd.DDStream[dd.Batch]:
    which = {"queries": queries} if queries else {"query": QUERY}
    return dd.DDStream(**which, start=START, end=None, granularity=60, chunk_seconds=step,
                       settle_seconds=SETTLE, api_key="bench", app_key="bench",
                       base_url=server.url, max_retries=0, clock=clock)


def requests_per_chunk(queries: list[str] | None) -> int:
    which = {"queries": queries} if queries else {"query": QUERY}
    report = dd.explain(**which, range_start=START, range_end=START + 60, granularity=60,
                        chunk_seconds=60)
    return len(report["requests"])


def hour(queries: list[str] | None = None) -> dict[str, float]:
    step = 60
    per_chunk = requests_per_chunk(queries)
    clock = FakeClock(START + 30 * step + SETTLE)
    with FakeDatadog(clock=clock) as server, \
            open_stream(server, clock, step, queries) as stream:
        history = stream.chunk_count
        for _ in range(history):
            next(stream)
        requests_before = len(server.query_requests)
        early = 0
        latencies: list[float] = []
        delivered = history
        for _ in range(360):  # an hour in 10 s steps
            clock.advance(10)
            stepped = time.perf_counter()
            due = int((clock() - SETTLE - START) // step)
            if due > delivered:
                batch = next(stream)
                latencies.append(time.perf_counter() - stepped)
                assert batch["chunk_index"] == delivered
                delivered += 1
            elif len(server.query_requests) - requests_before != (delivered - history) * per_chunk:
                early += 1
        new = delivered - history
        requests = len(server.query_requests) - requests_before
    return {"history": history, "new": new, "requests": requests, "early": early,
            "per_chunk": per_chunk,
            "p50_ms": statistics.median(latencies) * 1000,
            "max_ms": max(latencies) * 1000}


def long_run(chunks: int) -> dict[str, float]:
    step = 60
    clock = FakeClock(START + SETTLE)
    start_rss = rss_mib()
    with FakeDatadog(clock=clock, cache_size=8, cache_bytes=1 << 20) as server, \
            open_stream(server, clock, step) as stream:
        requests = 0
        warm_rss = half_rss = float("nan")
        latencies = [0.0] * chunks  # allocated up front: the list is not what grows
        began = time.perf_counter()
        for index in range(chunks):
            clock.advance(step)
            stepped = time.perf_counter()
            batch = next(stream)
            latencies[index] = time.perf_counter() - stepped
            assert batch["chunk_index"] == index
            if index % 500 == 499:  # the fake's log is the fake's memory, not the stream's
                requests += len(server.query_requests)
                server.clear_log()
            if index == chunks // 10:
                warm_rss = rss_mib()
            if index == chunks // 2:
                half_rss = rss_mib()
        requests += len(server.query_requests)
        took = time.perf_counter() - began
    return {"chunks": chunks, "requests": requests, "start_rss": start_rss, "warm_rss": warm_rss,
            "half_rss": half_rss, "end_rss": rss_mib(),
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000,
            "seconds": took}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    args = parser.parse_args()
    h = hour()
    several = hour(SEVERAL)
    long = long_run(args.chunks)
    print("| run | chunks | requests | requests/chunk | early requests | settle->delivery "
          "p50 | max/p99 | RSS start / 10 % / 50 % / end |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| simulated hour (60 s chunks, after {h['history']:.0f} of history) | {h['new']:.0f} "
          f"| {h['requests']:.0f} | {h['requests'] / h['new']:.2f} | {h['early']:.0f} "
          f"| {h['p50_ms']:.1f} ms | {h['max_ms']:.1f} ms | - |")
    print(f"| simulated hour, one stream of {len(SEVERAL)} queries (after "
          f"{several['history']:.0f} of history) | {several['new']:.0f} "
          f"| {several['requests']:.0f} | {several['requests'] / several['new']:.2f} "
          f"| {several['early']:.0f} | {several['p50_ms']:.1f} ms "
          f"| {several['max_ms']:.1f} ms | - |")
    print(f"| {long['chunks']:.0f} chunks ({long['seconds']:.1f} s real) | {long['chunks']:.0f} "
          f"| {long['requests']:.0f} | {long['requests'] / long['chunks']:.2f} | - "
          f"| {long['p50_ms']:.1f} ms | {long['p99_ms']:.1f} ms (p99) "
          f"| {long['start_rss']:.1f} / {long['warm_rss']:.1f} / {long['half_rss']:.1f} / "
          f"{long['end_rss']:.1f} MiB |")
    ok = (h["requests"] == h["new"] and h["early"] == 0 and several["early"] == 0
          and several["requests"] == several["new"] * several["per_chunk"] == several["new"] * 2
          and long["requests"] == long["chunks"])
    if not ok:
        print("follow bench: a target was missed (one request per chunk, two for the 10 "
              "queries, none early)",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
