"""Request gates: a hook every Datadog query request of a stream passes through.

libddstream paces its requests with a budget per process (the ``x-ratelimit-*`` headers of every
answer). Several processes or machines sharing one organisation's quota need more: each would
otherwise assume it has the whole window. A *request gate* is asked before every attempt at a
query (``before_request``) and told how it ended (``after_response``), so a coordinator shared
by all of them — :mod:`ddstream.dask`'s cluster-wide budget, say — can hand out the window.

The C library calls the gate on the stream's own fetcher threads, with the GIL taken by cffi.
The callbacks are created once per process and find the gate through a registry keyed by a
number (the C side holds no Python object): the library says when it is done with a stream's
gate (``request_gate_release``), and only then is its entry dropped, so a gate outlives every
call made to it even when the stream was handed to Arrow and closes long after its ``DDStream``.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
from typing import Any, Protocol, runtime_checkable

from ._lib import ffi
from .errors import DDStreamError

__all__ = ["RequestGate"]

logger = logging.getLogger("ddstream")

# The longest wait a gate may ask for in one answer (it is asked again afterwards).
_MAX_WAIT_MS = 3_600_000
_PHASE_BEFORE = 0
_PHASE_ANSWERED = 1


@runtime_checkable
class RequestGate(Protocol):
    """What a stream asks before each request and tells after it (``DDStream(..., request_gate=)``).

    Both methods are called on libddstream's threads, possibly at once for several requests:
    they must be thread-safe and quick. ``before_request`` returns how many seconds to wait
    before asking again (the stream waits, cancellably, then asks again), or ``0`` to send
    now; raising fails that request with :class:`~ddstream.RateLimitError` (the next call on the
    stream tries the same chunk again). ``after_response`` is told, once per request let
    through, the HTTP status (``0``: no answer — a network error, a timeout or a cancellation)
    and the answer's ``x-ratelimit-limit``, ``-remaining``, ``-reset`` (seconds from now) and
    ``-period`` (``None`` when absent).
    """

    def before_request(self) -> float: ...

    def after_response(self, status: int, limit: int | None, remaining: int | None,
                       reset_s: float | None, period_s: int | None) -> None: ...


class _Entry:
    __slots__ = ("error", "gate")

    def __init__(self, gate: RequestGate) -> None:
        self.gate = gate
        self.error: BaseException | None = None  # what before_request last raised


_entries: dict[int, _Entry] = {}
_entries_lock = threading.Lock()
_next_id = itertools.count(1)


def _after_fork_in_child() -> None:
    """A thread of the parent may have held the lock at fork(): the child's copy starts unlocked."""
    global _entries_lock
    _entries_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _entry(user_data: Any) -> _Entry | None:
    return _entries.get(int(ffi.cast("uintptr_t", user_data)))


def _optional(value: int) -> int | None:
    return None if value < 0 else int(value)


def _wait_ms(seconds: Any) -> int:
    wait = float(seconds)
    if math.isnan(wait):
        raise ValueError("before_request returned NaN")
    if wait <= 0:
        return 0
    return min(_MAX_WAIT_MS, max(1, math.ceil(wait * 1000)))


def _on_gate(user_data: Any, info: Any) -> int:
    entry = _entry(user_data)
    if entry is None:  # pragma: no cover - released only after the last call
        return 0
    if info.phase == _PHASE_BEFORE:
        try:
            return _wait_ms(entry.gate.before_request())
        except BaseException as exc:
            entry.error = exc
            # The type only: a message could carry anything, keys included.
            logger.warning("request gate %s.before_request raised %s: the request is refused",
                           type(entry.gate).__name__, type(exc).__name__)
            return -1
    status = int(info.http_status) if info.phase == _PHASE_ANSWERED else 0
    reset_ms = int(info.ratelimit_reset_ms)
    try:
        entry.gate.after_response(status, _optional(info.ratelimit_limit),
                                  _optional(info.ratelimit_remaining),
                                  None if reset_ms < 0 else reset_ms / 1000.0,
                                  _optional(info.ratelimit_period_s))
    except BaseException as exc:
        logger.warning("request gate %s.after_response raised %s (ignored)",
                       type(entry.gate).__name__, type(exc).__name__)
    return 0


def _on_gate_error(exc_type: Any, exc: Any, tb: Any) -> int:  # pragma: no cover - see _on_gate
    return -1


def _on_release(user_data: Any) -> None:
    with _entries_lock:
        _entries.pop(int(ffi.cast("uintptr_t", user_data)), None)


# Created once per process: the C library may call them until it releases the last stream.
_gate_callback = ffi.callback("ddstream_request_gate_fn", _on_gate, onerror=_on_gate_error)
_release_callback = ffi.callback("void(*)(void *)", _on_release)


class GateRegistration:
    """One gate attached to one native config; :meth:`drop` when the C side never took it."""

    __slots__ = ("_entry", "_id")

    def __init__(self, config_ptr: Any, gate: RequestGate) -> None:
        if not isinstance(gate, RequestGate):
            raise TypeError("request_gate must have before_request() and after_response() "
                            f"methods, not {type(gate).__name__}")
        self._entry = _Entry(gate)
        with _entries_lock:
            self._id = next(_next_id)
            _entries[self._id] = self._entry
        config_ptr.request_gate = _gate_callback
        config_ptr.request_gate_data = ffi.cast("void *", self._id)
        config_ptr.request_gate_release = _release_callback

    def drop(self) -> None:
        """Forget the gate: for calls that do not release it (a failed open, validate)."""
        with _entries_lock:
            _entries.pop(self._id, None)

    def explain(self, exc: DDStreamError) -> DDStreamError:
        """``exc`` with the exception the gate raised as its cause, if it refused the request."""
        # Not cleared: with prefetch, several chunks may be refused for one exception's reason,
        # and each of their errors is explained by the latest exception.
        error = self._entry.error
        if error is None or "request gate" not in exc.message:
            return exc
        explained = type(exc)(
            f"{exc.message} ({type(self._entry.gate).__name__}.before_request raised "
            f"{type(error).__name__})",
            status=exc.status, http_status=exc.http_status, chunk_start=exc.chunk_start,
            chunk_end=exc.chunk_end,
        )
        explained.__cause__ = error
        return explained


def live_gates() -> int:
    """How many gates the C library still holds (for tests: releases are not lost)."""
    with _entries_lock:
        return len(_entries)
