"""The benchmark suite: ``python -m bench`` from the repository root (``scripts/bench.sh`` sets up
and runs it). Prints the tables (Markdown) and writes the JSON. ``--help`` lists the options;
docs/benchmarks.md explains the method and every figure."""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import report
from .harness import (
    CLIENTS,
    REPO,
    Run,
    Server,
    build_c_driver,
    client_argv,
    machine,
    now_utc,
    plan,
    rollup_query,
    run_child,
    source,
    timeout_for,
    versions,
)
from .limits import build_parse_limit
from .limits import measure as measure_limits
from .profile import profile_client
from .scenarios import Scenario, full, quick

SCHEMA = 1
DEFAULT_JSON = REPO / "bench" / "results" / "latest.json"


def _option(text: str) -> tuple[str, Any]:
    name, eq, value = text.partition("=")
    if not eq or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="small scenarios, one run each: the whole suite in under a minute")
    p.add_argument("--scenarios", default="",
                   help="comma-separated ids (default: all; see --list). A scenario's 1-day RSS "
                        "reference (m1 for s1, m2 for s2) is added with it")
    p.add_argument("--clients", default=",".join(CLIENTS),
                   help=f"comma-separated (default: {','.join(CLIENTS)})")
    p.add_argument("--repeat", type=int, default=0,
                   help="runs per client and scenario (default: the scenario's own, 3 for the "
                        "CPU scenarios, 1 for the latency and rate-limit ones; 1 with --quick)")
    p.add_argument("--overhead-repeat", type=int, default=0,
                   help="runs of the Python-overhead comparison (default 5; 2 with --quick)")
    p.add_argument("--ddstream-option", action="append", type=_option, default=[],
                   metavar="NAME=VALUE", help="set a DDStreamConfig field for the ddstream runs "
                   "(repeatable; the value is JSON, e.g. prefetch_chunks=8)")
    p.add_argument("--in-flight", type=int, default=0,
                   help="requests ddstream keeps in flight, for the s4 floor (default: the "
                        "config's own setting when it has one, else 1)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON,
                   help="where to write the results (default: bench/results/latest.json)")
    p.add_argument("--compare", type=Path, help="a previous results JSON to compare with")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="also run each client once under `perf record` and write the hottest "
                        "symbols to DIR (needs perf)")
    p.add_argument("--no-limits", action="store_true",
                   help="skip the physical-limit reference (inflate, memchr, simdjson and "
                        "ddstream's C parse timed alone on one answer; see bench/limits.py)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return p


def _in_flight(options: dict[str, Any], requested: int) -> tuple[str | None, int]:
    """The DDStreamConfig field that sets requests in flight (if this version has one) and the
    value the runs use. This version of the library may predate the setting: then it is 1."""
    import ddstream

    fields = [name for name in ddstream.DDStreamConfig.__slots__ if "in_flight" in name]
    if not fields:
        if requested > 1:
            raise SystemExit("--in-flight: this ddstream has no in-flight setting (1 at a time)")
        return None, 1
    name = fields[0]
    if requested:
        options[name] = requested
    value = options.get(name, getattr(ddstream.DDStreamConfig(), name))
    return name, int(value) if value else 1


def _select(args: argparse.Namespace) -> list[Scenario]:
    scenarios = quick() if args.quick else full()
    if args.scenarios:
        wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        known = {s.id for s in scenarios}
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise SystemExit(f"unknown scenario(s) {unknown}; known: {sorted(known)}")
        refs = {s.memory_reference for s in scenarios if s.id in wanted and s.memory_reference}
        scenarios = [s for s in scenarios if s.id in wanted or s.id in refs]
    return scenarios


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _describe(run: Run) -> str:
    f = run.figures
    if not run.ok:
        return f"FAILED: {f.get('error')}\n{run.stderr}"
    return (f"{f['requests']} req, {f['status_429']} x 429, wall {f['wall_s']:.2f} s, "
            f"CPU {f['cpu_s']:.3f} s, {f['points']:,} points, "
            f"peak RSS {f['peak_rss_kb'] / 1024:.1f} MB, load {f['load_before']:.2f}")  # fmt: skip


@dataclass
class Settings:
    clients: list[str]
    options: dict[str, Any]
    repeat: int
    overhead_repeat: int
    profile: Path | None
    c_driver: Path | None
    limit_tool: Path | None


def _record(run: Run) -> dict[str, Any]:
    return {"ok": run.ok, "figures": run.figures, "stderr": "" if run.ok else run.stderr}


def _run_scenario(scenario: Scenario, settings: Settings, results: dict[str, Any]) -> None:
    """Every client's runs of one scenario, against a fresh server; adds to ``results``."""
    chunks = plan(scenario, settings.options)
    query = rollup_query(scenario.query, scenario.granularity)
    timeout = timeout_for(scenario, len(chunks))
    clients = settings.clients
    _progress(f"== {scenario.id}: {scenario.title}, {len(chunks)} chunks")
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}

    def one(server: Server, client: str, light: bool = False) -> Run:
        argv = client_argv(client, scenario, server.url, chunks, settings.c_driver,
                           settings.options, light)  # fmt: skip
        return run_child(argv, server, scenario, client, timeout)

    limits = None
    with Server(scenario.hosts, scenario.values) as server:
        requests = [[query, a, b - 1] for a, b in chunks]
        warm = server.command("warm", requests=requests)
        _progress(f"   server warm: {warm['statuses']}, {warm['gzip_bytes']:,} gzip bytes, "
                  f"{warm['points']:,} points")  # fmt: skip
        if scenario.limits and settings.limit_tool is not None:
            limits = measure_limits(server, requests[0], settings.limit_tool, warm["points"])
            _progress(f"   limits: {report.limits_line(limits)}")
        repeat = settings.repeat or scenario.repeat
        for r in range(repeat):
            # Rotate the order, so that no client always runs first (or after the slowest).
            for client in clients[r % len(clients) :] + clients[: r % len(clients)]:
                run = one(server, client)
                _progress(f"   [{r + 1}/{repeat}] {client}: {_describe(run)}")
                runs[client].append(_record(run))
        if _wants_overhead(scenario, settings, results):
            py_runs: list[dict[str, Any]] = []
            c_runs: list[dict[str, Any]] = []
            for r in range(settings.overhead_repeat):
                for client, bucket in (("ddstream", py_runs), ("ddstream-c", c_runs)):
                    run = one(server, client, light=True)
                    _progress(f"   overhead [{r + 1}/{settings.overhead_repeat}] {client}: "
                              f"{_describe(run)}")  # fmt: skip
                    bucket.append(_record(run))
            overhead = report.overhead(py_runs, c_runs)
            if overhead is not None:
                overhead["scenario"] = scenario.id
                overhead["samples"] = {"ddstream": [r["figures"] for r in py_runs],
                                       "ddstream-c": [r["figures"] for r in c_runs]}  # fmt: skip
            results["python_overhead"] = overhead
        if settings.profile is not None:
            settings.profile.mkdir(parents=True, exist_ok=True)
            for client in clients:
                argv = client_argv(client, scenario, server.url, chunks, settings.c_driver,
                                   settings.options)  # fmt: skip
                top = profile_client(argv, server, scenario, client, settings.profile, timeout)
                results["profiles"][f"{scenario.id}/{client}"] = top
                _progress(f"   profile {client}: {(top.get('by_dso') or top.get('error', []))[:4]}")
    summary = {client: report.summarize(client_runs, warm["points"])
               for client, client_runs in runs.items()}  # fmt: skip
    results["problems"].extend(report.consistency(scenario, runs, len(chunks), warm["nonnull"]))
    results["scenarios"].append({
        "id": scenario.id,
        "title": scenario.title,
        "query": scenario.query,
        "range_start": scenario.range_start,
        "range_end": scenario.range_end,
        "granularity": scenario.granularity,
        "chunk_seconds": scenario.chunk_seconds,
        "hosts": scenario.hosts,
        "values": scenario.values,
        "latency": scenario.latency,
        "rate_limit": list(scenario.rate_limit) if scenario.rate_limit else None,
        "memory_reference": scenario.memory_reference,
        "chunks": len(chunks),
        "points": warm["points"],
        "nonnull": warm["nonnull"],
        "answer_gzip_bytes": warm["gzip_bytes"],
        "min_requests": scenario.min_requests,
        "summary": summary,
        "ratios": report.ratios(summary),
        "limits": limits,
        "runs": runs,
    })  # fmt: skip


