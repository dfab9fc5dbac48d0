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

This module ties the parts together; each can be read alone: ``_buckets`` (the bucket grid),
``_data`` (the values), ``_query`` (the query language), ``_ratelimit`` (windows and headers),
``_answer_cache`` (rendered answers), ``_http`` (the HTTP plumbing), ``_exchange`` (a request as
a fault sees it, and the Fault base), ``_faults`` (the faults), ``_tls`` (the certificate).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import shutil
import socket
import ssl
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Collection, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ._answer_cache import AnswerCache, CachedBody
from ._buckets import MAX_POINTS
from ._data import Dataset
from ._exchange import QUERY_PATH, VALIDATE_PATH, CannedResponse, Exchange, Fault, RequestRecord
from ._http import (
    Handler,
    HTTPServer,
    Response,
    accepts_gzip,
    bind,
    error_response,
    json_body,
    parse_int,
)
from ._query import QueryError, SubQuery, count_subqueries, parse_query
from ._query_eval import evaluate, grid_for
from ._ratelimit import HEADER_CASES, UNLIMITED_RATE, RateWindows, format_seconds
from ._tls import self_signed_certificate
from ._v2 import (
    SCALAR_PATH,
    TIMESERIES_PATH,
    V2Error,
    answer_scalar,
    answer_timeseries,
    parse_request,
)

if TYPE_CHECKING:  # typing.Self is Python 3.11+, but only the type checker reads this import
    from typing import Self

__all__ = ["FakeDatadog"]

