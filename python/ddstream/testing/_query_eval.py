"""What a parsed query means: its series on the answer's bucket grid, computed from ``_data``.

Semantics, and where the fake simplifies what Datadog does (Datadog's documentation is the
model; what it leaves open is decided here, once, so that tests can compute the same thing):

Interval
    One grid per sub-query: the largest ``.rollup(…, seconds)`` interval among its metric terms,
    else the automatic one, then coarsened over the point cap (``_buckets``). Every term of an
    expression is rolled up on that grid (Datadog may answer terms with their own intervals).
Metric terms
    Hosts: those matching every scope filter; ``!key:value`` must not match, ``*`` in a value
    matches any text (``host:h0*``), a host without the key matches no ``key:…``; the keyword
    form (``AND``, ``OR``, ``NOT``, ``key [NOT] IN (…)``) combines such tests. Gauges:
    ``_data``'s space aggregation (``count:``: hosts reporting) then time rollup; without a rollup
    method a term is averaged, or summed under ``.as_count()``. ``.as_count()``, ``.as_rate()``
    and ``.weighted()`` change nothing else (they do not change gauges on Datadog either).
    ``pNN:`` on a gauge is a 400, as on Datadog.
    Distributions (the server's ``distribution_metrics``): ``_data``'s pooled values; the rollup
    method is ignored (``.rollup(min)`` answers the avg, as Datadog does).
``.fill(method, limit)``
    Applied to the term's buckets (Datadog interpolates raw points before aggregating): a run of
    empty buckets between two values at buckets ``a`` and ``b`` is filled when
    ``(b - a) * interval <= limit``; empty buckets at the edges are never filled. ``zero``: 0;
    ``last``: ``v[a]``; ``linear``: ``v[a] + (v[b] - v[a]) * (j - a) / (b - a)`` (in that order
    of float operations); ``null``: nothing.
Arithmetic
    ``+ - * /`` and unary minus, bucket by bucket in float64. A bucket that is empty on either
    side is empty (Datadog aligns gauges the same way); ``x / 0`` and any non-finite result are
    empty. Two grouped operands are joined on equal tag sets (groups on one side only are
    dropped; different ``by`` keys therefore match nothing, where Datadog would match on common
    tags); an ungrouped operand applies to every group of the other; numbers apply to all.
Functions (after space and time aggregation, on the request's window only)
    ``abs``, ``log2``, ``log10`` (non-positive input: empty); ``cumsum`` (running sum of the
    values so far in the window, empty buckets stay empty); ``per_second`` = ``v / interval``,
    ``per_minute`` = ``v * 60 / interval``, ``per_hour`` = ``v * 3600 / interval`` (the rate of a
    count per bucket); ``diff`` = ``v[j] - v[j-1]`` (empty when either is, so the window's first
    bucket is empty); ``monotonic_diff``: ``diff`` where it is not negative; ``default_zero``:
    empty buckets become 0 in series that have a value; ``timeshift(q, s)``: ``q``'s value ``s``
    seconds away from each bucket (``hour_before``/``day_before``/``week_before``: ``s`` = -1 h,
    -1 d, -1 w); ``clamp_min``/``clamp_max``: bounded; ``cutoff_min``/``cutoff_max``: values
    below/above emptied; ``top(q, N, by, dir)`` (and ``top5_mean``…): the ``N`` series with the
    highest (``desc``) or lowest (``asc``) ``by`` of their values in the window — ``mean``,
    ``min``, ``max``, ``sum``, ``last`` (value), ``l2norm``/``norm`` (``sqrt(sum v²)``),
    ``area`` (``sum v * interval``) — ties in tag-set order; series without a value never rank.
Series
    A series without any value in the window is not answered (as for plain queries).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._buckets import auto_interval, bucket_grid, capped_interval
from ._data import Dataset
from ._query import (
    Binary,
    BoolScope,
    Call,
    Node,
    Number,
    QueryError,
    Scope,
    SubQuery,
    TagTest,
    Term,
    Unary,
)

__all__ = ["Grid", "evaluate", "grid_for"]

FloatArray = npt.NDArray[np.float64]
Series = dict[tuple[str, ...], FloatArray]
_SHIFTS = {"hour_before": -3600, "day_before": -86400, "week_before": -7 * 86400}


@dataclass(frozen=True)
class Grid:
    """The answer's buckets: ``count`` starts ``first + j * interval``."""

    first: int
    interval: int
    count: int


def grid_for(sub: SubQuery, from_ts: int, to_ts: int, max_points: int) -> Grid:
    """The bucket grid a sub-query is answered on (see the module docstring)."""
    explicit = [term.rollup_seconds for term in sub.terms if term.rollup_seconds]
    interval = max(explicit) if explicit else auto_interval(from_ts, to_ts)
    interval = capped_interval(from_ts, to_ts, interval, max_points)
    first, count = bucket_grid(from_ts, to_ts, interval)
    return Grid(first, interval, count)


