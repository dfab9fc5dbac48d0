"""Arrow output: the C library's Arrow C stream, handed to pyarrow, polars, DuckDB and pandas.

Everything here goes through ``ddstream_stream_arrow`` (include/ddstream.h): the C library turns
each chunk into an Arrow record batch whose column buffers *are* the batch's memory, and the
consumer imports it through the Arrow C data interface — no column is copied on the way (see
docs/arrow.md for exactly what is built and what is copied).

* :class:`ArrowSource` — a stream that has been handed to Arrow. It keeps one handle on the C
  Arrow stream ("the root") and gives out more: a PyCapsule per ``__arrow_c_stream__`` call, a
  ``pyarrow.RecordBatchReader`` for ``to_arrow()``, and the batch iterator of ``enable_arrow``
  iteration. Every handle reads the
  same sequence of batches; the C stream is closed when the last handle is released.
* :class:`ArrowBatch` — what ``enable_arrow`` iteration yields: the seed guide's Arrow IPC bytes
  *and* a record batch (docs/arrow.md explains why one object is both).

pyarrow is imported only when a function that needs it is called (``_dependencies``):
``import ddstream`` works without it (and without polars, DuckDB or pandas).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import _native
from ._dependencies import pyarrow
from ._lib import ffi, lib
from ._native import error_from, new_error, wait_in_slices
from .errors import STATUS_END, STATUS_OK, DDStreamError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["ArrowBatch", "ArrowSource"]

def _address(cdata: Any) -> int:
    return int(ffi.cast("uintptr_t", cdata))


def _release_stream(stream: Any) -> None:
    """Destructor of a ``struct ArrowArrayStream *``: release it unless moved or released."""
    if stream.release != ffi.NULL:
        stream.release(stream)


def _release_array(array: Any) -> None:
    if array.release != ffi.NULL:
        array.release(array)


def _new_stream_struct() -> Any:
    stream = ffi.new("struct ArrowArrayStream *")
    stream.release = ffi.NULL
    return ffi.gc(stream, _release_stream)


# --------------------------------------------------------------------------- the source


class ArrowSource:
    """A DDStream handed to Arrow: the root handle on its C Arrow stream, and its schema.

    Created once per DDStream (by ``to_arrow()``, ``__arrow_c_stream__`` or ``enable_arrow``
    iteration). ``ptr`` stays valid while any handle is alive, for ``ddstream_cancel`` and
    ``ddstream_poll_log`` (the two calls the C API still allows on it).
    """

    def __init__(self, ptr: Any) -> None:
        root = _new_stream_struct()
        err = new_error()
        status = lib.ddstream_stream_arrow(ptr, root, err)
        if status != STATUS_OK:
            raise error_from(status, err)
        self.ptr = ptr
        self._root: Any = root
        schema = ffi.new("struct ArrowSchema *")
        rc = root.get_schema(root, schema)
        if rc != 0:  # pragma: no cover - only when out of memory
            self.release()
            raise DDStreamError(f"get_schema failed (errno {rc})")
        self._c_schema = ffi.gc(schema, _release_schema)
        self._pa_schema: Any = None
        self.metadata = _read_metadata(schema.metadata)

    # -- handles

    def share(self) -> Any:
        """A new handle (``struct ArrowArrayStream *``), released when it is garbage-collected
        unless it was moved out first."""
        root = self._root
        if root is None:
            raise ValueError("the stream's Arrow source is closed")
        out = _new_stream_struct()
        err = new_error()
        status = lib.ddstream_stream_arrow_share(root, out, err)
        if status != STATUS_OK:  # pragma: no cover - only when out of memory
            raise error_from(status, err)
        return out

    def capsule(self, requested_schema: Any = None) -> Any:
        """``__arrow_c_stream__``: a new handle in a PyCapsule.

        The capsule is pyarrow's export of a reader over :meth:`batches` (record batches
        imported without touching a column), not of the C handle itself: a consumer
        (``pa.table``, polars, DuckDB) calls the C handle's ``get_next`` with the GIL released
        and waits in it until the chunk arrives, so Ctrl-C would go unnoticed until the whole
        stream had been read. Through :meth:`batches` each wait is cut into slices between which
        Python handles signals, and the KeyboardInterrupt (or a ddstream error) reaches the
        consumer as the error of its read — never a partial table that looks whole. pyarrow
        makes the capsule: its destructor is C code that releases an unconsumed stream safely at
        any time. A capsule made from Python (ctypes) would need a Python destructor, which runs
        with the consumer's exception pending when a consumer fails — not safe (docs/arrow.md).
        """
        return self.reader().__arrow_c_stream__(requested_schema)

    def release(self) -> None:
        """Let go of the root handle (idempotent): the C stream closes once no reader holds one."""
        root, self._root = self._root, None
        if root is not None:
            _release_stream(root)

    # -- pyarrow

    def schema(self) -> Any:
        """The stream's schema as a ``pyarrow.Schema`` (with the metadata of docs/arrow.md)."""
        if self._pa_schema is None:
            copy = ffi.new("struct ArrowSchema *")
            root = self._root
            if root is None:
                raise ValueError("the stream's Arrow source is closed")
            if root.get_schema(root, copy) != 0:  # pragma: no cover - only when out of memory
                raise DDStreamError("get_schema failed")
            self._pa_schema = pyarrow.Schema._import_from_c(_address(copy))
        return self._pa_schema

    def batches(self) -> ArrowBatches:
        """Record batches read on a handle of their own, in slices (Ctrl-C works), with
        ddstream's exceptions."""
        return ArrowBatches(self)

    def reader(self) -> Any:
        """A ``pyarrow.RecordBatchReader`` over the remaining chunks (``to_arrow()``)."""
        return pyarrow.RecordBatchReader.from_batches(self.schema(), self.batches())

    def chunk_bounds(self, position: int) -> tuple[int, int, int]:
        """``(chunk_index, start, end)`` of the ``position``-th batch since the export."""
        meta = self.metadata
        index = int(meta.get("ddstream.first_chunk", "0")) + position
        start = int(meta.get("ddstream.plan_start", "0"))
        step = int(meta.get("ddstream.chunk_seconds", "0"))
        end = int(meta.get("ddstream.plan_end", "0"))
        chunk_start = start + index * step
        return index, chunk_start, min(chunk_start + step, end)


