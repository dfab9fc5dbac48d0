"""One client's run of one scenario, in a process of its own: ``python -m bench.client SPEC``.

The harness starts one such process per client and run, so that the peak RSS (``ru_maxrss``) and
the CPU time it reads for the child belong to that client alone. ``SPEC`` is a JSON object (see
``bench.harness.client_spec``). The process:

1. imports its client library and builds the client (not timed: a long-running user program
   pays that once);
2. writes ``{"ready": …}`` on stdout and waits for a ``go`` line on stdin — meanwhile the
   harness resets the server (latency, rate-limit window, request log);
3. fetches every chunk of the range, turning each answer into numpy arrays the way a user of that
   client would, and folds the arrays into a :class:`Tally` (counts and sums that every client
   must agree on, so a client that skipped or repeated data is caught);
4. writes one JSON line with its own figures (wall time and CPU time around step 3) and exits.

Each peer sends exactly the requests ddstream sends: the same comma-joined four-rollup query per
chunk, over the same chunks, ``to`` = chunk end - 1 (Datadog's ``to`` is inclusive). With several
queries (``bench.multiquery``: the spec has ``queries`` and ``rollup_queries``) ddstream gets them
all as ``DDStreamConfig(queries=…)`` and packs them into its requests, while a peer sends what its
user would: one four-rollup request per query per chunk.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ROLLUPS = ("avg", "min", "max", "sum")

# How the datadogpy loop backs off after a 429 (it cannot see the x-ratelimit-* headers: with
# its default mute mode an error answer comes back as the bare ``{"errors": [...]}`` dict). The
# same schedule datadog-api-client falls back to when a 429 carries no reset header: 2, 4, 8 s.
DATADOGPY_BACKOFF_S = 2.0
DATADOGPY_MAX_RETRIES = 6


class Tally:
    """What a client delivered: points (timestamp-value pairs), non-null values, and sums."""

    def __init__(self) -> None:
        self.batches = 0  # answers (chunks) turned into arrays
        self.points = 0  # timestamp-value pairs, null values included
        self.nonnull = 0
        self.value_sum = 0.0
        self.ts_sum = 0  # sum of the timestamps of the non-null values, epoch seconds

    def add(
        self, timestamps: np.ndarray[Any, Any], columns: Sequence[np.ndarray[Any, Any]]
    ) -> None:
        """One series' rows of one chunk: int64 epoch seconds and one float64 array per rollup."""
        n = len(timestamps)
        for values in columns:
            present = ~np.isnan(values)
            self.points += n
            self.nonnull += int(np.count_nonzero(present))
            self.value_sum += float(np.sum(values, where=present))
            self.ts_sum += int(np.sum(timestamps, where=present))

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "points": self.points,
            "nonnull": self.nonnull,
            "value_sum": self.value_sum,
            "ts_sum": self.ts_sum,
        }


# -- the clients --------------------------------------------------------------------------------
# Each maker does the untimed set-up and returns the timed loop.

Loop = Callable[[Tally], dict[str, Any]]


def make_ddstream(spec: dict[str, Any]) -> Loop:
    import ddstream

    # Several queries: one stream of them all (the multi-query benchmark); else the one query.
    which = {"queries": spec["queries"]} if spec.get("queries") else {"query": spec["query"]}
    cfg = ddstream.DDStreamConfig(
        **which,
        range_start=spec["range_start"],
        range_end=spec["range_end"],
        granularity=spec["granularity"],
        chunk_seconds=spec["chunk_seconds"],
        base_url=spec["url"],
        api_key=spec["api_key"],
        app_key=spec["app_key"],
    )
    for name, value in spec.get("ddstream_options", {}).items():
        setattr(cfg, name, value)
    light = bool(spec.get("light"))
    # libcurl's one-time global set-up happens in the first open: pay it here, untimed, as the
    # peers pay for importing their HTTP stacks. Without prefetch nothing is fetched.
    ddstream.DDStream(cfg.copy(enable_prefetch=False)).close()

    def run(tally: Tally) -> dict[str, Any]:
        with ddstream.DDStream(cfg) as stream:
            for batch in stream:
                tally.batches += 1
                if light:  # the Python-overhead figure: receive the batch, touch nothing
                    tally.points += 4 * len(batch["timestamps"])
                    continue
                tally.add(batch["timestamps"], [batch[name] for name in ROLLUPS])
        return {}

    return run


