"""``ddstream export QUERIES_FILE --to-parquet DIR [--workers N | --scheduler ADDRESS]``.

The queries file has one query per line; blank lines and lines starting with ``#`` are skipped.
With ``--formula F`` (repeatable) the queries are named, ``NAME=QUERY``, as arguments or as lines
of queries files, as ``ddstream query --formula`` takes them (``_query_args``), and Datadog's v2
endpoint is read; ``--api`` chooses the endpoint as it does there.
``--workers N`` starts a ``distributed.LocalCluster`` of N worker processes on this machine (they
inherit this process's environment, keys included: nothing is passed to them otherwise);
``--scheduler ADDRESS`` uses a running cluster, whose workers must have ``DD_API_KEY`` and
``DD_APP_KEY`` in their own environment. Rerunning the same command resumes an interrupted
export (see :func:`ddstream.dask.export_parquet`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

from .._dependencies import import_optional
from .._query_args import UsageError, export_queries

__all__ = ["run_export"]


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None, threads: int | None) -> Iterator[Any]:
    try:
        distributed: Any = import_optional("distributed", purpose="ddstream export",
                                           needs="dask and distributed")
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    if scheduler:
        with distributed.Client(scheduler) as client:
            yield client
        return
    with distributed.LocalCluster(n_workers=workers or 1, threads_per_worker=threads or 2,
                                  processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def run_export(args: argparse.Namespace) -> int:
    """The ``export`` subcommand (argparse options: see ``ddstream.cli``)."""
    from .._timespec import parse_time

    selection = export_queries(args.queries, args.formula, args.api)
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    try:
        start, end = parse_time(args.from_), parse_time(args.to)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from .._cache import cli_cache_dir
    from ._parquet import export_parquet
    from ._read import plan_parts

    options: dict[str, Any] = {"cache_dir": cli_cache_dir(args.no_cache, args.cache_dir),
                               **selection.options()}
    if args.debug:
        options["log_level"] = 4
    settings: dict[str, Any] = {
        "granularity": args.granularity, "chunk_seconds": args.chunk_seconds,
        "chunks_per_partition": args.chunks_per_partition,
        "queries_per_partition": args.queries_per_partition,
        "site": args.site, "base_url": args.base_url, **options}
    try:
        # The plan first (no I/O, no keys): a bad formula, name or setting is reported before
        # a cluster is started.
        plan_parts(selection.queries, start, end, **settings)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    began = time.monotonic()
    with _client(args.workers, args.scheduler, args.threads_per_worker):
        report = export_parquet(selection.queries, start, end, args.to_parquet, **settings)
    if not args.quiet:
        what = (f"{len(selection.formulas)} formulas over {len(selection.queries)} queries"
                if selection.formulas is not None else f"{len(selection.queries)} queries")
        print(f"ddstream export: {what}, {report.written} partitions written, "
              f"{report.skipped} already there, {report.rows} rows in {args.to_parquet} "
              f"({time.monotonic() - began:.1f} s)", file=sys.stderr)
    return 0
