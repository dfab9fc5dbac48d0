"""The main job, as a newcomer first sees it: stream a day of a metric, batch by batch.

``python -m ddstream.demo`` streams against real Datadog when ``DD_API_KEY`` and ``DD_APP_KEY``
are set (``DD_SITE`` picks the site), and otherwise against the built-in fake Datadog server
(:class:`ddstream.testing.FakeDatadog`), so it works on a fresh machine with no credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np

from . import DDStream, DDStreamConfig, DDStreamError


@contextlib.contextmanager
def _target(force_fake: bool) -> Iterator[tuple[str, str | None]]:
    """Yield (description, URL of a fake server we started or None): real Datadog (or the
    DDSTREAM_BASE_URL server) if credentials are set, else the built-in fake server."""
    if not force_fake and os.environ.get("DD_API_KEY") and os.environ.get("DD_APP_KEY"):
        site = os.environ.get("DD_SITE", "datadoghq.com")
        yield os.environ.get("DDSTREAM_BASE_URL") or f"Datadog ({site})", None
        return
    from .testing import FakeDatadog

    with FakeDatadog(hosts=3) as fake:
        yield f"the built-in fake Datadog at {fake.url} (no credentials set)", fake.url


def _utc(epoch_ms: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddstream.demo", description=__doc__)
    parser.add_argument("--query", default="avg:system.cpu.user{*}")
    parser.add_argument("--hours", type=float, default=24.0, help="how far back (default 24)")
    parser.add_argument("--granularity", type=int, default=60, help="seconds (default 60)")
    parser.add_argument("--chunk-seconds", type=int, default=14400, help="0 = fewest requests")
    parser.add_argument("--fake", action="store_true", help="use the fake server even with keys")
    args = parser.parse_args(argv)

    with _target(args.fake) as (description, fake_url):
        cfg = DDStreamConfig()
        if fake_url is not None:
            cfg.base_url = fake_url
            # The built-in fake accepts any key; real keys never reach it.
            cfg.api_key = "demo-api-key"
            cfg.app_key = "demo-app-key"
        cfg.query = args.query
        cfg.range_end = int(time.time())
        cfg.range_start = cfg.range_end - int(args.hours * 3600)
        cfg.granularity = args.granularity
        cfg.chunk_seconds = args.chunk_seconds
        print(f"streaming {cfg.query!r}, last {args.hours:g} h at {cfg.granularity} s")
        print(f"from {description}")
        started = time.perf_counter()
        points = 0
        try:
            with DDStream(cfg) as stream:
                print(f"plan: {stream.chunk_count} chunks")
                for batch in stream:
                    ts = batch["timestamps"]
                    avg = batch["avg"]
                    valid = avg[~np.isnan(avg)]
                    points += len(ts)
                    start, end = _utc(batch["chunk_start_ms"]), _utc(batch["chunk_end_ms"])
                    if len(valid):
                        peak = float(np.nanmax(batch["max"]))
                        summary = f"mean {float(valid.mean()):8.3f}  peak {peak:8.3f}"
                    else:  # a gap in the data (the fake has a weekly one): say so, not "nan"
                        summary = f"{'no values in this chunk':27s}"
                    print(
                        f"  chunk [{start}, {end})  {len(ts):5d} points  {summary}"
                        f"  progress {stream.progress():4.0%}"
                    )
        except DDStreamError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        elapsed = time.perf_counter() - started
        print(f"done: {points} points in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
