"""ddstream.testing: a fake Datadog to test against — no account, no network, no credentials.

:class:`FakeDatadog` is a real HTTP server on 127.0.0.1 that answers Datadog's metrics query API
(``/api/v1/query``, ``/api/v1/validate``) with deterministic data, and can be told to misbehave
(errors, HTML pages, rate limits, latency, resets, truncation, slow bodies, garbage, gzip bombs,
redirects, ``Query timed out``, URIs too long, HTTPS with a self-signed certificate: see
:mod:`ddstream.testing._faults`, and custom :class:`Fault` subclasses)::

    from ddstream.testing import FakeDatadog

    with FakeDatadog() as dd:
        ...  # point a client at dd.url with any non-empty keys
        print(dd.requests[-1].status)

It understands Datadog's metric query language — arithmetic, functions, ``.rollup()``,
``.as_count()``, ``.fill()``, distributions and percentiles, many sub-queries per request
(:mod:`ddstream.testing._query`, :mod:`ddstream.testing._query_eval`). The data are documented
in :mod:`ddstream.testing._data` precisely enough to be recomputed independently;
:meth:`FakeDatadog.answer` and :meth:`Dataset.rollup` give the server's own values.

This subpackage imports nothing from the rest of ``ddstream`` (only the standard library and
numpy), so it works without the compiled library: ``python -m ddstream.testing`` runs a server.
"""

from __future__ import annotations

from ._buckets import (
    AUTO_INTERVALS,
    AUTO_MAX_POINTS,
    COARSENING_LADDER,
    MAX_POINTS,
    auto_interval,
    bucket_grid,
    capped_interval,
)
from ._clock import FakeClock
from ._data import BLACKOUTS, HOST_GAP_PERIOD, RAW_PERIOD, Dataset, metric_base
from ._exchange import QUERY_PATH, VALIDATE_PATH, CannedResponse, Exchange, Fault, RequestRecord
from ._faults import (
    RECOVERABLE_KINDS,
    AbsurdReset,
    Garbage,
    GzipBomb,
    Hangup,
    Mutate,
    QueryTimeout,
    RandomFaults,
    Redirect,
    ResetMidBody,
    RetryAfter,
    SlowBody,
    Truncate,
    TruncatedJSON,
    WideAnswer,
)
from ._http import Response
from ._query import QueryError, SubQuery, count_subqueries, parse_query, split_top_level
from ._ratelimit import UNLIMITED_RATE
from ._server import FakeDatadog

__all__ = [
    "AUTO_INTERVALS",
    "AUTO_MAX_POINTS",
    "BLACKOUTS",
    "COARSENING_LADDER",
    "HOST_GAP_PERIOD",
    "MAX_POINTS",
    "QUERY_PATH",
    "RAW_PERIOD",
    "RECOVERABLE_KINDS",
    "UNLIMITED_RATE",
    "VALIDATE_PATH",
    "AbsurdReset",
    "CannedResponse",
    "Dataset",
    "Exchange",
    "FakeClock",
    "FakeDatadog",
    "Fault",
    "Garbage",
    "GzipBomb",
    "Hangup",
    "Mutate",
    "QueryError",
    "QueryTimeout",
    "RandomFaults",
    "Redirect",
    "RequestRecord",
    "ResetMidBody",
    "Response",
    "RetryAfter",
    "SlowBody",
    "SubQuery",
    "Truncate",
    "TruncatedJSON",
    "WideAnswer",
    "auto_interval",
    "bucket_grid",
    "capped_interval",
    "count_subqueries",
    "metric_base",
    "parse_query",
    "split_top_level",
]
