"""``DDStream``: pull batches of a Datadog metric query, one chunk at a time."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, Union, cast, overload

from . import _native
from ._batch import Batch
from ._batch_view import batch_from_box, new_batch_box
from ._config import DDStreamConfig, NativeConfig
from ._dependencies import pyarrow
from ._gate import GateRegistration, RequestGate
from ._handle import StreamHandle
from ._now import ClockRegistration

if TYPE_CHECKING:
    # Optional packages, named for type checkers only: imported when a method needs them.
    import pandas
    from typing_extensions import Unpack

    from ._arrow import ArrowBatch
    from ._config import StreamOptions
from ._lib import ffi, lib
from ._native import error_from, new_error, wait_in_slices
from ._plan import ChunkPlan, plan_of_config, plan_of_stream
from ._timespec import TimeLike, parse_time
from .errors import (
    STATUS_E_CANCELLED,
    STATUS_E_CONFIG,
    STATUS_END,
    STATUS_OK,
    CancelledError,
    ConfigError,
    DDStreamError,
    error_class_for_status,
)

__all__ = ["AnyBatch", "Batch", "BatchT", "DDStream", "queries_of"]

_Self = TypeVar("_Self", bound="DDStream[Any]")

# DDStream's end/range_end when not given (None given means: follow, no end).
_UNSET: Any = object()

AnyBatch = Union[Batch, "ArrowBatch"]
"""What iterating a stream opened from a :class:`DDStreamConfig` yields: which of the two
depends on ``cfg.enable_arrow``, which a type checker cannot see (``DDStream.batches()`` is
always :data:`Batch`)."""

BatchT = TypeVar("BatchT", covariant=True)
"""What iterating a :class:`DDStream` yields: :data:`Batch` or :class:`~ddstream.ArrowBatch`."""

def _config_from_keywords(start: TimeLike | None, end: TimeLike | None,
                          options: dict[str, Any]) -> DDStreamConfig:
    """A DDStreamConfig from DDStream's keywords, with human times turned into epoch seconds.

    An end given as ``None`` (``end=None`` or ``range_end=None``) means follow: no end."""
    if start is not None:
        options["range_start"] = start
    if end is not _UNSET:
        options["range_end"] = end
    if options.get("range_end", 0) is None:
        options["follow"] = True
        options["range_end"] = 0
    if "range_start" in options and "range_end" not in options:
        options["range_end"] = 0 if options.get("follow") else "now"
    for name in ("range_start", "range_end"):
        if name in options and options[name] is not None:
            try:
                options[name] = parse_time(options[name])
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}", status=STATUS_E_CONFIG) from None
    return DDStreamConfig(**options)


class DDStream(Generic[BatchT]):
    """A stream of batches over a Datadog metric query, one batch per chunk of the range.

    Opening checks the configuration (a bad one raises :class:`~ddstream.ConfigError`, before
    any network I/O) and, with prefetch on, starts fetching at once on a background thread.

    Use it as an iterator (``for batch in stream``), which raises the matching
    :class:`~ddstream.DDStreamError` on error, or call :meth:`next_batch` in a
    ``while stream.has_next()`` loop, which returns ``None`` on error (see :meth:`last_error`).
    Calling again after an error retries the same chunk: no chunk is ever skipped.

    Every blocking call releases the GIL, so streams in different threads run in parallel, and
    waits in short slices, so Ctrl-C interrupts it. One stream may be shared between threads
    (calls are serialised); :meth:`cancel` may be called from any thread. Close it with
    :meth:`close` or a ``with`` block; a stream that is garbage-collected is closed for you.

    Types: ``DDStream[Batch]`` yields :data:`~ddstream.Batch` dicts and
    ``DDStream[ArrowBatch]`` :class:`~ddstream.ArrowBatch` objects. Opened with keywords, the
    type checker knows which from ``enable_arrow`` (absent or ``False``: ``Batch``); opened
    from a :class:`DDStreamConfig` it cannot (``enable_arrow`` is an attribute that may change),
    so iteration is typed :data:`AnyBatch`: use :meth:`batches` (always ``Batch``) or
    :meth:`next_batch` there.
    """

    @overload
    def __init__(
        self: DDStream[AnyBatch],
        cfg: DDStreamConfig,
        *,
        resume: str | None = None,
        request_gate: RequestGate | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: DDStream[Batch],
        cfg: None = None,
        *,
        resume: str | None = None,
        request_gate: RequestGate | None = None,
        clock: Callable[[], float] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = ...,
        range_start: TimeLike | None = None,
        range_end: TimeLike | None = ...,
        enable_arrow: Literal[False] = False,
        **options: Unpack[StreamOptions],
    ) -> None: ...

    @overload
    def __init__(
        self: DDStream[ArrowBatch],
        cfg: None = None,
        *,
        resume: str | None = None,
        request_gate: RequestGate | None = None,
        clock: Callable[[], float] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = ...,
        range_start: TimeLike | None = None,
        range_end: TimeLike | None = ...,
        enable_arrow: Literal[True],
        **options: Unpack[StreamOptions],
    ) -> None: ...

    @overload
    def __init__(
        self: DDStream[AnyBatch],
        cfg: None = None,
        *,
        resume: str | None = None,
        request_gate: RequestGate | None = None,
        clock: Callable[[], float] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = ...,
        range_start: TimeLike | None = None,
        range_end: TimeLike | None = ...,
        enable_arrow: bool,
        **options: Unpack[StreamOptions],
    ) -> None: ...

    def __init__(
        self,
        cfg: DDStreamConfig | None = None,
        *,
        resume: str | None = None,
        request_gate: RequestGate | None = None,
        clock: Callable[[], float] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = _UNSET,
        range_start: TimeLike | None = None,
        range_end: TimeLike | None = _UNSET,
        enable_arrow: bool | None = None,
        **options: Any,
    ) -> None:
        """Open a stream over ``cfg``, or over a config made from keywords::

            DDStream(query="avg:system.cpu.user{*}", start="-7d")            # end: now
            DDStream(query=q, start=datetime(2026, 11, 1), end="2026-11-08", granularity=300)
            DDStream(queries=[q1, q2, q3], start="-1d")   # one stream; rows say their query
            DDStream(queries={"a": q1, "b": q2}, formulas=["a / b * 100"], start="-1d")  # v2

        ``start``/``end`` (or ``range_start``/``range_end``) take epoch seconds, datetimes (naive
        means UTC), ISO 8601 strings, ``"now"`` or relative times like ``"-36h"``; the other
        keywords are :class:`DDStreamConfig` fields. ``resume``: a token from
        :meth:`resume_token` (same as ``cfg.resume_token``) to start where an earlier stream, in
        any process, stood. ``request_gate``: a :class:`~ddstream.RequestGate` every query
        request of this stream asks first and reports to (a rate budget shared across
        processes, e.g. :mod:`ddstream.dask`'s).

        Follow mode (``follow=True``, or ``end=None``): the stream never ends; after the range
        it delivers each new chunk once it has settled (docs/follow.md). ``clock``: a callable
        giving epoch seconds that replaces the system clock for that (replays, tests: a
        :class:`ddstream.testing.FakeClock`, whose changes the stream follows at once)."""
        for name, value in (("range_start", range_start), ("enable_arrow", enable_arrow)):
            if value is not None:
                options[name] = value
        if range_end is not _UNSET:
            options["range_end"] = range_end
        if cfg is None:
            cfg = _config_from_keywords(start, end, options)
        elif not isinstance(cfg, DDStreamConfig):
            raise TypeError(f"DDStream() takes a DDStreamConfig, not {type(cfg).__name__}")
        elif start is not None or end is not _UNSET or options:
            raise TypeError("DDStream() takes a DDStreamConfig or keyword options, not both")
        if resume is not None:
            cfg = cfg.copy(resume_token=resume)
        native = cfg.to_native()
        # Set before anything can fail: close() and next_batch() look at it.
        self._gate = None if request_gate is None else GateRegistration(native.ptr, request_gate)
        self._clock = None if clock is None else ClockRegistration(native.ptr, clock)
        self._follow = bool(cfg.follow)
        out = ffi.new("ddstream_stream **")
        err = new_error()
        status = lib.ddstream_open(native.ptr, out, err)
        if status != STATUS_OK:
            if self._gate is not None:
                self._gate.drop()  # a failed open leaves the gate to us
            if self._clock is not None:
                self._clock.drop()
            raise error_from(status, err)
        ptr = out[0]
        self._handle = StreamHandle(ptr)
        self._finalizer = weakref.finalize(
            self, _close_handle, self._handle, self._clock
        )
        self._query: str = cfg.query
        # The stream's query texts, found on first use (queries_of): a keyless copy suffices.
        self._cfg = cfg.copy(api_key=None, app_key=None, resume_token=None)
        self._queries: tuple[str, ...] | None = None
        self._granularity = cfg.granularity
        self._pending: Any = None  # a batch received while Ctrl-C interrupted next_batch
        self._enable_arrow = bool(cfg.enable_arrow)
        self._arrow_batches: Any = None  # enable_arrow iteration (an _arrow.ArrowBatches)
        self._last_error = ""
        self._last_exc: DDStreamError | None = None
        with self._handle.call_lock:
            _native.drain_logs(ptr)
            # Lazy, like the library's own plan: a legal plan may have millions of chunks.
            # Following, the plan has no end: its chunks here are the historical part.
            self._chunks = _plan(native) if self._follow else plan_of_stream(ptr)
        add_listener = getattr(clock, "add_listener", None)
        if callable(add_listener):  # a FakeClock: follow its changes at once
            add_listener(self.clock_changed)

    # ------------------------------------------------------------------ static helpers

    @staticmethod
    def validate(cfg: DDStreamConfig) -> str | None:
        """Check ``cfg`` and the credentials against the server.

        Checks the config (no network I/O if it is invalid), then the API key
        (``/api/v1/validate``), then the application key and the query with the smallest real
        query. Blocks for the duration of those requests (the GIL is released meanwhile; Ctrl-C
        interrupts it within a tenth of a second and abandons the request in flight). It logs
        nothing: the message returned is the whole report.

        Returns:
            ``None`` when everything is fine, else the error message.
        """
        try:
            DDStream.check(cfg)
        except DDStreamError as exc:
            return exc.message
        return None

    @staticmethod
    def check(cfg: DDStreamConfig) -> None:
        """Like :meth:`validate`, but raises the matching :class:`DDStreamError` subclass
        (``ConfigError``, ``AuthError``, ``QueryError``, ``NetworkError``, ...) instead of
        returning a message, so a caller can tell what failed."""
        native = cfg.to_native()
        # Without a stream there is no log queue to drain, and the library would write its lines
        # to stderr: keep all of ddstream's logging in the logging module (the exception says
        # what went wrong).
        native.ptr.log_level = 0
        err = new_error()
        out = ffi.new("ddstream_validation **")
        status = lib.ddstream_validate_start(native.ptr, out, err)
        if status != STATUS_OK:
            raise error_from(status, err)
        # The checks run on the library's thread; waiting in slices lets Ctrl-C in between, and
        # an interrupt cancels them (the request in flight is abandoned at once).
        validation = ffi.gc(out[0], lib.ddstream_validate_free)
        try:
            status = wait_in_slices(
                lambda slice_ms: int(lib.ddstream_validate_wait(validation, slice_ms, err)))
        except BaseException:
            lib.ddstream_validate_cancel(validation)
            raise
        finally:
            ffi.release(validation)  # joins the thread: prompt once cancelled
        if status != STATUS_OK:
            raise error_from(status, err)

    @staticmethod
    def plan(cfg: DDStreamConfig) -> ChunkPlan:
        """The chunks a stream over ``cfg`` would fetch, as ``(start, end)`` epoch seconds.

        One HTTP request per chunk; ``end`` is exclusive. No network I/O, and no keys needed.
        The result is a read-only sequence computed on demand (it compares equal to the list of
        its chunks), so it is instant whatever the plan's size.

        Raises:
            ConfigError: ``cfg`` is invalid.
        """
        native = cfg.to_native()
        return _plan(native)

    # ------------------------------------------------------------------ reading

    def has_next(self) -> bool:
        """True while chunks remain to be delivered (False once the stream is closed)."""
        with self._handle.call_lock:
            ptr = self._handle.ptr
            if ptr is None:
                return False
            if self._pending is not None:
                return True
            if self._handle.arrow is not None:  # the C stream is Arrow's now
                batches = self._arrow_batches
                if batches is None:
                    self._require_open()  # raises: read it through Arrow
                return not batches.done
            return bool(lib.ddstream_has_next(ptr))

    def next_batch(self) -> Batch | None:
        """The next batch, in chunk order; blocks until it has arrived.

        Returns:
            The batch dict; ``None`` at the end of the stream (then :meth:`last_error` is ``""``)
            or on error (then :meth:`last_error` says what went wrong and the next call tries
            the same chunk again).

        Raises:
            ValueError: the stream is closed.
        """
        with self._handle.call_lock:
            box, self._pending = self._pending, None
        if box is not None:
            self._last_error = ""
            self._last_exc = None
            return batch_from_box(box)
        self._require_open()
        box = new_batch_box()
        err = new_error()
        closed = False

        def one_slice(slice_ms: int) -> int:
            # One slice per lock hold: other threads (progress bars, cancel, close) get in
            # between slices, and Ctrl-C is handled between them.
            nonlocal closed
            with self._handle.call_lock:
                ptr = self._handle.ptr
                if ptr is None:  # closed by another thread while we waited
                    closed = True
                    return STATUS_E_CANCELLED
                try:
                    return int(lib.ddstream_next(ptr, slice_ms, box, err))
                finally:
                    _native.drain_logs(ptr)

        try:
            status = wait_in_slices(one_slice)
        except BaseException:
            if box[0] != ffi.NULL:
                self._pending = box  # delivered by C: hand it out on the next call
            raise
        if closed:
            exc: DDStreamError = CancelledError("the stream was closed", status=STATUS_E_CANCELLED)
            self._last_error = exc.message
            self._last_exc = exc
            return None
        if status == STATUS_OK:
            self._last_error = ""
            self._last_exc = None
            return batch_from_box(box)
        if status == STATUS_END:
            self._last_error = ""
            self._last_exc = None
            return None
        exc = error_from(status, err)
        if self._gate is not None:
            exc = self._gate.explain(exc)
        self._last_error = exc.message
        self._last_exc = exc
        return None

    def batches(self) -> Iterator[Batch]:
        """The remaining chunks as :data:`~ddstream.Batch` dicts, whatever ``enable_arrow``
        says: iteration typed for every way of opening the stream. Raises the matching
        :class:`~ddstream.DDStreamError` on error, as iteration does; calling ``next()`` on it
        again retries the chunk."""
        return _DictBatches(self)

    def last_error(self) -> str:
        """The message of the last error returned by :meth:`next_batch`, ``""`` if none."""
        return self._last_error

    def progress(self) -> float:
        """Fraction of chunks delivered, 0.0 to 1.0. Following: of the chunks settled so far,
        so 1.0 means caught up, waiting for the next chunk to settle."""
        with self._handle.call_lock:
            return float(lib.ddstream_progress(self._require_open()))

    def rate_limit_wait(self) -> float:
        """Seconds the stream's fetching still waits because it was told to (a spent rate-limit
        window, a 429, a server's ``Retry-After``, the request gate); 0.0 when nothing waits for
        that. Never more than the window's period (or 60 s when the server does not say it):
        a longer ``x-ratelimit-reset`` is cut to that and logged at INFO. For progress displays;
        any thread, also while another is blocked in :meth:`next_batch` or the stream is Arrow's.
        """
        handle = self._handle
        with handle.state_lock:
            ptr = handle.ptr
            return 0.0 if ptr is None else int(lib.ddstream_rate_limit_wait_ms(ptr)) / 1000.0

    @property
    def queries(self) -> tuple[str, ...]:
        """The stream's queries, in the order of the batches' ``query`` index: ``queries`` as
        the library read them, the comma-separated queries of ``query``, or ``(query,)``; with
        ``formulas`` (v2), the formulas."""
        if self._queries is None:
            self._queries = queries_of(self._cfg)
        return self._queries

    @property
    def chunk_count(self) -> int:
        """Number of chunks (HTTP requests) in the stream's plan; following, of its historical
        part (the chunks settled when it opened: the stream goes on after them)."""
        return len(self._chunks)

    @property
    def follows(self) -> bool:
        """True for a follow stream: it has no end."""
        return self._follow

    def clock_changed(self) -> None:
        """Tell a follow stream that its ``clock`` moved: it re-reads it at once (a
        :class:`ddstream.testing.FakeClock` calls this itself). Any thread, any time."""
        handle = self._handle
        with handle.state_lock:
            ptr = handle.ptr
            if ptr is not None:
                lib.ddstream_clock_changed(ptr)

    @property
    def chunks(self) -> ChunkPlan:
        """The plan: ``(start, end)`` epoch seconds of each chunk, ``end`` exclusive (a read-only
        sequence computed on demand, see :meth:`plan`)."""
        return self._chunks

    # ------------------------------------------------------------------ control

    def seek(self, chunk_index: int) -> None:
        """Restart delivery at ``chunk_index`` (0: from the start; ``chunk_count``: nothing left).

        Drops prefetched batches and in-flight requests and clears a cancellation.
        """
        index = int(chunk_index)
        if index < 0 or (not self._follow and index > len(self._chunks)):
            raise IndexError(f"chunk_index {index} is outside 0..{len(self._chunks)}")
        with self._handle.call_lock:
            ptr = self._require_open()
            self._pending = None
            err = new_error()
            try:
                status = lib.ddstream_seek(ptr, index, err)
            finally:
                _native.drain_logs(ptr)
            if status != STATUS_OK:
                raise error_from(status, err)
            self._last_error = ""
            self._last_exc = None

    def reset(self) -> None:
        """Restart delivery from the first chunk (``seek(0)``)."""
        self.seek(0)

    def resume_token(self) -> str:
        """Where this stream stands, as a short string: pass it to ``DDStream(cfg, resume=...)``
        (in this or another process) to continue with the next undelivered chunk without
        refetching the others. Take it after storing the batches received so far. A token made
        for another query or plan is refused with :class:`~ddstream.ConfigError`."""
        buf = ffi.new("char[]", 64)
        with self._handle.call_lock:
            ptr = self._require_open()
            pending = self._pending
            if pending is not None:  # delivered by C but not yet handed out: still to come
                status = lib.ddstream_resume_token_at(ptr, pending[0].chunk_index, buf, 64)
            else:
                status = lib.ddstream_resume_token(ptr, buf, 64)
        if status != STATUS_OK:  # pragma: no cover - only on a library bug
            raise error_class_for_status(int(status))("no resume token", status=int(status))
        return str(ffi.string(buf).decode("ascii"))

    def cancel(self) -> None:
        """Stop the stream: a blocked or later :meth:`next_batch` fails with
        :class:`~ddstream.CancelledError`. Any thread, any time; :meth:`reset` clears it."""
        self._handle.cancel()

    def close(self) -> None:
        """Stop the worker and free the stream. Idempotent. Batches already handed out stay
        valid. A stream handed to Arrow is cancelled: its readers get
        :class:`~ddstream.CancelledError` (a stream merely garbage-collected is not: its readers
        go on)."""
        if self._handle.arrow is not None:
            self._handle.cancel()
        self._finalizer()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._handle.ptr is None

    def _require_open(self) -> Any:
        ptr = self._handle.ptr
        if ptr is None:
            raise ValueError("I/O operation on a closed DDStream")
        if self._handle.arrow is not None:
            raise ValueError(
                "this DDStream was handed to Arrow (to_arrow, __arrow_c_stream__ or enable_arrow "
                "iteration): read the rest from there"
            )
        return ptr

    # ------------------------------------------------------------------ Arrow (docs/arrow.md)

    def _arrow(self) -> Any:
        """The stream's ArrowSource, handing the C stream to Arrow on first use."""
        from ._arrow import ArrowSource

        with self._handle.call_lock:
            if self._handle.arrow is not None:
                return self._handle.arrow
            ptr = self._require_open()
            if self._pending is not None:  # delivered to Python but not to the caller: put back
                err = new_error()
                status = lib.ddstream_seek(ptr, self._pending[0].chunk_index, err)
                if status != STATUS_OK:  # pragma: no cover - only on a library bug
                    raise error_from(status, err)
                self._pending = None
            source = ArrowSource(ptr)
            with self._handle.state_lock:
                self._handle.arrow = source
            return source

    def to_arrow(self) -> pyarrow.RecordBatchReader:
        """The remaining chunks as a ``pyarrow.RecordBatchReader``, one record batch per chunk.

        The batches are imported from the C library's Arrow C stream without copying a column;
        nulls are Arrow nulls (no NaN). Errors raise :class:`~ddstream.DDStreamError` subclasses,
        as iteration does. The stream is handed to Arrow: ``next_batch`` and iteration no longer
        apply, and fetching stops once the stream is closed and its readers are released.
        Needs pyarrow.
        """
        reader: pyarrow.RecordBatchReader = self._arrow().reader()
        return reader

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The Arrow PyCapsule interface: ``pa.table(stream)``, ``pl.DataFrame(stream)``,
        ``duckdb.sql("select ... from stream")`` read the C library's Arrow C stream without a
        copy. Each call gives a new handle on the same batches (DuckDB asks more than once).
        ``requested_schema`` is passed on to pyarrow, which the capsule needs."""
        return self._arrow().capsule(requested_schema)

    def to_pandas(self) -> pandas.DataFrame:
        """The remaining chunks as one ``pandas.DataFrame`` (through pyarrow): ``timestamp`` as
        UTC datetimes, NaN where Datadog had no value, ``series`` as a categorical."""
        return self.to_arrow().read_all().to_pandas()

    def write_ipc(self, sink: Any) -> int:
        """Write the remaining chunks as one Arrow IPC stream to ``sink`` (a path or a writable
        binary file); returns the number of record batches. Needs pyarrow."""
        source = self._arrow()
        batches = 0
        with pyarrow.ipc.new_stream(sink, source.schema()) as writer:
            for batch in source.batches():
                writer.write_batch(batch)
                batches += 1
        return batches

    # ------------------------------------------------------------------ protocols

    def __iter__(self) -> DDStream[BatchT]:
        return self

    def __next__(self) -> BatchT:
        """The next batch dict (:data:`Batch`), or with ``enable_arrow`` the next
        :class:`~ddstream.ArrowBatch` (see the class's note on types)."""
        if self._enable_arrow:
            return cast(BatchT, self._next_arrow())
        batch = self._next_dict()
        if batch is None:
            raise StopIteration
        return cast(BatchT, batch)

    def _next_dict(self) -> Batch | None:
        """:meth:`next_batch`, raising its error: ``None`` only at the end of the stream."""
        batch = self.next_batch()
        if batch is None and self._last_exc is not None:
            raise self._last_exc
        return batch

    def _next_arrow(self) -> ArrowBatch:
        """``enable_arrow`` iteration: the next chunk as an :class:`~ddstream.ArrowBatch`."""
        from ._arrow import ArrowBatch

        if self._arrow_batches is None:
            self._arrow_batches = self._arrow().batches()
        batches = self._arrow_batches
        try:
            batch = next(batches)
        except DDStreamError as exc:
            self._last_error = exc.message
            self._last_exc = exc
            raise
        self._last_error = ""
        self._last_exc = None
        source = self._handle.arrow
        chunk = source.chunk_bounds(batches.position - 1) if source else (0, 0, 0)
        return ArrowBatch.from_record_batch(batch, source.metadata if source else {}, chunk)

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        queries = self._cfg.queries
        what = (f"query={self._query!r}" if queries is None
                else f"queries={dict(queries)!r}" if isinstance(queries, Mapping)
                else f"queries={list(queries)!r}")
        if self._cfg.formulas is not None:
            what += f" formulas={list(self._cfg.formulas)!r}"
        return (
            f"<ddstream.DDStream {state} {what} granularity={self._granularity} "
            f"chunks={len(self._chunks)}>"
        )


def queries_of(cfg: DDStreamConfig) -> tuple[str, ...]:
    """The query texts of a stream over ``cfg``, as its batches' ``query`` index counts them.

    A stream with ``formulas`` (Datadog's v2): the formulas, as given. ``api="v2"`` without
    formulas: each query as given, its own formula. One plain query is itself. Otherwise the
    library's own reading (``explain``, no network I/O): the trimmed text of each item of
    ``queries``, or each comma-separated query of ``query`` (a comma inside ``{}`` or ``()``
    does not split, which only the parser knows).
    """
    if cfg.formulas is not None:
        return tuple(cfg.formulas)
    if cfg.api == "v2":
        if isinstance(cfg.queries, Mapping):
            return tuple(cfg.queries.values())
        return (cfg.query,) if cfg.queries is None else tuple(cfg.queries)
    if cfg.queries is None and "," not in cfg.query:
        return (cfg.query,)
    from ._explain import explain

    return tuple(str(q["query"]) for q in explain(cfg)["queries"])


class _DictBatches(Iterator[Batch]):
    """:meth:`DDStream.batches`. Not a generator, so that an exception (a failed chunk, Ctrl-C)
    leaves it usable: the next ``next()`` asks for the same chunk again, as the stream does."""

    __slots__ = ("_stream",)

    def __init__(self, stream: DDStream[Any]) -> None:
        self._stream = stream

    def __iter__(self) -> _DictBatches:
        return self

    def __next__(self) -> Batch:
        batch = self._stream._next_dict()
        if batch is None:
            raise StopIteration
        return batch


def _close_handle(handle: StreamHandle, clock: ClockRegistration | None) -> None:
    handle.close()
    if clock is not None:
        clock.drop()  # after close: no thread of the stream reads it any more


def _plan(native: NativeConfig) -> ChunkPlan:
    count = ffi.new("size_t *")
    err = new_error()
    first_two = ffi.new("ddstream_chunk[2]")
    status = lib.ddstream_plan(native.ptr, first_two, 2, count, err)
    if status != STATUS_OK:
        raise error_from(status, err)
    return plan_of_config(native.ptr, int(count[0]), first_two)


_native.check_status_values()
