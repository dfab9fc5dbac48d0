"""Run a FakeDatadog in the foreground: ``python -m ddstream.testing [--port N] [--latency S] …``.

The first line on stdout is the server's URL (scripts read it to find the port when ``--port 0``);
everything else goes to stderr. Ctrl-C (or SIGTERM) stops the server and exits with status 0.

Why a command: the benchmarks, the C and Go examples and people trying ddstream out need a Datadog
to talk to from another process, without an account.

The directory can also be run directly (``python <path>/testing``), which loads it without the
rest of the ``ddstream`` package — handy when the compiled library is not built yet.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any


def _package() -> ModuleType:
    """This package: the normal import, or (when run as a plain directory) a standalone copy."""
    if __package__:
        return sys.modules[__package__]
    here = Path(__file__).resolve().parent
    name = "ddstream_testing_standalone"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, here / "__init__.py", submodule_search_locations=[str(here)]
        )
        if spec is None or spec.loader is None:  # pragma: no cover - the file is right here
            raise ImportError(f"cannot load {here}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _rate_limit(text: str) -> tuple[int, float]:
    """``20/10`` → 20 requests per 10 seconds."""
    requests, slash, period = text.partition("/")
    try:
        if not slash:
            raise ValueError(text)
        return int(requests), float(period)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected REQUESTS/SECONDS like 20/10, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ddstream.testing",
        description="Serve a fake Datadog metrics API on 127.0.0.1 (deterministic data).",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every query answer waits (default 0)"
    )
    parser.add_argument("--hosts", type=int, default=3, help="number of hosts (default 3)")
    parser.add_argument(
        "--raw-interval", type=int, default=10, help="seconds between raw points (default 10)"
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=None,
        metavar="REQUESTS/SECONDS",
        help="answer 429 beyond this many queries per window (default: unlimited)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="an accepted API key (repeatable; default: any non-empty key)",
    )
    parser.add_argument(
        "--app-key",
        action="append",
        dest="app_keys",
        metavar="KEY",
        help="an accepted application key (repeatable; default: any non-empty key)",
    )
    parser.add_argument(
        "--max-points", type=int, default=1500, help="points per series before coarsening"
    )
    parser.add_argument(
        "--trim-empty-edges", action="store_true", help="drop leading/trailing null buckets"
    )
    parser.add_argument(
        "--int-timestamps",
        action="store_true",
        help="write timestamps as integers (default: floats like 1681683300000.0)",
    )
    parser.add_argument("--null-aggr", action="store_true", help='send "aggr": null')
    parser.add_argument(
        "--distribution",
        action="append",
        dest="distribution_metrics",
        default=[],
        metavar="METRIC",
        help="a metric that is a distribution: percentiles, pooled values (repeatable)",
    )
    parser.add_argument(
        "--max-uri-bytes",
        type=int,
        default=None,
        metavar="N",
        help="answer 414 to a request whose URI is longer (default: no limit)",
    )
    parser.add_argument(
        "--timeout-over",
        type=int,
        default=None,
        metavar="N",
        help="answer 'Query timed out' to every request of more than N sub-queries",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    testing: Any = _package()
    fake = testing.FakeDatadog(
        port=args.port,
        hosts=args.hosts,
        raw_interval=args.raw_interval,
        api_keys=args.api_keys,
        app_keys=args.app_keys,
        rate_limit=args.rate_limit,
        latency=args.latency,
        trim_empty_edges=args.trim_empty_edges,
        float_timestamps=not args.int_timestamps,
        null_aggr=args.null_aggr,
        max_points=args.max_points,
        distribution_metrics=args.distribution_metrics,
        max_uri_bytes=args.max_uri_bytes,
    )
    if args.timeout_over is not None:
        fake.add_fault(testing.QueryTimeout(max_subqueries=args.timeout_over))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    fake.start()
    try:
        print(fake.url, flush=True)
        keys = "any non-empty keys" if args.api_keys is None else "the keys given"
        print(
            f"FakeDatadog serving {fake.dataset!r} at {fake.url} ({keys}); Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        # Wait in slices: on some platforms a bare Event.wait() is not interrupted by Ctrl-C.
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
