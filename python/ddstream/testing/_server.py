"""FakeDatadog: a real HTTP server on 127.0.0.1 that answers like Datadog's metrics query API.

Why a real server and not a mock: the code under test is a C library speaking HTTP through libcurl
(keep-alive, gzip, timeouts, retries, rate-limit headers). Only real sockets exercise that code, and
the same server serves the Python tests, the benchmarks, the demo and our users' own tests.

What it reproduces (the confirmed behaviours of Datadog's v1 query API):

* ``GET /api/v1/query?from=&to=&query=`` with ``DD-API-KEY`` / ``DD-APPLICATION-KEY`` headers;
  multi-queries (``query_index``), ``by {…}`` groups (``tag_set``, ``scope``), ``.rollup()``;
* buckets aligned to multiples of the interval, first bucket at or after ``from``, last bucket the
  one containing ``to`` (inclusive), ``null`` for empty buckets, ``interval`` in seconds, ``start``
  and ``end`` in ms, timestamps written as floats, unknown extra keys (``resp_version``), series
  in an order clients must not rely on;
* no series for a group without any data in the range (so ``nodata.*`` gives ``"series": []``);
* the 1500-point cap: a rollup that would need more points is silently coarsened;
* the automatic interval (~150-300 points) when no rollup interval is given;
* auth errors (403, 401 for a missing application key since 2025), 400 parse errors, 404;
* lower-case ``x-ratelimit-*`` headers on every query answer and 429 over the limit;
* gzip when asked, keep-alive (HTTP/1.1, exact ``Content-Length``), ``TCP_NODELAY``.

What it adds for tests: switchable faults (:meth:`FakeDatadog.inject`, :class:`Fault` for custom
ones), latency, a request log without any key value in it, and the peak number of concurrent query
requests. The data and the aggregation rules are documented in ``_data``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import math
import random
import re
import shutil
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ._buckets import MAX_POINTS, auto_interval, bucket_grid, capped_interval
from ._data import Dataset
from ._query import QueryError, SubQuery, parse_query
from ._ratelimit import HEADER_CASES, UNLIMITED_RATE, RateWindows, format_seconds
from ._tls import self_signed_certificate

if TYPE_CHECKING:  # typing.Self is Python 3.11+, but only the type checker reads this import
    from typing import Self

__all__ = [
    "QUERY_PATH",
    "VALIDATE_PATH",
    "CannedResponse",
    "Exchange",
    "FakeDatadog",
    "Fault",
    "RequestRecord",
    "Response",
]

QUERY_PATH = "/api/v1/query"
VALIDATE_PATH = "/api/v1/validate"
logger = logging.getLogger("ddstream.testing")
_KEY_PARAMS = frozenset({"api_key", "application_key"})
_KEY_HEADERS = frozenset({"dd-api-key", "dd-application-key"})
_IDLE_TIMEOUT = 120.0  # seconds an idle keep-alive connection is kept open
_HANDSHAKE_TIMEOUT = 10.0  # seconds a TLS handshake may take


# -- records, responses, faults -------------------------------------------------------------------


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


@dataclass(frozen=True)
class Response:
    """An answer before transport encoding. ``gzip_body`` may hold a precomputed compression."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    gzip_body: bytes | None = None


def json_body(payload: object) -> bytes:
    """Compact JSON, as Datadog sends it."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Datadog's usual error shape: ``{"errors": ["…"]}``."""
    return Response(status, json_body({"errors": [message]}), headers=dict(headers or {}))


class Exchange:
    """One request being answered: what a :class:`Fault` sees, and the ways it can answer.

    A fault may send a canned :class:`Response` (:meth:`send`), compute the real answer and alter
    it (:meth:`real_response`), write raw bytes (:meth:`write_head`, :meth:`write`) or say nothing
    at all and :meth:`close_connection`.
    """

    def __init__(
        self,
        fake: FakeDatadog,
        handler: _Handler,
        method: str,
        path: str,
        params: Mapping[str, str],
        accept_gzip: bool,
        on_answer: Callable[[int], None] | None = None,
    ) -> None:
        self._fake = fake
        self._on_answer = on_answer
        self._handler = handler
        self.method = method
        self.path = path
        self.params = params  # the first value of each query-string parameter
        self.accept_gzip = accept_gzip
        self.status = 0  # the status written so far (0: nothing yet)

    def header(self, name: str) -> str | None:
        """A request header (case-insensitive). The key headers are not readable from here."""
        if name.lower() in _KEY_HEADERS:
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
            body = response.gzip_body if response.gzip_body is not None else _gzip(body)
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
        phrase = _phrase(status)
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


