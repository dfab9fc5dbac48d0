"""Fault modes of FakeDatadog: the ways a real server, proxy or network misbehaves.

Each class is a :class:`~ddstream.testing.Fault`: queue it with :meth:`FakeDatadog.add_fault`
and it replaces the real answer of the next ``times`` matching requests (``times=None``: all of
them). With :meth:`FakeDatadog.inject` (any status, JSON or HTML body) and the server's own options
(``rate_limit`` with real ``x-ratelimit-*`` headers, ``rate_limit_html``, ``latency``,
``max_points`` for coarsened intervals, ``tls``) they cover what a client must survive:

=====================  ==========================================================================
:class:`ResetMidBody`  the real answer, cut off by a TCP reset partway through the body
:class:`Truncate`      the real answer, cut partway with the connection closed (Content-Length
                       promises more than arrives)
:class:`TruncatedJSON` a well-framed 200 whose JSON stops partway (Content-Length matches)
:class:`Hangup`        the connection closes without any answer
:class:`SlowBody`      the real answer dribbled out a few bytes at a time (slow-loris); with
                       ``stall`` it stops sending after the headers
:class:`GzipBomb`      a small gzip body that inflates to far more than any client should keep
:class:`Mutate`        the real JSON document changed by a function: wrong types, ``"status":
                       "error"``, timestamps out of the chunk or order, series that vanish or
                       multiply, a coarser ``interval``...
:class:`Garbage`       a 200 whose body is not JSON at all (random bytes, text, HTML)
:class:`Redirect`      a 3xx pointing elsewhere
:class:`WideAnswer`    a small 200 naming many groups with empty point lists (a huge dense batch)
:class:`RandomFaults`  a seeded mix of the recoverable faults above, for soak tests
:class:`AbsurdReset`   a spent rate-limit window whose ``x-ratelimit-reset`` is far beyond what
                       any window can mean (a 429, or the real 200 with ``remaining: 0``)
:class:`RetryAfter`    a 503 (or any status) with ``Retry-After``, in seconds or as an HTTP date
:class:`QueryTimeout`  ``Query timed out`` for requests carrying more than N sub-queries, or for
                       the next K requests (a 200 with ``"status": "error"``, as Datadog answers);
                       :class:`QueryTimedOut` is the same with a 400 by default
=====================  ==========================================================================
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ._exchange import QUERY_PATH, Exchange, Fault
from ._http import Response, error_response, json_body
from ._query import count_subqueries

__all__ = [
    "RECOVERABLE_KINDS",
    "AbsurdReset",
    "Garbage",
    "GzipBomb",
    "Hangup",
    "Mutate",
    "QueryTimedOut",
    "QueryTimeout",
    "RandomFaults",
    "Redirect",
    "ResetMidBody",
    "RetryAfter",
    "SlowBody",
    "Truncate",
    "TruncatedJSON",
    "WideAnswer",
]


def _cut(body: bytes, fraction: float) -> int:
    """Where to cut ``body``: at least one byte kept and at least one dropped."""
    return min(max(1, int(len(body) * fraction)), max(1, len(body) - 1))


def _sleep_while_running(exchange: Exchange, seconds: float) -> bool:
    """Sleep in short slices; False as soon as the server is stopping."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        if not exchange.server_running:
            return False
        time.sleep(min(left, 0.05))


class _PartialBody(Fault):
    """The real answer's headers with its exact Content-Length, then only ``fraction`` of the
    (uncompressed) body; subclasses say how the connection ends."""

    def __init__(
        self, fraction: float = 0.5, *, path: str | None = QUERY_PATH, times: int | None = 1
    ) -> None:
        super().__init__(path=path, times=times)
        self.fraction = fraction

    def respond(self, exchange: Exchange) -> None:
        response = exchange.real_response()
        headers = dict(response.headers)
        headers.update({"Content-Type": response.content_type,
                        "Content-Length": str(len(response.body))})
        exchange.write_head(response.status, headers)
        exchange.write(response.body[: _cut(response.body, self.fraction)])
        self._end(exchange)

    def _end(self, exchange: Exchange) -> None:
        raise NotImplementedError


