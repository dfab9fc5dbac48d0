"""The exceptions raised by ddstream.

Every error of the C library (a ``ddstream_status``) maps to exactly one class below, all of them
subclasses of :class:`DDStreamError`, itself a :class:`RuntimeError` (so code written for the
original guide, which caught ``RuntimeError``, keeps working).

Where a builtin exception means the same thing, the class inherits it too (as pyarrow's
``ArrowInvalid`` is also a ``ValueError``), so code that knows nothing of ddstream handles it:

* :class:`ConfigError` is a :class:`ValueError` (a wrong value; a wrong *type* in a
  :class:`~ddstream.DDStreamConfig` field stays a plain :class:`TypeError`);
* :class:`NetworkError` is a :class:`ConnectionError` (an :class:`OSError`);
* :class:`RequestTimeoutError` is a :class:`TimeoutError` (an :class:`OSError`);
* :class:`InternalError` is neither a :class:`MemoryError` nor anything else: it means a bug;
* :class:`LibraryLoadError` is an :class:`ImportError`.

An ``except OSError`` around a stream therefore catches network failures and timeouts too,
as it would for ``urllib`` or ``socket``; the binding's own OSError handlers (writing output
files) let ddstream's errors through untouched.

Messages come from the C library's error text; they name what was wrong and never contain an API
or application key.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CancelledError",
    "ConfigError",
    "DDStreamError",
    "ForkedStreamError",
    "InternalError",
    "LibraryLoadError",
    "NetworkError",
    "ProtocolError",
    "QueryError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "error_class_for_status",
]

# ddstream_status values (include/ddstream.h). Append-only there, so safe to repeat here; the
# binding checks them against the library's enum at import time.
STATUS_OK = 0
STATUS_END = 1
STATUS_TIMEOUT = 2
STATUS_E_INVALID_ARGUMENT = 10
STATUS_E_CONFIG = 11
STATUS_E_NOMEM = 12
STATUS_E_AUTH = 20
STATUS_E_RATE_LIMITED = 21
STATUS_E_QUERY = 22
STATUS_E_SERVER = 23
STATUS_E_NETWORK = 24
STATUS_E_TIMEOUT = 25
STATUS_E_PROTOCOL = 26
STATUS_E_CANCELLED = 27
STATUS_E_INTERNAL = 28
STATUS_E_FORKED = 29


class DDStreamError(RuntimeError):
    """Base class of every ddstream error.

    Attributes:
        status: the C library's ``ddstream_status`` value.
        http_status: the last HTTP status seen, 0 if none.
        chunk_start: epoch seconds of the chunk that failed, ``None`` if not about a chunk.
        chunk_end: exclusive end of that chunk, epoch seconds, ``None`` if not about a chunk.
    """

    status: int
    http_status: int
    chunk_start: int | None
    chunk_end: int | None

    def __init__(
        self,
        message: str,
        *,
        status: int = STATUS_E_INTERNAL,
        http_status: int = 0,
        chunk_start: int | None = None,
        chunk_end: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.http_status = http_status
        self.chunk_start = chunk_start
        self.chunk_end = chunk_end

    @property
    def message(self) -> str:
        """The error text, as the C library wrote it."""
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword attributes when pickled (e.g. across a ProcessPoolExecutor).
        return (
            _rebuild,
            (type(self), self.message, self.status, self.http_status, self.chunk_start,
             self.chunk_end),
        )


def _rebuild(
    cls: type[DDStreamError],
    message: str,
    status: int,
    http_status: int,
    chunk_start: int | None,
    chunk_end: int | None,
) -> DDStreamError:
    return cls(message, status=status, http_status=http_status, chunk_start=chunk_start,
               chunk_end=chunk_end)


class ConfigError(DDStreamError, ValueError):
    """The configuration is invalid; the message names the field. Raised before any network I/O.
    Also a :class:`ValueError`."""


class AuthError(DDStreamError):
    """Datadog refused the API or application key (HTTP 401 or 403)."""


class RateLimitError(DDStreamError):
    """Datadog kept answering 429 until the retry budget was spent."""


class QueryError(DDStreamError):
    """Datadog rejected the query (HTTP 400, 404 or 422)."""


class ServerError(DDStreamError):
    """A 5xx answer after retries, or an HTTP status ddstream does not handle."""


class NetworkError(DDStreamError, ConnectionError):
    """A connection, DNS, TLS or transfer failure, after retries. Also a
    :class:`ConnectionError`."""


class RequestTimeoutError(DDStreamError, TimeoutError):
    """A request exceeded its connect or total timeout, after retries. Also a
    :class:`TimeoutError`."""


class ProtocolError(DDStreamError):
    """The server's answer was not what the Datadog API documents."""


class CancelledError(DDStreamError):
    """The stream was cancelled (:meth:`ddstream.DDStream.cancel`)."""


class InternalError(DDStreamError):
    """A bug in ddstream (or an allocation failure): please report it."""


class ForkedStreamError(DDStreamError):
    """The stream was opened in the parent of this fork()ed process (multiprocessing's fork start
    method, gunicorn, Celery...): it cannot be used here. Open a new stream in this process (its
    ``resume_token()`` still answers, to start where the inherited one stood)."""


_CLASS_FOR_STATUS: dict[int, type[DDStreamError]] = {
    STATUS_E_INVALID_ARGUMENT: InternalError,  # the binding passed something wrong: our bug
    STATUS_E_CONFIG: ConfigError,
    STATUS_E_NOMEM: InternalError,
    STATUS_E_AUTH: AuthError,
    STATUS_E_RATE_LIMITED: RateLimitError,
    STATUS_E_QUERY: QueryError,
    STATUS_E_SERVER: ServerError,
    STATUS_E_NETWORK: NetworkError,
    STATUS_E_TIMEOUT: RequestTimeoutError,
    STATUS_E_PROTOCOL: ProtocolError,
    STATUS_E_CANCELLED: CancelledError,
    STATUS_E_INTERNAL: InternalError,
    STATUS_E_FORKED: ForkedStreamError,
}


def error_class_for_status(status: int) -> type[DDStreamError]:
    """The exception class for a ``ddstream_status`` value (unknown: :class:`DDStreamError`)."""
    return _CLASS_FOR_STATUS.get(status, DDStreamError)


class LibraryLoadError(DDStreamError, ImportError):
    """libddstream, or a library it needs (libcurl, libdeflate), could not be loaded at import.

    The message names the library that is missing or broken and how to get it. Also an
    :class:`ImportError`, since it is raised by ``import ddstream``.
    """