def evaluate(
    sub: SubQuery,
    dataset: Dataset,
    distributions: Collection[str],
    grid: Grid,
    until: int | None = None,
) -> list[tuple[tuple[str, ...], FloatArray]]:
    """``(tag_set, values)`` of every answered series of ``sub``, tag sets sorted. ``until``: raw
    points at or after it do not exist yet (a server whose clock says so)."""
    if grid.count == 0:
        return []
    # log(0), x/0 and the like warn in numpy; their results become empty buckets (_clean).
    with np.errstate(all="ignore"):
        result = _Evaluator(dataset, distributions, grid, until).run(sub.expr, 0)
    if not isinstance(result, dict):  # pragma: no cover - the parser requires a metric
        raise QueryError(f"sub-query {sub.index} has no metric in it")
    return [(key, values) for key, values in sorted(result.items()) if not np.isnan(values).all()]


class _Evaluator:
    def __init__(
        self, dataset: Dataset, distributions: Collection[str], grid: Grid, until: int | None
    ) -> None:
        self.dataset = dataset
        self.distributions = distributions
        self.grid = grid
        self.until = until

    def run(self, node: Node, offset: int) -> Series | float:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, Term):
            return self.term(node, offset)
        if isinstance(node, Unary):
            operand = self.run(node.operand, offset)
            if isinstance(operand, float):
                return -operand
            return {key: -values for key, values in operand.items()}
        if isinstance(node, Binary):
            return self.binary(node.op, self.run(node.left, offset), self.run(node.right, offset))
        return self.call(node, offset)

    # -- metric terms ---------------------------------------------------------------------------

    def term(self, term: Term, offset: int) -> Series:
        grid = self.grid
        first = grid.first + offset
        distribution = term.metric in self.distributions
        if not distribution and term.percentile is not None:
            raise QueryError(
                f"'{term.space}:' needs a distribution metric, and {term.metric!r} is not one"
            )
        series: Series = {}
        for key, hosts in _groups(self.dataset, term).items():
            if distribution:
                statistic = "percentile" if term.percentile is not None else term.space
                values = self.dataset.distribution(
                    term.metric, hosts, statistic, first, grid.interval, grid.count,
                    term.percentile, self.until,
                )  # fmt: skip
            else:
                values = self.dataset.rollup(
                    term.metric, hosts, term.space, term.method, first, grid.interval, grid.count,
                    self.until,
                )  # fmt: skip
            if term.fill_method not in (None, "null"):
                values = _fill(values, term.fill_method or "", term.fill_seconds, grid.interval)
            series[key] = values
        return series

    # -- arithmetic -----------------------------------------------------------------------------

    def binary(self, op: str, left: Series | float, right: Series | float) -> Series | float:
        apply = _OPERATORS[op]
        if isinstance(left, float) and isinstance(right, float):
            return float(_clean(apply(np.array([left]), np.array([right])))[0])
        if isinstance(left, float) or isinstance(right, float):
            series, scalar = (right, left) if isinstance(left, float) else (left, right)
            assert isinstance(series, dict) and isinstance(scalar, float)
            if isinstance(left, float):
                return {key: _clean(apply(np.full_like(v, scalar), v)) for key, v in series.items()}
            return {key: _clean(apply(v, np.full_like(v, scalar))) for key, v in series.items()}
        if list(left) == [()] and list(right) != [()]:
            return {key: _clean(apply(left[()], values)) for key, values in right.items()}
        if list(right) == [()] and list(left) != [()]:
            return {key: _clean(apply(values, right[()])) for key, values in left.items()}
        return {key: _clean(apply(left[key], right[key])) for key in left if key in right}

    # -- functions ------------------------------------------------------------------------------

    def call(self, call: Call, offset: int) -> Series:
        shift = _SHIFTS.get(call.name)
        if call.name == "timeshift":
            shift = int(call.numbers[0])
        inner = self.run(call.series, offset + (shift or 0))
        if not isinstance(inner, dict):  # pragma: no cover - the parser requires a metric
            raise QueryError(f"{call.name}() needs a metric query")
        if shift is not None:
            return inner
        if call.name == "top":
            return self.top(inner, int(call.numbers[0]), call.words[0], call.words[1])
        if call.name == "exclude_null":
            return {key: v for key, v in inner.items() if not any(t.endswith(":N/A") for t in key)}
        if call.name in ("count_nonzero", "count_not_null"):
            if not inner:
                return {}
            stacked = np.vstack(list(inner.values()))
            counted = ~np.isnan(stacked)
            if call.name == "count_nonzero":
                counted &= stacked != 0
            return {(): counted.sum(axis=0).astype(np.float64)}
        change = self.transform(call)
        return {key: _clean(change(values)) for key, values in inner.items()}

    def transform(self, call: Call) -> Callable[[FloatArray], FloatArray]:
        interval = float(self.grid.interval)
        name = call.name
        number = call.numbers[0] if call.numbers else 0.0
        simple: dict[str, Callable[[FloatArray], FloatArray]] = {
            "abs": np.abs,
            "log2": np.log2,
            "log10": np.log10,
            "cumsum": _cumsum,
            "per_second": lambda v: v / interval,
            "per_minute": lambda v: v * 60.0 / interval,
            "per_hour": lambda v: v * 3600.0 / interval,
            "diff": _diff,
            "derivative": lambda v: _diff(v) / interval,
            "monotonic_diff": lambda v: _where(_diff(v), lambda d: d < 0),
            "default_zero": lambda v: v if np.isnan(v).all() else np.where(np.isnan(v), 0.0, v),
            "clamp_min": lambda v: np.maximum(v, number),
            "clamp_max": lambda v: np.minimum(v, number),
            "cutoff_min": lambda v: _where(v, lambda x: x < number),
            "cutoff_max": lambda v: _where(v, lambda x: x > number),
        }
        return simple[name]

    def top(self, series: Series, limit: int, ranking: str, direction: str) -> Series:
        scored: list[tuple[float, tuple[str, ...]]] = []
        for key, values in sorted(series.items()):
            valid = values[~np.isnan(values)]
            if len(valid) == 0:
                continue
            scored.append((_score(valid, ranking, self.grid.interval), key))
        # Stable sorts: ties keep the tag-set order.
        scored.sort(key=lambda item: item[0], reverse=direction == "desc")
        return {key: series[key] for _, key in scored[:limit]}