class ResetMidBody(_PartialBody):
    """Part of the real body, then a TCP reset: the client sees "connection reset by peer"."""

    def _end(self, exchange: Exchange) -> None:
        exchange.reset_connection()


class Truncate(_PartialBody):
    """Part of the real body, then a normal close (FIN): a body shorter than it said."""

    def _end(self, exchange: Exchange) -> None:
        exchange.close_connection()


class TruncatedJSON(Fault):
    """A 200 carrying only the first ``fraction`` of the real JSON, correctly framed (the
    Content-Length is that of the cut body): HTTP is happy, the JSON ends early."""

    def __init__(
        self, fraction: float = 0.5, *, path: str | None = QUERY_PATH, times: int | None = 1
    ) -> None:
        super().__init__(path=path, times=times)
        self.fraction = fraction

    def respond(self, exchange: Exchange) -> None:
        response = exchange.real_response()
        body = response.body[: _cut(response.body, self.fraction)]
        exchange.send(Response(response.status, body, response.content_type, response.headers))


class Hangup(Fault):
    """Close the connection without answering (the client gets an empty reply)."""

    def respond(self, exchange: Exchange) -> None:
        exchange.close_connection()


class SlowBody(Fault):
    """The real answer (uncompressed, exact Content-Length) sent ``chunk`` bytes every ``pause``
    seconds: a slow or slow-loris server. ``stall=True`` sends the headers and then nothing
    (until the client gives up or ``max_seconds`` pass). Stops when the client goes away."""

    def __init__(
        self,
        *,
        chunk: int = 64,
        pause: float = 0.1,
        stall: bool = False,
        max_seconds: float = 60.0,
        path: str | None = QUERY_PATH,
        times: int | None = 1,
    ) -> None:
        super().__init__(path=path, times=times)
        if chunk < 1 or pause < 0:
            raise ValueError("chunk must be >= 1 and pause >= 0")
        self.chunk = chunk
        self.pause = pause
        self.stall = stall
        self.max_seconds = max_seconds

    def respond(self, exchange: Exchange) -> None:
        response = exchange.real_response()
        headers = dict(response.headers)
        headers.update({"Content-Type": response.content_type,
                        "Content-Length": str(len(response.body))})
        exchange.write_head(response.status, headers)
        if self.stall:
            _sleep_while_running(exchange, self.max_seconds)
            exchange.close_connection()
            return
        deadline = time.monotonic() + self.max_seconds
        for start in range(0, len(response.body), self.chunk):
            exchange.write(response.body[start : start + self.chunk])  # raises once the client left
            if time.monotonic() > deadline or not _sleep_while_running(exchange, self.pause):
                exchange.close_connection()
                return


class GzipBomb(Fault):
    """A 200 with ``Content-Encoding: gzip`` whose small body inflates to ``inflated_bytes`` (a
    JSON object start followed by spaces, so only a size limit stops a client)."""

    def __init__(
        self, inflated_bytes: int = 1 << 30, *, path: str | None = QUERY_PATH,
        times: int | None = 1,
    ) -> None:
        super().__init__(path=path, times=times)
        self.inflated_bytes = inflated_bytes
        self._body: bytes | None = None
        self._lock = threading.Lock()

    def body(self) -> bytes:
        """The compressed body (made once: about 1 KiB per MiB inflated)."""
        with self._lock:
            if self._body is None:
                compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
                head = b'{"status":"ok","series":['
                parts = [compressor.compress(head)]
                block = b" " * (1 << 20)
                left = self.inflated_bytes - len(head)
                while left > 0:
                    parts.append(compressor.compress(block[: min(left, len(block))]))
                    left -= len(block)
                parts.append(compressor.flush())
                self._body = b"".join(parts)
            return self._body

    def respond(self, exchange: Exchange) -> None:
        exchange.send(Response(200, self.body(), headers={"Content-Encoding": "gzip"}))


