"""A C batch seen from Python: its columns as numpy arrays, without a copy, owning the batch.

``ddstream_next`` writes a ``ddstream_batch *`` into a box made here (:func:`new_batch_box`),
which frees the batch when the last reference goes; :func:`batch_from_box` turns it into the
:data:`~ddstream.Batch` dict whose arrays point into the C memory and keep the box alive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._batch import Batch
from ._lib import ffi, lib

__all__ = ["batch_from_box", "new_batch_box"]

_INT64 = np.dtype(np.int64).str
_FLOAT64 = np.dtype(np.float64).str
_INT32 = np.dtype(np.int32).str
# Parsed once, at import: cffi parses a type's text the first time it meets it (pycparser, some
# milliseconds), which would otherwise fall on a stream's first batch.
_UINTPTR = ffi.typeof("uintptr_t")
_BATCH_BOX = ffi.typeof("ddstream_batch **")


def _free_batch_box(box: Any) -> None:
    """Destructor of a ``ddstream_batch **`` box: frees the batch it holds, if any."""
    batch = box[0]
    if batch != ffi.NULL:
        box[0] = ffi.NULL
        lib.ddstream_batch_free(batch)


def new_batch_box() -> Any:
    """A ``ddstream_batch **`` that frees its batch when the last reference to it goes.

    ``ddstream_next`` writes straight into it, so a batch is owned from the instant it exists:
    an exception (Ctrl-C) at any point can neither leak nor double-free it.
    """
    box = ffi.new(_BATCH_BOX)
    box[0] = ffi.NULL
    return ffi.gc(box, _free_batch_box)


class _Column:
    """Exposes one C column to numpy (``__array_interface__``) and keeps its batch alive.

    numpy stores this object as the array's ``.base``, so the C batch lives as long as any array
    (or view) made from it, even after the stream is closed and the batch dict is dropped.
    """

    __slots__ = ("__array_interface__", "_owner")

    def __init__(self, owner: Any, address: int, typestr: str, length: int, readonly: bool) -> None:
        self._owner = owner
        self.__array_interface__ = {
            "version": 3,
            "shape": (length,),
            "typestr": typestr,
            # Writable, the batch belonging to the caller, unless the memory is shared.
            "data": (address, readonly),
        }


_DTYPES: dict[str, np.dtype[Any]] = {t: np.dtype(t) for t in (_INT64, _FLOAT64, _INT32)}


def _column(
    owner: Any, pointer: Any, typestr: str, length: int, readonly: bool = False
) -> np.ndarray[Any, Any]:
    if length == 0 or pointer == ffi.NULL:
        return np.empty(length, dtype=_DTYPES[typestr])
    address = int(ffi.cast(_UINTPTR, pointer))
    return np.asarray(_Column(owner, address, typestr, length, readonly))


def _strings(pointers: Any, count: int) -> list[str]:
    """``count`` C strings as text. ``ffi.unpack`` reads the pointer array in one call instead of
    one cdata index per string (the series tags are the bulk of a grouped batch's fields)."""
    if count == 0:
        return []
    string = ffi.string
    return [string(p).decode("utf-8", "replace") for p in ffi.unpack(pointers, count)]


def batch_from_box(box: Any) -> Batch:
    """The batch dict over the C batch in ``box`` (zero-copy; the arrays keep ``box`` alive)."""
    b = box[0]
    n = b.length
    avg = b.avg
    if avg == b.min:
        # A v2 batch's statistics, NaN throughout, are one column in C: read-only here, so that
        # writing to one of them cannot show up in the other three. The four arrays are views of
        # one (``.view()`` is a tenth of building an array from its interface), each with that
        # array as ``.base``, which keeps the batch alive.
        stats = _column(box, avg, _FLOAT64, n, True)
        stats_min, stats_max, stats_sum = stats.view(), stats.view(), stats.view()
    else:
        stats = _column(box, avg, _FLOAT64, n)
        stats_min = _column(box, b.min, _FLOAT64, n)
        stats_max = _column(box, b.max, _FLOAT64, n)
        stats_sum = _column(box, b.sum, _FLOAT64, n)
    batch: Batch = {
        "timestamps": _column(box, b.timestamps, _INT64, n),
        "avg": stats,
        "min": stats_min,
        "max": stats_max,
        "sum": stats_sum,
        "chunk_start_ms": b.chunk_start_ms,
        "chunk_end_ms": b.chunk_end_ms,
        "chunk_index": b.chunk_index,
        "interval": b.interval,
        "is_last": bool(b.is_last),
    }
    grouped = b.grouped
    if grouped:
        batch["series"] = _column(box, b.series, _INT32, n)
        batch["series_tags"] = _strings(b.series_tags, b.series_count)
    # Several queries (or ``queries=``): which query each row, and each series, belongs to.
    query = b.query
    if query != ffi.NULL:
        batch["query"] = _column(box, query, _INT32, n)
        if grouped:
            batch["series_query"] = _column(box, b.series_query, _INT32, b.series_count)
    # A value-only query (a percentile, a rollup of its own): its one value per bucket.
    value = b.value
    if value != ffi.NULL:
        batch["value"] = _column(box, value, _FLOAT64, n)
    return batch