def _release_schema(schema: Any) -> None:
    if schema.release != ffi.NULL:
        schema.release(schema)


def _read_metadata(raw: Any) -> dict[str, str]:
    """Arrow's binary metadata (int32 count, then length-prefixed key/value pairs) as a dict."""
    if raw == ffi.NULL:
        return {}
    base = ffi.cast("const unsigned char *", raw)

    def int32(at: int) -> int:
        return int.from_bytes(bytes(ffi.buffer(base + at, 4)), "little", signed=True)

    count, at, out = int32(0), 4, {}
    for _ in range(count):
        key_len = int32(at)
        key = bytes(ffi.buffer(base + at + 4, key_len)).decode("utf-8")
        at += 4 + key_len
        value_len = int32(at)
        out[key] = bytes(ffi.buffer(base + at + 4, value_len)).decode("utf-8")
        at += 4 + value_len
    return out


class ArrowBatches(Iterator[Any]):
    """Iterator of ``pyarrow.RecordBatch`` over a handle of its own.

    Not a generator, so that an exception (Ctrl-C between two slices, or a ddstream error) leaves
    it usable: calling ``next()`` again goes on, and a batch that C had already delivered when
    Ctrl-C struck is handed out first — no chunk is lost. Errors raise the
    :class:`~ddstream.DDStreamError` subclass of the C status, with ddstream's message; the next
    call retries the chunk, as everywhere in ddstream.
    """

    def __init__(self, source: ArrowSource) -> None:
        self._source = source
        self._handle: Any = source.share()
        self._schema = source.schema()
        self._array = ffi.gc(ffi.new("struct ArrowArray *"), _release_array)
        self._array.release = ffi.NULL
        self._error = new_error()
        self.position = 0  # batches handed out so far
        self.done = False

    def __iter__(self) -> ArrowBatches:
        return self

    def __next__(self) -> Any:
        array = self._array
        if array.release == ffi.NULL:
            if self.done:
                raise StopIteration
            status = wait_in_slices(self._one_slice)
            if status == STATUS_END:
                self.done = True
                self.close()
                raise StopIteration
            if status != STATUS_OK:
                raise error_from(status, self._error)
        # Moves the array into pyarrow (which marks ours released): the buffers are not copied.
        batch = pyarrow.RecordBatch._import_from_c(_address(array), self._schema)
        self.position += 1
        return batch

    def _one_slice(self, slice_ms: int) -> int:
        try:
            return int(lib.ddstream_stream_arrow_next(self._handle, slice_ms, self._array,
                                                      self._error))
        finally:
            _native.drain_logs(self._source.ptr)

    def close(self) -> None:
        """Release this iterator's handle (the stream stops once no handle is left)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _release_stream(handle)


# --------------------------------------------------------------------------- IPC and ArrowBatch


def ipc_stream_bytes(batch: Any, metadata: dict[str, str] | None = None) -> Any:
    """One record batch as an Arrow IPC stream (schema, the batch, end-of-stream marker), in a
    ``pyarrow.Buffer``: what ``pa.ipc.open_stream`` reads. ``metadata`` replaces the schema's."""
    pa = pyarrow
    if metadata is not None:
        batch = batch.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


