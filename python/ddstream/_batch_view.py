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


def _column(
    owner: Any, pointer: Any, typestr: str, length: int, readonly: bool = False
) -> np.ndarray[Any, Any]:
    if length == 0 or pointer == ffi.NULL:
        return np.empty(length, dtype=np.dtype(typestr))
    address = int(ffi.cast(_UINTPTR, pointer))
    return np.asarray(_Column(owner, address, typestr, length, readonly))


def batch_from_box(box: Any) -> Batch:
    """The batch dict over the C batch in ``box`` (zero-copy; the arrays keep ``box`` alive)."""
    b = box[0]
    n = int(b.length)
    # A v2 batch's statistics, NaN throughout, are one column in C: read-only here, so that
    # writing to one of them cannot show up in the other three.
    shared = b.avg == b.min
    batch: Batch = {
        "timestamps": _column(box, b.timestamps, _INT64, n),
        "avg": _column(box, b.avg, _FLOAT64, n, shared),
        "min": _column(box, b.min, _FLOAT64, n, shared),
        "max": _column(box, b.max, _FLOAT64, n, shared),
        "sum": _column(box, b.sum, _FLOAT64, n, shared),
        "chunk_start_ms": int(b.chunk_start_ms),
        "chunk_end_ms": int(b.chunk_end_ms),
        "chunk_index": int(b.chunk_index),
        "interval": int(b.interval),
        "is_last": bool(b.is_last),
    }
    if b.grouped:
        batch["series"] = _column(box, b.series, _INT32, n)
        batch["series_tags"] = [
            ffi.string(b.series_tags[i]).decode("utf-8", "replace")
            for i in range(int(b.series_count))
        ]
    # Several queries (or ``queries=``): which query each row, and each series, belongs to.
    if b.query != ffi.NULL:
        batch["query"] = _column(box, b.query, _INT32, n)
        if b.grouped:
            batch["series_query"] = _column(box, b.series_query, _INT32, int(b.series_count))
    # A value-only query (a percentile, a rollup of its own): its one value per bucket.
    if b.value != ffi.NULL:
        batch["value"] = _column(box, b.value, _FLOAT64, n)
    return batch
