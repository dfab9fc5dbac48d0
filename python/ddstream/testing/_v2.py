"""Datadog's v2 query endpoints, as the fake answers them: the request body checked, each named
query and formula evaluated with the same language and data as v1, and the answer in v2's shape.

``POST /api/v2/query/timeseries`` (shared/DATADOG.md, "Query timeseries data (v2)"):

- ``from``/``to`` in milliseconds, ``to`` exclusive; a ``from`` before 2010 is the recorded
  ``400 Queries before 2010 are invalid`` (what a client sending seconds gets).
- ``interval`` in milliseconds (whole seconds here); every query is evaluated on the buckets
  ``[ceil(from / interval) * interval, to)``, coarsened over the point cap like v1 (and, like
  Datadog, without saying so: v2 answers have no interval field). A term's own
  ``.rollup(m, s)`` with a larger ``s`` wins, as in v1.
- Queries must be one metric term with modifiers; functions or arithmetic there are the recorded
  ``400 Functions are not supported in metrics data source field. Use the formulas payload.``
- A formula is evaluated by putting each named query, in parentheses, where its name stands, and
  evaluating the result as one v1 expression (same operators, functions, joins on tag sets).
  Without formulas, each query is its own formula; ``query_index`` is the formula's position.
- The answer: ``times`` are the buckets where at least one series has a value (empty buckets are
  omitted, as recorded); ``values[i]`` is aligned with them, ``null`` where series ``i`` has none.

``POST /api/v2/query/scalar``: the same queries, each with an ``aggregator`` (avg, min, max, sum,
last, count; l2norm and norm ``sqrt(sum v²)``, area ``sum v * interval``) applied over the
bucket values in the range; one value per group. An arithmetic formula is computed on those
values; one with functions on the buckets, then reduced. The answer's shape
follows Datadog's published schema (``columns``: one ``group`` column of tag lists, then one
``number`` column per formula); unlike the timeseries answer it was not checked against a
recording.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._buckets import capped_interval
from ._data import Dataset
from ._query import QueryError, parse_query
from ._query_eval import Grid, evaluate

__all__ = [
    "SCALAR_PATH",
    "TIMESERIES_PATH",
    "V2Error",
    "V2Request",
    "answer_scalar",
    "answer_timeseries",
    "parse_request",
]

TIMESERIES_PATH = "/api/v2/query/timeseries"
SCALAR_PATH = "/api/v2/query/scalar"

#: 2010-01-01T00:00:00Z in ms: Datadog refuses earlier starts (what seconds look like in ms).
_EPOCH_2010_MS = 1_262_304_000_000
_FUNCTIONS_MESSAGE = (
    "Functions are not supported in metrics data source field. Use the formulas payload."
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SCALAR_AGGREGATORS = ("avg", "min", "max", "sum", "last", "count", "l2norm", "norm", "area")


class V2Error(ValueError):
    """A request Datadog would refuse with 400; ``str(error)`` is the message of its body."""


@dataclass(frozen=True)
class V2Request:
    """A checked v2 request. ``queries``: (name, query, aggregator or None) in order."""

    kind: str  # "timeseries" or "scalar"
    from_ms: int
    to_ms: int
    interval_ms: int  # 0 for scalar
    queries: tuple[tuple[str, str, str | None], ...]
    formulas: tuple[str, ...]

    def expressions(self) -> list[str]:
        """One v1 expression per formula (each query alone when there are none)."""
        texts = {name: query for name, query, _ in self.queries}
        if not self.formulas:
            return [query for _, query, _ in self.queries]
        return [_substitute(formula, texts) for formula in self.formulas]


def _validation(message: str) -> V2Error:
    return V2Error(f"API input validation failed: {message}")


def _integer(attributes: dict[str, Any], name: str, *, required: bool = True) -> int:
    value = attributes.get(name)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _validation(f"Invalid type. Expected \"integer\" for '{name}'.")
    return value


def parse_request(body: bytes, kind: str) -> V2Request:
    """Check a request body as Datadog does (the recorded messages where there is one)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _validation("the body is not valid JSON") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise _validation("'data' is required")
    expected = f"{kind}_request"
    if data.get("type") != expected:
        raise _validation(f'Invalid type. Expected "{expected}".')
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise _validation("'attributes' is required")
    from_ms = _integer(attributes, "from")
    to_ms = _integer(attributes, "to")
    interval_ms = _integer(attributes, "interval", required=False) if kind == "timeseries" else 0
    if from_ms < _EPOCH_2010_MS:
        raise V2Error("Queries before 2010 are invalid")
    if to_ms <= from_ms:
        raise V2Error("'to' must be after 'from'")
    if kind == "timeseries" and (interval_ms <= 0 or interval_ms % 1000):
        raise _validation("'interval' must be a positive whole number of seconds in ms")
    raw_queries = attributes.get("queries")
    if not isinstance(raw_queries, list) or not raw_queries:
        raise _validation("'queries' must be a non-empty array")
    queries: list[tuple[str, str, str | None]] = []
    for item in raw_queries:
        if not isinstance(item, dict) or item.get("data_source") != "metrics":
            raise _validation('Invalid data_source. Expected "metrics".')
        name, query = item.get("name"), item.get("query")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise _validation(f"invalid query name {name!r}")
        if not isinstance(query, str):
            raise _validation(f"query {name!r} has no query string")
        if any(name == seen for seen, _, _ in queries):
            raise _validation(f"duplicate query name {name!r}")
        aggregator = item.get("aggregator")
        if kind == "scalar" and aggregator not in SCALAR_AGGREGATORS:
            raise _validation(f"unsupported aggregator {aggregator!r}")
        queries.append((name, query, aggregator if kind == "scalar" else None))
    formulas: list[str] = []
    raw_formulas = attributes.get("formulas") or []
    if not isinstance(raw_formulas, list):
        raise _validation("'formulas' must be an array")
    for item in raw_formulas:
        if not isinstance(item, dict) or not isinstance(item.get("formula"), str):
            raise _validation("a formula needs a 'formula' string")
        formulas.append(item["formula"])
    return V2Request(kind, from_ms, to_ms, interval_ms, tuple(queries), tuple(formulas))


