"""The clock of a follow stream: a Python callable behind the C library's ``now_fn``.

``DDStream(..., clock=...)`` replaces the system clock a follow stream reads to know which chunks
have settled (replays, tests and benchmarks that simulate an hour in seconds with a
:class:`ddstream.testing.FakeClock`). As with request gates (``_gate``), the C callback is made once
per process and finds the clock through a registry keyed by a number, so the C side holds no
Python object. The entry goes when the ``DDStream`` closes; a C stream that outlives it (handed to
Arrow) then reads the system clock, and a clock that raises is read as the system clock too (the
exception is logged): the worst a broken clock can do is make the stream follow real time.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ._lib import ffi

__all__ = ["ClockRegistration"]

logger = logging.getLogger("ddstream")

_entries: dict[int, Callable[[], float]] = {}
_entries_lock = threading.Lock()
_next_id = itertools.count(1)


def _system_ms() -> int:
    return time.time_ns() // 1_000_000


def _on_now(data: Any) -> int:
    with _entries_lock:
        clock = _entries.get(int(ffi.cast("uintptr_t", data)))
    if clock is None:
        return _system_ms()
    try:
        return int(float(clock()) * 1000.0)
    except Exception:
        logger.exception("the stream's clock raised: reading the system clock instead")
        return _system_ms()


def _on_now_error(exc_type: Any, exc: Any, tb: Any) -> int:  # pragma: no cover - see _on_now
    return _system_ms()


# Created once per process: the C library may call it for as long as any stream lives.
_now_callback = ffi.callback("int64_t(*)(void *)", _on_now, onerror=_on_now_error)


class ClockRegistration:
    """One clock attached to one native config, until :meth:`drop`."""

    __slots__ = ("_id",)

    def __init__(self, config_ptr: Any, clock: Callable[[], float]) -> None:
        if not callable(clock):
            raise TypeError(f"clock must be a callable giving epoch seconds, not "
                            f"{type(clock).__name__}")
        with _entries_lock:
            self._id = next(_next_id)
            _entries[self._id] = clock
        config_ptr.now_fn = _now_callback
        config_ptr.now_data = ffi.cast("void *", self._id)

    def drop(self) -> None:
        """Forget the clock: the C stream, if it still runs, reads the system clock."""
        with _entries_lock:
            _entries.pop(self._id, None)