_OPERATORS: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
}


def _groups(dataset: Dataset, term: Term) -> dict[tuple[str, ...], list[int]]:
    """The hosts the term's scope selects, grouped by its ``by`` tags (``key:N/A`` when a host
    has no such tag), keys sorted."""
    tests = [TagTest(key.lstrip("!"), (value,), key.startswith("!")) for key, value in term.filters]
    scope = term.scope if term.scope is not None else BoolScope("AND", tuple(tests))
    grouped: dict[tuple[str, ...], list[int]] = {}
    for host in range(dataset.hosts):
        tags = dataset.host_tags(host)
        if _selects(scope, tags):
            group = tuple(f"{name}:{tags.get(name, 'N/A')}" for name in term.by)
            grouped.setdefault(group, []).append(host)
    return dict(sorted(grouped.items()))


def _selects(scope: Scope, tags: dict[str, str]) -> bool:
    """Whether a host with ``tags`` is in ``scope``: a tag test matches when the host has the
    key and its value matches one of the patterns (``*``: any text), negated or not."""
    if isinstance(scope, TagTest):
        value = tags.get(scope.key)
        found = value is not None and any(fnmatch.fnmatchcase(value, p) for p in scope.values)
        return found != scope.negated
    if scope.op == "NOT":
        return not _selects(scope.items[0], tags)
    if scope.op == "AND":
        return all(_selects(item, tags) for item in scope.items)
    return any(_selects(item, tags) for item in scope.items)


def _clean(values: FloatArray) -> FloatArray:
    """Non-finite results (x/0, log of 0, overflow) are empty buckets."""
    out = np.array(values, dtype=np.float64)
    out[~np.isfinite(out)] = np.nan
    return out


def _where(values: FloatArray, drop: Callable[[FloatArray], npt.NDArray[np.bool_]]) -> FloatArray:
    out = values.copy()
    out[drop(values)] = np.nan
    return out


def _cumsum(values: FloatArray) -> FloatArray:
    totals = np.cumsum(np.where(np.isnan(values), 0.0, values))
    totals[np.isnan(values)] = np.nan
    return totals


def _diff(values: FloatArray) -> FloatArray:
    out = np.full_like(values, np.nan)
    out[1:] = values[1:] - values[:-1]
    return out


def _fill(values: FloatArray, method: str, limit: int, interval: int) -> FloatArray:
    out = values.copy()
    valid = np.flatnonzero(~np.isnan(values))
    for a, b in zip(valid[:-1].tolist(), valid[1:].tolist()):
        if b - a < 2 or (b - a) * interval > limit:
            continue
        if method == "zero":
            out[a + 1 : b] = 0.0
        elif method == "last":
            out[a + 1 : b] = values[a]
        else:  # linear
            va, vb = float(values[a]), float(values[b])
            for j in range(a + 1, b):
                out[j] = va + (vb - va) * (j - a) / (b - a)
    return out


def _score(valid: FloatArray, ranking: str, interval: int) -> float:
    """What ``top()`` ranks a series by (``valid``: its values, empty buckets left out)."""
    if ranking == "mean":
        return float(np.mean(valid))
    if ranking == "min":
        return float(np.min(valid))
    if ranking == "max":
        return float(np.max(valid))
    if ranking == "sum":
        return float(np.sum(valid))
    if ranking == "last":
        return float(valid[-1])
    if ranking == "area":
        return float(np.sum(valid)) * interval
    return math.sqrt(float(np.sum(valid * valid)))  # l2norm, norm
