"""Writing a stream to a file, batch by batch, in constant memory.

Text formats (``csv``, ``jsonl``, ``table``) are written from the numpy batches; ``parquet`` and
``arrow`` (Arrow IPC stream) from the Arrow record batches of :meth:`DDStream.to_arrow`, so their
columns keep Arrow types (``timestamp[s, UTC]``, nulls where Datadog had no value).

Every text format has the same columns: ``timestamp`` (ISO 8601, UTC), ``series`` (grouped
queries only: the comma-joined tag set), ``avg``, ``min``, ``max``, ``sum`` (empty / ``null``
where Datadog had no value).
"""

from __future__ import annotations

import csv
import json
import math
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # numpy stays unimported until a stream runs (`ddstream --help` is quick)
    import numpy as np

    from ._batch import Batch

FORMATS = ("csv", "jsonl", "table", "parquet", "arrow")
TEXT_FORMATS = ("csv", "jsonl", "table")
VALUE_COLUMNS: tuple[Literal["avg", "min", "max", "sum"], ...] = ("avg", "min", "max", "sum")


class TextWriter(Protocol):
    def write(self, batch: Batch) -> None: ...
    def close(self) -> None: ...


def _iso(timestamps: np.ndarray[Any, Any]) -> list[str]:
    """ISO 8601 UTC strings for epoch seconds, vectorised through numpy's datetime64."""
    text = timestamps.astype("datetime64[s]").astype(str)
    return [t + "Z" for t in text.tolist()]


def _rows(batch: Batch, grouped: bool) -> tuple[list[str], list[str] | None, list[list[float]]]:
    times = _iso(batch["timestamps"])
    series: list[str] | None = None
    if grouped:
        tags = batch.get("series_tags") or []
        series = [tags[i] for i in batch["series"].tolist()] if len(times) else []
    values = [batch[name].tolist() for name in VALUE_COLUMNS]
    return times, series, values


class CsvWriter:
    def __init__(self, out: IO[str], grouped: bool) -> None:
        self._out = out
        self._grouped = grouped
        self._csv = csv.writer(out, lineterminator="\n")
        header = ["timestamp", *(["series"] if grouped else []), *VALUE_COLUMNS]
        self._csv.writerow(header)

    def write(self, batch: Batch) -> None:
        times, series, values = _rows(batch, self._grouped)
        cells = [[("" if math.isnan(v) else repr(v)) for v in column] for column in values]
        if series is None:
            self._csv.writerows(zip(times, *cells))
        else:
            self._csv.writerows(zip(times, series, *cells))

    def close(self) -> None:
        self._out.flush()


class JsonLinesWriter:
    def __init__(self, out: IO[str], grouped: bool) -> None:
        self._out = out
        self._grouped = grouped

    def write(self, batch: Batch) -> None:
        times, series, values = _rows(batch, self._grouped)
        lines = []
        for i, stamp in enumerate(times):
            row: dict[str, Any] = {"timestamp": stamp}
            if series is not None:
                row["series"] = series[i]
            for name, column in zip(VALUE_COLUMNS, values):
                v = column[i]
                row[name] = None if math.isnan(v) else v
            lines.append(json.dumps(row, separators=(",", ":")))
        if lines:
            self._out.write("\n".join(lines) + "\n")

    def close(self) -> None:
        self._out.flush()


class TableWriter:
    """Aligned columns for a terminal; the header repeats at the top only."""

    def __init__(self, out: IO[str], grouped: bool) -> None:
        self._out = out
        self._grouped = grouped
        self._series_width = 24
        head = f"{'timestamp':<20}  " + (f"{'series':<{self._series_width}}  " if grouped else "")
        self._out.write(head + "  ".join(f"{c:>14}" for c in VALUE_COLUMNS) + "\n")

    def write(self, batch: Batch) -> None:
        times, series, values = _rows(batch, self._grouped)
        lines = []
        for i, stamp in enumerate(times):
            cells = "  ".join(
                f"{'':>14}" if math.isnan(col[i]) else f"{col[i]:>14.6g}" for col in values
            )
            tag = f"{series[i]:<{self._series_width}}  " if series is not None else ""
            lines.append(f"{stamp:<20}  {tag}{cells}")
        if lines:
            self._out.write("\n".join(lines) + "\n")

    def close(self) -> None:
        self._out.flush()


def text_writer(fmt: str, out: IO[str], grouped: bool) -> TextWriter:
    if fmt == "csv":
        return CsvWriter(out, grouped)
    if fmt == "jsonl":
        return JsonLinesWriter(out, grouped)
    if fmt == "table":
        return TableWriter(out, grouped)
    raise ValueError(f"not a text format: {fmt!r}")