# -- the HTTP layer -------------------------------------------------------------------------------


# Ports handed to FakeDatadog instances of this process (see FakeDatadog._bind).
_USED_PORTS: set[int] = set()
_USED_PORTS_LOCK = threading.Lock()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: FakeDatadog) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that hang up (that is what tests of timeouts do) and about failed
        TLS handshakes (that is what tests of certificate checks do); loud on bugs."""
        if isinstance(sys.exc_info()[1], OSError):  # ConnectionError, TimeoutError, ssl.SSLError
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        """HTTPServer's version does a reverse DNS lookup of the address (slow on some hosts)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeDatadog/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted socket
    timeout = _IDLE_TIMEOUT
    server: _HTTPServer
    connection_id = 0
    reset_on_close = False

    def setup(self) -> None:
        context = self.server.fake._ssl_context
        if context is not None:
            # The handshake runs here, on the connection's own thread, so a client that stalls
            # or refuses the certificate holds up nobody else.
            self.request.settimeout(_HANDSHAKE_TIMEOUT)
            self.request = context.wrap_socket(self.request, server_side=True)
        super().setup()
        self.connection_id = self.server.fake._open_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the client went away, or a fault reset the connection
        finally:
            self.server.fake._close_connection(self.connection_id)
            if self.reset_on_close:
                # SO_LINGER 0: close() sends RST at once instead of an orderly FIN.
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
            elif self.server.fake._ssl_context is not None:
                # The TLS socket took over the descriptor: the server's own close cannot reach it.
                with contextlib.suppress(OSError):
                    self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request on stderr."""

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def _drain_and_handle(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            self.rfile.read(int(length))
        self.server.fake._handle(self, self.command)

    do_POST = do_PUT = do_PATCH = do_DELETE = _drain_and_handle


# -- the server -----------------------------------------------------------------------------------


class FakeDatadog:
    """A Datadog look-alike on ``http://127.0.0.1:<port>``, deterministic data, switchable faults.

    ::

        with FakeDatadog(rate_limit=(20, 10.0)) as dd:
            cfg = DDStreamConfig(..., base_url=dd.url, api_key="k", app_key="a")
            dd.inject(503, times=2)           # the next two queries fail
            ...
            assert not any(r.keys_in_url for r in dd.requests)

    ``api_keys`` / ``app_keys``: the accepted keys (``None``: any non-empty key). ``rate_limit``:
    ``(requests, period_seconds)`` in fixed windows from :meth:`start` (``None``: unlimited, headers
    still sent). ``latency``: seconds every ``/api/v1/query`` answer waits (settable while running;
    requests overlap since each has its own thread). ``trim_empty_edges``: drop leading/trailing
    null buckets (Datadog may; unconfirmed). ``float_timestamps``: write ``1681683300000.0`` rather
    than ``1681683300000``. ``null_aggr``: send ``"aggr": null``. ``max_points``: the point cap.
    ``hosts`` and ``raw_interval`` shape the data (see ``_data``). ``cache_size`` / ``cache_bytes``
    bound the LRU cache of rendered answers (entries / uncompressed bytes), which makes repeated
    benchmark runs cheap. All but the data options can be changed as attributes while running.

    ``tls=True`` serves HTTPS (``https://127.0.0.1:<port>``) with a self-signed certificate made
    at start (for ``127.0.0.1`` and ``localhost``, by the ``openssl`` command, else the
    ``cryptography`` package); :attr:`ca_file` is its path, to pass as a client's CA bundle.

    How the rate limiter's 429 looks: ``rate_limit_html`` (an HTML page, as some proxies send),
    ``rate_limit_reset_epoch`` (``x-ratelimit-reset`` as an epoch timestamp rather than seconds
    to go), ``rate_limit_header_case`` (``"lower"`` as Datadog, ``"title"`` or ``"upper"``).
    More faults: :mod:`ddstream.testing._faults`.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        hosts: int = 3,
        raw_interval: int = 10,
        api_keys: Collection[str] | None = None,
        app_keys: Collection[str] | None = None,
        rate_limit: tuple[int, float] | None = None,
        latency: float = 0.0,
        trim_empty_edges: bool = False,
        float_timestamps: bool = True,
        null_aggr: bool = False,
        max_points: int = MAX_POINTS,
        cache_size: int = 256,
        cache_bytes: int = 64 << 20,
        tls: bool = False,
        rate_limit_html: bool = False,
        rate_limit_reset_epoch: bool = False,
        rate_limit_header_case: str = "lower",
    ) -> None:
        if max_points < 1:
            raise ValueError(f"max_points must be at least 1, got {max_points}")
        self.dataset = Dataset(hosts=hosts, raw_interval=raw_interval)
        self.api_keys = None if api_keys is None else frozenset(api_keys)
        self.app_keys = None if app_keys is None else frozenset(app_keys)
        self.latency = latency
        self.trim_empty_edges = trim_empty_edges
        self.float_timestamps = float_timestamps
        self.null_aggr = null_aggr
        self.max_points = max_points
        self._port = port
        self._lock = threading.Lock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._connections: dict[int, socket.socket] = {}
        self._next_connection = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._cache: OrderedDict[tuple[object, ...], _CachedBody] = OrderedDict()
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._rate = RateWindows(rate_limit)
        if rate_limit_header_case not in HEADER_CASES:
            raise ValueError(
                f"rate_limit_header_case must be one of {sorted(HEADER_CASES)}, "
                f"got {rate_limit_header_case!r}"
            )
        self.rate_limit_html = rate_limit_html
        self.rate_limit_reset_epoch = rate_limit_reset_epoch
        self.rate_limit_header_case = rate_limit_header_case
        self.tls = tls
        self._tls_dir: str | None = None
        self._ssl_context: ssl.SSLContext | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind (same port as last time after a restart) and serve on a daemon thread."""
        if self._server is not None:
            return self
        if self.tls and self._ssl_context is None:
            self._tls_dir = tempfile.mkdtemp(prefix="fakedatadog-tls-")
            cert, key = self_signed_certificate(self._tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._ssl_context = context
        server = self._bind()
        self._port = server.server_address[1]
        self._server = server
        self._rate.restart()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeDatadog:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def _bind(self) -> _HTTPServer:
        """Bind self._port, or (port 0) a port no earlier FakeDatadog of this process used.

        A client remembers per server what it learnt (ddstream keeps one rate-limit budget per
        base URL and key for the whole process), so a new fake on a recycled port would inherit
        an old fake's spent window: each fake gets a base URL of its own.
        """
        if self._port:
            return _HTTPServer(("127.0.0.1", self._port), self)
        rejected = []
        try:
            for _ in range(64):
                server = _HTTPServer(("127.0.0.1", 0), self)
                port = server.server_address[1]
                with _USED_PORTS_LOCK:
                    if port not in _USED_PORTS:
                        _USED_PORTS.add(port)
                        return server
                rejected.append(server)  # kept open until the end, so the OS offers another
            raise OSError("no fresh port for FakeDatadog after 64 tries")
        finally:
            for other in rejected:
                other.server_close()

    def stop(self) -> None:
        """Stop serving and drop open connections (clients see them close). Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None
            self._ssl_context = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<FakeDatadog {where} {self.dataset!r}>"

    @property
    def port(self) -> int:
        """The TCP port (the one the OS chose when constructed with ``port=0``, once started)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with ``tls=True``): a client's base URL."""
        if self._server is None:
            raise RuntimeError("FakeDatadog is not running: call start() or use it in a with block")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self._port}"

    @property
    def ca_file(self) -> str:
        """Path of the self-signed certificate (PEM) of a ``tls=True`` server while it runs."""
        if self._tls_dir is None:
            raise RuntimeError("FakeDatadog has no certificate: start it with tls=True")
        return str(Path(self._tls_dir) / "cert.pem")

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- configuration that needs care ----------------------------------------------------------

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        return self._rate.limit

    @rate_limit.setter
    def rate_limit(self, value: tuple[int, float] | None) -> None:
        """A new limit starts a new window, counting from now."""
        self._rate.restart(value, keep=False)

    def rate_window(self, when: float) -> int:
        """The index of the rate-limit window (0 = the first, from :meth:`start` or the last
        change of ``rate_limit``) containing ``when`` (a ``time.monotonic()`` value, such as
        :attr:`RequestRecord.started`)."""
        return self._rate.window_of(when)

    # -- faults -----------------------------------------------------------------------------

    def inject(
        self,
        status: int,
        body: bytes | str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = 1,
        path: str | None = QUERY_PATH,
        content_type: str | None = None,
        html: bool = False,
        delay: float = 0.0,
    ) -> CannedResponse:
        """Answer the next ``times`` requests to ``path`` with this instead of the real answer.

        ``body=None`` gives ``{"errors": ["<reason phrase>"]}`` (or a small HTML page with
        ``html=True``, which also makes the content type ``text/html``). The body is gzipped when
        the client accepts gzip, unless ``headers`` sets a Content-Encoding. No rate-limit headers
        are added: pass them in ``headers`` if the fault should carry them. Faults are served in
        the order they were queued.
        """
        fault = CannedResponse(
            status,
            body,
            headers=headers,
            content_type=content_type,
            html=html,
            path=path,
            times=times,
            delay=delay,
        )
        self.add_fault(fault)
        return fault

    def add_fault(self, fault: Fault) -> Fault:
        """Queue any :class:`Fault` (after those already queued)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        """Faults not yet used up, in serving order."""
        with self._lock:
            return list(self._faults)

    def _take_fault(self, exchange: Exchange) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(exchange):
                    fault.served += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # -- observation ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far (a copy), in the order they finished."""
        with self._lock:
            return list(self._log)

    @property
    def query_requests(self) -> list[RequestRecord]:
        """The requests to ``/api/v1/query`` only."""
        return [record for record in self.requests if record.path == QUERY_PATH]

    @property
    def max_concurrency(self) -> int:
        """The largest number of ``/api/v1/query`` requests in flight at once (since clear_log)."""
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def clear_log(self) -> None:
        """Forget the request log and restart the concurrency peak from what is in flight now."""
        with self._lock:
            self._log.clear()
            self._max_in_flight = self._in_flight

    # -- the answers, without HTTP ----------------------------------------------------------

    def answer(self, query: str, from_ts: int, to_ts: int) -> dict[str, Any]:
        """The JSON document a 200 answer to this query would carry (raises QueryError)."""
        subqueries = parse_query(query)
        group_by: list[str] = []
        series: list[dict[str, Any]] = []
        for sub in subqueries:
            group_by.extend(key for key in sub.by if key not in group_by)
            series.extend(self._series(sub, from_ts, to_ts))
        _shuffle(series, query)
        return {
            "status": "ok",
            "res_type": "time_series",
            "resp_version": 1,
            "query": query,
            "from_date": from_ts * 1000,
            "to_date": to_ts * 1000,
            "series": series,
            "message": "",
            "group_by": group_by,
        }

    def _series(self, sub: SubQuery, from_ts: int, to_ts: int) -> list[dict[str, Any]]:
        interval = sub.rollup_seconds or auto_interval(from_ts, to_ts)
        interval = capped_interval(from_ts, to_ts, interval, self.max_points)
        first, count = bucket_grid(from_ts, to_ts, interval)
        if count == 0:
            return []
        filter_tags = [f"{key}:{value}" for key, value in sub.filters]
        result: list[dict[str, Any]] = []
        for tag_set, hosts in self.dataset.groups(sub.filters, sub.by).items():
            values = self.dataset.rollup(
                sub.metric, hosts, sub.space, sub.method, first, interval, count
            )
            filled = np.flatnonzero(~np.isnan(values))
            if len(filled) == 0:
                continue  # Datadog sends no series for a group without data in the range
            lo, hi = (int(filled[0]), int(filled[-1]) + 1) if self.trim_empty_edges else (0, count)
            starts = first + np.arange(lo, hi, dtype=np.int64) * interval
            stamps_ms = starts * 1000
            stamps: list[Any] = (
                stamps_ms.astype(np.float64).tolist()
                if self.float_timestamps
                else stamps_ms.tolist()
            )
            points = [None if math.isnan(v) else v for v in values[lo:hi].tolist()]
            if tag_set:
                scope = ",".join(sorted(set(filter_tags) | set(tag_set)))
            else:
                scope = sub.scope_text
            rollup = f".rollup({sub.rollup_method},{interval})" if sub.rollup_method else ""
            result.append(
                {
                    "metric": sub.metric,
                    "display_name": sub.metric,
                    "expression": f"{sub.space}:{sub.metric}{{{scope}}}{rollup}",
                    "scope": scope,
                    "tag_set": list(tag_set),
                    "aggr": None if self.null_aggr else sub.space,
                    "query_index": sub.index,
                    "interval": interval,
                    "start": int(starts[0]) * 1000,
                    "end": (int(starts[-1]) + interval - 1) * 1000,
                    "length": hi - lo,
                    "unit": [None, None],
                    "pointlist": list(zip(stamps, points)),
                    "attributes": {},
                }
            )
        return result

    # -- request handling (runs on the handler threads) -------------------------------------

    def _open_connection(self, connection: socket.socket) -> int:
        with self._lock:
            self._next_connection += 1
            self._connections[self._next_connection] = connection
            return self._next_connection

    def _close_connection(self, connection_id: int) -> None:
        with self._lock:
            self._connections.pop(connection_id, None)

    def _handle(self, handler: _Handler, method: str) -> None:
        started = time.monotonic()
        split = urlsplit(handler.path)
        path = split.path
        pairs = parse_qsl(split.query, keep_blank_values=True)
        params: dict[str, str] = {}
        for name, value in pairs:
            params.setdefault(name, value)
        logged_params = {
            name: "<redacted>" if name in _KEY_PARAMS else value for name, value in params.items()
        }
        accept_gzip = _accepts_gzip(handler.headers.get_all("Accept-Encoding"))
        is_query = method == "GET" and path == QUERY_PATH
        finished = False

        def finish(status: int) -> None:
            """Leave the in-flight count and log the request, once, before the answer goes out."""
            nonlocal finished
            if finished:
                return
            finished = True
            record = RequestRecord(
                path=path,
                params=logged_params,
                query=params.get("query"),
                from_ts=_parse_int(params.get("from")),
                to_ts=_parse_int(params.get("to")),
                status=status,
                started=started,
                finished=time.monotonic(),
                api_key_sent=bool(handler.headers.get("DD-API-KEY")),
                app_key_sent=bool(handler.headers.get("DD-APPLICATION-KEY")),
                keys_in_url=any(name in _KEY_PARAMS for name, _ in pairs),
                accept_gzip=accept_gzip,
                user_agent=handler.headers.get("User-Agent", ""),
                connection_id=handler.connection_id,
                method=method,
            )
            with self._lock:
                if is_query:
                    self._in_flight -= 1
                self._log.append(record)

        exchange = Exchange(self, handler, method, path, params, accept_gzip, finish)
        if is_query:
            with self._lock:
                self._in_flight += 1
                self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if is_query and self.latency > 0:
                time.sleep(self.latency)
            fault = self._take_fault(exchange)
            if fault is not None:
                if fault.delay > 0:
                    time.sleep(fault.delay)
                fault.respond(exchange)
            else:
                exchange.send(self._route(exchange, handler))
        except (ConnectionError, TimeoutError):
            handler.close_connection = True
        except Exception:  # a bug here: say so loudly, and answer 500 if still possible
            logger.exception("FakeDatadog failed to answer %s %s", method, path)
            handler.close_connection = True
            if exchange.status == 0:
                with contextlib.suppress(OSError):
                    exchange.send(error_response(500, "Internal Server Error"))
        finally:
            finish(exchange.status)

    def _route(self, exchange: Exchange, handler: BaseHTTPRequestHandler) -> Response:
        api_key = handler.headers.get("DD-API-KEY") or ""
        app_key = handler.headers.get("DD-APPLICATION-KEY") or ""
        if exchange.method == "GET" and exchange.path == QUERY_PATH:
            return self._query(exchange, api_key, app_key)
        if exchange.method == "GET" and exchange.path == VALIDATE_PATH:
            if not self._api_key_ok(api_key):
                return error_response(403, "Forbidden")
            return Response(200, json_body({"valid": True}))
        return error_response(404, "Not found")

    def _api_key_ok(self, key: str) -> bool:
        return bool(key) and (self.api_keys is None or key in self.api_keys)

    def _query(self, exchange: Exchange, api_key: str, app_key: str) -> Response:
        # Auth first (it does not use up the budget), then the budget, then the request itself.
        if not self._api_key_ok(api_key):
            return error_response(403, "Forbidden", self._rate_headers(consume=False)[0])
        if not app_key:
            return error_response(401, "Unauthorized", self._rate_headers(consume=False)[0])
        if self.app_keys is not None and app_key not in self.app_keys:
            return error_response(403, "Forbidden", self._rate_headers(consume=False)[0])
        headers, allowed = self._rate_headers(consume=True)
        if not allowed:
            limit, period = self._rate.limit or UNLIMITED_RATE
            message = (
                f"Rate limit of {limit} requests in {format_seconds(period)} seconds reached. "
                "Please try again later."
            )
            if self.rate_limit_html:
                page = (
                    "<html><head><title>429 Too Many Requests</title></head>"
                    f"<body><h1>Too Many Requests</h1><p>{message}</p></body></html>"
                )
                return Response(429, page.encode("utf-8"), "text/html; charset=utf-8", headers)
            return error_response(429, message, headers)
        params = exchange.params
        for name in ("from", "to", "query"):
            if not params.get(name):
                return error_response(400, f"Missing required parameter '{name}'", headers)
        bounds = []
        for name in ("from", "to"):
            value = _parse_int(params[name])
            if value is None or abs(value) > 10**11:
                return error_response(
                    400, f"Invalid parameter '{name}': expected integer epoch seconds", headers
                )
            bounds.append(value)
        from_ts, to_ts = bounds
        if to_ts < from_ts:
            return error_response(400, "Invalid time range: 'to' is before 'from'", headers)
        try:
            cached = self._body(params["query"], from_ts, to_ts)
        except QueryError as error:
            return error_response(400, str(error), headers)
        return Response(
            200,
            cached.body,
            headers=headers,
            gzip_body=cached.gzipped() if exchange.accept_gzip else None,
        )

    def _body(self, query: str, from_ts: int, to_ts: int) -> _CachedBody:
        key = (
            query,
            from_ts,
            to_ts,
            self.trim_empty_edges,
            self.float_timestamps,
            self.null_aggr,
            self.max_points,
        )
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        cached = _CachedBody(json_body(self.answer(query, from_ts, to_ts)))
        with self._lock:
            previous = self._cache.pop(key, None)  # another thread computed it meanwhile
            if previous is not None:
                self._cached_bytes -= len(previous.body)
            self._cache[key] = cached
            self._cached_bytes += len(cached.body)
            while len(self._cache) > 1 and (
                len(self._cache) > self._cache_size or self._cached_bytes > self._cache_bytes
            ):
                _, evicted = self._cache.popitem(last=False)
                self._cached_bytes -= len(evicted.body)
        return cached

    def _rate_headers(self, *, consume: bool) -> tuple[dict[str, str], bool]:
        """The x-ratelimit-* headers of an answer as this server spells them (see RateWindows)."""
        return self._rate.headers(consume=consume, reset_epoch=self.rate_limit_reset_epoch,
                                  header_case=self.rate_limit_header_case)