def _substitute(formula: str, texts: dict[str, str]) -> str:
    """The formula with each query name replaced by ``(its query)``; quoted strings and function
    names kept. An unknown name is a 400."""
    out: list[str] = []
    i = 0
    while i < len(formula):
        char = formula[i]
        if char in "'\"":
            end = formula.find(char, i + 1)
            end = len(formula) if end < 0 else end + 1
            out.append(formula[i:end])
            i = end
            continue
        match = _NAME.match(formula, i)
        if match is None or (i > 0 and (formula[i - 1].isalnum() or formula[i - 1] in "._")):
            out.append(char)
            i += 1
            continue
        word = match.group(0)
        rest = formula[match.end() :].lstrip()
        if rest.startswith("("):
            out.append(word)  # a function
        elif word in texts:
            out.append(f"({texts[word]})")
        else:
            raise V2Error(f"Unknown query name '{word}' in formula '{formula}'")
        i = match.end()
    return "".join(out)


def _check_queries(request: V2Request) -> None:
    for name, query, _ in request.queries:
        try:
            subs = parse_query(query)
        except QueryError as error:
            raise V2Error(f"Error parsing query {name!r}: {error.detail}") from None
        if len(subs) != 1 or not subs[0].simple:
            raise V2Error(_FUNCTIONS_MESSAGE)


