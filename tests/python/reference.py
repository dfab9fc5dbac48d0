"""Expected rollups of FakeDatadog's data, computed independently of the server.

Why a second implementation: the boundary-exactness tests compare what a client streamed with
"the truth". If the truth came from the server's own code, a bug there (say, an off-by-one in the
bucket grid) would be invisible. This module re-implements the contract written in the docstring of
``ddstream/testing/_data.py`` from that text alone — it imports nothing from ``ddstream`` — with a
different technique (dense per-host arrays, ``np.add.at``/``np.fmin.at`` scatter instead of the
server's sorted-run ``reduceat``).

The contract, restated:

* hosts ``i = 0 … hosts-1`` tagged ``host:h{i:02d}`` and ``env:prod`` (even ``i``) /
  ``env:staging`` (odd);
* a raw point at every ``t`` multiple of ``raw_interval``; ``k = t // raw_interval``;
  ``value = crc32(metric) % 1000 + (k % 97) * 0.5 + 10 * i``;
* no point when ``(k + i) % 53 == 0``, when ``05:00:00 <= t mod 1 day < 05:10:00``, or when
  ``t mod 1 week`` is in ``[3 days 12 h, 3 days 18 h)``; metrics named ``nodata.…`` have no points;
* space aggregation over a group's hosts at each timestamp, then the time rollup over the bucket
  ``[b, b + granularity)``; each value is the float64 nearest to the exact result.

Usage::

    from reference import expected_buckets
    got = expected_buckets("system.cpu", None, ["host"], "avg", "max", t0, t1, 60)
    timestamps, values = got[("host:h01",)]
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["bucket_starts", "expected_buckets", "host_tags"]

Buckets = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]

_DAY = 86400
_WEEK = 7 * _DAY
_FLOAT_EXACT = 2**53


def host_tags(index: int) -> dict[str, str]:
    """The tags of host ``index``."""
    return {"host": f"h{index:02d}", "env": ("prod", "staging")[index % 2]}


def bucket_starts(start: int, end: int, granularity: int) -> npt.NDArray[np.int64]:
    """Bucket starts ``b`` with ``b % granularity == 0`` and ``start <= b < end``."""
    first = -(-start // granularity) * granularity  # ceil, in exact integer arithmetic
    return np.arange(first, end, granularity, dtype=np.int64)


def expected_buckets(
    metric: str,
    scope_filters: Mapping[str, str] | None,
    by: Sequence[str] | None,
    space: str,
    method: str,
    start: int,
    end: int,
    granularity: int,
    hosts: int = 3,
    raw_interval: int = 10,
) -> dict[tuple[str, ...], Buckets]:
    """FakeDatadog's ``space:metric{scope_filters} by {by}.rollup(method, granularity)``.

    Buckets are those whose start ``b`` is a multiple of ``granularity`` with ``start <= b < end``
    (``end`` exclusive, like a chunk; the server's ``to`` is inclusive, so the matching request is
    ``from=start, to=end - 1``). The result maps each group's tag tuple — ``("host:h01",)`` in the
    order of ``by``, ``()`` without ``by`` — to ``(timestamps, values)``: int64 epoch seconds and
    float64 with NaN for empty buckets. Groups are those of the hosts matching every filter, even
    when all their buckets are empty (the server omits such series). No matching host: ``{}``.
    """
    if space not in ("avg", "sum", "min", "max"):
        raise ValueError(f"space aggregator {space!r}")
    if method not in ("avg", "sum", "min", "max", "count"):
        raise ValueError(f"rollup method {method!r}")
    starts = bucket_starts(start, end, granularity)
    filters = dict(scope_filters or {})
    selected = [
        i
        for i in range(hosts)
        if all(host_tags(i).get(key) == value for key, value in filters.items())
    ]
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in selected:
        key = tuple(f"{name}:{host_tags(i).get(name, 'N/A')}" for name in (by or ()))
        groups.setdefault(key, []).append(i)

    # Every raw timestamp that falls in some bucket.
    if len(starts):
        lo, hi = int(starts[0]), int(starts[-1]) + granularity
    else:
        lo = hi = 0
    k = np.arange(-(-lo // raw_interval), -(-hi // raw_interval), dtype=np.int64)
    t = k * raw_interval
    in_blackout = ((t % _DAY) >= 5 * 3600) & ((t % _DAY) < 5 * 3600 + 600)
    in_blackout |= ((t % _WEEK) >= 3 * _DAY + 12 * 3600) & ((t % _WEEK) < 3 * _DAY + 18 * 3600)
    base = zlib.crc32(metric.encode("utf-8")) % 1000
    no_data = metric.startswith("nodata.")
    slot = (t - lo) // granularity  # bucket index of each raw timestamp

    result: dict[tuple[str, ...], Buckets] = {}
    for key, members in sorted(groups.items()):
        # Space aggregation, in half units (2 * value is an integer), one host at a time.
        total = np.zeros(len(t), dtype=np.int64)
        count = np.zeros(len(t), dtype=np.int64)
        low = np.full(len(t), np.iinfo(np.int64).max, dtype=np.int64)
        high = np.full(len(t), np.iinfo(np.int64).min, dtype=np.int64)
        for i in members:
            has = ~in_blackout & ((k + i) % 53 != 0) & (not no_data)
            half = 2 * base + k % 97 + 20 * i
            total += np.where(has, half, 0)
            count += has
            low = np.where(has, np.minimum(low, half), low)
            high = np.where(has, np.maximum(high, half), high)
        ok = count > 0
        where = slot[ok]
        values = np.full(len(starts), np.nan, dtype=np.float64)
        points = np.bincount(where, minlength=len(starts))[: len(starts)]
        filled = points > 0

        if method == "count":
            values[filled] = points[filled]
        elif method in ("min", "max"):
            if space == "avg":
                per_t = total[ok] / (2.0 * count[ok])
            else:
                per_t = {"sum": total, "min": low, "max": high}[space][ok] / 2.0
            acc = np.full(len(starts), np.inf if method == "min" else -np.inf)
            (np.fmin if method == "min" else np.fmax).at(acc, where, per_t)
            values[filled] = acc[filled]
        else:
            # Exact: with L = lcm(1..len(members)), S/n = (S * L/n) / L with an integer numerator.
            if space == "avg":
                scale = math.lcm(*range(1, len(members) + 1))
                numerators = total[ok] * (scale // count[ok])
            else:
                scale = 1
                numerators = {"sum": total, "min": low, "max": high}[space][ok]
            peak = int(np.abs(numerators).max()) if len(numerators) else 0
            assert peak * max(1, int(points.max(initial=0))) < 2**62, "reference int64 overflow"
            sums = np.zeros(len(starts), dtype=np.int64)
            np.add.at(sums, where, numerators)
            divisors = 2 * scale * (points if method == "avg" else np.ones_like(points))
            values[filled] = _divide(sums[filled], divisors[filled])
        result[key] = (starts.copy(), values)
    return result


def _divide(
    numerators: npt.NDArray[np.int64], divisors: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Correctly rounded quotients of integers (float division is, when both are exact)."""
    if len(numerators) == 0:
        return np.zeros(0, dtype=np.float64)
    if int(np.abs(numerators).max()) < _FLOAT_EXACT and int(divisors.max()) < _FLOAT_EXACT:
        exact_n = numerators.astype(np.float64)
        quotient: npt.NDArray[np.float64] = exact_n / divisors.astype(np.float64)
        return quotient
    return np.array([int(a) / int(b) for a, b in zip(numerators.tolist(), divisors.tolist())])
