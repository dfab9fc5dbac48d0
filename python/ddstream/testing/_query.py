"""The subset of Datadog's metric query language that :class:`FakeDatadog` understands.

Why a real parser and not a regular expression: a client's mistakes (an unbalanced brace, a typo in
a rollup method, an arithmetic expression we do not support) must come back as Datadog does — HTTP
400 with ``Error parsing query: …`` — and the message should say what was wrong, so a failing test
points at the problem instead of at a generic "bad query".

Grammar (whitespace is allowed around every token)::

    query      := subquery ("," subquery)*          commas inside {} or () do not split
    subquery   := space ":" metric "{" scope "}" [by] [rollup]
    space      := "avg" | "sum" | "min" | "max"
    metric     := letter (letter | digit | "_" | ".")*
    scope      := "*" | filter ("," filter)*        every filter must match (logical AND)
    filter     := tag_key ":" tag_value
    by         := "by" "{" tag_key ("," tag_key)* "}"
    rollup     := ".rollup(" method ["," seconds] ")"
    method     := "avg" | "sum" | "min" | "max" | "count"
    seconds    := a positive integer

Anything else (negated filters, wildcards in values, arithmetic, other functions) is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "MAX_ROLLUP_SECONDS",
    "ROLLUP_METHODS",
    "SPACE_AGGREGATORS",
    "QueryError",
    "SubQuery",
    "parse_query",
    "split_top_level",
]

SPACE_AGGREGATORS = ("avg", "sum", "min", "max")
ROLLUP_METHODS = ("avg", "sum", "min", "max", "count")
#: Larger rollups are surely a client bug (and would make bucket arithmetic silly): ten years.
MAX_ROLLUP_SECONDS = 10 * 366 * 86400

_METRIC = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_TAG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]*")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_.\-/:]+")
_SPACE = re.compile(r"\s*([A-Za-z_]+)\s*:")
_BY = re.compile(r"\s*by\s*\{")
_ROLLUP = re.compile(r"\s*\.\s*rollup\s*\(")
_SECONDS = re.compile(r"[0-9]+")


class QueryError(ValueError):
    """A query the fake server cannot parse; ``str(error)`` is the whole Datadog-style message."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"Error parsing query: {detail}")


@dataclass(frozen=True)
class SubQuery:
    """One comma-separated part of a query, in the order written (``index`` = ``query_index``)."""

    index: int
    text: str
    space: str
    metric: str
    filters: tuple[tuple[str, str], ...]
    by: tuple[str, ...]
    rollup_method: str | None
    rollup_seconds: int | None

    @property
    def scope_text(self) -> str:
        """The scope as Datadog echoes it for an ungrouped series: ``*`` or ``k:v,k:v``."""
        if not self.filters:
            return "*"
        return ",".join(f"{key}:{value}" for key, value in self.filters)

    @property
    def method(self) -> str:
        """The time-rollup method actually used: Datadog averages when none is given."""
        return self.rollup_method or "avg"


def split_top_level(query: str) -> list[str]:
    """Split at commas that are outside every ``{}``/``()`` pair (Datadog's multi-query rule)."""
    parts: list[str] = []
    stack: list[str] = []
    closing = {"{": "}", "(": ")"}
    start = 0
    for position, char in enumerate(query):
        if char in closing:
            stack.append(closing[char])
        elif char in ")}":
            if not stack or stack[-1] != char:
                raise QueryError(f"unbalanced {char!r} at position {position}")
            stack.pop()
        elif char == "," and not stack:
            parts.append(query[start:position])
            start = position + 1
    if stack:
        raise QueryError(f"missing {stack[-1]!r} at the end of the query")
    parts.append(query[start:])
    return parts


def parse_query(query: str) -> list[SubQuery]:
    """Parse a whole ``query`` parameter; raise :class:`QueryError` on anything unsupported."""
    if not query.strip():
        raise QueryError("the query is empty")
    subqueries = []
    for index, text in enumerate(split_top_level(query)):
        if not text.strip():
            raise QueryError(f"sub-query {index} is empty (stray comma?)")
        subqueries.append(_parse_subquery(index, text.strip()))
    return subqueries