class Mutate(Fault):
    """The real answer's JSON document passed through ``change(document, exchange)``, which
    returns the new document (sent as compact JSON) or raw ``bytes`` (sent as they are). Only 200
    answers are changed; errors pass through."""

    def __init__(
        self,
        change: Callable[[dict[str, Any], Exchange], Any],
        *,
        path: str | None = QUERY_PATH,
        times: int | None = 1,
    ) -> None:
        super().__init__(path=path, times=times)
        self.change = change

    def respond(self, exchange: Exchange) -> None:
        response = exchange.real_response()
        if response.status != 200:
            exchange.send(response)
            return
        changed = self.change(json.loads(response.body), exchange)
        body = changed if isinstance(changed, bytes) else json_body(changed)
        exchange.send(Response(200, body, response.content_type, response.headers))


class WideAnswer(Mutate):
    """The real answer with its series replaced by ``groups`` groups (tag sets ``host:w000000``,
    ``host:w000001``...) whose point lists are all empty, spread over the four rollups: about
    70 bytes per group, yet a client that keeps a row per bucket per group (ddstream's dense
    batches) needs ``groups x buckets`` rows. The answered ``interval`` is kept, so only the
    width of the answer is unusual."""

    def __init__(
        self, groups: int, *, path: str | None = QUERY_PATH, times: int | None = 1
    ) -> None:
        if groups < 0:
            raise ValueError(f"groups must not be negative, got {groups}")
        super().__init__(self._widen, path=path, times=times)
        self.groups = groups

    def _widen(self, document: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
        real = document.get("series") or [{}]
        interval = real[0].get("interval")
        wide: list[dict[str, Any]] = []
        for index in range(self.groups):
            series: dict[str, Any] = {
                "query_index": index % 4,
                "tag_set": [f"host:w{index:06d}"],
                "pointlist": [],
            }
            if interval is not None:
                series["interval"] = interval
            wide.append(series)
        return {**document, "series": wide, "group_by": ["host"]}


class Garbage(Fault):
    """A 200 whose body is ``body``, or ``size`` seeded random bytes when ``body`` is None."""

    def __init__(
        self,
        body: bytes | None = None,
        *,
        size: int = 4096,
        seed: int = 0,
        content_type: str = "application/json",
        path: str | None = QUERY_PATH,
        times: int | None = 1,
    ) -> None:
        super().__init__(path=path, times=times)
        self.body = body if body is not None else random.Random(seed).randbytes(size)
        self.content_type = content_type

    def respond(self, exchange: Exchange) -> None:
        exchange.send(Response(200, self.body, self.content_type))


class Redirect(Fault):
    """``status`` (default 302) with ``Location: location``."""

    def __init__(
        self, location: str, status: int = 302, *, path: str | None = QUERY_PATH,
        times: int | None = 1,
    ) -> None:
        super().__init__(path=path, times=times)
        self.location = location
        self.status = status

    def respond(self, exchange: Exchange) -> None:
        exchange.send(
            Response(self.status, b"", headers={"Location": self.location + exchange.path})
        )


#: What :class:`RandomFaults` picks from: faults a client must recover from with exact data.
RECOVERABLE_KINDS = (
    "503", "500_html", "502_html", "429", "reset", "truncate", "truncated_json", "hangup", "slow",
)  # fmt: skip


class RandomFaults(Fault):
    """Each matching request fails with probability ``probability``, with a kind drawn from
    ``kinds`` (default :data:`RECOVERABLE_KINDS`), reproducibly from ``seed``. ``counts`` tallies
    what was served. A ``"429"`` carries ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset:
    1`` (a window of the server's limit spent elsewhere); ``"slow"`` sends the whole real answer
    in eight parts over ``slow_seconds``.
    """

    def __init__(
        self,
        probability: float,
        *,
        seed: int = 0,
        kinds: Sequence[str] = RECOVERABLE_KINDS,
        slow_seconds: float = 0.2,
        path: str | None = QUERY_PATH,
    ) -> None:
        super().__init__(path=path, times=None)
        unknown = sorted(set(kinds) - set(RECOVERABLE_KINDS))
        if unknown or not kinds:
            raise ValueError(f"kinds must be taken from {RECOVERABLE_KINDS}, got {unknown}")
        if not 0 <= probability <= 1:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        self.probability = probability
        self.kinds = tuple(kinds)
        self.slow_seconds = slow_seconds
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._chosen: dict[int, tuple[str, float]] = {}  # id(exchange) -> (kind, cut)
        self._lock = threading.Lock()

    def matches(self, exchange: Exchange) -> bool:
        # Called under the server's lock, in request order: the draws are reproducible.
        if not super().matches(exchange) or self._random.random() >= self.probability:
            return False
        kind = self._random.choice(self.kinds)
        with self._lock:
            self._chosen[id(exchange)] = (kind, self._random.uniform(0.1, 0.9))
            self.counts[kind] += 1
        return True

    def respond(self, exchange: Exchange) -> None:
        with self._lock:
            kind, cut = self._chosen.pop(id(exchange))
        fault: Fault
        if kind == "503":
            exchange.send(error_response(503, "Service Unavailable"))
            return
        if kind in ("500_html", "502_html"):
            status = int(kind[:3])
            page = f"<html><head><title>{status} Server Error</title></head><body></body></html>"
            exchange.send(Response(status, page.encode(), "text/html"))
            return
        if kind == "429":
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
            exchange.send(error_response(429, "Too many requests", headers))
            return
        if kind == "slow":
            response = exchange.real_response()
            body = response.body  # uncompressed: more bytes to dribble
            headers = dict(response.headers)
            headers.update({"Content-Type": response.content_type,
                            "Content-Length": str(len(body))})
            exchange.write_head(response.status, headers)
            step = max(1, -(-len(body) // 8))
            for start in range(0, len(body), step):
                exchange.write(body[start : start + step])
                if not _sleep_while_running(exchange, self.slow_seconds / 8):
                    exchange.close_connection()
                    return
            return
        if kind == "reset":
            fault = ResetMidBody(cut)
        elif kind == "truncate":
            fault = Truncate(cut)
        elif kind == "truncated_json":
            fault = TruncatedJSON(cut)
        else:
            fault = Hangup()
        fault.respond(exchange)


class AbsurdReset(Fault):
    """A spent rate-limit window whose ``x-ratelimit-reset`` no window can mean.

    ``status=429``: the limit hit, with ``{"errors": [...]}``; ``status=200``: the real answer
    with ``x-ratelimit-remaining: 0``. ``reset`` is sent as it is (default: three years, in
    seconds; an epoch far ahead is another form). ``period`` is ``x-ratelimit-period``, or None
    to leave it (and thereby the window's length) out. A client that believes the header parks
    every request of the process for as long as it says.
    """

    def __init__(
        self,
        *,
        status: int = 429,
        reset: str = "99999999",
        period: int | None = 10,
        limit: int = 100,
        path: str | None = QUERY_PATH,
        times: int | None = 1,
    ) -> None:
        super().__init__(path=path, times=times)
        if status not in (200, 429):
            raise ValueError(f"status must be 200 or 429, got {status}")
        self.status = status
        self.headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": reset,
            "x-ratelimit-name": "query",
        }
        if period is not None:
            self.headers["x-ratelimit-period"] = str(period)

    def respond(self, exchange: Exchange) -> None:
        if self.status == 429:
            exchange.send(error_response(429, "Too many requests", self.headers))
            return
        response = exchange.real_response()
        headers = {name: value for name, value in response.headers.items()
                   if not name.lower().startswith("x-ratelimit-")}
        headers.update(self.headers)
        exchange.send(Response(response.status, response.body, response.content_type, headers,
                               response.gzip_body))


class RetryAfter(Fault):
    """A ``status`` answer (503 by default) with ``Retry-After`` and no ``x-ratelimit-*``
    headers: ``seconds`` as delay-seconds, or with ``http_date=True`` as the HTTP date that many
    seconds from now (RFC 9110 allows both)."""

    def __init__(
        self,
        seconds: float = 1.0,
        *,
        status: int = 503,
        http_date: bool = False,
        path: str | None = QUERY_PATH,
        times: int | None = 1,
    ) -> None:
        super().__init__(path=path, times=times)
        self.seconds = seconds
        self.status = status
        self.http_date = http_date

    def respond(self, exchange: Exchange) -> None:
        if self.http_date:
            value = email.utils.formatdate(time.time() + self.seconds, usegmt=True)
        else:
            value = str(round(self.seconds))
        exchange.send(error_response(self.status, "Service Unavailable", {"Retry-After": value}))


class QueryTimeout(Fault):
    """``Query timed out``: what Datadog answers a request it could not compute in time.

    ``max_subqueries=N``: every request carrying more than ``N`` sub-queries (top-level
    comma-separated parts of ``query``) times out — for ever, unless ``times`` (a count, or
    ``None`` for ever) says otherwise; smaller requests get their real answer. Without it: the
    next ``times`` requests (default 1), whatever they carry. ``min_seconds=S`` (with
    ``max_subqueries``): a request over a range ``to - from + 1`` of at least ``S`` seconds times
    out too, whatever it carries — what makes a client split a single sub-query in time.
    ``delay`` seconds pass first, as a real timeout takes its time.

    The answer: by default HTTP **200** with ``{"status": "error", "error": "Query timed out",
    …}``. Why: Datadog's Cluster Agent, which batches up to 35 sub-queries a request, logs
    ``API returned error: Query timed out`` for such batches, and the client library it used then
    (go-datadog-api) writes exactly that text only for a 2xx body whose ``status`` is
    ``"error"`` (other statuses read ``API error <status>: <body>``). ``status=`` another code
    (500, 504…) answers ``{"errors": ["Query timed out"]}`` with it instead, for the other forms
    a client should also take as a timeout. No ``x-ratelimit-*`` headers are sent.
    """

    MESSAGE = "Query timed out"

    def __init__(
        self,
        *,
        max_subqueries: int | None = None,
        min_seconds: int | None = None,
        status: int = 200,
        times: int | None = -1,
        delay: float = 0.0,
        path: str | None = QUERY_PATH,
    ) -> None:
        if max_subqueries is not None and max_subqueries < 0:
            raise ValueError(f"max_subqueries must not be negative, got {max_subqueries}")
        if min_seconds is not None and (max_subqueries is None or min_seconds < 1):
            raise ValueError("min_seconds must be positive and goes with max_subqueries")
        if times == -1:  # not given: the default depends on the mode
            times = None if max_subqueries is not None else 1
        super().__init__(path=path, times=times, delay=delay)
        self.max_subqueries = max_subqueries
        self.min_seconds = min_seconds
        self.status = status

    def matches(self, exchange: Exchange) -> bool:
        if not super().matches(exchange):
            return False
        if self.max_subqueries is None:
            return True
        if count_subqueries(exchange.params.get("query", "")) > self.max_subqueries:
            return True
        if self.min_seconds is None:
            return False
        try:
            span = int(exchange.params["to"]) - int(exchange.params["from"]) + 1
        except (KeyError, ValueError):
            return False  # the real answer says what is wrong with the parameters
        return span >= self.min_seconds

    def respond(self, exchange: Exchange) -> None:
        if self.status != 200:
            exchange.send(error_response(self.status, self.MESSAGE))
            return
        document = {
            "status": "error",
            "res_type": "time_series",
            "error": self.MESSAGE,
            "query": exchange.params.get("query", ""),
            "series": [],
            "message": "",
            "group_by": [],
        }
        exchange.send(Response(200, json_body(document)))

    def __repr__(self) -> str:
        return (
            f"QueryTimeout(max_subqueries={self.max_subqueries!r}, status={self.status}, "
            f"remaining={self.remaining!r})"
        )


class QueryTimedOut(QueryTimeout):
    """:class:`QueryTimeout` as the multi-query tests first spelled it: ``max_subqueries``
    positional and required, answered ``{"errors": ["Query timed out"]}`` with status 400 by
    default, in force until removed (``times=None``)."""

    def __init__(
        self,
        max_subqueries: int,
        *,
        min_seconds: int | None = None,
        status: int = 400,
        path: str | None = QUERY_PATH,
        times: int | None = None,
    ) -> None:
        super().__init__(
            max_subqueries=max_subqueries,
            min_seconds=min_seconds,
            status=status,
            times=times,
            path=path,
        )
