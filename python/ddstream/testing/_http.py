"""FakeDatadog's HTTP plumbing: the threaded server, its request handler and the wire helpers.

HTTP/1.1 with keep-alive (exact ``Content-Length``), ``TCP_NODELAY``, TLS wrapped on the
connection's own thread, resets on demand, and the small encodings every answer goes through
(JSON as Datadog writes it, gzip, reason phrases, strict integers). What a request *means* is the
server's business (``_server``); this module only moves bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import socketserver
import struct
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import FakeDatadog

__all__ = [
    "HTTPServer",
    "Handler",
    "Response",
    "accepts_gzip",
    "bind",
    "error_response",
    "gzip_compress",
    "json_body",
    "parse_int",
    "reason_phrase",
]

_IDLE_TIMEOUT = 120.0  # seconds an idle keep-alive connection is kept open
_HANDSHAKE_TIMEOUT = 10.0  # seconds a TLS handshake may take
_MAX_REQUEST_BODY = 16 << 20  # bytes of a request body kept (a larger one is read and dropped)


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


# Ports handed to FakeDatadog instances of this process (see bind).
_USED_PORTS: set[int] = set()
_USED_PORTS_LOCK = threading.Lock()


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], fake: FakeDatadog) -> None:
        self.fake = fake
        super().__init__(address, Handler)

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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeDatadog/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted socket
    timeout = _IDLE_TIMEOUT
    server: HTTPServer
    connection_id = 0
    reset_on_close = False
    request_body = b""  # the body of a POST (v2 endpoints); empty for GET

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
            # Kept for the v2 endpoints (JSON bodies); bounded so a client cannot make us hold
            # more than any real request carries.
            size = int(length)
            body = self.rfile.read(min(size, _MAX_REQUEST_BODY))
            left = size - len(body)
            while left > 0 and len(body) == _MAX_REQUEST_BODY:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
            if size > _MAX_REQUEST_BODY:
                body = b""
            self.request_body = body
        self.server.fake._handle(self, self.command)

    do_POST = do_PUT = do_PATCH = do_DELETE = _drain_and_handle


def bind(fake: FakeDatadog, port: int) -> HTTPServer:
    """A server for ``fake`` bound to ``port``, or (port 0) to a port no earlier FakeDatadog of
    this process used.

    A client remembers per server what it learnt (ddstream keeps one rate-limit budget per
    base URL and key for the whole process), so a new fake on a recycled port would inherit
    an old fake's spent window: each fake gets a base URL of its own.
    """
    if port:
        return HTTPServer(("127.0.0.1", port), fake)
    rejected = []
    try:
        for _ in range(64):
            server = HTTPServer(("127.0.0.1", 0), fake)
            chosen = server.server_address[1]
            with _USED_PORTS_LOCK:
                if chosen not in _USED_PORTS:
                    _USED_PORTS.add(chosen)
                    return server
            rejected.append(server)  # kept open until the end, so the OS offers another
        raise OSError("no fresh port for FakeDatadog after 64 tries")
    finally:
        for other in rejected:
            other.server_close()


_INTEGER = re.compile(r"-?[0-9]+")


def parse_int(value: str | None) -> int | None:
    """Strict integer parsing: ``int()`` would also take ``" 1_0 "`` and ``"+1"``."""
    if value is None or _INTEGER.fullmatch(value) is None:
        return None
    return int(value)


def accepts_gzip(values: list[str] | None) -> bool:
    """Whether ``Accept-Encoding`` header values allow gzip (``q=0`` refuses it)."""
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


def gzip_compress(body: bytes) -> bytes:
    """gzip as a server sends it: level 5, no timestamp (identical bytes for identical bodies)."""
    return gzip.compress(body, compresslevel=5, mtime=0)


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``, ``"Error"`` for an unknown one."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
