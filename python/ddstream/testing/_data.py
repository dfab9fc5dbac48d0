"""The deterministic dataset behind :class:`FakeDatadog`, and how queries aggregate it.

Everything here is a pure function of its arguments, so that a test can compute the expected answer
on its own (``tests/python/reference.py`` re-implements this docstring without importing this
module) and compare it with what a client streamed, bit for bit. The contract:

Hosts
    ``hosts`` hosts (default 3), index ``i`` in ``0 … hosts-1``. Host ``i`` carries exactly two
    tags: ``host:h{i:02d}`` (``h00``, ``h01``, …, ``h100`` …) and ``env:prod`` when ``i`` is even,
    ``env:staging`` when odd.

Raw points
    Every metric exists on every host. Raw timestamps are the integer epoch seconds ``t`` that are
    multiples of ``raw_interval`` (default 10). With ``k = t // raw_interval`` (floor division) and
    ``base = zlib.crc32(metric.encode("utf-8")) % 1000``, the raw value is::

        value(metric, i, t) = base + (k % 97) * 0.5 + i * 10.0

    It is a multiple of 0.5, so every sum of such values is exact in float64. Equivalently, in
    *half units*: ``2 * value = 2 * base + (k % 97) + 20 * i``, an integer.

Gaps (a raw point does not exist)
    * host gap: when ``(k + i) % 53 == 0``;
    * daily blackout, every host: ``(t // 3600) % 24 == 5 and t % 3600 < 600``
      (05:00:00-05:09:59 UTC every day);
    * weekly blackout, every host: ``(t // 86400) % 7 == 3 and 43200 <= t % 86400 < 64800``
      (12:00:00-17:59:59 UTC every Sunday).

    So empty buckets exist at every granularity that fits inside a blackout (all divisors of 600 s
    for the daily one; up to 6 h aligned, e.g. 3600, 7200, 10800, 14400, 21600, for the weekly one).

Metrics named ``nodata.…`` have no raw points at all. No other name is special.

Distribution metrics (those a :class:`FakeDatadog` is told are distributions)
    The same raw points (same gaps), but each carries a *set* of values instead of one: with
    ``m = 1 + (k + i) % 3`` it holds the ``m`` values ``value, value + 1, …, value + m - 1``
    (``value`` as above). A query aggregates, per bucket and group, the pooled values of every
    raw point of the group's hosts in the bucket — space and time at once, as Datadog does for
    distributions, so a ``.rollup()`` method has no effect, only its interval:

    * ``avg`` / ``sum`` / ``min`` / ``max`` / ``count``: of the pooled values (``count`` counts
      values, not points);
    * ``pNN`` (``p50``, ``p99.9``, …): the nearest-rank percentile, the value of rank
      ``ceil(NN / 100 * n)`` (1-based, at least 1) among the ``n`` pooled values sorted
      ascending — exact, where Datadog's sketches answer within about 1 %.

Query semantics (one sub-query; the server decides the bucket grid, see ``_server``)
    1. Hosts: those whose tags match every ``key:value`` filter of the scope (``*``: all).
    2. Groups: one per distinct tuple of the ``by`` tags' values, in the order the keys were
       written (``("env:prod", "host:h00")``); a host without such a tag key gets ``key:N/A``.
       Ungrouped: one group, key ``()``, holding every selected host (none if none matched).
    3. Space aggregation, at each raw timestamp, over the group's hosts that have a point there:
       ``avg`` / ``sum`` / ``min`` / ``max`` of their values, ``count`` of those hosts. No host has
       a point → no value.
    4. Time rollup into buckets ``[b, b + interval)``: ``avg`` / ``sum`` / ``min`` / ``max`` /
       ``count`` of the space-aggregated values whose timestamp falls in the bucket. None → empty
       (NaN here, ``null`` in JSON). ``count`` counts timestamps, not hosts.

Rounding: every bucket value is the float64 nearest to the exact mathematical result (round half to
even). Why: a space average is a fraction, and a plain floating-point sum of fractions depends on
the order of additions; "correctly rounded" is the only rule an independent implementation can
reproduce exactly. Here it is achieved by summing integer numerators (``space avg = S/n`` becomes
``S * (L/n) / L`` with ``L`` the least common multiple of the host counts) and dividing once.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

__all__ = [
    "BLACKOUTS",
    "DISTRIBUTION_SIZES",
    "HOST_GAP_PERIOD",
    "RAW_PERIOD",
    "Dataset",
    "metric_base",
]

#: A host misses the raw point ``k`` when ``(k + host_index) % HOST_GAP_PERIOD == 0``.
HOST_GAP_PERIOD = 53
#: The raw value's ramp repeats every ``RAW_PERIOD`` raw points.
RAW_PERIOD = 97
#: Blackouts as ``(period, phase_start, phase_end)``: no host has a point at ``t`` when
#: ``phase_start <= t % period < phase_end``. 05:00-05:10 UTC daily; Sundays 12:00-18:00 UTC
#: (epoch day 3, 1970-01-04, was a Sunday; the week period is 7 x 86400).
BLACKOUTS = (
    (86400, 5 * 3600, 5 * 3600 + 600),
    (7 * 86400, 3 * 86400 + 12 * 3600, 3 * 86400 + 18 * 3600),
)
#: A distribution's raw point holds ``1 + (k + host_index) % DISTRIBUTION_SIZES`` values.
DISTRIBUTION_SIZES = 3
#: Raw points handled per block of buckets: bounds memory for very long ranges.
_BLOCK_RAW_POINTS = 1 << 20
_EXACT = 1 << 53  # integers below this are exact in float64

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def metric_base(metric: str) -> int:
    """The per-metric offset ``crc32(metric) % 1000``: different metrics, different levels."""
    return zlib.crc32(metric.encode("utf-8")) % 1000


class Dataset:
    """The fake organisation's metrics: ``hosts`` hosts, one raw point per ``raw_interval`` s."""

    def __init__(self, hosts: int = 3, raw_interval: int = 10) -> None:
        if hosts < 1:
            raise ValueError(f"hosts must be at least 1, got {hosts}")
        if raw_interval < 1:
            raise ValueError(
                f"raw_interval must be a positive number of seconds, got {raw_interval}"
            )
        self.hosts = hosts
        self.raw_interval = raw_interval

    def __repr__(self) -> str:
        return f"Dataset(hosts={self.hosts}, raw_interval={self.raw_interval})"

    # -- tags -------------------------------------------------------------------------------

    def host_tags(self, index: int) -> dict[str, str]:
        """The tags of host ``index`` as ``{key: value}``."""
        return {"host": f"h{index:02d}", "env": "prod" if index % 2 == 0 else "staging"}

    def select(self, filters: Iterable[tuple[str, str]]) -> list[int]:
        """Indices of the hosts matching every ``(key, value)`` filter."""
        wanted = list(filters)
        return [
            index
            for index in range(self.hosts)
            if all(self.host_tags(index).get(key) == value for key, value in wanted)
        ]

    def groups(
        self, filters: Iterable[tuple[str, str]], by: Sequence[str]
    ) -> dict[tuple[str, ...], list[int]]:
        """Selected hosts grouped by their ``by`` tags, keys sorted (``{(): hosts}`` if no by)."""
        selected = self.select(filters)
        if not selected:
            return {}
        if not by:
            return {(): selected}
        grouped: dict[tuple[str, ...], list[int]] = {}
        for index in selected:
            tags = self.host_tags(index)
            key = tuple(f"{name}:{tags.get(name, 'N/A')}" for name in by)
            grouped.setdefault(key, []).append(index)
        return dict(sorted(grouped.items()))

    # -- raw points -------------------------------------------------------------------------

    def raw_points(
        self, metric: str, host: int, start: int, end: int
    ) -> tuple[IntArray, FloatArray]:
        """Raw ``(timestamps, values)`` of one host with ``start <= t < end``, gaps removed."""
        k = self._raw_indices(start, end)
        present = self._present(metric, k, np.array([host], dtype=np.int64))[0]
        halves = self._halves(metric, k, np.array([host], dtype=np.int64))[0]
        return (k * self.raw_interval)[present], halves[present] / 2.0

    def _raw_indices(self, start: int, end: int) -> IntArray:
        """``k`` for every raw timestamp ``k * raw_interval`` in ``[start, end)``."""
        r = self.raw_interval
        return np.arange(-(-start // r), -(-end // r), dtype=np.int64)

    def _present(self, metric: str, k: IntArray, hosts: IntArray) -> npt.NDArray[np.bool_]:
        """Matrix ``[host, k]``: does the raw point exist?"""
        if metric.startswith("nodata."):
            return np.zeros((len(hosts), len(k)), dtype=np.bool_)
        t = k * self.raw_interval
        alive = np.ones(len(k), dtype=np.bool_)
        for period, low, high in BLACKOUTS:
            phase = t % period
            alive &= (phase < low) | (phase >= high)
        present: npt.NDArray[np.bool_] = (k[None, :] + hosts[:, None]) % HOST_GAP_PERIOD != 0
        return present & alive[None, :]

    def _halves(self, metric: str, k: IntArray, hosts: IntArray) -> IntArray:
        """Matrix ``[host, k]`` of raw values in half units (``2 * value``, an integer)."""
        ramp = (k % RAW_PERIOD)[None, :]
        return ramp + (2 * metric_base(metric) + 20 * hosts)[:, None]

    # -- distributions ----------------------------------------------------------------------

    def distribution(
        self,
        metric: str,
        hosts: Sequence[int],
        statistic: str,
        first: int,
        interval: int,
        count: int,
        percentile: Fraction | None = None,
        until: int | None = None,
    ) -> FloatArray:
        """A distribution metric's ``count`` buckets ``first + j * interval`` (NaN where empty):
        ``statistic`` is avg, sum, min, max, count or, with ``percentile``, a percentile.
        ``until``: raw points at or after it do not exist yet (a server whose clock says so)."""
        out = np.full(count, np.nan, dtype=np.float64)
        if count <= 0 or not hosts:
            return out
        end = first + count * interval
        k = self._raw_indices(first, end if until is None else min(end, until))
        host_array = np.asarray(hosts, dtype=np.int64)
        present = self._present(metric, k, host_array)
        halves = self._halves(metric, k, host_array)
        sizes = 1 + (k[None, :] + host_array[:, None]) % DISTRIBUTION_SIZES
        bucket = np.broadcast_to((k * self.raw_interval - first) // interval, present.shape)
        lows, sizes, slots = halves[present], sizes[present], bucket[present]
        if len(slots) == 0:
            return out
        n = np.bincount(slots, weights=sizes, minlength=count).astype(np.int64)
        filled = n > 0
        if statistic == "count":
            out[filled] = n[filled]
        elif statistic in ("avg", "sum"):
            # Half units: the values of a point sum to m * low + 2 * (0 + 1 + ... + m - 1).
            totals = np.zeros(count, dtype=np.int64)
            np.add.at(totals, slots, sizes * lows + sizes * (sizes - 1))
            divisor = 2 * (n if statistic == "avg" else np.ones_like(n))
            out[filled] = totals[filled].astype(np.float64) / divisor[filled].astype(np.float64)
        elif statistic == "min":
            low = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(low, slots, lows)
            out[filled] = low[filled] / 2.0
        elif statistic == "max":
            high = np.full(count, np.iinfo(np.int64).min, dtype=np.int64)
            np.maximum.at(high, slots, lows + 2 * (sizes - 1))
            out[filled] = high[filled] / 2.0
        elif statistic == "percentile" and percentile is not None:
            # Every value, then sorted by (bucket, value): each bucket is a sorted run.
            owner = np.repeat(slots, sizes)
            offsets = np.arange(len(owner)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            values = np.repeat(lows, sizes) + 2 * offsets
            order = np.lexsort((values, owner))
            values = values[order]
            starts = np.concatenate(([0], np.cumsum(n)[:-1]))
            rank = [max(1, math.ceil(percentile * int(size) / 100)) for size in n[filled]]
            out[filled] = values[starts[filled] + np.array(rank, dtype=np.int64) - 1] / 2.0
        else:
            raise ValueError(f"unknown distribution statistic {statistic!r}")
        return out

    # -- aggregation ------------------------------------------------------------------------

    def rollup(
        self,
        metric: str,
        hosts: Sequence[int],
        space: str,
        method: str,
        first: int,
        interval: int,
        count: int,
        until: int | None = None,
    ) -> FloatArray:
        """Values of the ``count`` buckets ``first + j * interval`` (NaN where empty).

        ``until``: raw points at or after it do not exist yet (a server whose clock says so).

        The work is split into blocks of buckets so that a year at a coarse interval does not
        materialise millions of raw points at once.
        """
        if space not in ("avg", "sum", "min", "max", "count"):
            raise ValueError(f"unknown space aggregator {space!r}")
        if method not in ("avg", "sum", "min", "max", "count"):
            raise ValueError(f"unknown rollup method {method!r}")
        out = np.full(count, np.nan, dtype=np.float64)
        if count <= 0 or not hosts:
            return out
        per_bucket = interval // self.raw_interval + 1
        block = max(1, _BLOCK_RAW_POINTS // (per_bucket * len(hosts)))
        host_array = np.asarray(hosts, dtype=np.int64)
        for lo in range(0, count, block):
            hi = min(count, lo + block)
            out[lo:hi] = self._rollup_block(
                metric, host_array, space, method, first + lo * interval, interval, hi - lo, until
            )
        return out

    def _rollup_block(
        self,
        metric: str,
        hosts: IntArray,
        space: str,
        method: str,
        first: int,
        interval: int,
        count: int,
        until: int | None = None,
    ) -> FloatArray:
        out = np.full(count, np.nan, dtype=np.float64)
        end = first + count * interval
        k = self._raw_indices(first, end if until is None else min(end, until))
        present = self._present(metric, k, hosts)
        halves = self._halves(metric, k, hosts)
        n = present.sum(axis=0, dtype=np.int64)
        valid = n > 0
        if not valid.any():
            return out

        # Space aggregation as an exact fraction numerator / denominator (half units).
        numerator: IntArray
        if space in ("sum", "avg"):
            numerator = np.where(present, halves, 0).sum(axis=0, dtype=np.int64)
        elif space == "min":
            numerator = np.where(present, halves, np.iinfo(np.int64).max).min(axis=0)
        elif space == "count":
            numerator = 2 * n  # hosts with a point, in half units
        else:
            numerator = np.where(present, halves, np.iinfo(np.int64).min).max(axis=0)
        denominator = n if space == "avg" else np.ones_like(n)
        numerator, denominator = numerator[valid], denominator[valid]
        t = k[valid] * self.raw_interval

        # Time rollup: the raw timestamps are sorted, so each bucket is a contiguous run.
        bucket = (t - first) // interval
        starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
        filled = bucket[starts]
        sizes = np.diff(np.append(starts, len(bucket)))

        if method == "count":
            out[filled] = sizes
        elif method in ("min", "max"):
            # Rounding is monotonic, so the min of correctly rounded values is the correctly
            # rounded min.
            values = numerator.astype(np.float64) / (2 * denominator).astype(np.float64)
            reduce = np.minimum if method == "min" else np.maximum
            out[filled] = reduce.reduceat(values, starts)
        else:
            common = math.lcm(*(int(d) for d in np.unique(denominator)))
            per_point = np.ones_like(sizes) if method == "sum" else sizes
            out[filled] = _exact_sums_divided(
                numerator, common // denominator, starts, sizes, 2 * common * per_point
            )
        return out


def _exact_sums_divided(
    numerator: IntArray, scale: IntArray, starts: IntArray, sizes: IntArray, divisor: IntArray
) -> FloatArray:
    """Per run ``sum(numerator * scale) / divisor``, correctly rounded.

    The sums are of integers, so they are exact while they fit in int64, and one float division
    of two exactly represented integers is correctly rounded (IEEE 754).
    """
    largest = int(np.abs(numerator).max()) * int(scale.max()) * int(sizes.max())
    if largest < _EXACT and int(divisor.max()) < _EXACT:
        totals = np.add.reduceat(numerator * scale, starts)
        result: FloatArray = totals.astype(np.float64) / divisor.astype(np.float64)
        return result
    # Beyond float64's exact integers (many hosts, huge buckets): Python integers never overflow
    # and ``int / int`` is correctly rounded at any size. Slow, but only for extreme set-ups.
    terms = [int(a) * int(b) for a, b in zip(numerator.tolist(), scale.tolist())]
    bounds = [*starts.tolist(), len(terms)]
    return np.array(
        [sum(terms[bounds[j] : bounds[j + 1]]) / int(divisor[j]) for j in range(len(starts))],
        dtype=np.float64,
    )