def _grid(request: V2Request, expression_seconds: int, max_points: int) -> Grid:
    """The buckets of ``[from, to)`` at the interval asked (or a term's larger rollup), capped."""
    from_s = -(-request.from_ms // 1000)
    to_s = -(-request.to_ms // 1000)  # exclusive
    interval = max(request.interval_ms // 1000 if request.interval_ms else 0, expression_seconds)
    if interval <= 0:  # scalar: one bucket per minute underneath (then aggregated)
        interval = 60
    interval = capped_interval(from_s, to_s - 1, interval, max_points)
    first = -(-from_s // interval) * interval
    count = max(0, -(-(to_s - first) // interval))
    return Grid(first, interval, count)


def _series(
    request: V2Request,
    dataset: Dataset,
    distributions: Collection[str],
    max_points: int,
    until: int | None,
) -> list[tuple[int, tuple[str, ...], np.ndarray, Grid]]:
    _check_queries(request)
    result: list[tuple[int, tuple[str, ...], np.ndarray, Grid]] = []
    for index, expression in enumerate(request.expressions()):
        try:
            sub = parse_query(expression)[0]
        except QueryError as error:
            raise V2Error(f"Error parsing formula {index}: {error.detail}") from None
        rollups = [term.rollup_seconds or 0 for term in sub.terms]
        grid = _grid(request, max(rollups, default=0), max_points)
        try:
            for tags, values in evaluate(sub, dataset, distributions, grid, until):
                result.append((index, tags, values, grid))
        except QueryError as error:
            raise V2Error(str(error)) from None
    return result


def answer_timeseries(
    request: V2Request,
    dataset: Dataset,
    distributions: Collection[str],
    max_points: int,
    until: int | None = None,
) -> dict[str, Any]:
    """The JSON document of a 200 timeseries answer (raises :class:`V2Error`). ``until``: raw
    points at or after it do not exist yet (as v1's answers, a server whose clock says so)."""
    series = _series(request, dataset, distributions, max_points, until)
    stamps: set[int] = set()
    for _, _, values, grid in series:
        filled = np.flatnonzero(~np.isnan(values))
        stamps.update(int(grid.first + j * grid.interval) for j in filled.tolist())
    times = sorted(stamps)
    rows: list[list[float | None]] = []
    for _, _, values, grid in series:
        row: list[float | None] = []
        for stamp in times:
            j, offset = divmod(stamp - grid.first, grid.interval)
            value = values[j] if offset == 0 and 0 <= j < len(values) else math.nan
            row.append(None if math.isnan(value) else float(value))
        rows.append(row)
    return {
        "data": {
            "id": "0",
            "type": "timeseries_response",
            "attributes": {
                "series": [
                    {"group_tags": list(tags), "query_index": index, "unit": None}
                    for index, tags, _, _ in series
                ],
                "times": [stamp * 1000 for stamp in times],
                "values": rows,
            },
        }
    }


def _aggregate(values: np.ndarray, aggregator: str, interval: int = 60) -> float | None:
    filled = values[~np.isnan(values)]
    if aggregator == "count":
        return float(filled.size)
    if filled.size == 0:
        return None
    if aggregator in ("l2norm", "norm"):
        return float(np.sqrt(np.sum(filled * filled)))
    if aggregator == "area":
        return float(filled.sum() * interval)
    if aggregator == "last":
        return float(filled[-1])
    if aggregator == "min":
        return float(filled.min())
    if aggregator == "max":
        return float(filled.max())
    if aggregator == "sum":
        return float(filled.sum())
    return float(filled.mean())


def _arithmetic(formula: str) -> ast.expr | None:
    """The formula's syntax tree when it is only names, numbers, ``+ - * /`` and unary minus
    (Python's grammar agrees with Datadog's there); ``None`` when it uses anything else."""
    try:
        tree = ast.parse(formula.strip(), mode="eval")
    except SyntaxError:
        return None
    allowed = (ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Add, ast.Sub, ast.Mult, ast.Div,
               ast.USub, ast.UAdd)
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                return None
        elif not isinstance(node, allowed):
            return None
    return tree.body


def _scalar_eval(node: ast.expr, values: dict[str, float | None]) -> float | None:
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, (int, float))  # _arithmetic let no other constant in
        return float(node.value)
    if isinstance(node, ast.Name):
        return values.get(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _scalar_eval(node.operand, values)
        if operand is None:
            return None
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.BinOp)
    left, right = _scalar_eval(node.left, values), _scalar_eval(node.right, values)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Add):
        result = left + right
    elif isinstance(node.op, ast.Sub):
        result = left - right
    elif isinstance(node.op, ast.Mult):
        result = left * right
    else:
        if right == 0:
            return None
        result = left / right
    return result if math.isfinite(result) else None


def _reduced(
    request: V2Request,
    dataset: Dataset,
    distributions: Collection[str],
    max_points: int,
    until: int | None,
) -> list[dict[tuple[str, ...], float | None]]:
    """Per query, its value per group, reduced with its own aggregator."""
    alone = V2Request(request.kind, request.from_ms, request.to_ms, request.interval_ms,
                      request.queries, ())
    per: list[dict[tuple[str, ...], float | None]] = [{} for _ in request.queries]
    for index, tags, values, grid in _series(alone, dataset, distributions, max_points, until):
        per[index][tags] = _aggregate(values, request.queries[index][2] or "avg", grid.interval)
    return per


def _formula_by_scalars(
    tree: ast.expr, request: V2Request, per: list[dict[tuple[str, ...], float | None]]
) -> dict[tuple[str, ...], float | None]:
    """An arithmetic formula over the queries' reduced values: grouped operands joined on equal
    tag sets (a group one of them lacks is dropped), an ungrouped one applied to every group."""
    names = [name for name, _, _ in request.queries]
    used = [i for i, name in enumerate(names)
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(tree))]
    grouped = [i for i in used if any(tags for tags in per[i])]
    if grouped:
        groups = set(per[grouped[0]])
        for i in grouped[1:]:
            groups &= set(per[i])
    else:
        groups = {()}
    out: dict[tuple[str, ...], float | None] = {}
    for tags in groups:
        values = {names[i]: per[i].get(tags if i in grouped else ()) for i in used}
        out[tags] = _scalar_eval(tree, values)
    return out


def answer_scalar(
    request: V2Request,
    dataset: Dataset,
    distributions: Collection[str],
    max_points: int,
    until: int | None = None,
) -> dict[str, Any]:
    """The JSON document of a 200 scalar answer: per formula, one value per group (raises
    :class:`V2Error`). Each query is reduced over the range with its own aggregator; an arithmetic
    formula (names, numbers, ``+ - * /``) is then computed on those values, as the per-query
    aggregators of Datadog's request say. A formula with functions needs series: it is computed
    on the buckets and reduced with the aggregator of its first query. ``until`` as
    :func:`answer_timeseries`."""
    names = [name for name, _, _ in request.queries]
    aggregators = {name: aggregator or "avg" for name, _, aggregator in request.queries}
    formulas = list(request.formulas) or names
    trees = [_arithmetic(formula) for formula in formulas]
    results: list[dict[tuple[str, ...], float | None]] = []
    per = _reduced(request, dataset, distributions, max_points, until)
    series = (
        _series(request, dataset, distributions, max_points, until)
        if request.formulas and any(tree is None for tree in trees)
        else []
    )
    for index, formula in enumerate(formulas):
        tree = trees[index]
        if not request.formulas:
            results.append(per[index])
        elif tree is not None:
            results.append(_formula_by_scalars(tree, request, per))
        else:
            first = next((n for n in _NAME.findall(formula) if n in aggregators), names[0])
            results.append({tags: _aggregate(values, aggregators[first], grid.interval)
                            for i, tags, values, grid in series if i == index})
    groups = sorted({tags for result in results for tags in result})
    columns: list[dict[str, Any]] = [
        {"name": "group", "type": "group", "values": [list(tags) for tags in groups]}
    ]
    for index, formula in enumerate(formulas):
        columns.append(
            {
                "name": formula if request.formulas else names[index],
                "type": "number",
                "values": [results[index].get(tags) for tags in groups],
                "meta": {"unit": None},
            }
        )
    return {"data": {"type": "scalar_response", "attributes": {"columns": columns}}}
