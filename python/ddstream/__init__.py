"""ddstream: stream Datadog metric timeseries over long time ranges, in chunks.

A query, a time range and a granularity become a sequence of batches, one per chunk of the range,
each a dict of parallel numpy arrays (``timestamps``, ``avg``, ``min``, ``max``, ``sum``)::

    import ddstream as dd

    cfg = dd.DDStreamConfig(query="avg:system.cpu.user{*}", range_start=t0, range_end=t1)
    with dd.DDStream(cfg) as stream:
        for batch in stream:
            print(len(batch["timestamps"]), "points")

The work happens in the C library ``libddstream`` (shipped inside this package): HTTP with
retries and rate limiting, parsing, and prefetching on a background thread, without the GIL.
"""

from __future__ import annotations

from . import _lib
from ._arrow import ArrowBatch
from ._config import DDStreamConfig
from ._gate import RequestGate
from ._stream import Batch, DDStream
from .errors import (
    AuthError,
    CancelledError,
    ConfigError,
    DDStreamError,
    ForkedStreamError,
    InternalError,
    NetworkError,
    ProtocolError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)

__version__ = "0.1.0"

__all__ = [
    "ArrowBatch",
    "AuthError",
    "Batch",
    "CancelledError",
    "ConfigError",
    "DDStream",
    "DDStreamConfig",
    "DDStreamError",
    "ForkedStreamError",
    "InternalError",
    "NetworkError",
    "ProtocolError",
    "QueryError",
    "RateLimitError",
    "RequestGate",
    "RequestTimeoutError",
    "ServerError",
    "__version__",
    "library_version",
]


def library_version() -> str:
    """The version of the loaded C library ``libddstream`` (e.g. ``"0.1.0"``)."""
    return str(_lib.ffi.string(_lib.lib.ddstream_version()).decode("ascii", "replace"))
