"""From raw runs to the figures, the ratios, the targets of the issue, and the printed tables."""

from __future__ import annotations

import math
from typing import Any

from .harness import PEERS, median
from .scenarios import Scenario

# Relative tolerance when comparing the sums of values two clients delivered: the same values
# summed in a different order (series order, pairwise vs sequential summation).
SUM_TOLERANCE = 1e-9


def summarize(runs: list[dict[str, Any]], points: int) -> dict[str, Any] | None:
    """Median figures over the successful runs of one client in one scenario. ``points``: the
    timestamp-value pairs in the server's answers — the same work for every client (ddstream's
    dense batches also hold NaN rows for series an answer left out: not counted)."""
    good = [run["figures"] for run in runs if run["ok"]]
    if not good:
        return None
    cpu = median([f["cpu_s"] for f in good])
    cpus = [f["cpu_s"] for f in good]
    return {
        "runs": len(good),
        "failed_runs": len(runs) - len(good),
        "requests": max(f["requests"] for f in good),
        "status_429": max(f["status_429"] for f in good),
        "wall_s": median([f["wall_s"] for f in good]),
        "cpu_s": cpu,
        "consumer_thread_cpu_s": median([f["consumer_thread_cpu_s"] for f in good]),
        "process_cpu_s": median([f["process_cpu_s"] for f in good]),
        "points": points,
        "points_per_cpu_s": points / cpu if cpu > 0 else float("inf"),
        "peak_rss_mb": median([f["peak_rss_kb"] for f in good]) / 1024,
        "ready_rss_mb": median([f["ready_rss_kb"] for f in good]) / 1024,
        "stream_rss_growth_mb": median([f["peak_rss_kb"] - f["ready_rss_kb"] for f in good]) / 1024,
        "batches": good[0]["batches"],
        "max_concurrency": max(f["max_concurrency"] for f in good),
        "connections": max(f["connections"] for f in good),
        "cpu_spread": (max(cpus) / min(cpus)) if min(cpus) > 0 else float("nan"),
        "max_load": max(max(f["load_before"], f["load_after"]) for f in good),
    }