def _columns_from_series(
    series: list[tuple[int, tuple[str, ...], np.ndarray[Any, Any]]], tally: Tally
) -> None:
    """``(query_index, tag_set, pointlist as an (n, 2) float64 array)`` per series of one answer →
    per tag set: ``timestamps`` (int64 s) and the four rollups, as a user would key them."""
    by_tags: dict[tuple[str, ...], dict[str, np.ndarray[Any, Any]]] = {}
    for index, tags, points in series:
        columns = by_tags.setdefault(tags, {})
        if "timestamps" not in columns:
            columns["timestamps"] = (points[:, 0] // 1000).astype(np.int64)
        columns[ROLLUPS[index]] = points[:, 1]
    tally.batches += 1
    for columns in by_tags.values():
        tally.add(columns["timestamps"], [columns[name] for name in ROLLUPS if name in columns])


def make_datadog_api_client(spec: dict[str, Any]) -> Loop:
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.v1.api.metrics_api import MetricsApi

    # The documented way to survive rate limits: enable_retry waits x-ratelimit-reset on a 429.
    configuration = Configuration(host=spec["url"], enable_retry=True)
    configuration.api_key["apiKeyAuth"] = spec["api_key"]
    configuration.api_key["appKeyAuth"] = spec["app_key"]
    client = ApiClient(configuration)
    api = MetricsApi(client)
    queries = spec.get("rollup_queries") or [spec["rollup_query"]]
    chunks = spec["chunks"]

    def run(tally: Tally) -> dict[str, Any]:
        for (start, end), query in ((chunk, q) for chunk in chunks for q in queries):
            response = api.query_metrics(_from=start, to=end - 1, query=query)
            series = [
                (
                    int(s.query_index),
                    tuple(s.tag_set),
                    np.array([point.value for point in s.pointlist], dtype=np.float64).reshape(
                        -1, 2
                    ),
                )
                for s in response.series
            ]
            _columns_from_series(series, tally)
        client.close()
        return {}

    return run


def make_datadogpy(spec: dict[str, Any]) -> Loop:
    from datadog import api, initialize

    initialize(api_key=spec["api_key"], app_key=spec["app_key"], api_host=spec["url"])
    queries = spec.get("rollup_queries") or [spec["rollup_query"]]
    chunks = spec["chunks"]

    def run(tally: Tally) -> dict[str, Any]:
        retries = 0
        for (start, end), query in ((chunk, q) for chunk in chunks for q in queries):
            delay = DATADOGPY_BACKOFF_S
            for attempt in range(DATADOGPY_MAX_RETRIES + 1):
                response = api.Metric.query(start=start, end=end - 1, query=query)
                if "series" in response:
                    break
                errors = response.get("errors") or []
                limited = any("rate limit" in str(error).lower() for error in errors)
                if not limited or attempt == DATADOGPY_MAX_RETRIES:
                    raise RuntimeError(f"datadogpy: {errors}")
                retries += 1
                time.sleep(delay)
                delay *= 2
            series = [
                (
                    int(s["query_index"]),
                    tuple(s["tag_set"]),
                    np.array(s["pointlist"], dtype=np.float64).reshape(-1, 2),
                )
                for s in response["series"]
            ]
            _columns_from_series(series, tally)
        return {"client_retries": retries}

    return run


CLIENTS: dict[str, Callable[[dict[str, Any]], Loop]] = {
    "ddstream": make_ddstream,
    "datadog-api-client": make_datadog_api_client,
    "datadogpy": make_datadogpy,
}


def _cpu(usage: resource.struct_rusage) -> tuple[float, float]:
    return usage.ru_utime, usage.ru_stime


def peak_rss_kb() -> int:
    """This process's peak RSS since it started (``VmHWM``). Not ``ru_maxrss``: across the exec
    that starts a child, the kernel carries over the high-water mark of the process that forked
    it, so every client would show at least the harness's own size."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    run = CLIENTS[spec["client"]](spec)
    ready_rss_kb = peak_rss_kb()
    sys.stdout.write(json.dumps({"ready": {"rss_kb": ready_rss_kb}}) + "\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        return 2
    tally = Tally()
    extra: dict[str, Any] = {}
    error = None
    before = resource.getrusage(resource.RUSAGE_SELF)
    thread_before = time.thread_time()
    t0 = time.perf_counter()
    try:
        extra = run(tally)
    except Exception as exc:  # reported, not hidden: the harness marks the run failed
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    thread_cpu = time.thread_time() - thread_before
    after = resource.getrusage(resource.RUSAGE_SELF)
    user0, sys0 = _cpu(before)
    user1, sys1 = _cpu(after)
    result = {
        "wall_s": wall,
        "cpu_user_s": user1 - user0,
        "cpu_sys_s": sys1 - sys0,
        "cpu_s": (user1 - user0) + (sys1 - sys0),
        "consumer_thread_cpu_s": thread_cpu,
        "ready_rss_kb": ready_rss_kb,
        "peak_rss_kb": peak_rss_kb(),
        "error": error,
        **tally.as_dict(),
        **extra,
    }
    if not math.isfinite(result["value_sum"]):
        result["value_sum"] = None
    sys.stdout.write(json.dumps({"result": result}) + "\n")
    sys.stdout.flush()
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
