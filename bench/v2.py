"""Issue 15's benchmark: the same range and metrics through v1 and v2, by ddstream and by the
official client's ``query_timeseries_data``:
``python -m bench.v2 [--days N] [--hosts N] [--repeat N]``.

Scenario: ``a / b * 100`` with ``a = avg:system.cpu.user{*} by {host}`` and
``b = avg:system.cpu.idle{*} by {host}``, ``--days`` (30) at 60 s in one-day chunks, against a
FakeDatadog with ``--hosts`` (20) hosts on 127.0.0.1. Clients, each in a process of its own
so that its CPU time and peak RSS are its own:

- ``ddstream-c v1``: the C library (``bench/v2_driver.c``) reading the expression through v1
  (four statistics a bucket: four values a point);
- ``ddstream-c v2``: the same through v2 (named queries and the formula: one value a point);
- ``ddstream-py v2``: the Python package (``DDStream``, batches as numpy arrays) over v2;
- ``datadog-api-client v2``: ``MetricsApi.query_timeseries_data`` for the same chunks, each
  answer turned into numpy arrays as a user would.

The fake keeps every answer of the run in its cache (``cache_bytes``), so that the second round
(the one reported) measures the clients, not the fake computing answers.

Figures per client: requests (the server's log), wall, CPU, peak RSS, points (values delivered)
and points per CPU-second. The v2 clients must agree on the non-null values and their sum.
Prints a JSON document (and writes it with ``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400
T0 = 1_793_491_200  # 2026-11-01T00:00:00Z
QUERIES = {"a": "avg:system.cpu.user{*} by {host}", "b": "avg:system.cpu.idle{*} by {host}"}
FORMULA = "a / b * 100"
V1_EXPRESSION = "avg:system.cpu.user{*} by {host} / avg:system.cpu.idle{*} by {host} * 100"
API_KEY, APP_KEY = "bench-api-key", "bench-app-key"


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def official(spec: dict[str, Any]) -> dict[str, Any]:
    """The official client's loop (run in its own process by ``--official``)."""
    import numpy as np
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.v2.api.metrics_api import MetricsApi
    from datadog_api_client.v2.model.metrics_data_source import MetricsDataSource
    from datadog_api_client.v2.model.metrics_timeseries_query import MetricsTimeseriesQuery
    from datadog_api_client.v2.model.query_formula import QueryFormula
    from datadog_api_client.v2.model.timeseries_formula_query_request import (
        TimeseriesFormulaQueryRequest,
    )
    from datadog_api_client.v2.model.timeseries_formula_request import TimeseriesFormulaRequest
    from datadog_api_client.v2.model.timeseries_formula_request_attributes import (
        TimeseriesFormulaRequestAttributes,
    )
    from datadog_api_client.v2.model.timeseries_formula_request_type import (
        TimeseriesFormulaRequestType,
    )

    configuration = Configuration(host=spec["url"], enable_retry=True)
    configuration.api_key["apiKeyAuth"] = API_KEY
    configuration.api_key["appKeyAuth"] = APP_KEY
    client = ApiClient(configuration)
    api = MetricsApi(client)
    started, cpu0 = time.monotonic(), time.process_time()
    points = nonnull = 0
    total = 0.0
    for start in range(spec["start"], spec["end"], spec["chunk"]):
        end = min(start + spec["chunk"], spec["end"])
        body = TimeseriesFormulaQueryRequest(
            data=TimeseriesFormulaRequest(
                type=TimeseriesFormulaRequestType.TIMESERIES_REQUEST,
                attributes=TimeseriesFormulaRequestAttributes(
                    _from=start * 1000,
                    to=end * 1000,
                    interval=spec["granularity"] * 1000,
                    queries=[
                        MetricsTimeseriesQuery(
                            data_source=MetricsDataSource.METRICS, name=name, query=query
                        )
                        for name, query in QUERIES.items()
                    ],
                    formulas=[QueryFormula(formula=FORMULA)],
                ),
            )
        )
        response = api.query_timeseries_data(body=body)
        attributes = response.data.attributes
        # The model wraps each list (ModelSimple): its items are in .value.
        times = np.asarray(attributes.times.value, dtype=np.int64)
        for row in attributes.values.value:
            items = row.value if hasattr(row, "value") else row
            values = np.array([math.nan if v is None else v for v in items], dtype=np.float64)
            # A user densifies onto the grid, as ddstream does: v2 omits empty buckets.
            dense = np.full((end - start) // spec["granularity"], math.nan)
            dense[(times // 1000 - start) // spec["granularity"]] = values
            points += dense.size
            filled = dense[~np.isnan(dense)]
            nonnull += filled.size
            total += float(filled.sum())
    client.close()
    return {
        "client": "datadog-api-client v2",
        "ok": True,
        "wall_s": round(time.monotonic() - started, 3),
        "cpu_s": round(time.process_time() - cpu0, 3),
        "peak_rss_kb": _peak_rss_kb(),
        "points": points,
        "nonnull": nonnull,
        "sum": total,
    }


def ddstream_py(spec: dict[str, Any]) -> dict[str, Any]:
    """The Python package's loop (run in its own process by ``--ddstream-py``)."""
    import numpy as np

    import ddstream as dd

    config = dd.DDStreamConfig(
        api_key=API_KEY,
        app_key=APP_KEY,
        base_url=spec["url"],
        queries=dict(QUERIES),
        formulas=[FORMULA],
        range_start=spec["start"],
        range_end=spec["end"],
        granularity=spec["granularity"],
        chunk_seconds=spec["chunk"],
    )
    # Loading the library (cffi reading the header) and the stream's modules (lazy, PEP 562) is
    # the package's import, done before the clock starts as the official client's imports are;
    # so is libcurl's one-time global set-up, in the first open (as bench/client.py and the C
    # driver do): a stream without prefetch fetches nothing.
    dd.library_version()
    stream_class = dd.DDStream
    stream_class(config.copy(enable_prefetch=False)).close()
    started, cpu0 = time.monotonic(), time.process_time()
    points = nonnull = 0
    total = 0.0
    with stream_class(config) as stream:
        for batch in stream:
            values = batch["value"]
            filled = values[~np.isnan(values)]
            points += values.size
            nonnull += filled.size
            total += float(filled.sum())
    return {
        "client": "ddstream-py v2",
        "ok": True,
        "wall_s": round(time.monotonic() - started, 3),
        "cpu_s": round(time.process_time() - cpu0, 3),
        "peak_rss_kb": _peak_rss_kb(),
        "points": points,
        "nonnull": nonnull,
        "sum": total,
    }


def _parse_only(program: str, hosts: int) -> dict[str, Any] | None:
    """v1 and v2 parsers alone, per point, on bodies of one chunk's shape (hosts x 1440)."""
    if not Path(program).exists():
        return None
    done = subprocess.run([program, str(hosts), "1440", "50"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.v2")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--driver", default=str(ROOT / "build/tests/c/bench_v2_driver"))
    parser.add_argument(
        "--parse-speed",
        default=str(ROOT / "build/tests/c/bench_parse_speed"),
        help="bench/parse_speed.c's program: the parsers alone on one chunk's shape (skipped "
        "when not built)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="measured rounds (median CPU)")
    parser.add_argument("--out")
    parser.add_argument("--official", help=argparse.SUPPRESS)
    parser.add_argument("--ddstream-py", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.official:
        print(json.dumps(official(json.loads(args.official))))
        return 0
    if args.ddstream_py:
        print(json.dumps(ddstream_py(json.loads(args.ddstream_py))))
        return 0

    from ddstream.testing import FakeDatadog

    start, end, granularity, chunk = T0, T0 + args.days * DAY, 60, DAY
    env = dict(os.environ, DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    results: list[dict[str, Any]] = []
    # Every answer of a round cached (v1's four statistics are the bulk: about 1.3 MB a day at
    # 20 hosts), so that the second round's wall and CPU are the clients'.
    cache_bytes = max(64 << 20, args.days * args.hosts * (4 << 20))
    with FakeDatadog(hosts=args.hosts, api_keys={API_KEY}, app_keys={APP_KEY},
                     cache_size=max(256, 4 * args.days),
                     cache_bytes=cache_bytes) as server:  # fmt: skip
        runs: list[tuple[str, list[str]]] = [
            (api, [args.driver, server.url, api, str(start), str(end), str(granularity),
                   str(chunk), V1_EXPRESSION, *(f"{n}={q}" for n, q in QUERIES.items()),
                   FORMULA])
            for api in ("v1", "v2")
        ]  # fmt: skip
        spec = {"url": server.url, "start": start, "end": end, "chunk": chunk,
                "granularity": granularity}  # fmt: skip
        runs.append(("ddstream-py", [sys.executable, "-m", "bench.v2", "--ddstream-py",
                                     json.dumps(spec)]))  # fmt: skip
        runs.append(("official", [sys.executable, "-m", "bench.v2", "--official",
                                  json.dumps(spec)]))  # fmt: skip
        # The first round warms the server's answer cache for every client; of the --repeat
        # rounds after it, each client's run of median CPU is reported (a shared machine).
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in runs}
        for round_index in range(1 + args.repeat):
            for name, argv in runs:
                server.clear_log()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True,
                                      check=False)  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(f"{argv[0]} failed: {done.stdout}{done.stderr}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                row["process_cpu_s"] = round(
                    (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 3
                )
                row["requests"] = len(server.query_requests)
                row["points_per_cpu_s"] = round(row["points"] / max(row["cpu_s"], 1e-9))
                if round_index > 0:
                    rounds[name].append(row)
        for name, _ in runs:
            by_cpu = sorted(rounds[name], key=lambda r: float(r["cpu_s"]))
            row = by_cpu[(len(by_cpu) - 1) // 2]
            row["rounds"] = len(by_cpu)
            row["cpu_s_all_rounds"] = [r["cpu_s"] for r in rounds[name]]
            results.append(row)
    official_rate = next(
        r["points_per_cpu_s"] for r in results if r["client"].startswith("datadog")
    )
    for row in results:
        row["cpu_ns_per_point"] = round(row["cpu_s"] / max(row["points"], 1) * 1e9)
        row["x_official_points_per_cpu_s"] = round(row["points_per_cpu_s"] / official_rate, 1)
    v2 = [row for row in results if row["client"].endswith("v2")]
    agree = len({(row["nonnull"], round(row["sum"], 3)) for row in v2}) == 1
    document = {
        "scenario": {
            "formula": FORMULA,
            "queries": QUERIES,
            "v1_expression": V1_EXPRESSION,
            "days": args.days,
            "granularity_s": granularity,
            "chunk_s": chunk,
            "hosts": args.hosts,
        },
        "v2_clients_agree": agree,
        "parse_only": _parse_only(args.parse_speed, args.hosts),
        "results": results,
    }
    text = json.dumps(document, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