logger = logging.getLogger("ddstream.testing")
_KEY_PARAMS = frozenset({"api_key", "application_key"})


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
    ``hosts`` and ``raw_interval`` shape the data (see ``_data``); ``distribution_metrics`` names
    the metrics that are distributions (a set of values per raw point, percentiles: ``_data``,
    ``_query_eval``). ``max_uri_bytes``: a request whose URI (path and escaped query string, as
    sent) is longer gets 414 (``None``: no limit; Datadog's is not published, its Cluster Agent
    keeps under about 7,000 characters). ``cache_size`` / ``cache_bytes``
    bound the LRU cache of rendered answers (entries / uncompressed bytes), which makes repeated
    benchmark runs cheap. All but the data options can be changed as attributes while running.

    ``tls=True`` serves HTTPS (``https://127.0.0.1:<port>``) with a self-signed certificate made
    at start (for ``127.0.0.1`` and ``localhost``, by the ``openssl`` command, else the
    ``cryptography`` package); :attr:`ca_file` is its path, to pass as a client's CA bundle.

    How the rate limiter's 429 looks: ``rate_limit_html`` (an HTML page, as some proxies send),
    ``rate_limit_reset_epoch`` (``x-ratelimit-reset`` as an epoch timestamp rather than seconds
    to go), ``rate_limit_header_case`` (``"lower"`` as Datadog, ``"title"`` or ``"upper"``).
    More faults: :mod:`ddstream.testing._faults`.

    ``clock``: a callable giving the server's now in epoch seconds (a :class:`FakeClock` to
    simulate time, for follow mode); no raw point at or after it exists yet, so an answer never
    holds the future and a bucket that has not ended is partial, as Datadog's last buckets are.
    Each request's log entry records the clock when it arrived (``clock``). ``None``
    (default): every point exists, whatever the time.
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
        clock: Callable[[], float] | None = None,
        distribution_metrics: Collection[str] = (),
        max_uri_bytes: int | None = None,
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
        self.clock = clock
        self.distribution_metrics = frozenset(distribution_metrics)
        self.max_uri_bytes = max_uri_bytes
        self._port = port
        self._lock = threading.Lock()
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._connections: dict[int, socket.socket] = {}
        self._next_connection = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._cache = AnswerCache(cache_size, cache_bytes)
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
        server = bind(self, self._port)
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
        return [record for record in self.requests if record.path in _QUERY_PATHS]

    @property
    def subqueries_per_request(self) -> list[int]:
        """Sub-queries (top-level comma-separated parts) of each ``/api/v1/query`` request so
        far, in the order they finished (0 for a request without a query)."""
        return [record.subqueries for record in self.query_requests]

    def request_counts(self) -> dict[str, int]:
        """``requests``, ``subqueries`` (their sum), ``max_subqueries`` and ``max_uri_bytes`` of
        the ``/api/v1/query`` requests so far (since :meth:`clear_log`)."""
        records = self.query_requests
        return {
            "requests": len(records),
            "subqueries": sum(record.subqueries for record in records),
            "max_subqueries": max((record.subqueries for record in records), default=0),
            "max_uri_bytes": max((record.uri_bytes for record in records), default=0),
        }

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
        return self._answer(query, from_ts, to_ts, self._until())

    def _until(self) -> int | None:
        """Raw timestamps (integers) before the clock's now exist: ``t < ceil(now)``."""
        clock = self.clock
        return None if clock is None else math.ceil(clock())

    def _answer(self, query: str, from_ts: int, to_ts: int, until: int | None) -> dict[str, Any]:
        subqueries = parse_query(query)
        group_by: list[str] = []
        series: list[dict[str, Any]] = []
        for sub in subqueries:
            for term in sub.terms:
                group_by.extend(key for key in term.by if key not in group_by)
            series.extend(self._series(sub, from_ts, to_ts, until))
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

    def _series(
        self, sub: SubQuery, from_ts: int, to_ts: int, until: int | None = None
    ) -> list[dict[str, Any]]:
        grid = grid_for(sub, from_ts, to_ts, self.max_points)
        interval, first, count = grid.interval, grid.first, grid.count
        first_term = sub.terms[0]
        filter_tags = [f"{key}:{value}" for key, value in first_term.filters]
        result: list[dict[str, Any]] = []
        for tag_set, values in evaluate(
            sub, self.dataset, self.distribution_metrics, grid, until
        ):
            filled = np.flatnonzero(~np.isnan(values))
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
                scope = first_term.scope_text
            if sub.simple:  # the historical shape: Datadog echoes the term, its rollup filled in
                rollup = (
                    f".rollup({first_term.rollup_method},{interval})"
                    if first_term.rollup_method
                    else ""
                )
                expression = f"{first_term.space}:{first_term.metric}{{{scope}}}{rollup}"
            else:
                expression = sub.text
            result.append(
                {
                    "metric": first_term.metric,
                    "display_name": first_term.metric if sub.simple else sub.text,
                    "expression": expression,
                    "scope": scope,
                    "tag_set": list(tag_set),
                    "aggr": None if self.null_aggr else first_term.space,
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

    def _handle(self, handler: Handler, method: str) -> None:
        started = time.monotonic()
        clock = self.clock
        arrived = None if clock is None else clock()
        split = urlsplit(handler.path)
        path = split.path
        pairs = parse_qsl(split.query, keep_blank_values=True)
        params: dict[str, str] = {}
        for name, value in pairs:
            params.setdefault(name, value)
        logged_params = {
            name: "<redacted>" if name in _KEY_PARAMS else value for name, value in params.items()
        }
        accept_gzip = accepts_gzip(handler.headers.get_all("Accept-Encoding"))
        is_query = (method, path) in _QUERY_ROUTES
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
                from_ts=parse_int(params.get("from")),
                to_ts=parse_int(params.get("to")),
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
                clock=arrived,
                subqueries=count_subqueries(params["query"]) if params.get("query") else 0,
                uri_bytes=len(handler.path),
                body=getattr(handler, "request_body", b""),
            )
            with self._lock:
                if is_query:
                    self._in_flight -= 1
                self._log.append(record)

        exchange = Exchange(
            self, handler, method, path, params, accept_gzip, finish, uri_bytes=len(handler.path)
        )
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
        if exchange.method == "POST" and exchange.path in (TIMESERIES_PATH, SCALAR_PATH):
            return self._query_v2(exchange, api_key, app_key)
        if exchange.method == "GET" and exchange.path == VALIDATE_PATH:
            if not self._api_key_ok(api_key):
                return error_response(403, "Forbidden")
            return Response(200, json_body({"valid": True}))
        return error_response(404, "Not found")

    def _api_key_ok(self, key: str) -> bool:
        return bool(key) and (self.api_keys is None or key in self.api_keys)

    def _refusal(self, api_key: str, app_key: str) -> Response | None:
        """The auth answers shared by v1 and v2 (they do not use up the budget)."""
        if not self._api_key_ok(api_key):
            return error_response(403, "Forbidden", self._rate_headers(consume=False)[0])
        if not app_key:
            return error_response(401, "Unauthorized", self._rate_headers(consume=False)[0])
        if self.app_keys is not None and app_key not in self.app_keys:
            return error_response(403, "Forbidden", self._rate_headers(consume=False)[0])
        return None

    def _query_v2(self, exchange: Exchange, api_key: str, app_key: str) -> Response:
        # Auth, then the budget (the same one as v1's in this fake), then the request itself.
        refused = self._refusal(api_key, app_key)
        if refused is not None:
            return refused
        headers, allowed = self._rate_headers(consume=True)
        if not allowed:
            limit, period = self._rate.limit or UNLIMITED_RATE
            return error_response(
                429,
                f"Rate limit of {limit} requests in {format_seconds(period)} seconds reached. "
                "Please try again later.",
                headers,
            )
        kind = "timeseries" if exchange.path == TIMESERIES_PATH else "scalar"
        try:
            request = parse_request(exchange.body, kind)
            # The clock as v1 reads it: raw points before now only, `to` exclusive here.
            until = self._until_for(-(-request.to_ms // 1000) - 1)
            key = (
                until,
                exchange.path,
                exchange.body,
                self.max_points,
                self.distribution_metrics,
            )

            def render() -> bytes:
                answer = answer_timeseries if kind == "timeseries" else answer_scalar
                return json_body(
                    answer(
                        request, self.dataset, self.distribution_metrics, self.max_points, until
                    )
                )

            cached = self._cache.get(key, render)
        except V2Error as error:
            return error_response(400, str(error), headers)
        return Response(
            200,
            cached.body,
            "application/vnd.api+json",
            headers,
            gzip_body=cached.gzipped() if exchange.accept_gzip else None,
        )

    def _query(self, exchange: Exchange, api_key: str, app_key: str) -> Response:
        # The URI's length first (a front end refuses it before anything reads it), auth next (it
        # does not use up the budget), then the budget, then the request itself.
        limit = self.max_uri_bytes
        if limit is not None and exchange.uri_bytes > limit:
            return error_response(414, "Request-URI Too Long")
        refused = self._refusal(api_key, app_key)
        if refused is not None:
            return refused
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
            value = parse_int(params[name])
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

    def _until_for(self, last_ts: int) -> int | None:
        """The clock's bound on raw points for an answer up to ``last_ts`` (inclusive), as part
        of its answer-cache key."""
        until = self._until()
        if until is not None and until > last_ts + 86400 * 366:
            until = None  # long past: the clock changes nothing, and the answer stays cached
        return until

    def _body(self, query: str, from_ts: int, to_ts: int) -> CachedBody:
        until = self._until_for(to_ts)
        key = (
            until,
            query,
            from_ts,
            to_ts,
            self.trim_empty_edges,
            self.float_timestamps,
            self.null_aggr,
            self.max_points,
            self.distribution_metrics,
        )
        return self._cache.get(
            key, lambda: json_body(self._answer(query, from_ts, to_ts, until))
        )

    def _rate_headers(self, *, consume: bool) -> tuple[dict[str, str], bool]:
        """The x-ratelimit-* headers of an answer as this server spells them (see RateWindows)."""
        return self._rate.headers(consume=consume, reset_epoch=self.rate_limit_reset_epoch,
                                  header_case=self.rate_limit_header_case)


_QUERY_PATHS = frozenset({QUERY_PATH, TIMESERIES_PATH, SCALAR_PATH})
_QUERY_ROUTES = frozenset({("GET", QUERY_PATH), ("POST", TIMESERIES_PATH), ("POST", SCALAR_PATH)})


def _shuffle(series: list[dict[str, Any]], query: str) -> None:
    """Reorder deterministically, never in the natural order when there are two or more series:
    clients must key series by (query_index, tag_set), as Datadog does not promise an order."""
    natural = list(series)
    random.Random(zlib.crc32(query.encode("utf-8"))).shuffle(series)
    if len(series) > 1 and series == natural:
        series.reverse()
