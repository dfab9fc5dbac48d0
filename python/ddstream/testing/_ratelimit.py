"""FakeDatadog's rate limiter: fixed windows, the ``x-ratelimit-*`` headers and the 429.

Datadog counts query requests per organisation in fixed windows and says where the client stands
on every answer (lower-case ``x-ratelimit-limit``, ``-period``, ``-remaining``, ``-reset``,
``-name``; shared/DATADOG.md). :class:`RateWindows` keeps that count for one server; the rest of
the server only asks it for the headers of an answer and whether the request may go through.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["HEADER_CASES", "UNLIMITED_RATE", "RateWindows", "check_rate_limit", "format_seconds"]

#: ``rate_limit=None`` still sends headers, with a budget no test or benchmark can exhaust (and
#: large enough that a client pacing itself on ``remaining / reset`` is not slowed down).
UNLIMITED_RATE = (10_000_000, 3600.0)

#: How header names may be spelt (``FakeDatadog(rate_limit_header_case=...)``).
HEADER_CASES: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "title": lambda name: "-".join(part.capitalize() for part in name.split("-")),
    "upper": str.upper,
}


def format_seconds(seconds: float) -> str:
    """A period as Datadog writes it: ``10``, or ``2.5`` when not whole."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def check_rate_limit(value: tuple[int, float] | None) -> tuple[int, float] | None:
    """``(requests, period seconds)`` normalised, or a ValueError naming what is wrong."""
    if value is None:
        return None
    limit, period = value
    if limit < 0 or period <= 0:
        raise ValueError(f"rate_limit must be (requests >= 0, period > 0 seconds), got {value!r}")
    return int(limit), float(period)


class RateWindows:
    """Fixed windows of ``limit`` requests per ``period`` seconds, counted from :meth:`restart`.

    Thread-safe: the server's handler threads count through it concurrently.
    """

    def __init__(self, limit: tuple[int, float] | None) -> None:
        self._lock = threading.Lock()
        self._limit = check_rate_limit(limit)
        self._epoch = time.monotonic()
        self._window = 0
        self._count = 0

    @property
    def limit(self) -> tuple[int, float] | None:
        """``(requests, period seconds)``, ``None`` for unlimited."""
        return self._limit

    def restart(self, limit: tuple[int, float] | None = None, *, keep: bool = True) -> None:
        """Start a new first window now, with ``limit`` (or the current one when ``keep``)."""
        checked = self._limit if keep else check_rate_limit(limit)
        with self._lock:
            self._limit = checked
            self._epoch = time.monotonic()
            self._window = 0
            self._count = 0

    def window_of(self, when: float) -> int:
        """The index of the window containing ``when`` (a ``time.monotonic()`` value)."""
        _, period = self._limit or UNLIMITED_RATE
        with self._lock:
            return int((when - self._epoch) // period)

    def headers(
        self, *, consume: bool, reset_epoch: bool = False, header_case: str = "lower"
    ) -> tuple[dict[str, str], bool]:
        """The x-ratelimit-* headers of an answer; count one request if ``consume``.

        Returns ``(headers, allowed)``; ``allowed`` is False when the window is spent.
        ``reset_epoch`` writes ``x-ratelimit-reset`` as an epoch timestamp rather than seconds
        to go; ``header_case`` is a key of :data:`HEADER_CASES`.
        """
        with self._lock:
            limited = self._limit is not None
            limit, period = self._limit or UNLIMITED_RATE
            elapsed = time.monotonic() - self._epoch
            window = int(elapsed // period)
            if window != self._window:
                self._window = window
                self._count = 0
            allowed = True
            if consume:
                if limited and self._count >= limit:
                    allowed = False
                else:
                    self._count += 1
            remaining = max(0, limit - self._count)
            reset = period - (elapsed - window * period)
        reset_s = max(1, math.ceil(reset))
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-period": format_seconds(period),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(math.ceil(time.time() + reset) if reset_epoch else reset_s),
            "x-ratelimit-name": "query",
        }
        case = HEADER_CASES[header_case]
        return {case(name): value for name, value in headers.items()}, allowed