class ArrowBatch(bytes):
    """One chunk, from ``enable_arrow`` iteration: both the seed guide's "bytes object containing
    an Arrow IPC RecordBatch" and a record batch.

    As ``bytes`` it is the Arrow IPC stream of the chunk (``pa.ipc.open_stream(b)``, or write it
    to a file or a socket). As a record batch: :attr:`record_batch` is a ``pyarrow.RecordBatch``
    read from those bytes without a copy; every attribute a ``pyarrow.RecordBatch`` has
    (``num_rows``, ``schema``, ``column()``, ``to_pandas()``, ...) works on it directly,
    ``b["avg"]`` is a column, and it speaks the Arrow PyCapsule interface, so
    ``pa.record_batch(b)``, ``pa.table(b)``, ``polars.DataFrame(b)`` and DuckDB take it as a
    record batch. ``len(b)`` is the IPC size in bytes (it *is* a bytes object): use
    ``b.num_rows`` for rows. ``isinstance(b, pyarrow.RecordBatch)`` is False: pyarrow's
    RecordBatch cannot be subclassed with data from Python (docs/arrow.md).

    Attributes: ``chunk_index`` (0-based, in the stream's plan), ``chunk_start`` and ``chunk_end``
    (epoch seconds, ``[start, end)``); the IPC schema metadata carries them too.
    """

    chunk_index: int
    chunk_start: int
    chunk_end: int

    if TYPE_CHECKING:
        # The record batch's members used most, typed for checkers; every other one is
        # forwarded too (__getattr__, typed Any), and record_batch has them all, typed.
        num_rows: int
        num_columns: int
        schema: pa.Schema
        columns: list[pa.Array[Any]]

        def column(self, i: int | str) -> pa.Array[Any]: ...
        def to_pandas(self, *args: Any, **kwargs: Any) -> pd.DataFrame: ...
        def to_pydict(self) -> dict[str, list[Any]]: ...

    def __new__(cls, ipc: Any, chunk: tuple[int, int, int] = (0, 0, 0)) -> ArrowBatch:
        self = super().__new__(cls, ipc)
        self.chunk_index, self.chunk_start, self.chunk_end = chunk
        return self

    @classmethod
    def from_record_batch(
        cls, batch: Any, metadata: dict[str, str], chunk: tuple[int, int, int]
    ) -> ArrowBatch:
        index, start, end = chunk
        meta = dict(metadata)
        meta.update(
            {
                "ddstream.chunk_index": str(index),
                "ddstream.chunk_start": str(start),
                "ddstream.chunk_end": str(end),
            }
        )
        return cls(ipc_stream_bytes(batch, meta), chunk)

    @property
    def record_batch(self) -> pa.RecordBatch:
        """The chunk as a ``pyarrow.RecordBatch``; its buffers point into these bytes."""
        # Read again on each access rather than cached: a cached batch would point back into
        # self, a reference cycle through pyarrow's C++ objects that the collector cannot see.
        batch: pa.RecordBatch = pyarrow.ipc.open_stream(self).read_next_batch()
        return batch

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.record_batch, name)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.record_batch.column(key)
        return super().__getitem__(key)

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        batch: Any = self.record_batch  # pyarrow-stubs leave __arrow_c_array__ untyped
        return batch.__arrow_c_array__(requested_schema)

    def __arrow_c_schema__(self) -> Any:
        return self.record_batch.schema.__arrow_c_schema__()

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        batch = self.record_batch
        # pyarrow-stubs leave __arrow_c_stream__ untyped
        reader: Any = pyarrow.RecordBatchReader.from_batches(batch.schema, [batch])
        return reader.__arrow_c_stream__(requested_schema)

    def __repr__(self) -> str:
        return (
            f"<ddstream.ArrowBatch chunk {self.chunk_index} [{self.chunk_start}, "
            f"{self.chunk_end}) rows={self.num_rows} ipc_bytes={len(self)}>"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (ArrowBatch, (bytes(self), (self.chunk_index, self.chunk_start, self.chunk_end)))