def _parse_subquery(index: int, text: str) -> SubQuery:
    match = _SPACE.match(text)
    if match is None:
        raise QueryError(f"expected '<aggregator>:<metric>{{<scope>}}' but got {text!r}")
    space = match.group(1)
    if space not in SPACE_AGGREGATORS:
        raise QueryError(
            f"unknown space aggregator {space!r} in {text!r} (expected one of "
            f"{', '.join(SPACE_AGGREGATORS)})"
        )
    position = _skip_spaces(text, match.end())

    metric_match = _METRIC.match(text, position)
    if metric_match is None:
        raise QueryError(f"expected a metric name after {space + ':'!r} in {text!r}")
    metric = metric_match.group(0)
    position = _skip_spaces(text, metric_match.end())

    if position >= len(text) or text[position] != "{":
        raise QueryError(f"missing '{{<scope>}}' after metric {metric!r} in {text!r}")
    close = text.find("}", position)
    if close < 0:  # pragma: no cover - split_top_level already rejects unbalanced braces
        raise QueryError(f"missing '}}' in {text!r}")
    filters = _parse_scope(text[position + 1 : close], text)
    position = close + 1

    by: tuple[str, ...] = ()
    by_match = _BY.match(text, position)
    if by_match is not None:
        close = text.find("}", by_match.end())
        if close < 0:  # pragma: no cover - split_top_level already rejects unbalanced braces
            raise QueryError(f"missing '}}' after 'by {{' in {text!r}")
        by = _parse_by(text[by_match.end() : close], text)
        position = close + 1

    method: str | None = None
    seconds: int | None = None
    rollup_match = _ROLLUP.match(text, position)
    if rollup_match is not None:
        close = text.find(")", rollup_match.end())
        if close < 0:  # pragma: no cover - split_top_level already rejects unbalanced parentheses
            raise QueryError(f"missing ')' after '.rollup(' in {text!r}")
        method, seconds = _parse_rollup(text[rollup_match.end() : close], text)
        position = close + 1

    rest = text[position:].strip()
    if rest:
        raise QueryError(f"unexpected {rest!r} after {text[:position].strip()!r}")
    return SubQuery(
        index=index,
        text=text,
        space=space,
        metric=metric,
        filters=filters,
        by=by,
        rollup_method=method,
        rollup_seconds=seconds,
    )


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _parse_scope(scope: str, text: str) -> tuple[tuple[str, str], ...]:
    scope = scope.strip()
    if not scope:
        raise QueryError(f"empty scope '{{}}' in {text!r} (use '{{*}}' for everything)")
    if scope == "*":
        return ()
    filters: list[tuple[str, str]] = []
    for item in (part.strip() for part in scope.split(",")):
        key, colon, value = item.partition(":")
        if not colon or _TAG_KEY.fullmatch(key) is None or _TAG_VALUE.fullmatch(value) is None:
            raise QueryError(f"invalid scope filter {item!r} in {text!r} (expected key:value)")
        filters.append((key, value))
    return tuple(filters)


def _parse_by(keys: str, text: str) -> tuple[str, ...]:
    result: list[str] = []
    for key in (part.strip() for part in keys.split(",")):
        if _TAG_KEY.fullmatch(key) is None:
            raise QueryError(f"invalid tag key {key!r} in 'by {{…}}' of {text!r}")
        if key in result:
            raise QueryError(f"tag key {key!r} repeated in 'by {{…}}' of {text!r}")
        result.append(key)
    return tuple(result)


def _parse_rollup(arguments: str, text: str) -> tuple[str, int | None]:
    parts = [part.strip() for part in arguments.split(",")]
    method = parts[0]
    if method not in ROLLUP_METHODS:
        raise QueryError(
            f"unknown rollup method {method!r} in {text!r} (expected one of "
            f"{', '.join(ROLLUP_METHODS)})"
        )
    if len(parts) == 1:
        return method, None
    if len(parts) > 2:
        raise QueryError(f"rollup takes a method and an interval, got {arguments!r} in {text!r}")
    if _SECONDS.fullmatch(parts[1]) is None:
        raise QueryError(f"rollup interval {parts[1]!r} is not a whole number of seconds")
    seconds = int(parts[1])
    if not 0 < seconds <= MAX_ROLLUP_SECONDS:
        raise QueryError(
            f"rollup interval {seconds} is out of range (1 to {MAX_ROLLUP_SECONDS} seconds)"
        )
    return method, seconds