def ratios(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """ddstream against each peer, every factor oriented so that > 1 means ddstream is better."""
    ours = summary.get("ddstream")
    out: dict[str, dict[str, float]] = {}
    if ours is None:
        return out
    for peer in PEERS:
        theirs = summary.get(peer)
        if theirs is None:
            continue
        out[peer] = {
            "points_per_cpu_s": _div(ours["points_per_cpu_s"], theirs["points_per_cpu_s"]),
            "cpu_s": _div(theirs["cpu_s"], ours["cpu_s"]),
            "wall_s": _div(theirs["wall_s"], ours["wall_s"]),
            "requests": _div(theirs["requests"], ours["requests"]),
            "peak_rss_mb": _div(theirs["peak_rss_mb"], ours["peak_rss_mb"]),
        }
    return out


def _div(a: float, b: float) -> float:
    return a / b if b else float("inf")


def consistency(
    scenario: Scenario, runs: dict[str, list[dict[str, Any]]], chunks: int, nonnull: int
) -> list[str]:
    """Problems that make a comparison unfair: clients that delivered other data than the server
    sent (or than each other), sent other queries, or failed."""
    problems: list[str] = []
    reference: tuple[str, dict[str, Any]] | None = None
    queries: dict[str, list[str]] = {}
    for client, client_runs in runs.items():
        for run in client_runs:
            figures = run["figures"]
            if not run["ok"]:
                problems.append(f"{scenario.id}/{client}: run failed: {figures.get('error')}")
                continue
            queries.setdefault(client, figures.get("queries", []))
            if figures["nonnull"] != nonnull:
                problems.append(f"{scenario.id}/{client}: {figures['nonnull']} values, the "
                                f"server sent {nonnull}")  # fmt: skip
            if reference is None:
                reference = (client, figures)
                continue
            name, ref = reference
            for key in ("ts_sum",):
                if figures[key] != ref[key]:
                    problems.append(
                        f"{scenario.id}/{client}: {key} {figures[key]} != {ref[key]} ({name})"
                    )
            a, b = figures["value_sum"], ref["value_sum"]
            if a is None or b is None or abs(a - b) > SUM_TOLERANCE * max(abs(a), abs(b), 1.0):
                problems.append(f"{scenario.id}/{client}: value sum {a} != {b} ({name})")
            if figures["batches"] != chunks:
                problems.append(
                    f"{scenario.id}/{client}: {figures['batches']} answers, {chunks} chunks"
                )
    distinct = {tuple(q) for q in queries.values()}
    if len(distinct) > 1:
        problems.append(f"{scenario.id}: clients sent different queries: {queries}")
    return problems


# -- targets --------------------------------------------------------------------------------------


def _target(
    name: str, measured: float | None, limit: str, passed: bool | None, note: str = ""
) -> dict[str, Any]:
    return {"target": name, "measured": measured, "limit": limit, "pass": passed, "note": note}


def targets(
    results: dict[str, Any], in_flight: int, in_flight_field: str | None
) -> list[dict[str, Any]]:
    """Each target of the issue against this run's figures (``pass`` None: not measured)."""
    by_id = {s["id"]: s for s in results["scenarios"]}
    out: list[dict[str, Any]] = []

    def dd(sid: str) -> dict[str, Any] | None:
        scenario = by_id.get(sid)
        return None if scenario is None else scenario["summary"].get("ddstream")

    # Requests.
    for sid in ("s1", "s2", "s3", "s4"):
        s, figures = by_id.get(sid), dd(sid)
        if s is None or figures is None:
            continue
        if s["chunk_seconds"] == 0:
            want, what = s["min_requests"], "the minimum the 1500-point cap allows"
        else:
            want, what = s["chunks"], "one per chunk"
        out.append(_target(f"{sid} requests = {what}", figures["requests"], f"= {want}",
                           figures["requests"] == want))  # fmt: skip
    # CPU: points per CPU second, ddstream / peer.
    for sid, peer, factor in (("s3", "datadogpy", 10), ("s3r", "datadogpy", 12),
                              ("s3", "datadog-api-client", 200),
                              ("s1", "datadogpy", 5)):  # fmt: skip
        s = by_id.get(sid)
        ratio = None if s is None else s["ratios"].get(peer, {}).get("points_per_cpu_s")
        out.append(_target(f"{sid} points/CPU-s vs {peer}", ratio, f">= {factor}x",
                           None if ratio is None else ratio >= factor))  # fmt: skip
    # The C parse against simdjson on the same decompressed body.
    for sid in ("s3", "s3r"):
        s = by_id.get(sid)
        limits = None if s is None else s.get("limits")
        if limits is None:
            continue
        share = limits["ddstream_share_of_simdjson"]
        missing = "; ".join(n for n in limits["notes"] if "not installed" in n)
        out.append(_target(f"{sid} C parse throughput / simdjson's (same body)", share, ">= 0.50",
                           None if share is None else share >= 0.5, missing))  # fmt: skip
    # Overlap.
    s, figures = by_id.get("s4"), dd("s4")
    if s is not None and figures is not None:
        floor = math.ceil(s["chunks"] / in_flight) * s["latency"]
        out.append(_target(
            f"s4 wall <= 1.25 x ceil(chunks / in_flight) x latency (in_flight={in_flight})",
            figures["wall_s"], f"<= {1.25 * floor:.2f} s (floor {floor:.2f} s)",
            figures["wall_s"] <= 1.25 * floor,
            f"server saw at most {figures['max_concurrency']} in flight"
            + ("" if in_flight_field else "; this ddstream has no in-flight setting"),
        ))  # fmt: skip
    # Rate limit.
    s, figures = by_id.get("s5"), dd("s5")
    if s is not None and figures is not None and s["rate_limit"]:
        limit, period = s["rate_limit"]
        floor = ((s["chunks"] - 1) // limit) * period
        windows = int(figures["wall_s"] // period) + 1
        out.append(_target("s5 wall <= 1.2 x the window's floor", figures["wall_s"],
                           f"<= {1.2 * floor:.2f} s (floor {floor:.2f} s)",
                           figures["wall_s"] <= 1.2 * floor))  # fmt: skip
        out.append(_target("s5 at most one 429 per window", figures["status_429"],
                           f"<= {windows} (windows spanned)",
                           figures["status_429"] <= windows))  # fmt: skip
    # Memory.
    for sid in ("s1", "s2"):
        s, figures = by_id.get(sid), dd(sid)
        if s is None or figures is None or not s.get("memory_reference"):
            continue
        ref = dd(s["memory_reference"])
        if ref is None:
            continue
        ratio = figures["peak_rss_mb"] / ref["peak_rss_mb"]
        note = f"{figures['peak_rss_mb']:.1f} MB vs {ref['peak_rss_mb']:.1f} MB"
        c_ours = s["summary"].get("ddstream-c")
        c_ref = by_id[s["memory_reference"]]["summary"].get("ddstream-c")
        if c_ours and c_ref:  # without the interpreter's ~40 MB, growth is easier to see
            note += f"; raw C path {c_ours['peak_rss_mb']:.1f} MB vs {c_ref['peak_rss_mb']:.1f} MB"
        out.append(_target(
            f"{sid} peak RSS / {s['memory_reference']} (1 day, same chunks)", ratio, "<= 1.10",
            ratio <= 1.10, note,
        ))  # fmt: skip
    return out


def overhead(py: list[dict[str, Any]], c: list[dict[str, Any]]) -> dict[str, Any] | None:
    """ddstream's Python overhead per batch over the raw C path (light consumers, same stream)."""
    py_ok = [r["figures"] for r in py if r["ok"]]
    c_ok = [r["figures"] for r in c if r["ok"]]
    if not py_ok or not c_ok:
        return None
    batches = py_ok[0]["batches"]
    py_thread = median([f["consumer_thread_cpu_s"] for f in py_ok])
    c_thread = median([f["consumer_thread_cpu_s"] for f in c_ok])
    py_cpu = median([f["cpu_s"] for f in py_ok])
    c_cpu = median([f["cpu_s"] for f in c_ok])
    return {
        "batches": batches,
        "runs": [len(py_ok), len(c_ok)],
        "python_consumer_us_per_batch": 1e6 * py_thread / batches,
        "c_consumer_us_per_batch": 1e6 * c_thread / batches,
        "overhead_us_per_batch": 1e6 * (py_thread - c_thread) / batches,
        "python_process_cpu_s": py_cpu,
        "c_process_cpu_s": c_cpu,
        "process_overhead_us_per_batch": 1e6 * (py_cpu - c_cpu) / batches,
    }


# -- printing -------------------------------------------------------------------------------------

_LIMIT_COLUMNS = (("inflate", "inflate (libdeflate)"), ("memchr", "memchr scan"),
                  ("simdjson", "simdjson parse"), ("ddstream", "ddstream C parse"),
                  ("scan", "ddstream pointlists only"))  # fmt: skip


def limits_line(limits: dict[str, Any]) -> str:
    """One line of the limit figures, for the progress output."""
    parts = []
    for key, _ in _LIMIT_COLUMNS:
        rate = limits["rates"].get(key)
        if rate is not None:
            parts.append(f"{key} {rate['mb_per_s']:,.0f} MB/s")
    share = limits["ddstream_share_of_simdjson"]
    if share is not None:
        parts.append(f"ddstream/simdjson {100 * share:.0f}%")
    return ", ".join(parts)


def _limits_table(results: dict[str, Any]) -> str | None:
    rows = []
    for s in results["scenarios"]:
        limits = s.get("limits")
        if not limits:
            continue
        for key, name in _LIMIT_COLUMNS:
            rate = limits["rates"].get(key)
            share = ""
            if key == "ddstream" and limits["ddstream_share_of_simdjson"] is not None:
                share = f"{100 * limits['ddstream_share_of_simdjson']:.0f}% of simdjson"
            rows.append([
                s["id"], name,
                "-" if rate is None else f"{rate['mb_per_s']:,.0f}",
                "-" if rate is None else f"{rate['ns_per_point']:.1f}",
                "-" if rate is None else f"{1e3 * rate['s']:.2f}", share,
            ])  # fmt: skip
    if not rows:
        return None
    first = next(s["limits"] for s in results["scenarios"] if s.get("limits"))
    return (
        "Physical limits: one answer, decompressed, each step timed alone (best of "
        f"{first['repeat']}; MB/s of decompressed JSON; inflate reads the gzip body). "
        + "; ".join(
            f"{s['id']}: {s['limits']['body_bytes'] / 1e6:.1f} MB JSON "
            f"({s['limits']['gzip_bytes'] / 1e6:.1f} MB gzip), {s['limits']['points']:,} points"
            for s in results["scenarios"] if s.get("limits")
        )
        + "\n"
        + _table(["scenario", "step", "MB/s", "ns/point", "ms", "share"], rows)
    )  # fmt: skip


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    return "\n".join([line, rule, *body])


def render(results: dict[str, Any]) -> str:
    parts = []
    m = results["machine"]
    parts.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['system']}, "
        f"Python {m['python']}. Command: {results['command']}"
    )
    rows = []
    for s in results["scenarios"]:
        for client, f in s["summary"].items():
            if f is None:
                rows.append([s["id"], client, "failed", *["-"] * 8])
                continue
            rows.append([
                s["id"], client, _fmt(f["requests"]), _fmt(f["status_429"]), _fmt(f["wall_s"]),
                _fmt(f["cpu_s"], 3), _fmt(f["points"]), _fmt(f["points_per_cpu_s"] / 1e6, 2),
                _fmt(f["peak_rss_mb"], 1), _fmt(f["runs"]), _fmt(f["cpu_spread"]),
            ])  # fmt: skip
    parts.append("Scenarios:\n" + "\n".join(
        f"- {s['id']}: {s['title']} — {s['chunks']} chunks, {s['points']:,} points in the answers"
        for s in results["scenarios"]))  # fmt: skip
    parts.append(_table(
        ["scenario", "client", "requests", "429s", "wall s", "CPU s", "points", "M points/CPU s",
         "peak RSS MB", "runs", "CPU max/min"], rows))  # fmt: skip
    ratio_rows = []
    for s in results["scenarios"]:
        for peer, r in s["ratios"].items():
            ratio_rows.append([
                s["id"], peer, _fmt(r["points_per_cpu_s"], 1), _fmt(r["wall_s"], 2),
                _fmt(r["requests"], 2), _fmt(r["peak_rss_mb"], 2),
            ])  # fmt: skip
    if ratio_rows:
        parts.append("ddstream against each peer, same run (x; > 1 means ddstream is better):\n"
                     + _table(["scenario", "peer", "points/CPU s", "wall", "requests",
                               "peak RSS"], ratio_rows))  # fmt: skip
    limits_table = _limits_table(results)
    if limits_table:
        parts.append(limits_table)
    o = results.get("python_overhead")
    if o:
        parts.append(
            f"Python overhead per batch over the raw C path ({o['batches']} batches, "
            f"{o['runs'][0]}+{o['runs'][1]} runs): {o['overhead_us_per_batch']:.1f} us "
            f"(consumer thread CPU: Python {o['python_consumer_us_per_batch']:.1f} us, "
            f"C {o['c_consumer_us_per_batch']:.1f} us per batch; whole process: "
            f"{o['process_overhead_us_per_batch']:.1f} us per batch)"
        )
    if results["targets"]:
        parts.append("Targets:\n" + _table(
            ["target", "measured", "limit", "result", "note"],
            [[t["target"], _fmt(t["measured"]), t["limit"],
              {True: "PASS", False: "MISS", None: "not measured"}[t["pass"]], t["note"]]
             for t in results["targets"]]))  # fmt: skip
    if results["problems"]:
        parts.append("PROBLEMS (figures not comparable):\n" + "\n".join(
            f"- {p}" for p in results["problems"]))  # fmt: skip
    loads = [f["max_load"] for s in results["scenarios"] for f in s["summary"].values() if f]
    if loads:
        parts.append(
            f"Noise: load average up to {max(loads):.2f} on {m['cores']} cores during the runs "
            "(anything near the core count means other work competed for the CPUs)."
        )
    return "\n\n".join(parts)


def compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Old run → this run, for every scenario and client both have."""
    old_by = {s["id"]: s for s in old.get("scenarios", [])}
    rows = []
    keys = (("requests", 0), ("wall_s", 2), ("cpu_s", 3), ("points_per_cpu_s", 0),
            ("peak_rss_mb", 1))  # fmt: skip
    for s in new["scenarios"]:
        before = old_by.get(s["id"])
        if before is None:
            continue
        if before.get("title") != s.get("title"):
            rows.append([s["id"], "(scenario changed)", "", "", "", "", ""])
            continue
        for client, f in s["summary"].items():
            g = before["summary"].get(client)
            if f is None or g is None:
                continue
            cells = []
            for key, digits in keys:
                a, b = g[key], f[key]
                change = f" ({100 * (b - a) / a:+.0f}%)" if a else ""
                cells.append(f"{_fmt(a, digits)} -> {_fmt(b, digits)}{change}")
            rows.append([s["id"], client, *cells])
    return f"Compared with the run of {old.get('created_utc', '?')}:\n" + _table(
        ["scenario", "client", "requests", "wall s", "CPU s", "points/CPU s", "peak RSS MB"], rows
    )
