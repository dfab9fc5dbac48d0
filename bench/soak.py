"""Soak: 10,000 chunks through a fake Datadog that misbehaves at random, checked against the truth.

    .venv/bin/python bench/soak.py                 # after scripts/install.sh; about two minutes
    .venv/bin/python bench/soak.py --chunks 2000 --probability 0.2 --rate-limit 300/5

The server (``ddstream.testing.FakeDatadog``) runs in its own process, so the peak RSS reported is
the client's alone. Two passes stream the same chunks with ``--streams`` streams in a thread pool
(one process-wide rate-limit budget): first from a well-behaved server (the truth), then with
``RandomFaults`` — 5xx bursts, HTML error pages, 429s with real headers, resets mid-body,
truncated bodies and JSON, hang-ups, slow bodies — on ``--probability`` of the requests. The
second pass must reproduce the first byte for byte (a SHA-256 over every column of every batch,
per stream, in order); the script prints the figures and exits 1 if anything differs or fails.

Not a unit test: it takes minutes, and its figures (retries, 429s, peak memory) are for reading.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

# Runs from a checkout without installing: python bench/soak.py (the package must be built).
_REPO = Path(__file__).resolve().parents[1]
if "ddstream" not in sys.modules and not os.environ.get("DDSTREAM_SOAK_INSTALLED_ONLY"):
    try:
        import ddstream  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(_REPO / "python"))

T0 = 1_699_747_200  # 2023-11-12T00:00:00Z, a granularity boundary
GRANULARITY = 60
CHUNK_SECONDS = 600  # ten buckets per chunk: many chunks, small bodies — requests are the load
QUERY = "avg:system.cpu.user{*} by {host}"
KEYS = {"api_key": "soak-api-key-0123456789", "app_key": "soak-app-key-0123456789"}


# -- the server process ---------------------------------------------------------------------------


def _serve(conn: Connection, rate_limit: tuple[int, float] | None, probability: float,
           seed: int, kinds: list[str]) -> None:
    """FakeDatadog in this process, driven by commands on ``conn``."""
    from ddstream import testing

    server = testing.FakeDatadog(rate_limit=rate_limit, cache_size=64)
    server.start()
    faults: testing.RandomFaults | None = None
    conn.send(server.url)
    while True:
        command = conn.recv()
        if command == "faults":
            faults = testing.RandomFaults(probability, seed=seed, kinds=kinds, slow_seconds=0.2)
            server.add_fault(faults)
        elif command == "reset":
            server.clear_faults()
            server.clear_log()
            server.rate_limit = rate_limit  # a fresh window
        elif command == "stats":
            records = server.query_requests
            statuses = Counter(r.status for r in records)
            windows = {server.rate_window(r.finished) for r in records}
            conn.send({
                "requests": len(records),
                "statuses": dict(statuses),
                "windows": len(windows),
                "injected": dict(faults.counts) if faults is not None else {},
                "max_concurrency": server.max_concurrency,
            })
        elif command == "stop":
            server.stop()
            conn.send("stopped")
            return


# -- the client (this process) --------------------------------------------------------------------


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _stream(url: str, first_chunk: int, chunks: int) -> tuple[str, int, int]:
    """Stream ``chunks`` chunks from ``first_chunk`` on; (digest, rows, batches)."""
    import ddstream as dd

    cfg = dd.DDStreamConfig(
        query=QUERY,
        base_url=url,
        range_start=T0 + first_chunk * CHUNK_SECONDS,
        range_end=T0 + (first_chunk + chunks) * CHUNK_SECONDS,
        granularity=GRANULARITY,
        chunk_seconds=CHUNK_SECONDS,
        max_retries=10,
        retry_backoff_ms=50,
        max_retry_wait_ms=120_000,
        request_timeout_ms=10_000,
        **KEYS,
    )
    digest = hashlib.sha256()
    rows = batches = 0
    with dd.DDStream(cfg) as stream:
        for batch in stream:
            digest.update(batch["chunk_index"].to_bytes(8, "little"))
            for name in ("timestamps", "avg", "min", "max", "sum", "series"):
                digest.update(batch[name].tobytes())
            digest.update("\0".join(batch["series_tags"]).encode())
            rows += len(batch["timestamps"])
            batches += 1
    return digest.hexdigest(), rows, batches


def _pass(url: str, chunks: int, streams: int) -> tuple[list[tuple[str, int, int]], float]:
    share = -(-chunks // streams)
    spans = [(i * share, min(share, chunks - i * share)) for i in range(streams)
             if chunks - i * share > 0]
    started = time.monotonic()
    with ThreadPoolExecutor(len(spans)) as pool:
        results = list(pool.map(lambda span: _stream(url, *span), spans))
    return results, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=4, help="streams in a thread pool")
    parser.add_argument("--probability", type=float, default=0.05,
                        help="share of requests that meet a fault (default 0.05)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-429", action="store_true", help="leave 429s out of the fault mix")
    parser.add_argument("--rate-limit", default=None, metavar="N/SECONDS",
                        help="the server's own limit, with real x-ratelimit headers")
    args = parser.parse_args(argv)

    from ddstream import testing

    rate_limit = None
    if args.rate_limit:
        n, _, seconds = args.rate_limit.partition("/")
        rate_limit = (int(n), float(seconds))
    kinds = [k for k in testing.RECOVERABLE_KINDS if not (args.no_429 and k == "429")]

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_serve, args=(theirs, rate_limit, args.probability,
                                                  args.seed, kinds), daemon=True)
    server.start()
    url = ours.recv()
    print(f"soak: {args.chunks} chunks of {CHUNK_SECONDS} s ({QUERY!r}, {GRANULARITY} s), "
          f"{args.streams} streams, faults on {args.probability:.0%} of requests "
          f"({', '.join(kinds)}), seed {args.seed}"
          + (f", server limit {args.rate_limit}" if rate_limit else ""))
    failures: list[str] = []
    try:
        baseline = _peak_rss_mib()
        truth, truth_seconds = _pass(url, args.chunks, args.streams)
        ours.send("stats")
        truth_stats = ours.recv()
        truth_rss = _peak_rss_mib()
        ours.send("reset")
        ours.send("faults")
        try:
            got, seconds = _pass(url, args.chunks, args.streams)
        except Exception as exc:  # a chunk that finally failed: report it, not a traceback
            failures.append(f"the faulty pass failed: {type(exc).__name__}: {exc}")
            got, seconds = [], float("nan")
        ours.send("stats")
        stats = ours.recv()
        peak = _peak_rss_mib()
    finally:
        ours.send("stop")
        ours.recv()
        server.join(10)

    batches = sum(b for _, _, b in truth)
    rows = sum(r for _, r, _ in truth)
    got_batches = sum(b for _, _, b in got)
    got_rows = sum(r for _, r, _ in got)
    if got and [g[0] for g in got] != [t[0] for t in truth]:
        failures.append("the output with faults differs from the fault-free output")
    if batches != args.chunks:
        failures.append(f"the fault-free pass delivered {batches} batches, not {args.chunks}")
    injected = sum(stats["injected"].values())
    injected_429 = stats["injected"].get("429", 0)
    server_429 = stats["statuses"].get(429, 0)
    retries = stats["requests"] - truth_stats["requests"]

    width = 34
    print()
    print(f"{'':{width}} {'fault-free':>12} {'with faults':>12}")
    print(f"{'batches (chunks) delivered':{width}} {batches:>12} {got_batches:>12}")
    print(f"{'rows delivered':{width}} {rows:>12} {got_rows:>12}")
    print(f"{'identical output (SHA-256)':{width}} {'':>12} "
          f"{'yes' if got and not failures else 'NO':>12}")
    print(f"{'requests':{width}} {truth_stats['requests']:>12} {stats['requests']:>12}")
    print(f"{'faults injected':{width}} {'':>12} {injected:>12}")
    print(f"{'retries (requests beyond 1/chunk)':{width}} {'':>12} {retries:>12}")
    print(f"{'429s seen (of them injected)':{width}} {truth_stats['statuses'].get(429, 0):>12} "
          f"{f'{server_429} ({injected_429})':>12}")
    if rate_limit:
        # The limiter's own 429s: what pacing is for. Injected ones say "spent" at random.
        print(f"{'429s from the server limit':{width}} {truth_stats['statuses'].get(429, 0):>12} "
              f"{server_429 - injected_429:>12}")
        print(f"{'server limit windows used':{width}} {truth_stats['windows']:>12} "
              f"{stats['windows']:>12}")
    print(f"{'wall time, s':{width}} {truth_seconds:>12.1f} {seconds:>12.1f}")
    print(f"{'chunks/s':{width}} {args.chunks / truth_seconds:>12.0f} "
          f"{args.chunks / seconds:>12.0f}")
    print(f"{'peak RSS of the client, MiB':{width}} {truth_rss:>12.1f} {peak:>12.1f}"
          f"   (at start: {baseline:.1f})")
    print(f"faults by kind: {dict(sorted(stats['injected'].items()))}")
    print(f"statuses with faults: {dict(sorted(stats['statuses'].items()))}")
    if retries < injected - stats["injected"].get("slow", 0):
        failures.append(f"fewer retries ({retries}) than faults that need one")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
