"""``FakeClock``: a wall clock a test moves by hand, shared by a FakeDatadog and the client.

Follow mode waits for chunks to settle, which takes real minutes; a test (or a benchmark, or a
replay) simulates an hour in seconds by giving the fake server (``FakeDatadog(clock=...)``, which
serves no point at or after its clock's now) and the stream (``DDStream(..., clock=...)``) the
same clock and advancing it. Listeners (held weakly, so a stream can be collected) are told after
every change, which is how a stream waiting for the next chunk re-reads the clock at once instead
of polling it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["FakeClock"]


class FakeClock:
    """Epoch seconds that only move when told: ``clock()`` reads it, :meth:`advance` moves it."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], Any]] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def now(self) -> float:
        """The clock's time, epoch seconds."""
        return self()

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds``, tell the listeners, return the new now."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds})")
        with self._lock:
            self._now += seconds
            now = self._now
        self._notify()
        return now

    def set(self, when: float) -> None:
        """Move the clock forward to ``when`` epoch seconds."""
        with self._lock:
            if when < self._now:
                raise ValueError(f"a clock does not go back: {when} < {self._now}")
            self._now = float(when)
        self._notify()

    def add_listener(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` after every change; a bound method is held weakly."""
        entry: Callable[[], Any] = (
            _weak_method(callback) if hasattr(callback, "__self__") else callback
        )
        with self._lock:
            self._listeners.append(entry)

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    def __repr__(self) -> str:
        return f"FakeClock({self():.3f})"


def _weak_method(method: Callable[[], Any]) -> Callable[[], Any]:
    """``method`` without keeping its object alive: a no-op once the object is gone."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call
