"""The benchmark's Datadog: a FakeDatadog in its own process, steered over stdin/stdout.

Run by the harness as ``python -m bench.server --hosts N``. Why a separate process: the server's
CPU (rendering and gzipping JSON in Python) must not count against the client being measured,
and its threads must not compete for the client's GIL. Why this wrapper rather than
``python -m ddstream.testing`` alone: between two client runs the harness has to warm the answer
cache, change the latency and the rate limit (which restarts the rate-limit window exactly when
the client starts), and read the server's request log (requests, 429s, connections, peak
concurrency) — the figures are counted where the requests arrive, not trusted from the clients.

Protocol: the first stdout line is ``{"url": "http://127.0.0.1:PORT"}``. Then one JSON command
per stdin line, one JSON answer per stdout line:

* ``{"cmd": "warm", "requests": [[query, from, to], ...]}`` — fetch each with gzip, so every
  answer a client will ask for is rendered and compressed before any client is timed;
* ``{"cmd": "reset", "latency": s, "rate_limit": [n, period] | null}`` — set both, start a new
  rate-limit window now, forget the request log;
* ``{"cmd": "stats"}`` — what the log holds since the last reset;
* ``{"cmd": "body", "request": [query, from, to], "path": p}`` — write that answer's gzip body
  (as the clients receive it) to the file ``p``, for the physical-limit measurements;
* ``{"cmd": "quit"}``.

``--values realistic`` serves answers shaped like Datadog's own (the recorded body in the shared
recordings): integer-millisecond timestamps, and values with a float64's full precision as
Python's ``repr`` writes them (15-17 significant digits) instead of the fake's short fractions.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import math
import sys
import urllib.parse
import urllib.request
from typing import Any

from ddstream.testing import FakeDatadog

# Every rendered answer of a scenario stays cached: the largest (one day of 200 hosts, four
# rollups) is about 40 MB of JSON, a 30-day run at 4-hour chunks is 180 small ones.
CACHE_ENTRIES = 4096
CACHE_BYTES = 2 << 30

# Realistic values: every fake value times an irrational-looking constant. The products are
# full-precision doubles whose shortest text has 15-17 significant digits (about half 17, half 16,
# a few 15), like the recorded body's 91.4583840476142 and 91.39889285551104; the point count,
# the nulls and the order of the values are the fake's own.
_REALISTIC_SCALE = math.pi / 7


class RealisticFake(FakeDatadog):
    """A FakeDatadog whose answers carry Datadog-like number text (see the module's docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(float_timestamps=False, **kwargs)

    def answer(self, query: str, from_ts: int, to_ts: int) -> dict[str, Any]:
        payload = super().answer(query, from_ts, to_ts)
        for series in payload.get("series", []):
            series["pointlist"] = [
                (ts, None if value is None else value * _REALISTIC_SCALE)
                for ts, value in series["pointlist"]
            ]
        return payload


def _warm(fake: FakeDatadog, requests: list[list[Any]]) -> dict[str, Any]:
    statuses: collections.Counter[int] = collections.Counter()
    body_bytes = points = nonnull = 0
    for query, from_ts, to_ts in requests:
        params = urllib.parse.urlencode({"from": from_ts, "to": to_ts, "query": query})
        request = urllib.request.Request(
            f"{fake.url}/api/v1/query?{params}",
            headers={
                "DD-API-KEY": "bench-api-key",
                "DD-APPLICATION-KEY": "bench-app-key",
                "Accept-Encoding": "gzip",
            },
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            statuses[response.status] += 1
            body = response.read()
            body_bytes += len(body)
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
        # The work every client has to do: the timestamp-value pairs in the answers.
        for series in json.loads(body)["series"]:
            points += len(series["pointlist"])
            nonnull += sum(1 for _, value in series["pointlist"] if value is not None)
    return {
        "statuses": {str(k): v for k, v in statuses.items()},
        "gzip_bytes": body_bytes,
        "points": points,
        "nonnull": nonnull,
    }


def _body(fake: FakeDatadog, request: list[Any], path: str) -> dict[str, Any]:
    query, from_ts, to_ts = request
    params = urllib.parse.urlencode({"from": from_ts, "to": to_ts, "query": query})
    http_request = urllib.request.Request(
        f"{fake.url}/api/v1/query?{params}",
        headers={
            "DD-API-KEY": "bench-api-key",
            "DD-APPLICATION-KEY": "bench-app-key",
            "Accept-Encoding": "gzip",
        },
    )
    with urllib.request.urlopen(http_request, timeout=600) as response:
        body = response.read()
        gzipped = response.headers.get("Content-Encoding") == "gzip"
    with open(path, "wb") as out:
        out.write(body if gzipped else gzip.compress(body))
    return {"gzip_bytes": len(body), "gzip": gzipped}


def _stats(fake: FakeDatadog) -> dict[str, Any]:
    records = fake.query_requests
    statuses = collections.Counter(record.status for record in records)
    counts = fake.request_counts()
    return {
        "requests": len(records),
        "subqueries": counts["subqueries"],
        "max_subqueries": counts["max_subqueries"],
        "max_uri_bytes": counts["max_uri_bytes"],
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "status_429": statuses.get(429, 0),
        "connections": len({record.connection_id for record in records}),
        "max_concurrency": fake.max_concurrency,
        "all_gzip": all(record.accept_gzip for record in records),
        "user_agents": sorted({record.user_agent for record in records}),
        "queries": sorted({record.query or "" for record in records}),
        "span_s": (max(r.finished for r in records) - min(r.started for r in records))
        if records
        else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--values", choices=("fake", "realistic"), default="fake")
    args = parser.parse_args(argv)
    kind = RealisticFake if args.values == "realistic" else FakeDatadog
    fake = kind(hosts=args.hosts, cache_size=CACHE_ENTRIES, cache_bytes=CACHE_BYTES)
    out = sys.stdout
    with fake:
        out.write(json.dumps({"url": fake.url}) + "\n")
        out.flush()
        for line in sys.stdin:
            command = json.loads(line)
            name = command.get("cmd")
            answer: dict[str, Any]
            if name == "warm":
                fake.latency = 0.0
                fake.rate_limit = None
                answer = _warm(fake, command["requests"])
                fake.clear_log()
            elif name == "reset":
                fake.latency = float(command.get("latency", 0.0))
                limit = command.get("rate_limit")
                fake.rate_limit = None if limit is None else (int(limit[0]), float(limit[1]))
                fake.clear_log()
                answer = {"ok": True}
            elif name == "body":
                answer = _body(fake, command["request"], command["path"])
                fake.clear_log()
            elif name == "stats":
                answer = _stats(fake)
            elif name == "quit":
                break
            else:
                answer = {"error": f"unknown command {name!r}"}
            out.write(json.dumps(answer) + "\n")
            out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
