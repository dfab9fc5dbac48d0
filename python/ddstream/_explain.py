"""``ddstream.explain``: what a config's queries compile to, and the requests of one chunk.

The library compiles the queries and packs their sub-queries exactly as a stream would
(``ddstream_explain``), without any network I/O and without keys, and answers in JSON; this is
that JSON as a dict::

    {"queries": [{"query": "avg:m{*}", "grouped": False,
                  "statistics": ["avg", "min", "max", "sum"], "reason": None,
                  "subqueries": ["avg:m{*}.rollup(avg,60)", ...]}],
     "requests_per_chunk": 1,
     "requests": [{"subqueries": [[0, "avg"], ...], "uri_bytes": 230}],
     "chunks": 1440}

A stream with formulas (or ``api="v2"``) reads Datadog's v2 endpoint and is described by its
named queries, formulas and the one POST each chunk sends, with the exact body of the first
chunk's (``"api"`` is only in a v2 description)::

    {"api": "v2",
     "queries": [{"name": "a", "query": "avg:m{*} by {host}", "grouped": True}, ...],
     "formulas": ["a / b * 100"], "interval": 60, "requests_per_chunk": 1,
     "requests": [{"method": "POST", "path": "/api/v2/query/timeseries",
                   "chunk": [1700000000, 1700090000], "body": "{\"data\": ...}"}],
     "chunks": 1440}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._config import DDStreamConfig
from ._lib import ffi, lib
from ._native import error_from, new_error
from .errors import STATUS_E_INVALID_ARGUMENT, STATUS_OK

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._config import ConfigOptions

__all__ = ["explain"]

# Big enough for a few queries at once; a longer answer says its size and is asked again.
_FIRST_CAP = 8192


def explain(cfg: DDStreamConfig | None = None, **options: Unpack[ConfigOptions]) -> dict[str, Any]:
    """The compiled queries of ``cfg`` (or of a config made from keyword ``options``) and the
    requests each chunk of its plan would send, as a dict (see the module's docstring and
    docs/queries.md). No network I/O, and no keys needed.

    Raises:
        ConfigError: the config is invalid (a query's or formula's error points at the
            offending character).
    """
    if cfg is None:
        cfg = DDStreamConfig(**options)
    elif not isinstance(cfg, DDStreamConfig):
        raise TypeError(f"explain() takes a DDStreamConfig, not {type(cfg).__name__}")
    elif options:
        raise TypeError("explain() takes a DDStreamConfig or keyword options, not both")
    native = cfg.to_native()
    native.ptr.log_level = 0  # no stream, so no log queue: the exception says what went wrong
    needed = ffi.new("size_t *")
    err = new_error()
    cap = _FIRST_CAP
    while True:
        buf = ffi.new("char[]", cap)
        status = int(lib.ddstream_explain(native.ptr, buf, cap, needed, err))
        if status == STATUS_E_INVALID_ARGUMENT and int(needed[0]) > cap:
            cap = int(needed[0])  # the plan cannot change between two calls: one retry
            continue
        if status != STATUS_OK:
            raise error_from(status, err)
        answer: dict[str, Any] = json.loads(ffi.string(buf).decode("utf-8"))
        return answer
