"""One request being answered, and the :class:`Fault` base that may answer it instead.

What a fault sees (:class:`Exchange`: the request, minus the keys, and the ways to answer it),
what the server logs of each request (:class:`RequestRecord`), and the simplest fault
(:class:`CannedResponse`). The other faults are in ``_faults``; the server in ``_server``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._http import Response, gzip_compress, json_body, reason_phrase

if TYPE_CHECKING:
    from ._http import Handler
    from ._server import FakeDatadog

__all__ = [
    "KEY_HEADERS",
    "QUERY_PATH",
    "VALIDATE_PATH",
    "CannedResponse",
    "Exchange",
    "Fault",
    "RequestRecord",
]

QUERY_PATH = "/api/v1/query"
VALIDATE_PATH = "/api/v1/validate"
#: The key headers: logged only as "sent or not", never readable by a fault.
KEY_HEADERS = frozenset({"dd-api-key", "dd-application-key"})


@dataclass(frozen=True)
class RequestRecord:
    """What the server saw of one request. Key values are never stored, only whether they came."""

    path: str
    params: dict[str, str]  # query-string parameters; api_key / application_key values redacted
    query: str | None
    from_ts: int | None
    to_ts: int | None
    status: int  # 0 when no answer was sent (a fault dropped the connection)
    started: float  # time.monotonic() when the request line was read
    finished: float  # time.monotonic() when the answer started going out (or the request ended)
    api_key_sent: bool  # a non-empty DD-API-KEY header
    app_key_sent: bool  # a non-empty DD-APPLICATION-KEY header
    keys_in_url: bool  # api_key= or application_key= in the query string (deprecated, insecure)
    accept_gzip: bool
    user_agent: str
    connection_id: int  # same value for requests on the same TCP connection (keep-alive)
    method: str = "GET"
    clock: float | None = None  # the server's clock (FakeDatadog(clock=...)) when it arrived
    subqueries: int = 0  # top-level comma-separated parts of ``query`` (0: no query)
    uri_bytes: int = 0  # the request target as sent: path and escaped query string


class Exchange:
    """One request being answered: what a :class:`Fault` sees, and the ways it can answer.

    A fault may send a canned :class:`Response` (:meth:`send`), compute the real answer and alter
    it (:meth:`real_response`), write raw bytes (:meth:`write_head`, :meth:`write`) or say nothing
    at all and :meth:`close_connection`.
    """

    def __init__(
        self,
        fake: FakeDatadog,
        handler: Handler,
        method: str,
        path: str,
        params: Mapping[str, str],
        accept_gzip: bool,
        on_answer: Callable[[int], None] | None = None,
        *,
        uri_bytes: int = 0,
    ) -> None:
        self._fake = fake
        self._on_answer = on_answer
        self._handler = handler
        self.method = method
        self.path = path
        self.params = params  # the first value of each query-string parameter
        self.accept_gzip = accept_gzip
        self.uri_bytes = uri_bytes  # length of the request target (path and query string)
        self.status = 0  # the status written so far (0: nothing yet)

    def header(self, name: str) -> str | None:
        """A request header (case-insensitive). The key headers are not readable from here."""
        if name.lower() in KEY_HEADERS:
            raise KeyError(f"{name} is not available to faults")
        value: str | None = self._handler.headers.get(name)
        return value

    def real_response(self) -> Response:
        """What the server would have answered without the fault (counts against the limit)."""
        return self._fake._route(self, self._handler)

    def send(self, response: Response) -> None:
        """Write a whole response: gzip when the client accepts it, exact Content-Length."""
        body = response.body
        headers = dict(response.headers)
        encoded = any(name.lower() == "content-encoding" for name in headers)
        if self.accept_gzip and body and not encoded:
            body = response.gzip_body if response.gzip_body is not None else gzip_compress(body)
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = response.content_type
        headers["Content-Length"] = str(len(body))
        self.write_head(response.status, headers)
        self.write(body)

    def write_head(self, status: int, headers: Mapping[str, str]) -> None:
        """Write the status line and headers as given (no Content-Length added)."""
        if self._on_answer is not None:
            # Log before the client can see the answer: a test reading dd.requests right after
            # its response must find this request there.
            self._on_answer(status)
            self._on_answer = None
        handler = self._handler
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        self.status = status

    def write(self, data: bytes) -> None:
        """Write raw bytes to the connection."""
        if data:
            self._handler.wfile.write(data)

    def close_connection(self) -> None:
        """Close the TCP connection once this exchange is over (whatever was written)."""
        self._handler.close_connection = True

    def reset_connection(self) -> None:
        """Abort the TCP connection with a reset (RST) once this exchange is over: the client
        sees "connection reset by peer" where it expected more bytes, not an orderly end."""
        self._handler.close_connection = True
        self._handler.reset_on_close = True

    @property
    def server_running(self) -> bool:
        """False once the server is stopping: long faults (slow bodies) should give up."""
        return self._fake.running


class Fault:
    """A misbehaviour served instead of the real answer for the next ``times`` matching requests.

    Subclass it and override :meth:`respond` for new kinds of faults; queue instances with
    :meth:`FakeDatadog.add_fault`. ``path=None`` matches every path; ``times=None`` never runs out.
    ``delay`` seconds are waited before :meth:`respond` (on top of the server's latency).
    """

    def __init__(
        self, *, path: str | None = QUERY_PATH, times: int | None = 1, delay: float = 0.0
    ) -> None:
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for ever), got {times}")
        if delay < 0:
            raise ValueError(f"delay must not be negative, got {delay}")
        self.path = path
        self.remaining = times
        self.delay = delay
        self.served = 0

    def matches(self, exchange: Exchange) -> bool:
        """Whether this fault applies to the request."""
        return self.path is None or self.path == exchange.path

    def respond(self, exchange: Exchange) -> None:
        """Answer the request (or not): see :class:`Exchange`."""
        raise NotImplementedError


class CannedResponse(Fault):
    """A fixed answer: any status, body, headers and content type (JSON errors, HTML pages…)."""

    def __init__(
        self,
        status: int,
        body: bytes | str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        html: bool = False,
        path: str | None = QUERY_PATH,
        times: int | None = 1,
        delay: float = 0.0,
    ) -> None:
        super().__init__(path=path, times=times, delay=delay)
        phrase = reason_phrase(status)
        if body is None:
            if html:
                body = (
                    f"<html><head><title>{status} {phrase}</title></head>"
                    f"<body><h1>{status} {phrase}</h1></body></html>"
                )
            else:
                body = json_body({"errors": [phrase]})
        if content_type is None:
            content_type = "text/html; charset=utf-8" if html else "application/json"
        self.response = Response(
            status,
            body.encode("utf-8") if isinstance(body, str) else bytes(body),
            content_type,
            dict(headers or {}),
        )

    def respond(self, exchange: Exchange) -> None:
        exchange.send(self.response)

    def __repr__(self) -> str:
        return (
            f"CannedResponse({self.response.status}, path={self.path!r}, "
            f"remaining={self.remaining!r})"
        )
