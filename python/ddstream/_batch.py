"""``Batch``: the type of the dict a stream yields per chunk (for type checkers and readers).

A ``TypedDict``, so ``batch["avg"]`` is known to be a float64 array and ``batch["avgs"]`` is a
type error. The grouped keys are declared in a ``total=False`` subclass, the way to mark keys
as possibly missing that works on every supported Python without ``typing_extensions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["Batch"]


class _UngroupedBatch(TypedDict):
    timestamps: npt.NDArray[np.int64]
    avg: npt.NDArray[np.float64]
    min: npt.NDArray[np.float64]
    max: npt.NDArray[np.float64]
    sum: npt.NDArray[np.float64]
    chunk_start_ms: int
    chunk_end_ms: int
    chunk_index: int
    interval: int
    is_last: bool


class Batch(_UngroupedBatch, total=False):
    """One chunk of a stream as parallel numpy arrays (a ``dict`` at run time).

    Keys:
        timestamps: int64 epoch seconds, one per row.
        avg: float64, NaN where Datadog had no value (as ``min``, ``max``, ``sum``).
        min: float64.
        max: float64.
        sum: float64.
        chunk_start_ms: the chunk's start, epoch milliseconds.
        chunk_end_ms: the chunk's end (exclusive), epoch milliseconds.
        chunk_index: 0-based index of the chunk in the stream's plan.
        interval: the bucket size in seconds Datadog answered with.
        is_last: True for the plan's last chunk.
        series: grouped queries only (``... by {host}``): int32 index into ``series_tags`` per
            row.
        series_tags: grouped queries only: the tag set of each series, e.g. ``"host:a"``.
        query: streams of ``queries=[...]`` (even of one) or of a ``query`` holding
            comma-separated queries only: int32 index of each row's query in that list. Such a
            stream is always grouped: a series is a (query, tag set) pair, ``""`` for an
            ungrouped query. Rows are ordered by query, then series, then time.
        series_query: with ``query``: int32 index of each series' query. A stream with
            ``formulas`` (Datadog's v2) has ``query``, ``series``, ``series_tags`` and
            ``series_query`` always, indexing its formulas (``DDStream.queries``), and each
            formula's value in ``value`` (``avg``..``sum`` are NaN there).
        value: streams with a value-only query only (a percentile, ``top()``, a query's own
            ``.rollup()``: see docs/queries.md): float64, the one value per bucket of such a
            query's rows, NaN on the rows of four-statistics queries (whose ``avg``/``min``/
            ``max``/``sum`` are set, and are NaN on value-only rows).
    """

    series: npt.NDArray[np.int32]
    series_tags: list[str]
    query: npt.NDArray[np.int32]
    series_query: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]
