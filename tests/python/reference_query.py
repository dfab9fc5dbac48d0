"""What FakeDatadog should answer for the query language, computed without any of its code.

Why: ``test_fake_query_language.py`` checks every query shape the fake understands against "the
truth". This module is that truth, written from the documented contracts alone — the data in the
docstring of ``ddstream/testing/_data.py`` (gauges via ``reference.expected_buckets``, which was
written the same way; distributions here), and the semantics in the docstring of
``ddstream/testing/_query_eval.py``. It parses nothing: each test composes the expected value by
hand from these pieces (a term, an operator, a function), so a parser or evaluator bug in the
fake cannot hide behind the same bug here. Plain loops and numpy, different techniques from the
fake's (per-bucket Python lists, ``fractions``), so a shared mistake is unlikely.

A *series set* is ``{tag tuple: float64 array}`` on one bucket grid (``()`` when ungrouped).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from reference import bucket_starts, expected_buckets, host_tags

__all__ = [
    "across",
    "apply",
    "binary",
    "distribution",
    "fill",
    "gauge",
    "gauge_count",
    "negate",
    "scalar",
    "top",
]

Values = npt.NDArray[np.float64]
SeriesSet = dict[tuple[str, ...], Values]

_DAY = 86400
_WEEK = 7 * _DAY


def gauge(
    metric: str,
    filters: Mapping[str, str] | None,
    by: Sequence[str] | None,
    space: str,
    method: str,
    start: int,
    end: int,
    interval: int,
    hosts: int = 3,
) -> SeriesSet:
    """``space:metric{filters} by {by}.rollup(method, interval)`` on the buckets of
    ``[start, end)`` (``start`` a multiple of ``interval``)."""
    found = expected_buckets(metric, filters, by, space, method, start, end, interval, hosts)
    return {key: values for key, (_, values) in found.items()}


def _groups(
    filters: Mapping[str, str] | None, by: Sequence[str] | None, hosts: int
) -> dict[tuple[str, ...], list[int]]:
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in range(hosts):
        tags = host_tags(i)
        if all(tags.get(key) == value for key, value in (filters or {}).items()):
            key = tuple(f"{name}:{tags.get(name, 'N/A')}" for name in (by or ()))
            groups.setdefault(key, []).append(i)
    return groups


def _has_point(metric: str, t: int, k: int, i: int) -> bool:
    if metric.startswith("nodata."):
        return False
    if 5 * 3600 <= t % _DAY < 5 * 3600 + 600:
        return False
    if 3 * _DAY + 12 * 3600 <= t % _WEEK < 3 * _DAY + 18 * 3600:
        return False
    return (k + i) % 53 != 0


def distribution(
    metric: str,
    filters: Mapping[str, str] | None,
    by: Sequence[str] | None,
    statistic: str,
    start: int,
    end: int,
    interval: int,
    percentile: Fraction | None = None,
    hosts: int = 3,
    raw_interval: int = 10,
) -> SeriesSet:
    """A distribution metric: every raw point of host ``i`` at ``k`` holds ``m = 1 + (k+i) % 3``
    values ``v, v+1, …, v+m-1``; per bucket and group the pooled values give ``statistic``
    (avg, sum, min, max, count, or ``percentile`` by nearest rank)."""
    starts = bucket_starts(start, end, interval)
    base = zlib.crc32(metric.encode("utf-8")) % 1000
    result: SeriesSet = {}
    for key, members in sorted(_groups(filters, by, hosts).items()):
        pools: list[list[int]] = [[] for _ in starts]  # values in half units
        for slot, bucket in enumerate(starts.tolist()):
            for t in range(bucket + (-bucket) % raw_interval, bucket + interval, raw_interval):
                k = t // raw_interval
                for i in members:
                    if _has_point(metric, t, k, i):
                        half = 2 * base + k % 97 + 20 * i
                        pools[slot].extend(half + 2 * j for j in range(1 + (k + i) % 3))
        values = np.full(len(starts), np.nan)
        for slot, pool in enumerate(pools):
            if not pool:
                continue
            if statistic == "count":
                values[slot] = len(pool)
            elif statistic == "sum":
                values[slot] = sum(pool) / 2
            elif statistic == "avg":
                values[slot] = sum(pool) / (2 * len(pool))  # int / int: correctly rounded
            elif statistic == "min":
                values[slot] = min(pool) / 2
            elif statistic == "max":
                values[slot] = max(pool) / 2
            else:
                assert percentile is not None
                rank = max(1, math.ceil(percentile * len(pool) / 100))
                values[slot] = sorted(pool)[rank - 1] / 2
        result[key] = values
    return result


def gauge_count(
    metric: str,
    filters: Mapping[str, str] | None,
    by: Sequence[str] | None,
    method: str,
    start: int,
    end: int,
    interval: int,
    hosts: int = 3,
    raw_interval: int = 10,
) -> SeriesSet:
    """``count:metric{filters} by {by}.rollup(method, interval)`` of a gauge: at each raw
    timestamp the number of the group's hosts with a point, then the time rollup."""
    starts = bucket_starts(start, end, interval)
    result: SeriesSet = {}
    for key, members in sorted(_groups(filters, by, hosts).items()):
        values = np.full(len(starts), np.nan)
        for slot, bucket in enumerate(starts.tolist()):
            counts = []
            for t in range(bucket + (-bucket) % raw_interval, bucket + interval, raw_interval):
                n = sum(_has_point(metric, t, t // raw_interval, i) for i in members)
                if n:
                    counts.append(n)
            if counts:
                values[slot] = {
                    "avg": lambda: sum(counts) / len(counts),  # noqa: B023 - called at once
                    "sum": lambda: sum(counts),  # noqa: B023
                    "min": lambda: min(counts),  # noqa: B023
                    "max": lambda: max(counts),  # noqa: B023
                    "count": lambda: len(counts),  # noqa: B023
                }[method]()
        result[key] = values
    return result


def across(series: SeriesSet, nonzero: bool) -> SeriesSet:
    """``count_not_null`` / ``count_nonzero``: one series counting the series with a value (not
    zero) at each bucket."""
    if not series:
        return {}
    length = len(next(iter(series.values())))
    counts = [
        float(sum(1 for v in series.values()
                  if not math.isnan(v[j]) and (not nonzero or v[j] != 0)))
        for j in range(length)
    ]  # fmt: skip
    return {(): np.array(counts)}


def _finite(values: Values) -> Values:
    out = np.array(values, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b != 0 else math.nan,
}


def _elementwise(op: str, a: Values, b: Values) -> Values:
    fn = _OPS[op]
    out = np.full(len(a), np.nan)
    for j, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        if not (math.isnan(x) or math.isnan(y)):
            out[j] = fn(x, y)
    return _finite(out)


def binary(op: str, left: SeriesSet, right: SeriesSet) -> SeriesSet:
    """``left op right``: joined on tag sets; an ungrouped side applies to every group."""
    if list(left) == [()] and list(right) != [()]:
        return {key: _elementwise(op, left[()], v) for key, v in right.items()}
    if list(right) == [()] and list(left) != [()]:
        return {key: _elementwise(op, v, right[()]) for key, v in left.items()}
    return {key: _elementwise(op, left[key], right[key]) for key in left if key in right}


def scalar(op: str, series: SeriesSet, number: float, number_first: bool = False) -> SeriesSet:
    """``series op number`` (or ``number op series``)."""
    out: SeriesSet = {}
    for key, values in series.items():
        constant = np.full(len(values), number)
        pair = (constant, values) if number_first else (values, constant)
        out[key] = _elementwise(op, *pair)
    return out


def negate(series: SeriesSet) -> SeriesSet:
    return {key: -values for key, values in series.items()}


def apply(series: SeriesSet, fn: Callable[[list[float]], list[float]]) -> SeriesSet:
    """A per-series function given as plain Python over the list of values (NaN = empty)."""
    return {key: _finite(np.array(fn(values.tolist()), dtype=np.float64))
            for key, values in series.items()}  # fmt: skip


def fill(series: SeriesSet, method: str, limit: int, interval: int) -> SeriesSet:
    """``.fill(method, limit)`` on a term's buckets: interior gaps of at most ``limit`` s."""
    out: SeriesSet = {}
    for key, values in series.items():
        v = values.tolist()
        filled = list(v)
        known = [j for j, x in enumerate(v) if not math.isnan(x)]
        for a, b in zip(known, known[1:]):
            if b - a < 2 or (b - a) * interval > limit:
                continue
            for j in range(a + 1, b):
                if method == "zero":
                    filled[j] = 0.0
                elif method == "last":
                    filled[j] = v[a]
                else:
                    filled[j] = v[a] + (v[b] - v[a]) * (j - a) / (b - a)
        out[key] = np.array(filled, dtype=np.float64)
    return out


def top(series: SeriesSet, limit: int, ranking: str, direction: str, interval: int) -> SeriesSet:
    """``top(series, limit, ranking, direction)``; ties keep the tag-set order."""
    scores: list[tuple[float, tuple[str, ...]]] = []
    for key in sorted(series):
        valid = [x for x in series[key].tolist() if not math.isnan(x)]
        if not valid:
            continue
        scores.append((_score(valid, ranking, interval), key))
    scores.sort(key=lambda item: -item[0] if direction == "desc" else item[0])
    return {key: series[key] for _, key in scores[:limit]}


def _score(valid: list[float], ranking: str, interval: int) -> float:
    if ranking == "mean":
        return math.fsum(valid) / len(valid)
    if ranking in ("min", "max"):
        return min(valid) if ranking == "min" else max(valid)
    if ranking == "sum":
        return math.fsum(valid)
    if ranking == "last":
        return valid[-1]
    if ranking == "area":
        return math.fsum(valid) * interval
    return math.sqrt(math.fsum(x * x for x in valid))  # l2norm
