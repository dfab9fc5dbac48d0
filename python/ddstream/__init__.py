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

import importlib
import os
import re
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ._arrow import ArrowBatch
    from ._batch import Batch
    from ._config import ConfigOptions, DDStreamConfig, StreamOptions
    from ._explain import explain
    from ._gate import RequestGate
    from ._scalar import ScalarTable, scalar
    from ._stream import AnyBatch, DDStream


def _package_version() -> str:
    """The version the build wrote into ddstream_version.h, installed beside this file (it comes
    from meson.build, the one place the version is set). Read as text: no import cost."""
    path = os.path.join(os.path.dirname(__file__), "ddstream_version.h")
    try:
        with open(path, encoding="utf-8") as header:
            text = header.read()
    except OSError:
        return "0+unknown"  # a source checkout that was never built
    match = re.search(r'^#define DDSTREAM_VERSION_STRING "([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else "0+unknown"


__version__ = _package_version()

__all__ = [
    "AnyBatch",
    "ArrowBatch",
    "AuthError",
    "Batch",
    "CancelledError",
    "ConfigError",
    "ConfigOptions",
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
    "ScalarTable",
    "ServerError",
    "StreamOptions",
    "__version__",
    "explain",
    "library_version",
    "scalar",
]

# Loaded on first use (PEP 562), so that `import ddstream` and `ddstream --help` load neither
# numpy, cffi nor the C library: name -> the module defining it. Type checkers read the imports
# above instead.
_LAZY = {
    "AnyBatch": "._stream",
    "ArrowBatch": "._arrow",
    "Batch": "._batch",
    "ConfigOptions": "._config",
    "DDStream": "._stream",
    "DDStreamConfig": "._config",
    "explain": "._explain",
    "RequestGate": "._gate",
    "ScalarTable": "._scalar",
    "scalar": "._scalar",
    "StreamOptions": "._config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ddstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def library_version() -> str:
    """The version of the loaded C library ``libddstream`` (e.g. ``"0.1.0"``)."""
    from . import _lib

    return str(_lib.ffi.string(_lib.lib.ddstream_version()).decode("ascii", "replace"))