def _wants_overhead(scenario: Scenario, settings: Settings, results: dict[str, Any]) -> bool:
    """The Python-overhead figure is measured once, on the first plain scenario (s1 by default:
    many small batches): no latency, no rate limit, one series."""
    return (
        results["python_overhead"] is None
        and settings.c_driver is not None
        and "ddstream" in settings.clients
        and "by {" not in scenario.query
        and not scenario.latency
        and scenario.rate_limit is None
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scenarios = _select(args)
    if args.list:
        for s in scenarios:
            print(f"{s.id}: {s.title}")
        return 0
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        raise SystemExit(f"unknown client(s) {unknown}; known: {list(CLIENTS)}")
    options = dict(args.ddstream_option)
    in_flight_field, in_flight = _in_flight(options, args.in_flight)
    command = os.environ.get("BENCH_COMMAND") or shlex.join(
        ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]
    )
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "created_utc": now_utc(),
        "command": command,
        "quick": args.quick,
        "machine": machine(),
        "versions": versions(),
        "source": source(),
        "ddstream_options": options,
        "in_flight": {"field": in_flight_field, "value": in_flight},
        "scenarios": [],
        "python_overhead": None,
        "targets": [],
        "problems": [],
        "profiles": {},
    }
    with tempfile.TemporaryDirectory(prefix="ddstream-bench-") as tmp:
        need_c = "ddstream-c" in clients or "ddstream" in clients
        settings = Settings(
            clients=clients,
            options=options,
            repeat=args.repeat,
            overhead_repeat=args.overhead_repeat or (2 if args.quick else 5),
            profile=args.profile,
            c_driver=build_c_driver(Path(tmp)) if need_c else None,
            limit_tool=None if args.no_limits else build_parse_limit(Path(tmp)),
        )
        for scenario in scenarios:
            _run_scenario(scenario, settings, results)
    results["targets"] = report.targets(results, in_flight, in_flight_field)
    print(report.render(results))
    if args.compare is not None:
        with open(args.compare, encoding="utf-8") as old:
            print()
            print(report.compare(json.load(old), results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as out:
        json.dump(_finite(results), out, indent=1)
        out.write("\n")
    _progress(f"results written to {args.json}")
    return 1 if results["problems"] else 0


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
