"""Many queries, few requests (issue 14): ``python -m bench.multiquery [--quick]``.

The scenario: 10 metrics over 30 days at 60 s, five of them grouped by host — what a user
exporting a dashboard's worth of metrics asks for. Requests are the scarce resource (Datadog
allows about 1,600 an hour), so the figures are requests and the wall time under a rate limit:

* **requests** sent by ddstream, given all ten as ``DDStreamConfig(queries=[…])``, against the
  floor ``ceil(chunks) x ceil(sub-queries / 35)`` (a chunk holds at most 1,500 points per series;
  each query is four sub-queries, avg/min/max/sum; Datadog's own Cluster Agent packs at most 35
  sub-queries a request) and against what a user of each official client sends — one
  four-rollup request per metric per chunk, datadog-api-client's ``MetricsApi.query_metrics``
  and datadogpy's ``api.Metric.query``, driven as ``bench.client`` drives them;
* **wall time** of the same under a limit of 20 requests per 10 s (the fake's rate limiter, with
  real ``x-ratelimit-*`` headers and 429s), against the floor's wall: the windows the floor's
  requests need, ``(ceil(floor / 20) - 1) x 10 s``.

Each client runs twice in its own process (``bench.client``): once without a limit (requests,
points; this also renders every answer into the server's cache, so the limited run measures
waiting, not the fake's Python) and once under the limit. The tally of points, non-null values
and their sum must agree between clients (the same data, delivered once). ``--quick``: 3 days
under 4 requests per 2 s. Writes ``bench/results/multiquery-latest.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .harness import (
    API_KEY,
    APP_KEY,
    PEERS,
    REPO,
    Server,
    machine,
    now_utc,
    plan,
    rollup_query,
    run_child,
    source,
    versions,
)
from .scenarios import MAX_POINTS, Scenario

#: Sub-queries per request at most: what Datadog's Cluster Agent packs (shared/DATADOG.md).
PACK_LIMIT = 35
STATISTICS = 4  # avg, min, max, sum: one sub-query each
METRICS = 10
GROUPED = 5
CLIENTS = ("ddstream", *PEERS)
DEFAULT_JSON = REPO / "bench" / "results" / "multiquery-latest.json"


def queries() -> list[str]:
    """Ten metrics, the last five grouped by host."""
    return [
        f"avg:bench.metric.{n:02d}{{*}}" + (" by {host}" if n >= METRICS - GROUPED else "")
        for n in range(METRICS)
    ]


def scenario(quick: bool) -> Scenario:
    full = Scenario(
        "mq",
        note="10 metrics, 5 by host",
        query=queries()[0],
        days=30,
        granularity=60,
        chunk_seconds=0,
        hosts=3,
        rate_limit=(20, 10.0),
    )
    return replace(full, days=3, rate_limit=(4, 2.0)) if quick else full


def floor_chunks(s: Scenario) -> int:
    """``ceil(chunks)``: the range over the longest chunk the point cap allows."""
    return -(-(s.range_end - s.range_start) // (MAX_POINTS * s.granularity))


def floor_requests(chunks: int, subqueries: int) -> int:
    return chunks * -(-subqueries // PACK_LIMIT)


def floor_wall(requests: int, limit: tuple[int, float]) -> float:
    """Seconds a rate limit of ``limit[0]`` requests per ``limit[1]`` s forces on ``requests``
    requests sent as early as allowed: every window but the last is waited out."""
    return (math.ceil(requests / limit[0]) - 1) * limit[1]


def ddstream_supports_queries() -> bool:
    import ddstream

    return "queries" in getattr(ddstream.DDStreamConfig, "__slots__", ())


def client_argv(client: str, s: Scenario, url: str, chunks: list[tuple[int, int]]) -> list[str]:
    spec = {
        "client": client,
        "url": url,
        "api_key": API_KEY,
        "app_key": APP_KEY,
        "query": queries()[0],
        "queries": queries() if client == "ddstream" else [],
        "rollup_query": rollup_query(queries()[0], s.granularity),
        "rollup_queries": [rollup_query(q, s.granularity) for q in queries()],
        "range_start": s.range_start,
        "range_end": s.range_end,
        "granularity": s.granularity,
        "chunk_seconds": s.chunk_seconds,
        "chunks": chunks,
        "light": False,
        "ddstream_options": {},
    }
    return [sys.executable, "-m", "bench.client", json.dumps(spec)]


def run(quick: bool, clients: list[str], timeout: float) -> dict[str, Any]:
    s = scenario(quick)
    assert s.rate_limit is not None
    chunks = plan(s, {})  # ddstream's own plan (chunk_seconds=0): every client walks it
    subqueries = METRICS * STATISTICS
    floor = floor_requests(floor_chunks(s), subqueries)
    results: dict[str, Any] = {
        "created_utc": now_utc(),
        "quick": quick,
        "machine": machine(),
        "versions": versions(),
        "source": source(),
        "scenario": {
            "title": f"{s.days:g} d x {METRICS} metrics ({GROUPED} by host, {s.hosts} hosts), "
            f"{s.granularity} s, {len(chunks)} chunks",
            "queries": queries(),
            "range_start": s.range_start,
            "range_end": s.range_end,
            "granularity": s.granularity,
            "rate_limit": list(s.rate_limit),
            "chunks": len(chunks),
            "subqueries_per_chunk": subqueries,
            "pack_limit": PACK_LIMIT,
        },
        "floor": {"requests": floor, "wall_s": floor_wall(floor, s.rate_limit)},
        "clients": {},
        "problems": [],
    }
    unlimited = replace(s, rate_limit=None)
    with Server(s.hosts) as server:
        for client in clients:
            if client == "ddstream" and not ddstream_supports_queries():
                results["clients"][client] = {
                    "ok": False,
                    "error": "this ddstream has no DDStreamConfig.queries (issue 14 not merged)",
                }
                _progress(f"   {client}: skipped, no DDStreamConfig.queries in this build")
                continue
            argv = client_argv(client, s, server.url, chunks)
            free = run_child(argv, server, unlimited, client, timeout)
            _progress(f"   {client} (no limit): {_describe(free.figures)}")
            limited = run_child(argv, server, s, client, timeout) if free.ok else free
            _progress(f"   {client} ({s.rate_limit[0]} req / {s.rate_limit[1]:g} s): "
                      f"{_describe(limited.figures)}")  # fmt: skip
            results["clients"][client] = {
                "ok": free.ok and limited.ok,
                "unlimited": free.figures,
                "limited": limited.figures,
                "stderr": "" if free.ok and limited.ok else (free.stderr + limited.stderr),
            }
    results["summary"] = summarize(results)
    results["problems"] = consistency(results)
    return results


def reuse(results: dict[str, Any], path: Path) -> None:
    """Add the clients of an earlier run of the same scenario that this run did not run."""
    with open(path, encoding="utf-8") as old_file:
        old = json.load(old_file)
    if old.get("scenario") != results["scenario"]:
        raise SystemExit(f"--reuse {path}: a different scenario")
    taken = [c for c in old.get("clients", {}) if c not in results["clients"]]
    for client in taken:
        results["clients"][client] = {**old["clients"][client], "reused_from": str(path),
                                      "reused_created_utc": old.get("created_utc")}  # fmt: skip
    results["summary"] = summarize(results)
    results["problems"] = consistency(results)
    _progress(f"   reused from {path}: {', '.join(taken) or 'nothing'}")


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    floor = results["floor"]
    summary: dict[str, Any] = {}
    for client, entry in results["clients"].items():
        if not entry.get("ok"):
            summary[client] = {"ok": False, "error": entry.get("error") or "failed"}
            continue
        free, limited = entry["unlimited"], entry["limited"]
        summary[client] = {
            "ok": True,
            "requests": free["requests"],
            "requests_vs_floor": free["requests"] / floor["requests"],
            "max_subqueries": free.get("max_subqueries"),
            "max_uri_bytes": free.get("max_uri_bytes"),
            "wall_unlimited_s": free["wall_s"],
            "wall_limited_s": limited["wall_s"],
            "status_429": limited["status_429"],
            # Against the floor's wall: the windows the floor's requests must wait out. (Not plus
            # the unlimited run's wall: that run also had the server render every answer.)
            "wall_vs_floor": limited["wall_s"] / floor["wall_s"] if floor["wall_s"] else None,
            "points": free["points"],
        }
    mine = summary.get("ddstream", {})
    for peer in PEERS:
        theirs = summary.get(peer, {})
        if mine.get("ok") and theirs.get("ok"):
            mine[f"fewer_requests_than_{peer}"] = theirs["requests"] / mine["requests"]
    return summary


def consistency(results: dict[str, Any]) -> list[str]:
    """Every client that finished delivered the same data (counts exactly, sums closely)."""
    problems: list[str] = []
    tallies = {
        client: entry["unlimited"]
        for client, entry in results["clients"].items()
        if entry.get("ok")
    }
    if not tallies:
        return ["no client finished"]
    reference_client, reference = next(iter(tallies.items()))
    for client, figures in tallies.items():
        for key in ("points", "nonnull", "ts_sum"):
            if figures.get(key) != reference.get(key):
                problems.append(f"{client} {key} {figures.get(key)} != {reference_client}'s "
                                f"{reference.get(key)}")  # fmt: skip
        a, b = figures.get("value_sum"), reference.get("value_sum")
        if a is None or b is None or abs(a - b) > 1e-9 * max(1.0, abs(b)):
            problems.append(f"{client} value_sum {a} != {reference_client}'s {b}")
    for client, entry in results["clients"].items():
        if not entry.get("ok"):
            problems.append(f"{client}: {entry.get('error') or 'failed'}")
    return problems


def render(results: dict[str, Any]) -> str:
    scenario_info, floor = results["scenario"], results["floor"]
    limit = scenario_info["rate_limit"]
    lines = [
        f"## Several queries: {scenario_info['title']}",
        "",
        f"Floor: {scenario_info['chunks']} chunks x ceil({scenario_info['subqueries_per_chunk']}"
        f" sub-queries / {PACK_LIMIT}) = {floor['requests']} requests; under {limit[0]} req / "
        f"{limit[1]:g} s the floor waits {floor['wall_s']:g} s.",
        "",
        "| client | requests | vs floor | sub-queries/request (max) | wall, no limit s | "
        "wall, limited s | 429s | limited wall / floor's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for client, row in results["summary"].items():
        if not row.get("ok"):
            lines.append(f"| {client} | {row.get('error')} | | | | | | |")
            continue
        ratio = row["wall_vs_floor"]
        lines.append(
            f"| {client} | {row['requests']} | {row['requests_vs_floor']:.2f}x | "
            f"{row['max_subqueries']} | {row['wall_unlimited_s']:.2f} | "
            f"{row['wall_limited_s']:.2f} | {row['status_429']} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} |"
        )
    mine = results["summary"].get("ddstream", {})
    for peer in PEERS:
        key = f"fewer_requests_than_{peer}"
        if key in mine:
            lines.append("")
            lines.append(f"ddstream sends {mine[key]:.2f}x fewer requests than {peer} "
                         "(target: >= 5x, at the floor).")  # fmt: skip
    if results["problems"]:
        lines += ["", "Problems: " + "; ".join(results["problems"])]
    return "\n".join(lines)


def _describe(figures: dict[str, Any]) -> str:
    if figures.get("error"):
        return f"FAILED: {figures['error']}"
    return (f"{figures.get('requests')} req ({figures.get('subqueries')} sub-queries), "
            f"{figures.get('status_429')} x 429, wall {figures.get('wall_s', 0):.2f} s, "
            f"{figures.get('points', 0):,} points")  # fmt: skip


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.multiquery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 days under 4 requests per 2 s")
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help=f"comma-separated (default: {','.join(CLIENTS)})")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one client run may take (default 1800)")  # fmt: skip
    parser.add_argument("--reuse", type=Path, metavar="JSON",
                        help="take the clients not run now from this earlier result of the same "
                             "scenario (e.g. the peers, which do not change with ddstream)")
    args = parser.parse_args(argv)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = sorted(set(clients) - set(CLIENTS))
    if unknown:
        raise SystemExit(f"unknown client(s) {unknown}; known: {list(CLIENTS)}")
    _progress(f"== multiquery{' (quick)' if args.quick else ''}: {scenario(args.quick).days:g} "
              f"days, {METRICS} metrics")  # fmt: skip
    results = run(args.quick, clients, args.timeout)
    if args.reuse is not None:
        reuse(results, args.reuse)
    print(render(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=1, default=str)
        out.write("\n")
    _progress(f"results written to {args.json}")
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
