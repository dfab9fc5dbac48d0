"""``FollowExport``: metric queries followed into a folder of Parquet files that grows as it runs.

``ddstream export --follow`` and :func:`follow_export`. The folder is hive-partitioned by day,
``DIR/date=2026-11-30/…parquet``, so DuckDB (``read_parquet('DIR/**/*.parquet',
hive_partitioning=true)``) and polars (``scan_parquet('DIR/**/*.parquet')``) read it while it
grows, with ``date`` as a column:

* ``partition="chunk"``: one file per chunk, ``chunk-<chunk start, epoch s>.parquet``;
* ``partition="day"``: one file per day, ``day.parquet``, rewritten with each chunk of the day.

Every file is written as a hidden temporary (``.…tmp-<random>``, which those readers skip) in
its folder, flushed to disk and renamed over its final name: a reader sees a whole file or the
one before it, never half of one.

Resuming: after each file, ``DIR/_ddstream_follow.json`` (written the same way) records the
stream's resume token, the next chunk to write. A restart (the same command) continues from it,
with no gap and no duplicate: a chunk's file name is a function of the chunk, so a chunk written
just before a crash, and not yet in the state, is written again under the same name; in a day
file, rows from the resumed chunk on are dropped before it is appended. The state also records
the query, granularity, chunk size and partitioning, and a restart with others is refused instead
of mixing two plans in one folder.

Several queries are one stream (their sub-queries packed into the fewest requests a chunk, as
``DDStream(queries=...)``): a chunk's file holds the rows of every query, each row naming its
query in the ``query`` column.

Formulas over named queries (``{name: query}`` and ``formulas=[...]``, Datadog's v2 endpoint,
docs/formulas.md) are one v2 stream too: the ``query`` column holds each row's formula, a
``value`` column after ``sum`` its value (``avg``..``sum`` are NaN, as in every v2 batch), and
the state records the named queries and the formulas, so a restart with others is refused.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._batch import Batch
from ._dependencies import pyarrow as pa
from ._dependencies import pyarrow_parquet as pq
from ._output import write_atomically
from ._stream import DDStream
from .errors import STATUS_E_CONFIG, ConfigError

__all__ = ["STATE_FILE", "FollowExport", "FollowReport", "follow_export"]

STATE_FILE = "_ddstream_follow.json"
PARTITIONS = ("chunk", "day")
_FORMAT = 1
_VALUES = ("avg", "min", "max", "sum")


@dataclass(frozen=True)
class FollowReport:
    """What a run wrote: chunks, rows, and the files (relative paths) in the order written."""

    chunks: int
    rows: int
    files: tuple[str, ...]


def _schema(with_value: bool = False) -> Any:
    """The files' columns; ``value`` last for a v2 stream (formulas), whose rows are there."""
    fields: list[tuple[str, Any]] = [
        ("query", pa.string()),
        ("timestamp", pa.timestamp("s", tz="UTC")),
        ("series", pa.string()),
        *[(name, pa.float64()) for name in (*_VALUES, *(["value"] if with_value else []))],
    ]
    return pa.schema(fields)


def _column(batch: Batch, name: str, n: int) -> Any:
    """A value column of the batch, NaN where the batch has none (v1's statistics in a v2
    batch), as ``export_parquet``'s files have it."""
    values: Any = batch.get(name)
    return pa.array(np.full(n, np.nan) if values is None else values, type=pa.float64())


