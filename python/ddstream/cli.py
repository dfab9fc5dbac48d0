"""The ``ddstream`` command: export Datadog metrics to files, check credentials, run the demo.

    ddstream query 'avg:system.cpu.user{*} by {host}' --from -7d --to now --granularity 60 \\
        --format parquet -o cpu.parquet
    ddstream query 'avg:system.cpu.user{*}' 'p99:trace.http.request.duration{*}' -o both.csv
    ddstream query --queries-file queries.txt --statistics avg,max -o many.csv
    ddstream query --formula 'a / b * 100' 'a=avg:m.used{*} by {host}' 'b=avg:m.total{*}'  # v2
    ddstream explain 'avg:a{*} / avg:b{*} * 100'     # the requests, without sending any
    ddstream explain --formula 'a / b' 'a=avg:a{*}' 'b=avg:b{*}'  # v2: the POST and its body
    ddstream scalar --formula 'a / b' --aggregator avg 'a=avg:m.used{*} by {host}' \
        'b=avg:m.total{*}' --from -30d -o ratio.csv    # one value per group (docs/formulas.md)
    ddstream validate
    ddstream validate --formula 'a / b' 'a=avg:a{*}' 'b=avg:b{*}'  # the v2 request, one bucket
    ddstream demo
    ddstream cache info                                           # the chunk cache, docs/cache.md
    ddstream export queries.txt --to-parquet out/ --workers 4    # ddstream.dask, docs/dask.md
    ddstream query 'avg:system.cpu.user{*}' --from -1h --follow  # never ends: docs/follow.md
    ddstream export query.txt --to-parquet out/ --from -1d --follow --partition day
    ddstream export --formula 'a / b' 'a=avg:m.used{*} by {host}' 'b=avg:m.total{*}' \\
        --to-parquet ratio/ --from -30d --workers 4         # formulas (v2), docs/formulas.md

Credentials and the site come from the environment, as with Datadog's official clients:
``DD_API_KEY``, ``DD_APP_KEY``, ``DD_SITE`` (or ``--site``); ``DDSTREAM_BASE_URL`` (or
``--base-url``) points at a proxy or a fake server. Keys are never accepted as arguments (they
would show in the process list and in shell history).

``query``, ``scalar`` and ``export`` keep the answers of settled chunks in a cache folder,
``$XDG_CACHE_HOME/ddstream`` (else ``~/.cache/ddstream``), so that running one again over the same
range sends no request:
``--cache-dir`` names another folder, ``--no-cache`` turns it off, and ``ddstream cache
info|clear|prune`` looks after it. A default folder that cannot be used is a warning (the query
runs without the cache); a ``--cache-dir`` that cannot be used is an error.

Exit codes say what failed: 0 ok, 1 other error, 2 usage or configuration, 3 authentication,
4 rate limit, 5 network, timeout or server error, 6 query rejected, 7 unexpected answer,
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from . import __version__
from ._dependencies import import_optional
from ._dependencies import pyarrow as pa
from ._dependencies import pyarrow_parquet as pq
from ._export import FORMATS, TEXT_FORMATS, Columns, text_writer
from ._output import OutputError, check_output, open_output
from ._progress import Progress
from ._query_args import UsageError, named_queries, read_queries_file
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
    from ._batch import Batch
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


def _selection(args: argparse.Namespace) -> DDStreamConfig:
    """The config of the queries, range and request options shared by query and explain."""
    cfg = _base_config(args)
    queries = list(args.query)
    if args.queries_file is not None:
        queries += read_queries_file(args.queries_file)
    if not queries:
        raise UsageError("no query: give one or more queries, or --queries-file FILE")
    if args.formula:
        cfg.queries = named_queries(queries)
        cfg.formulas = list(args.formula)
    elif len(queries) == 1:
        cfg.query = queries[0]  # one query: the stream, and every output, as ever
    else:
        cfg.queries = queries
    if args.api is not None:
        cfg.api = args.api
    if args.statistics is not None:
        cfg.statistics = [s for s in args.statistics.split(",") if s.strip()]
    if args.distribution_metric:
        cfg.distribution_metrics = list(args.distribution_metric)
    try:
        cfg.range_start = parse_time(args.from_)
        cfg.range_end = parse_time(args.to)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    cfg.granularity = args.granularity
    cfg.chunk_seconds = args.chunk_seconds
    cfg.max_chunks = args.max_chunks
    cfg.max_subqueries_per_request = args.max_subqueries_per_request
    cfg.max_request_uri_bytes = args.max_request_uri_bytes
    return cfg


def _query(args: argparse.Namespace) -> int:
    cfg = _selection(args)
    cfg.max_batch_rows = args.max_batch_rows
    cfg.cache_dir = _cache_dir_for(args)
    cfg.resume_token = args.resume
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
            opened_at = _chunk_of(stream.resume_token())
            try:
                _export_text(stream, cfg, fmt, args.output, progress, flush=args.follow)
            except (DDStreamError, KeyboardInterrupt):
                _resume_hint(stream, args.output, opened_at)
                raise
        else:
            _export_arrow(stream, fmt, args.output, progress)
        progress.finish()
    return EXIT_OK


def _aggregator_option(values: list[str] | None) -> str | dict[str, str]:
    """``--aggregator`` values: one for every query (``avg``), or ``NAME=AGGREGATOR`` each."""
    if not values:
        return "avg"
    if len(values) == 1 and "=" not in values[0]:
        return values[0].strip()
    named: dict[str, str] = {}
    for value in values:
        name, sep, aggregator = value.partition("=")
        if not sep or not name.strip() or not aggregator.strip():
            raise UsageError(f"--aggregator is AGGREGATOR (for every query) or NAME=AGGREGATOR "
                             f"(repeatable), not {value!r}")
        named[name.strip()] = aggregator.strip()
    return named


def _scalar_format(path: str | None, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    suffix = os.path.splitext(path or "")[1].lower()
    return {".json": "json", ".parquet": "parquet"}.get(suffix, "csv")


def _scalar(args: argparse.Namespace) -> int:
    cfg = _selection(args)
    cfg.cache_dir = _cache_dir_for(args)
    aggregator = _aggregator_option(args.aggregator)
    fmt = _scalar_format(args.output, args.format)
    if fmt == "parquet" and args.output in (None, "-"):
        raise UsageError("--format parquet needs -o FILE (Parquet cannot stream to a pipe)")
    if args.output not in (None, "-"):
        check_output(args.output)  # a path mistake is reported before any request
    from ._scalar import scalar

    table = scalar(cfg, aggregator=aggregator)
    if not args.quiet:
        cut = (f"{table.chunks} chunks, {table.requests} requests" if table.split_reason is None
               else f"one request over the range: {table.split_reason}")
        cached = f"; {table.cache_hits} from the cache" if table.cache_hits else ""
        print(f"ddstream: {len(table)} rows; {cut}{cached}", file=sys.stderr)
    if fmt == "parquet":
        with _output(args.output, binary=True) as handle:
            pq.write_table(table.to_arrow(), handle)
        return EXIT_OK
    rows = list(zip(table.formula.tolist(), table.formula_text.tolist(),
                    table.group_tags.tolist(), table.value.tolist()))
    with _output(args.output, binary=False) as handle:
        if fmt == "json":
            document = {
                "chunks": table.chunks, "requests": table.requests,
                "cache_hits": table.cache_hits, "split_reason": table.split_reason,
                "rows": [{"formula": f, "formula_text": t, "group_tags": g,
                          "value": None if v != v else v} for f, t, g, v in rows],
            }
            handle.write(json.dumps(document, indent=1) + "\n")
        else:
            import csv

            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["formula", "formula_text", "group_tags", "value"])
            for f, t, g, v in rows:
                writer.writerow([f, t, g, "" if v != v else repr(v)])
    return EXIT_OK


def _cache_dir_for(args: argparse.Namespace) -> str | None:
    """The command's cache folder (``_cache.cli_cache_dir``)."""
    from ._cache import cli_cache_dir

    return cli_cache_dir(args.no_cache, args.cache_dir)


