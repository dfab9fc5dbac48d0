"""The bucket grid of Datadog's query API: where buckets start, how many, and which interval.

Pure arithmetic shared by the fake server (``_server``), the reference implementation in the
tests and our users' own checks: a client's results can be compared with these numbers without
running a server (shared/DATADOG.md has the observations they reproduce).
"""

from __future__ import annotations

__all__ = [
    "AUTO_INTERVALS",
    "AUTO_MAX_POINTS",
    "COARSENING_LADDER",
    "MAX_POINTS",
    "auto_interval",
    "bucket_grid",
    "capped_interval",
]

#: Datadog's cap on points per series (shared/DATADOG.md).
MAX_POINTS = 1500
#: Without a rollup interval: the first of these giving at most AUTO_MAX_POINTS buckets, else the
#: last (1 h → 20 s, 4 h → 1 min, 1 d → 5 min, 2 d → 10 min, 1 w → 1 h, 1 month → 4 h).
AUTO_INTERVALS = (20, 60, 300, 600, 3600, 14400)
AUTO_MAX_POINTS = 300
#: Coarsening over the point cap picks the smallest of these (then whole multiples of a day) that
#: is at least the interval asked for and gives at most ``max_points`` buckets.
COARSENING_LADDER = (
    1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800,
    3600, 7200, 10800, 14400, 21600, 43200, 86400,
)  # fmt: skip

_DAY = 86400


def bucket_grid(from_ts: int, to_ts: int, interval: int) -> tuple[int, int]:
    """``(first bucket start, number of buckets)``: first boundary at or after ``from_ts``, last
    bucket the one containing ``to_ts`` (inclusive). ``(first, 0)`` when no boundary fits."""
    first = -(-from_ts // interval) * interval
    last = (to_ts // interval) * interval
    return first, (last - first) // interval + 1 if last >= first else 0


def auto_interval(from_ts: int, to_ts: int) -> int:
    """The interval Datadog picks when the query has no rollup interval."""
    for interval in AUTO_INTERVALS:
        if bucket_grid(from_ts, to_ts, interval)[1] <= AUTO_MAX_POINTS:
            return interval
    return AUTO_INTERVALS[-1]


def capped_interval(from_ts: int, to_ts: int, interval: int, max_points: int = MAX_POINTS) -> int:
    """``interval``, or the coarser one the server silently uses when it would exceed the cap."""
    if bucket_grid(from_ts, to_ts, interval)[1] <= max_points:
        return interval
    for candidate in COARSENING_LADDER:
        if candidate >= interval and bucket_grid(from_ts, to_ts, candidate)[1] <= max_points:
            return candidate
    days = max(2, -(-interval // _DAY), (to_ts - from_ts) // (max(1, max_points) * _DAY))
    while bucket_grid(from_ts, to_ts, days * _DAY)[1] > max_points:
        days += 1
    return days * _DAY
