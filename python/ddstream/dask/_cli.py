"""``ddstream export QUERIES_FILE --to-parquet DIR [--workers N | --scheduler ADDRESS]``.

The queries file has one query per line; blank lines and lines starting with ``#`` are skipped.
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
from pathlib import Path
from typing import Any

from .._dependencies import import_optional

__all__ = ["read_queries", "run_export"]


class ExportUsageError(Exception):
    """A bad argument (exit code 2)."""


def read_queries(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExportUsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    queries = [line.strip() for line in text.splitlines()]
    queries = [q for q in queries if q and not q.startswith("#")]
    if not queries:
        raise ExportUsageError(f"{path} holds no query (one per line; # starts a comment)")
    duplicates = sorted({q for q in queries if queries.count(q) > 1})
    if duplicates:
        raise ExportUsageError(f"{path}: query listed more than once: {duplicates[0]}")
    return queries


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None, threads: int | None) -> Iterator[Any]:
    try:
        distributed: Any = import_optional("distributed", purpose="ddstream export",
                                           needs="dask and distributed")
    except ImportError as exc:
        raise ExportUsageError(str(exc)) from None
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

    queries = read_queries(args.queries_file)
    if args.workers is not None and args.workers < 1:
        raise ExportUsageError("--workers must be at least 1")
    try:
        start, end = parse_time(args.from_), parse_time(args.to)
    except ValueError as exc:
        raise ExportUsageError(str(exc)) from None
    from .._cache import cli_cache_dir
    from ._parquet import export_parquet

    options: dict[str, Any] = {"cache_dir": cli_cache_dir(args.no_cache, args.cache_dir)}
    if args.debug:
        options["log_level"] = 4
    began = time.monotonic()
    with _client(args.workers, args.scheduler, args.threads_per_worker):
        report = export_parquet(queries, start, end, args.to_parquet,
                                granularity=args.granularity, chunk_seconds=args.chunk_seconds,
                                chunks_per_partition=args.chunks_per_partition,
                                queries_per_partition=args.queries_per_partition,
                                site=args.site, base_url=args.base_url, **options)
    if not args.quiet:
        print(f"ddstream export: {len(queries)} queries, {report.written} partitions written, "
              f"{report.skipped} already there, {report.rows} rows in {args.to_parquet} "
              f"({time.monotonic() - began:.1f} s)", file=sys.stderr)
    return 0
