"""``export_parquet``: a resumable export, one Parquet file per partition, written atomically.

Every partition of :func:`read_metrics` becomes ``DIR/part-<query hash>-<start>-<end>.parquet``:
the name is a function of the query, the granularity and the partition's chunk bounds only, so a
rerun of the same export finds what an earlier run wrote and skips it. A file is written as a
hidden temporary (``.part-….tmp-<random>``) in the same directory, flushed to disk and renamed
over its final name, so a file under its final name is always complete: a crash, a killed worker
or Ctrl-C leaves at most temporaries, which readers ignore (Arrow, Dask, DuckDB and polars skip
names starting with ``.`` or ``_``) and the next run replaces. ``DIR/_ddstream_export.json``
records what the directory holds, and a rerun with other settings is refused instead of mixing
two plans' files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._dependencies import dask as _dask
from .._dependencies import pyarrow as pa
from .._dependencies import pyarrow_parquet as pq
from .._output import write_atomically
from .._timespec import TimeLike, parse_time
from ..errors import STATUS_E_CONFIG, ConfigError
from ._read import VALUES, Part, plan_parts, read_part

__all__ = ["MANIFEST", "ExportReport", "arrow_schema", "export_parquet"]

MANIFEST = "_ddstream_export.json"
_FORMAT = 1


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_parquet` did: partitions written now, found already written, rows."""

    written: int
    skipped: int
    rows: int
    files: tuple[str, ...]


def arrow_schema(with_value: bool = False) -> Any:
    """The Parquet files' schema (pyarrow); ``value`` last when some query is value-only."""
    fields: list[tuple[str, pa.DataType]] = [
        ("query", pa.string()),
        ("timestamp", pa.timestamp("ns", tz="UTC")),
        ("series", pa.string()),
        *[(name, pa.float64()) for name in (*VALUES, *(["value"] if with_value else []))],
    ]
    return pa.schema(fields)


def _manifest(parts: list[Part], start: int, end: int) -> dict[str, Any]:
    first = parts[0]
    return {
        "format": _FORMAT,
        "range_start": start,
        "range_end": end,
        "granularity": first.granularity,
        "chunk_seconds": first.chunk_seconds,
        "partitions": len(parts),
        # A file's queries: the one query's text, or the list of a part of several; over v2,
        # the named queries (or the list) and the formulas.
        "queries": {p.query_hash: _what(p) for p in parts},
        "files": sorted(p.file_name for p in parts),
    }


def _what(part: Part) -> Any:
    """What a part's file holds, for the manifest."""
    if not part.v2:
        return part.queries[0] if len(part.queries) == 1 else list(part.queries)
    queries: Any = dict(zip(part.names, part.queries)) if part.names else list(part.queries)
    formulas = None if part.formulas is None else list(part.formulas)
    return {"queries": queries, "formulas": formulas}


def write_part(part: Part, directory: str, budget: bool = True) -> tuple[bool, int]:
    """Write one partition's file unless it exists; ``(written now, rows)``."""
    target = Path(directory) / part.file_name
    if target.exists():
        return False, int(pq.ParquetFile(target).metadata.num_rows)
    frame = read_part(part, budget=budget)
    table = pa.Table.from_pandas(frame, schema=arrow_schema(part.with_value), preserve_index=False)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomically(target, sink.getvalue().to_pybytes())
    return True, table.num_rows


def export_parquet(queries: str | Sequence[str] | Mapping[str, str], start: TimeLike, end: TimeLike,
                   path: str | os.PathLike[str], *, granularity: int = 60, chunk_seconds: int = 0,
                   chunks_per_partition: int | None = None,
                   queries_per_partition: int | None = None, site: str | None = None,
                   base_url: str | None = None, budget: bool = True,
                   **options: Any) -> ExportReport:
    """Export ``queries`` over ``[start, end)`` to Parquet files under ``path``, resumably.

    Same arguments as :func:`read_metrics` (``formulas=`` too); runs on the current Dask
    scheduler (a ``distributed.Client`` if one is active, else Dask's threads). Partitions
    whose file already exists are skipped, so after a crash, a lost worker or Ctrl-C, running
    the same call again completes the export with every row exactly once. ``start`` and
    ``end`` are fixed once (``"now"`` is resolved on the first run and kept in the manifest
    only if given as epoch seconds: pass fixed times to resume). Read the result with
    ``dask.dataframe.read_parquet``, ``pandas.read_parquet``,
    ``polars.scan_parquet(path + "/*.parquet")`` or DuckDB.

    Raises:
        ConfigError: ``path`` holds an export made with other settings.
    """

    try:
        range_start, range_end = parse_time(start), parse_time(end)
    except ValueError as exc:
        raise ConfigError(str(exc), status=STATUS_E_CONFIG) from None
    parts = plan_parts(queries, range_start, range_end, granularity=granularity,
                       chunk_seconds=chunk_seconds, chunks_per_partition=chunks_per_partition,
                       queries_per_partition=queries_per_partition, site=site,
                       base_url=base_url, **options)
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(parts, range_start, range_end)
    manifest_path = directory / MANIFEST
    if manifest_path.exists():
        earlier = json.loads(manifest_path.read_text(encoding="utf-8"))
        if earlier != manifest:
            raise ConfigError(
                f"{directory} holds an export with other queries, range, granularity or "
                "partitioning: use another directory, or the same settings to resume",
                status=STATUS_E_CONFIG)
    else:
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        write_atomically(manifest_path, text.encode("utf-8"))
    dask: Any = _dask  # its top-level names are untyped re-exports: used through Any
    tasks = [dask.delayed(write_part, pure=True)(part, str(directory), budget,
                                                 dask_key_name=f"ddstream-export-{part.file_name}")
             for part in parts]
    results = dask.compute(*tasks)
    written = sum(1 for now, _ in results if now)
    rows = sum(n for _, n in results)
    return ExportReport(written, len(results) - written, rows,
                        tuple(p.file_name for p in parts))