def _cache(args: argparse.Namespace) -> int:
    from ._cache import cache_usage, default_cache_dir, prune_cache

    folder = args.cache_dir if args.cache_dir is not None else str(default_cache_dir())
    before = cache_usage(folder)
    if args.action == "info":
        print(f"cache folder: {folder}")
        print(f"entries: {before.entries}")
        print(f"size: {before.bytes} bytes ({before.bytes / 2**20:.1f} MiB)")
        return EXIT_OK
    if args.max_bytes is not None and args.action == "clear":
        raise UsageError("--max-bytes goes with prune, not clear")
    if args.max_bytes is not None and args.max_bytes < 0:
        raise UsageError(f"--max-bytes must be 0 or positive, got {args.max_bytes}")
    limit = 0 if args.action == "clear" else args.max_bytes
    if limit is None:
        limit = _DEFAULT_CACHE_MAX_BYTES
    after = prune_cache(folder, limit)
    print(f"removed {max(before.entries - after.entries, 0)} entries "
          f"({max(before.bytes - after.bytes, 0)} bytes); {after.entries} entries "
          f"({after.bytes} bytes) left in {folder}")
    return EXIT_OK


# The library's default cache_max_bytes (ddstream.h): what `cache prune` keeps by default.
_DEFAULT_CACHE_MAX_BYTES = 1 << 30