class _CachedBody:
    """A rendered 200 body and, computed on first need, its gzip form."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:  # a race only compresses twice
            self._gzipped = _gzip(self.body)
        return self._gzipped


# -- small helpers --------------------------------------------------------------------------------


_INTEGER = re.compile(r"-?[0-9]+")


def _parse_int(value: str | None) -> int | None:
    """Strict integer parsing: ``int()`` would also take ``" 1_0 "`` and ``"+1"``."""
    if value is None or _INTEGER.fullmatch(value) is None:
        return None
    return int(value)


def _accepts_gzip(values: list[str] | None) -> bool:
    for header in values or []:
        for item in header.split(","):
            name, _, parameters = item.partition(";")
            if name.strip().lower() not in ("gzip", "x-gzip"):
                continue
            quality = parameters.strip().lower()
            if quality.startswith("q="):
                try:
                    if float(quality[2:]) == 0:
                        continue
                except ValueError:
                    continue
            return True
    return False


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=5, mtime=0)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _shuffle(series: list[dict[str, Any]], query: str) -> None:
    """Reorder deterministically, never in the natural order when there are two or more series:
    clients must key series by (query_index, tag_set), as Datadog does not promise an order."""
    natural = list(series)
    random.Random(zlib.crc32(query.encode("utf-8"))).shuffle(series)
    if len(series) > 1 and series == natural:
        series.reverse()
