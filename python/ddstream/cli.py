"""The ``ddstream`` command: export Datadog metrics to files, check credentials, run the demo.

    ddstream query 'avg:system.cpu.user{*} by {host}' --from -7d --to now --granularity 60 \\
        --format parquet -o cpu.parquet
    ddstream validate
    ddstream demo
    ddstream export queries.txt --to-parquet out/ --workers 4    # ddstream.dask, docs/dask.md
    ddstream query 'avg:system.cpu.user{*}' --from -1h --follow  # never ends: docs/follow.md
    ddstream export query.txt --to-parquet out/ --from -1d --follow --partition day

Credentials and the site come from the environment, as with Datadog's official clients:
``DD_API_KEY``, ``DD_APP_KEY``, ``DD_SITE`` (or ``--site``); ``DDSTREAM_BASE_URL`` (or
``--base-url``) points at a proxy or a fake server. Keys are never accepted as arguments (they
would show in the process list and in shell history).

Exit codes say what failed: 0 ok, 1 other error, 2 usage or configuration, 3 authentication,
4 rate limit, 5 network, timeout or server error, 6 query rejected, 7 unexpected answer,
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from . import __version__
from ._dependencies import import_optional
from ._dependencies import pyarrow as pa
from ._dependencies import pyarrow_parquet as pq
from ._export import FORMATS, TEXT_FORMATS, text_writer
from ._output import OutputError, check_output, open_output
from ._progress import Progress
from ._timespec import parse_time
from .errors import (
    AuthError,
    ConfigError,
    DDStreamError,
    NetworkError,
    ProtocolError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)

if TYPE_CHECKING:
    # numpy, cffi and the C library load when a command runs, not for `--help` (the stream
    # modules are imported inside the commands).
    from ._config import DDStreamConfig
    from ._stream import AnyBatch, DDStream

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_AUTH, EXIT_RATE_LIMIT = 0, 1, 2, 3, 4
EXIT_NETWORK, EXIT_QUERY, EXIT_PROTOCOL, EXIT_INTERRUPTED = 5, 6, 7, 130

_EXIT_CODES: tuple[tuple[type[DDStreamError], int], ...] = (
    (ConfigError, EXIT_USAGE),
    (AuthError, EXIT_AUTH),
    (RateLimitError, EXIT_RATE_LIMIT),
    (NetworkError, EXIT_NETWORK),
    (RequestTimeoutError, EXIT_NETWORK),
    (ServerError, EXIT_NETWORK),
    (QueryError, EXIT_QUERY),
    (ProtocolError, EXIT_PROTOCOL),
)


class UsageError(Exception):
    """A bad argument: reported on one line, exit code 2."""


def exit_code_for(exc: DDStreamError) -> int:
    for cls, code in _EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


def _base_config(args: argparse.Namespace) -> DDStreamConfig:
    from ._config import DDStreamConfig

    cfg = DDStreamConfig()
    if args.site:
        cfg.site = args.site
    if args.base_url:
        cfg.base_url = args.base_url
    if args.debug:
        cfg.log_level = 4
    return cfg


@contextlib.contextmanager
def _output(path: str | None, binary: bool) -> Iterator[IO[Any]]:
    """stdout, or PATH as _output.py describes (a regular file via PATH.partial and a rename;
    FIFOs and devices in place); a path that cannot be written is OutputError (exit code 2)."""
    if path is None or path == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    with open_output(check_output(path), binary) as handle:
        yield handle


def _query(args: argparse.Namespace) -> int:
    cfg = _base_config(args)
    cfg.query = args.query
    try:
        cfg.range_start = parse_time(args.from_)
        cfg.range_end = parse_time(args.to)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    cfg.granularity = args.granularity
    cfg.chunk_seconds = args.chunk_seconds
    cfg.max_chunks = args.max_chunks
    cfg.max_batch_rows = args.max_batch_rows
    fmt = args.format
    if args.follow:
        if fmt not in TEXT_FORMATS:
            raise UsageError(f"--follow writes text formats ({', '.join(TEXT_FORMATS)}); for "
                             "Parquet use `ddstream export --follow`")
        cfg.follow, cfg.range_end, cfg.settle_seconds = True, 0, args.settle_seconds
    if fmt == "parquet" and args.output in (None, "-"):
        raise UsageError("--format parquet needs -o FILE (Parquet cannot stream to a pipe)")
    if args.output not in (None, "-"):
        target = check_output(args.output)  # a path mistake is reported before any request
        if args.follow and not target.in_place:
            # A regular file appears (by rename) when the stream ends, which never happens.
            raise UsageError("--follow writes to stdout, a pipe or a FIFO, not to a file that "
                             "would appear only at the end: redirect stdout, or use "
                             "`ddstream export --follow` for files")
    from ._stream import DDStream

    with DDStream(cfg) as stream:
        # Following, there is no total to show progress against: lines appear as chunks settle.
        quiet = args.quiet or args.follow
        progress = Progress(stream.chunk_count, enabled=False if quiet else None)
        progress.watch(stream.rate_limit_wait)  # a rate-limit wait shows, not a silent stall
        if fmt in TEXT_FORMATS:
            _export_text(stream, fmt, args.output, progress, grouped_hint=" by " in cfg.query,
                         flush=args.follow)
        else:
            _export_arrow(stream, fmt, args.output, progress)
        progress.finish()
    return EXIT_OK


def _export_text(stream: DDStream[AnyBatch], fmt: str, path: str | None, progress: Progress,
                 grouped_hint: bool, flush: bool = False) -> None:
    with _output(path, binary=False) as out:
        writer = None
        for batch in stream.batches():
            if writer is None:
                writer = text_writer(fmt, out, grouped="series" in batch)
            writer.write(batch)
            if flush:  # following: a reader (tail -f, a pipe) sees each chunk as it comes
                out.flush()
            progress.update(len(batch["timestamps"]))
        if writer is None:  # an empty range still gets a header
            writer = text_writer(fmt, out, grouped=grouped_hint)
        writer.close()


def _export_arrow(stream: DDStream[AnyBatch], fmt: str, path: str | None,
                  progress: Progress) -> None:
    try:
        import_optional("pyarrow.parquet", purpose=f"--format {fmt}")
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    reader = stream.to_arrow()
    with _output(path, binary=True) as out:
        writer: Any
        if fmt == "parquet":
            writer = pq.ParquetWriter(out, reader.schema, compression="zstd")
        else:
            writer = pa.ipc.new_stream(out, reader.schema)  # type: ignore[arg-type]  # a binary file
        with writer:
            for record_batch in reader:
                writer.write_batch(record_batch)
                progress.update(record_batch.num_rows)


def _validate(args: argparse.Namespace) -> int:
    cfg = _base_config(args)
    cfg.query = args.query
    cfg.range_end = parse_time("now")
    cfg.range_start = cfg.range_end - 3600
    from ._stream import DDStream

    DDStream.check(cfg)
    print("ok: the API key and the application key are valid, and the query is accepted")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    if args.follow:
        return _export_follow(args)
    """Many queries to Parquet on a Dask cluster: ddstream.dask._cli."""
    try:
        from .dask._cli import ExportUsageError, run_export
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    try:
        return run_export(args)
    except ExportUsageError as exc:
        raise UsageError(str(exc)) from None


def _export_follow(args: argparse.Namespace) -> int:
    from .dask._cli import ExportUsageError, read_queries

    try:
        queries = read_queries(args.queries_file)
        start = parse_time(args.from_)
    except (ValueError, ExportUsageError) as exc:
        raise UsageError(str(exc)) from None
    if len(queries) != 1:
        raise UsageError(f"--follow exports one query; {args.queries_file} has {len(queries)}")
    if args.workers is not None or args.scheduler is not None:
        raise UsageError("--follow runs in this process: drop --workers/--scheduler")
    from ._follow_export import FollowExport

    options: dict[str, Any] = {"site": args.site, "base_url": args.base_url,
                               "settle_seconds": args.settle_seconds}
    if args.debug:
        options["log_level"] = 4

    def report(relative: str, rows: int) -> None:
        if not args.quiet:
            print(f"ddstream export: {relative} ({rows} rows)", file=sys.stderr, flush=True)

    export = FollowExport(queries[0], args.to_parquet, start=start, granularity=args.granularity,
                          chunk_seconds=args.chunk_seconds, partition=args.partition, **options)
    export.run(on_file=report)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddstream",
        description="Stream Datadog metric timeseries over long time ranges, in chunks.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage/config, 3 auth, 4 rate limit, "
        "5 network/timeout/server, 6 query rejected, 7 unexpected answer, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"ddstream {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--site", help="Datadog site (default: $DD_SITE or datadoghq.com)")
    common.add_argument("--base-url", help="API base URL (default: $DDSTREAM_BASE_URL)")
    common.add_argument("--debug", action="store_true", help="debug logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    q = sub.add_parser("query", parents=[common], help="export a metric query to a file")
    q.add_argument("query", help="e.g. 'avg:system.cpu.user{*} by {host}'")
    q.add_argument("--from", dest="from_", default="-1d",
                   help="start: -7d, -36h, ISO 8601 or epoch seconds (default -1d)")
    q.add_argument("--to", default="now", help="end, exclusive (default now)")
    q.add_argument("--granularity", type=int, default=60, help="bucket seconds (default 60)")
    q.add_argument("--chunk-seconds", type=int, default=0,
                   help="seconds per request; 0 = fewest requests (default)")
    q.add_argument("--max-chunks", type=int, default=None, metavar="N",
                   help="refuse a plan of more than N chunks, one request each (default 1000000)")
    q.add_argument("--max-batch-rows", type=int, default=None, metavar="N",
                   help="fail a chunk whose batch would have more than N rows, buckets x series "
                        "(default 10000000)")
    q.add_argument("--format", choices=FORMATS, default="csv")
    q.add_argument("-o", "--output", help="file to write (default stdout)")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    q.add_argument("--follow", action="store_true",
                   help="never end: after --from's history, write each new chunk once it has "
                        "settled (--to is ignored; Ctrl-C stops)")
    q.add_argument("--settle-seconds", type=int, default=None, metavar="S",
                   help="with --follow: fetch a chunk S seconds after it ended (default 300)")
    q.set_defaults(run=_query)

    v = sub.add_parser("validate", parents=[common],
                       help="check the API key, the application key (and a query)")
    v.add_argument("--query", default="avg:system.cpu.user{*}")
    v.set_defaults(run=_validate)

    e = sub.add_parser("export", parents=[common],
                       help="export many queries to Parquet on a Dask cluster (resumable)")
    e.add_argument("queries_file", metavar="QUERIES_FILE", help="one query per line; # comments")
    e.add_argument("--to-parquet", required=True, metavar="DIR",
                   help="directory of Parquet files; rerun the command to resume")
    e.add_argument("--from", dest="from_", default="-1d", help="start (default -1d)")
    e.add_argument("--to", default="now", help="end, exclusive (default now)")
    e.add_argument("--granularity", type=int, default=60, help="bucket seconds (default 60)")
    e.add_argument("--chunk-seconds", type=int, default=0,
                   help="seconds per request; 0 = fewest requests (default)")
    e.add_argument("--chunks-per-partition", type=int, default=None,
                   help="requests per partition and file (default 4)")
    where = e.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default 1)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler")
    e.add_argument("--threads-per-worker", type=int, default=None,
                   help="with --workers: partitions each worker reads at once (default 2)")
    e.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    e.add_argument("--follow", action="store_true",
                   help="never end: one query, written from --from on, each new chunk once it has "
                        "settled, into DIR/date=YYYY-MM-DD/ (no Dask; rerun to resume)")
    e.add_argument("--partition", choices=("chunk", "day"), default="chunk",
                   help="with --follow: one Parquet file per chunk (default) or per day")
    e.add_argument("--settle-seconds", type=int, default=None, metavar="S",
                   help="with --follow: fetch a chunk S seconds after it ended (default 300)")
    e.set_defaults(run=_export)

    # Listed for --help only: main() hands `demo ...` to ddstream.demo with its own options.
    sub.add_parser("demo", help="stream a day from the built-in fake Datadog (or the real one)")
    return parser


def _attach_negative_times(argv: Sequence[str]) -> list[str]:
    """``--from -7d`` as ``--from=-7d``: argparse would take ``-7d`` for an option."""
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        if items[i] in ("--from", "--to") and i + 1 < len(items) and items[i + 1].startswith("-"):
            out.append(f"{items[i]}={items[i + 1]}")
            i += 2
            continue
        out.append(items[i])
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        # The demo has options of its own (see `ddstream demo --help`): hand them over untouched.
        from . import demo

        return demo.main(argv[1:])
    args = parser.parse_args(_attach_negative_times(argv))
    # Streams log what the "ddstream" logger is enabled for: retries and other warnings by
    # default, every request with --debug.
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(name)s %(levelname)s: %(message)s")
    try:
        return int(args.run(args))
    except (UsageError, OutputError) as exc:
        print(f"ddstream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DDStreamError as exc:
        if args.debug:
            raise
        print(f"ddstream: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("\nddstream: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `ddstream query ... | head`: the reader left; that is not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