def _chunk_of(token: str) -> int:
    """The chunk a resume token starts at (its format: ``dds1-<fingerprint>-<chunk>``)."""
    return int(token.rpartition("-")[2])


def _resume_hint(stream: DDStream[AnyBatch], path: str | None, opened_at: int) -> None:
    """After a failed text export whose rows so far were kept (written to stdout, a pipe or a
    device: a regular file's are dropped with its .partial), say how to fetch only the rest."""
    if path not in (None, "-") and not check_output(path).in_place:
        return
    token = stream.resume_token()
    at = _chunk_of(token)
    if at > opened_at:  # rows were written: the rest starts at chunk `at`
        print(f"ddstream: chunks {opened_at}..{at - 1} were written; to fetch the rest, rerun "
              f"with --resume {token}", file=sys.stderr)


def _columns_of(cfg: DDStreamConfig, stream: DDStream[AnyBatch], batch: Batch | None) -> Columns:
    """The text output's columns: those of the first batch, or with none (an empty range) those
    the library says the stream's batches would have."""
    if batch is not None:
        return Columns(grouped="series" in batch,
                       queries=stream.queries if "query" in batch else None,
                       value="value" in batch)
    if cfg.formulas is not None or cfg.api == "v2":
        # v2's batches (formulas): always a query (formula) index, series and value.
        return Columns(grouped=True, queries=stream.queries, value=True)
    from ._explain import explain

    compiled = explain(cfg.copy(api_key=None, app_key=None))["queries"]
    several = cfg.queries is not None or len(compiled) > 1
    return Columns(grouped=several or any(q["grouped"] for q in compiled),
                   queries=stream.queries if several else None,
                   value=any(q["statistics"] == ["value"] for q in compiled))


def _export_text(stream: DDStream[AnyBatch], cfg: DDStreamConfig, fmt: str, path: str | None,
                 progress: Progress, flush: bool = False) -> None:
    with _output(path, binary=False) as out:
        writer = None
        for batch in stream.batches():
            if writer is None:
                writer = text_writer(fmt, out, _columns_of(cfg, stream, batch))
            writer.write(batch)
            if flush:  # following: a reader (tail -f, a pipe) sees each chunk as it comes
                out.flush()
            progress.update(len(batch["timestamps"]))
        if writer is None:  # an empty range still gets a header
            writer = text_writer(fmt, out, _columns_of(cfg, stream, None))
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