def _table(queries: tuple[str, ...], batch: Batch, with_value: bool = False) -> Any:
    n = len(batch["timestamps"])
    if "query" in batch:  # several queries: each row's index into them
        names = pa.array(np.asarray(queries, dtype=object)[batch["query"]] if n else [],
                         type=pa.string())
    else:
        names = pa.array([queries[0]] * n, type=pa.string())
    if "series" in batch:
        tags = np.asarray(batch["series_tags"], dtype=object)
        if "query" in batch:  # an ungrouped query's one series is "" there: null, as alone
            tags[tags == ""] = None
        series = pa.array(tags[batch["series"]] if n else [], type=pa.string())
    else:
        series = pa.nulls(n, type=pa.string())
    columns: list[Any] = [
        names,
        pa.array(batch["timestamps"], type=pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        series,
        *[_column(batch, name, n) for name in (*_VALUES, *(["value"] if with_value else []))],
    ]
    return pa.Table.from_arrays(columns, schema=_schema(with_value))


def _parquet_bytes(table: Any) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def _day(epoch_s: int) -> str:
    return _dt.datetime.fromtimestamp(epoch_s, tz=_dt.timezone.utc).strftime("%Y-%m-%d")


class FollowExport:
    """A follow export into ``directory``; :meth:`run` until :meth:`stop` (any thread), Ctrl-C,
    or ``max_chunks`` chunks. ``stream_options``: :class:`~ddstream.DDStreamConfig` fields
    (``api_key``, ``base_url``, ``settle_seconds``, ...); ``clock``: as ``DDStream``'s."""

    def __init__(self, query: str | Sequence[str] | Mapping[str, str],
                 directory: str | os.PathLike[str], *, start: int, granularity: int = 60,
                 chunk_seconds: int = 0, partition: str = "chunk",
                 clock: Callable[[], float] | None = None,
                 formulas: Sequence[str] | None = None, **stream_options: Any) -> None:
        if partition not in PARTITIONS:
            raise ConfigError(f"partition must be one of {', '.join(PARTITIONS)}, not "
                              f"{partition!r}", status=STATUS_E_CONFIG)
        if formulas is not None and (isinstance(formulas, str)
                                     or not isinstance(formulas, Sequence)):
            raise TypeError(f"formulas must be a list of str, not {type(formulas).__name__}")
        self.names: tuple[str, ...] = tuple(query) if isinstance(query, Mapping) else ()
        self.queries = ((query,) if isinstance(query, str)
                        else tuple(query.values()) if isinstance(query, Mapping)
                        else tuple(query))
        if not self.queries:
            raise ConfigError("no query to follow", status=STATUS_E_CONFIG)
        self.formulas = None if formulas is None else tuple(formulas)
        self.v2 = self.formulas is not None or stream_options.get("api") == "v2"
        self.query: str | list[str] | dict[str, Any]
        if self.v2:
            # What a v2 folder holds, as export_parquet's manifest says it.
            named: Any = dict(zip(self.names, self.queries)) if self.names else list(self.queries)
            self.query = {"queries": named,
                          "formulas": None if self.formulas is None else list(self.formulas)}
        else:
            # One query keeps the state file's format of before (a folder written then resumes).
            self.query = self.queries[0] if len(self.queries) == 1 else list(self.queries)
        self.directory = Path(directory)
        self.start = int(start)
        self.granularity = granularity
        self.chunk_seconds = chunk_seconds
        self.partition = partition
        self._clock = clock
        self._options = stream_options
        self._stream: DDStream[Any] | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    # -- the state file -----------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        return {"format": _FORMAT, "query": self.query, "start": self.start,
                "granularity": self.granularity, "chunk_seconds": self.chunk_seconds,
                "partition": self.partition}

    def _read_state(self) -> str | None:
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a follow export's state ({exc})",
                              status=STATUS_E_CONFIG) from None
        identity = self._identity()
        differs = sorted(k for k in identity if state.get(k) != identity[k])
        if differs:
            raise ConfigError(
                f"{self.directory} holds a follow export with another {', '.join(differs)}: "
                "use another folder, or the same settings to resume it",
                status=STATUS_E_CONFIG)
        token = state.get("resume_token")
        return token if isinstance(token, str) else None

    def _write_state(self, token: str) -> None:
        state = dict(self._identity(), resume_token=token)
        text = json.dumps(state, indent=1, sort_keys=True) + "\n"
        write_atomically(self.directory / STATE_FILE, text.encode("utf-8"))

    # -- running ------------------------------------------------------------------------------

    def stop(self) -> None:
        """End :meth:`run` at once (any thread): the chunk being waited for is not written."""
        self._stopped.set()
        with self._lock:
            if self._stream is not None:
                self._stream.cancel()

    def run(self, max_chunks: int | None = None,
            on_file: Callable[[str, int], None] | None = None) -> FollowReport:
        """Write chunks as they settle; returns after ``max_chunks`` (``None``: until
        :meth:`stop`, which returns normally, or Ctrl-C, which raises ``KeyboardInterrupt``,
        the state being saved after every file either way). ``on_file(relative_path, rows)``
        is called after each file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        token = self._read_state()
        which: dict[str, Any]
        if self.v2:
            which = {"queries": (dict(zip(self.names, self.queries)) if self.names
                                 else list(self.queries)), "formulas": self.formulas}
        elif self.names:  # named without formulas over v1: the library's error says so
            which = {"queries": dict(zip(self.names, self.queries))}
        else:
            which = ({"query": self.queries[0]} if len(self.queries) == 1
                     else {"queries": list(self.queries)})
        stream: DDStream[Any] = DDStream(
            **which, range_start=self.start, range_end=None,
            granularity=self.granularity, chunk_seconds=self.chunk_seconds,
            resume=token, clock=self._clock, **self._options)
        with self._lock:
            self._stream = stream
        if self._stopped.is_set():
            stream.cancel()
        # A v2 stream's rows are labelled by its formulas (each query its own without them).
        labels = stream.queries if self.v2 else self.queries
        files: list[str] = []
        chunks = rows = 0
        day_table: Any = None
        day_name: str | None = None
        try:
            while max_chunks is None or chunks < max_chunks:
                try:
                    batch = next(stream.batches())
                except Exception:
                    if self._stopped.is_set():
                        break
                    raise
                chunk_start = batch["chunk_start_ms"] // 1000
                day = _day(chunk_start)
                table = _table(labels, batch, self.v2)
                if self.partition == "chunk":
                    relative = f"date={day}/chunk-{chunk_start}.parquet"
                    content = table
                else:
                    relative = f"date={day}/day.parquet"
                    if day_name != day:
                        day_table, day_name = self._day_so_far(relative), day
                    if day_table is not None:
                        # Rows from this chunk on were written before a restart: replaced.
                        seconds = day_table["timestamp"].cast(pa.int64()).to_numpy()
                        keep = pa.array(seconds < chunk_start, type=pa.bool_())
                        day_table = pa.concat_tables([day_table.filter(keep), table])
                    else:
                        day_table = table
                    content = day_table
                write_atomically(self.directory / relative, _parquet_bytes(content))
                self._write_state(stream.resume_token())
                files.append(relative)
                chunks += 1
                rows += table.num_rows
                if on_file is not None:
                    on_file(relative, table.num_rows)
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return FollowReport(chunks, rows, tuple(files))

    def _day_so_far(self, relative: str) -> Any:
        path = self.directory / relative
        return pq.read_table(path, schema=_schema(self.v2)) if path.is_file() else None


def follow_export(query: str | Sequence[str] | Mapping[str, str],
                  directory: str | os.PathLike[str], *, start: int,
                  max_chunks: int | None = None, **options: Any) -> FollowReport:
    """:class:`FollowExport` ``(query, directory, start=start, **options).run(max_chunks)``."""
    return FollowExport(query, directory, start=start, **options).run(max_chunks)
