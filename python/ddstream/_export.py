"""Writing a stream to a file, batch by batch, in constant memory.

Text formats (``csv``, ``jsonl``, ``table``) are written from the numpy batches; ``parquet`` and
``arrow`` (Arrow IPC stream) from the Arrow record batches of :meth:`DDStream.to_arrow`, so their
columns keep Arrow types (``timestamp[s, UTC]``, nulls where Datadog had no value).

Every text format has the same columns: ``timestamp`` (ISO 8601, UTC), ``query`` (streams of
several queries only: the query's text), ``series`` (grouped queries, and streams of several
queries: the comma-joined tag set, ``""`` for an ungrouped query), ``avg``, ``min``, ``max``,
``sum``, and ``value`` (streams with a value-only query only: a percentile's, ``top()``'s, ...
one value per bucket); empty / ``null`` where Datadog had no value.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar, Literal, Protocol

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


@dataclass(frozen=True)
class Columns:
    """Which optional columns a stream's text output has, fixed before its first row.

    ``queries``: the query texts, for a stream of several (its batches carry a ``query``
    index), else ``None``; ``grouped``: a ``series`` column; ``value``: a ``value`` column."""

    grouped: bool
    queries: tuple[str, ...] | None = None
    value: bool = False

    def header(self) -> list[str]:
        return ["timestamp", *(["query"] if self.queries is not None else []),
                *(["series"] if self.grouped else []), *VALUE_COLUMNS,
                *(["value"] if self.value else [])]

    def numeric(self) -> tuple[str, ...]:
        return (*VALUE_COLUMNS, "value") if self.value else VALUE_COLUMNS


def _rows(batch: Batch, columns: Columns) -> tuple[list[list[str]], list[list[float]]]:
    """A batch's text cells (timestamp, query, series: those the output has) and its numbers."""
    times = _iso(batch["timestamps"])
    text = [times]
    if columns.queries is not None:
        names = columns.queries
        text.append([names[i] for i in batch["query"].tolist()] if "query" in batch
                    else [names[0]] * len(times))
    if columns.grouped:
        tags = batch.get("series_tags") or []
        text.append([tags[i] for i in batch["series"].tolist()] if "series" in batch and times
                    else [""] * len(times))
    values = [batch[name].tolist() for name in VALUE_COLUMNS]
    if columns.value:
        value = batch.get("value")
        values.append([math.nan] * len(times) if value is None else value.tolist())
    return text, values


class CsvWriter:
    def __init__(self, out: IO[str], columns: Columns) -> None:
        self._out = out
        self._columns = columns
        self._csv = csv.writer(out, lineterminator="\n")
        self._csv.writerow(columns.header())

    def write(self, batch: Batch) -> None:
        text, values = _rows(batch, self._columns)
        cells = [[("" if math.isnan(v) else repr(v)) for v in column] for column in values]
        self._csv.writerows(zip(*text, *cells))

    def close(self) -> None:
        self._out.flush()


class JsonLinesWriter:
    def __init__(self, out: IO[str], columns: Columns) -> None:
        self._out = out
        self._columns = columns
        header = columns.header()
        self._text_names = header[: len(header) - len(columns.numeric())]

    def write(self, batch: Batch) -> None:
        text, values = _rows(batch, self._columns)
        numeric = self._columns.numeric()
        lines = []
        for i in range(len(text[0])):
            row: dict[str, Any] = {name: cells[i] for name, cells in zip(self._text_names, text)}
            for name, column in zip(numeric, values):
                v = column[i]
                row[name] = None if math.isnan(v) else v
            lines.append(json.dumps(row, separators=(",", ":")))
        if lines:
            self._out.write("\n".join(lines) + "\n")

    def close(self) -> None:
        self._out.flush()


class TableWriter:
    """Aligned columns for a terminal; the header repeats at the top only."""

    _WIDTHS: ClassVar[dict[str, int]] = {"timestamp": 20, "query": 40, "series": 24}

    def __init__(self, out: IO[str], columns: Columns) -> None:
        self._out = out
        self._columns = columns
        header = columns.header()
        self._text_names = header[: len(header) - len(columns.numeric())]
        self._widths = dict(self._WIDTHS)
        if columns.queries is not None:
            # As wide as the longest query, up to a limit past which a query is cut short: the
            # columns stay aligned (the full text is in the other formats).
            longest = max(len(q) for q in columns.queries)
            self._widths["query"] = max(len("query"), min(longest, self._WIDTHS["query"]))
        head = "".join(f"{name:<{self._widths[name]}}  " for name in self._text_names)
        self._out.write(head + "  ".join(f"{c:>14}" for c in columns.numeric()) + "\n")

    def write(self, batch: Batch) -> None:
        text, values = _rows(batch, self._columns)
        lines = []
        for i in range(len(text[0])):
            cells = "  ".join(
                f"{'':>14}" if math.isnan(col[i]) else f"{col[i]:>14.6g}" for col in values
            )
            head = "".join(f"{self._fit(name, column[i])}  "
                           for name, column in zip(self._text_names, text))
            lines.append(f"{head}{cells}")
        if lines:
            self._out.write("\n".join(lines) + "\n")

    def _fit(self, name: str, text: str) -> str:
        width = self._widths[name]
        if name == "query" and len(text) > width:
            return text[: width - 1] + "…"
        return f"{text:<{width}}"

    def close(self) -> None:
        self._out.flush()


def text_writer(fmt: str, out: IO[str], columns: Columns | bool) -> TextWriter:
    """The writer of ``fmt``; ``columns`` True/False is ``Columns(grouped=...)``."""
    if isinstance(columns, bool):
        columns = Columns(grouped=columns)
    if fmt == "csv":
        return CsvWriter(out, columns)
    if fmt == "jsonl":
        return JsonLinesWriter(out, columns)
    if fmt == "table":
        return TableWriter(out, columns)
    raise ValueError(f"not a text format: {fmt!r}")