def _explain(args: argparse.Namespace) -> int:
    """``ddstream explain``: the compiled sub-queries and the requests of a chunk, sent nowhere."""
    cfg = _selection(args)
    from ._explain import explain

    report = explain(cfg)
    if args.json:
        print(json.dumps(report, indent=1))
        return EXIT_OK
    if report.get("api") == "v2":
        return _explain_v2(report)
    for i, query in enumerate(report["queries"]):
        kind = ("value only: " + str(query["reason"]) if query["statistics"] == ["value"]
                else ", ".join(query["statistics"]))
        grouped = "grouped; " if query["grouped"] else ""
        print(f"query {i}: {query['query']}  ({grouped}{kind})")
        for sub in query["subqueries"]:
            print(f"  {sub}")
    per_chunk = int(report["requests_per_chunk"])
    chunks = int(report["chunks"])
    print(f"{chunks} chunk{'s' * (chunks != 1)} x {per_chunk} request"
          f"{'s' * (per_chunk != 1)} per chunk = {chunks * per_chunk} requests")
    for i, request in enumerate(report["requests"]):
        subs = ", ".join(f"q{q} {stat}" for q, stat in request["subqueries"])
        print(f"request {i + 1}: {len(request['subqueries'])} sub-queries, "
              f"{request['uri_bytes']} URI bytes: {subs}")
    return EXIT_OK


def _explain_v2(report: dict[str, Any]) -> int:
    """The text form of a v2 explanation: named queries, formulas, and the first chunk's POST
    with its body exactly as it would be sent."""
    for query in report["queries"]:
        grouped = "  (grouped)" if query["grouped"] else ""
        print(f"query {query['name']}: {query['query']}{grouped}")
    formulas = report["formulas"] or [q["name"] for q in report["queries"]]
    for i, formula in enumerate(formulas):
        print(f"formula {i}: {formula}")
    chunks = int(report["chunks"])
    print(f"{chunks} chunk{'s' * (chunks != 1)} x 1 request per chunk = {chunks} requests, "
          f"interval {report['interval']} s")
    for request in report["requests"]:
        start, end = request["chunk"]
        print(f"first chunk [{start}, {end}): {request['method']} {request['path']}")
        print(request["body"])
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    cfg = _base_config(args)
    if args.formula:
        # A stream of formulas is checked with the v2 request it will send.
        if not args.named:
            raise UsageError("--formula needs the queries it uses, as NAME=QUERY arguments")
        cfg.queries = named_queries(args.named)
        cfg.formulas = list(args.formula)
    elif args.named:
        raise UsageError("NAME=QUERY arguments go with --formula (a single query: --query)")
    else:
        cfg.query = args.query
    cfg.range_end = parse_time("now")
    cfg.range_start = cfg.range_end - 3600
    from ._stream import DDStream

    DDStream.check(cfg)
    what = "the formulas are accepted" if args.formula else "the query is accepted"
    print(f"ok: the API key and the application key are valid, and {what}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    """Many queries to Parquet on a Dask cluster (ddstream.dask._cli), or followed (--follow)."""
    if args.follow:
        return _export_follow(args)
    try:
        from .dask._cli import run_export
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    return run_export(args)


def _export_follow(args: argparse.Namespace) -> int:
    from ._query_args import export_queries

    selection = export_queries(args.queries, args.formula, args.api)
    try:
        start = parse_time(args.from_)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.workers is not None or args.scheduler is not None:
        raise UsageError("--follow runs in this process: drop --workers/--scheduler")
    from ._follow_export import FollowExport

    options: dict[str, Any] = {"site": args.site, "base_url": args.base_url,
                               "settle_seconds": args.settle_seconds,
                               "cache_dir": _cache_dir_for(args), **selection.options()}
    if args.debug:
        options["log_level"] = 4

    def report(relative: str, rows: int) -> None:
        if not args.quiet:
            print(f"ddstream export: {relative} ({rows} rows)", file=sys.stderr, flush=True)

    export = FollowExport(selection.queries, args.to_parquet, start=start,
                          granularity=args.granularity, chunk_seconds=args.chunk_seconds,
                          partition=args.partition, **options)
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

    selection = argparse.ArgumentParser(add_help=False)
    selection.add_argument("query", nargs="*", metavar="QUERY",
                           help="e.g. 'avg:system.cpu.user{*} by {host}'; several queries are "
                                "one stream, packed into as few requests as possible")
    selection.add_argument("--queries-file", metavar="FILE",
                           help="more queries, one per line (blank lines and # comments skipped)")
    selection.add_argument("--formula", action="append", metavar="FORMULA",
                           help="a formula over named queries, e.g. 'a / b * 100' (repeatable); "
                                "the queries are then NAME=QUERY arguments, and Datadog's v2 "
                                "endpoint is read (docs/formulas.md)")
    selection.add_argument("--api", choices=("auto", "v1", "v2"), default=None,
                           help="the Datadog endpoint: auto (default: v2 with --formula), v1 "
                                "or v2")
    selection.add_argument("--from", dest="from_", default="-1d",
                           help="start: -7d, -36h, ISO 8601 or epoch seconds (default -1d)")
    selection.add_argument("--to", default="now", help="end, exclusive (default now)")
    selection.add_argument("--granularity", type=int, default=60,
                           help="bucket seconds (default 60)")
    selection.add_argument("--chunk-seconds", type=int, default=0,
                           help="seconds per request; 0 = fewest requests (default)")
    selection.add_argument("--statistics", metavar="LIST",
                           help="comma-separated subset of avg,min,max,sum to fetch (default all "
                                "four; the others are empty)")
    selection.add_argument("--distribution-metric", action="append", metavar="NAME",
                           help="a distribution metric the queries use (repeatable)")
    selection.add_argument("--max-subqueries-per-request", type=int, default=None, metavar="N",
                           help="sub-queries per request at most (default 35)")
    selection.add_argument("--max-request-uri-bytes", type=int, default=None, metavar="N",
                           help="request URI bytes at most (default 7000)")
    selection.add_argument("--max-chunks", type=int, default=None, metavar="N",
                           help="refuse a plan of more than N chunks (default 1000000)")

    q = sub.add_parser("query", parents=[common, selection],
                       help="export metric queries to a file")
    q.add_argument("--max-batch-rows", type=int, default=None, metavar="N",
                   help="fail a chunk whose batch would have more than N rows, buckets x series "
                        "(default 10000000)")
    q.add_argument("--format", choices=FORMATS, default="csv")
    q.add_argument("-o", "--output", help="file to write (default stdout)")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    q.add_argument("--cache-dir", metavar="DIR",
                   help="keep settled chunks' answers in DIR and read them from there next time "
                        "(default $XDG_CACHE_HOME/ddstream, else ~/.cache/ddstream)")
    q.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the chunk cache")
    q.add_argument("--resume", metavar="TOKEN",
                   help="start at the chunk a failed export to stdout stopped at: the token it "
                        "printed (made for the same queries and range)")
    q.add_argument("--follow", action="store_true",
                   help="never end: after --from's history, write each new chunk once it has "
                        "settled (--to is ignored; Ctrl-C stops)")
    q.add_argument("--settle-seconds", type=int, default=None, metavar="S",
                   help="with --follow: fetch a chunk S seconds after it ended (default 300)")
    q.set_defaults(run=_query)

    x = sub.add_parser("explain", parents=[common, selection],
                       help="show the sub-queries and requests of queries, sending nothing")
    x.add_argument("--json", action="store_true", help="the library's JSON, as it is")
    x.set_defaults(run=_explain)

    sc = sub.add_parser("scalar", parents=[common, selection],
                        help="one value per group of each formula over the range "
                             "(Datadog's scalar endpoint)")
    sc.add_argument("--aggregator", action="append", metavar="AGG",
                    help="avg (default), min, max, sum, last, count, ... for every query, or "
                         "NAME=AGG per named query (repeatable)")
    sc.add_argument("--format", choices=("csv", "json", "parquet"), default=None,
                    help="default: from -o's extension (.json, .parquet), else csv")
    sc.add_argument("-o", "--output", help="file to write (default stdout)")
    sc.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    sc.add_argument("--cache-dir", metavar="DIR",
                    help="keep settled pieces' answers in DIR and read them from there next time "
                         "(default $XDG_CACHE_HOME/ddstream, else ~/.cache/ddstream)")
    sc.add_argument("--no-cache", action="store_true",
                    help="neither read nor write the chunk cache")
    sc.set_defaults(run=_scalar)

    v = sub.add_parser("validate", parents=[common],
                       help="check the API key, the application key (and a query)")
    v.add_argument("--query", default="avg:system.cpu.user{*}")
    v.add_argument("--formula", action="append", metavar="F",
                   help="a formula over NAME=QUERY arguments (repeatable): checks the v2 request "
                        "a stream of them sends")
    v.add_argument("named", nargs="*", metavar="NAME=QUERY")
    v.set_defaults(run=_validate)

    e = sub.add_parser("export", parents=[common],
                       help="export many queries to Parquet on a Dask cluster (resumable)")
    e.add_argument("queries", nargs="*", metavar="QUERIES_FILE|NAME=QUERY",
                   help="files of one query per line (# comments); with --formula, NAME=QUERY "
                        "arguments or lines")
    e.add_argument("--formula", action="append", metavar="FORMULA",
                   help="a formula over named queries, e.g. 'a / b * 100' (repeatable); the "
                        "queries are then NAME=QUERY, and Datadog's v2 endpoint is read "
                        "(docs/formulas.md)")
    e.add_argument("--api", choices=("auto", "v1", "v2"), default=None,
                   help="the Datadog endpoint: auto (default: v2 with --formula), v1 or v2")
    e.add_argument("--to-parquet", required=True, metavar="DIR",
                   help="directory of Parquet files; rerun the command to resume")
    e.add_argument("--from", dest="from_", default="-1d", help="start (default -1d)")
    e.add_argument("--to", default="now", help="end, exclusive (default now)")
    e.add_argument("--granularity", type=int, default=60, help="bucket seconds (default 60)")
    e.add_argument("--chunk-seconds", type=int, default=0,
                   help="seconds per request; 0 = fewest requests (default)")
    e.add_argument("--chunks-per-partition", type=int, default=None,
                   help="chunks per partition and file (default 4)")
    e.add_argument("--queries-per-partition", type=int, default=None, metavar="N",
                   help="queries read as one stream per partition and file, their sub-queries "
                        "packed into few requests (default 1)")
    where = e.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default 1)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler")
    e.add_argument("--threads-per-worker", type=int, default=None,
                   help="with --workers: partitions each worker reads at once (default 2)")
    e.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    e.add_argument("--follow", action="store_true",
                   help="never end: the queries as one stream, written from --from on, each new "
                        "chunk once it has settled, into DIR/date=YYYY-MM-DD/ (no Dask; rerun to "
                        "resume)")
    e.add_argument("--partition", choices=("chunk", "day"), default="chunk",
                   help="with --follow: one Parquet file per chunk (default) or per day")
    e.add_argument("--settle-seconds", type=int, default=None, metavar="S",
                   help="with --follow: fetch a chunk S seconds after it ended (default 300)")
    e.add_argument("--cache-dir", metavar="DIR",
                   help="the chunk cache's folder, shared by the workers (shared storage for a "
                        "remote cluster; default $XDG_CACHE_HOME/ddstream, else "
                        "~/.cache/ddstream)")
    e.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the chunk cache")
    e.set_defaults(run=_export)

    c = sub.add_parser("cache", help="the chunk cache: info, clear, prune")
    c.add_argument("action", choices=["info", "clear", "prune"],
                   help="info: entries and size; clear: delete every entry; prune: delete the "
                        "least recently used until --max-bytes are left")
    c.add_argument("--cache-dir", metavar="DIR",
                   help="the cache folder (default $XDG_CACHE_HOME/ddstream, else "
                        "~/.cache/ddstream)")
    c.add_argument("--max-bytes", type=int, default=None, metavar="N",
                   help="prune: bytes to keep at most (default 1073741824, the query's bound)")
    c.add_argument("--debug", action="store_true", help="tracebacks")
    c.set_defaults(run=_cache)

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
