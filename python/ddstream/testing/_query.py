"""The Datadog metric query language as :class:`FakeDatadog` parses it (the grammar, no values).

Why a real parser and not a regular expression: a client's mistakes (an unbalanced brace, a typo in
a rollup method, a function with the wrong arguments) must come back as Datadog does — HTTP 400
with ``Error parsing query: …`` — and the message should say what was wrong and where, so a
failing test points at the problem instead of at a generic "bad query". What the parsed query
means is ``_query_eval``'s business.

Grammar (whitespace is allowed around every token)::

    query      := expr ("," expr)*                 commas inside {} or () do not split
    expr       := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | primary
    primary    := number | "(" expr ")" | function "(" argument ("," argument)* ")" | term
    argument   := expr | "'" word "'" | '"' word '"'
    term       := [space ":"] metric "{" scope "}" [by] modifier*
    space      := "avg" | "sum" | "min" | "max" | "count" | "p" percentile
    percentile := 0 … 100 with at most two decimals (p50, p99, p99.9, p99.99)
    metric     := letter (letter | digit | "_" | ".")*
    scope      := "*" | filter ("," filter)*        every filter must match (logical AND)
                | or                                the keyword form (the two forms do not mix)
    filter     := ["!"] tag_key ":" tag_value       "!": must not match; "*" in a value: wildcard
    or         := and ("OR" and)*       and := not ("AND" not)*
    not        := "NOT" not | "(" or ")" | tag_key ["NOT"] "IN" "(" tag_value ("," tag_value)* ")"
                | filter
    by         := "by" "{" tag_key ("," tag_key)* "}"
    modifier   := ".rollup(" (method ["," seconds] | seconds) ")" | ".as_count()" | ".as_rate()"
                | ".fill(" ("null" | "zero" | "linear" | "last") ["," seconds] ")" | ".weighted()"
    method     := "avg" | "sum" | "min" | "max" | "count"

A term without ``space:`` is averaged, as Datadog does. A modifier binds to the metric term it
follows (``avg:a{*} + avg:b{*}.rollup(max,60)`` rolls up only ``b``); each may appear once per term.
``pNN:`` needs a distribution metric, which only the server knows about: the evaluator checks
that. Functions: :data:`FUNCTIONS` (their arguments are checked here).

Not understood (rejected with a parse error, where Datadog may accept them): bare tags (without
``key:``) and template variables in scopes, modifiers on anything but a metric term,
functions outside :data:`FUNCTIONS` (smoothing, regression, algorithms, ``integral``…), a query
made of numbers only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Union

__all__ = [
    "DEFAULT_FILL_SECONDS",
    "FILL_METHODS",
    "FUNCTIONS",
    "MAX_FILL_SECONDS",
    "MAX_ROLLUP_SECONDS",
    "ROLLUP_METHODS",
    "SPACE_AGGREGATORS",
    "TOP_DIRECTIONS",
    "TOP_RANKINGS",
    "Binary",
    "BoolScope",
    "Call",
    "Node",
    "Number",
    "QueryError",
    "Scope",
    "SubQuery",
    "TagTest",
    "Term",
    "Unary",
    "count_subqueries",
    "parse_query",
    "split_top_level",
]

SPACE_AGGREGATORS = ("avg", "sum", "min", "max")
ROLLUP_METHODS = ("avg", "sum", "min", "max", "count")
FILL_METHODS = ("null", "zero", "linear", "last")
#: ``.fill(method, limit)``: Datadog's documented default and maximum gap, in seconds.
DEFAULT_FILL_SECONDS = 300
MAX_FILL_SECONDS = 600
#: Larger rollups are surely a client bug (and would make bucket arithmetic silly): ten years.
MAX_ROLLUP_SECONDS = 10 * 366 * 86400
TOP_RANKINGS = ("max", "mean", "min", "sum", "last", "l2norm", "area", "norm")
TOP_DIRECTIONS = ("asc", "desc")

#: Function name → argument kinds after the first (a series): "n" a number, "s" a quoted word.
#: ``top`` takes up to three optional ones. ``topN_by``/``bottomN_by`` are spelled out below.
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "abs": (),
    "log2": (),
    "log10": (),
    "cumsum": (),
    "per_second": (),
    "per_minute": (),
    "per_hour": (),
    "diff": (),
    "monotonic_diff": (),
    "default_zero": (),
    "derivative": (),
    "exclude_null": (),
    "count_nonzero": (),
    "count_not_null": (),
    "hour_before": (),
    "day_before": (),
    "week_before": (),
    "timeshift": ("n",),
    "clamp_min": ("n",),
    "clamp_max": ("n",),
    "cutoff_min": ("n",),
    "cutoff_max": ("n",),
    "top": ("n", "s", "s"),
}
_TOP_SHORTHAND = re.compile(r"(top|bottom)(5|10|15|20)_(mean|min|max|last|area|l2norm|norm)")

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_.]*")
_TAG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]*")
_TAG_VALUE = re.compile(r"[\w.\-/:*]+")  # \w: letters and digits of any script, and "_"
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_PERCENTILE = re.compile(r"p(100|[0-9]{1,2})(?:\.([0-9]{1,2}))?")
_WORD = re.compile(r"'([A-Za-z0-9_]+)'|\"([A-Za-z0-9_]+)\"")


class QueryError(ValueError):
    """A query the fake server cannot parse; ``str(error)`` is the whole Datadog-style message."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"Error parsing query: {detail}")


# -- the syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class TagTest:
    """A host passes when its ``key`` tag exists and matches one of ``values`` (``*`` wildcards);
    ``negated`` inverts that."""

    key: str
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class BoolScope:
    op: str  # "AND" | "OR" | "NOT" (one item)
    items: tuple[Scope, ...]


Scope = Union[TagTest, BoolScope]


@dataclass(frozen=True)
class Term:
    """``space:metric{scope} by {…}`` and its modifiers, as written."""

    space: str  # avg, sum, min, max, count, or pNN (the text, e.g. "p99.9")
    metric: str
    filters: tuple[tuple[str, str], ...]  # the comma form: ("key", "value"), ("!key", "value")
    by: tuple[str, ...]
    rollup_method: str | None = None
    rollup_seconds: int | None = None
    as_count: bool = False
    as_rate: bool = False
    weighted: bool = False
    fill_method: str | None = None
    fill_seconds: int = DEFAULT_FILL_SECONDS
    percentile: Fraction | None = None  # set for pNN:
    scope: Scope | None = None  # the keyword form (AND/OR/NOT/IN), else None
    scope_source: str = ""  # the keyword form as written

    @property
    def scope_text(self) -> str:
        """The scope as Datadog echoes it for an ungrouped series: ``*`` or ``k:v,k:v``."""
        if self.scope is not None:
            return self.scope_source
        if not self.filters:
            return "*"
        return ",".join(f"{key}:{value}" for key, value in self.filters)

    @property
    def method(self) -> str:
        """The time-rollup method used on a gauge: the one given, else sum under
        ``.as_count()``, else avg (Datadog's defaults)."""
        return self.rollup_method or ("sum" if self.as_count else "avg")


@dataclass(frozen=True)
class Unary:
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    name: str  # as written; ``top5_mean`` etc. are expanded to ``top``
    series: Node
    numbers: tuple[float, ...] = ()
    words: tuple[str, ...] = ()


Node = Union[Number, Term, Unary, Binary, Call]


@dataclass(frozen=True)
class SubQuery:
    """One comma-separated part of a query, in the order written (``index`` = ``query_index``).

    ``terms`` are its metric terms in the order written; the single-term accessors (``space``,
    ``metric``, ``filters``, ``by``, ``rollup_method``, ``rollup_seconds``) read the first."""

    index: int
    text: str
    expr: Node
    terms: tuple[Term, ...] = field(default=())

    @property
    def simple(self) -> bool:
        """A lone metric term: the fast path and the historical answer shape."""
        return isinstance(self.expr, Term)

    @property
    def space(self) -> str:
        return self.terms[0].space

    @property
    def metric(self) -> str:
        return self.terms[0].metric

    @property
    def filters(self) -> tuple[tuple[str, str], ...]:
        return self.terms[0].filters

    @property
    def by(self) -> tuple[str, ...]:
        return self.terms[0].by

    @property
    def rollup_method(self) -> str | None:
        return self.terms[0].rollup_method

    @property
    def rollup_seconds(self) -> int | None:
        return self.terms[0].rollup_seconds

    @property
    def scope_text(self) -> str:
        return self.terms[0].scope_text

    @property
    def method(self) -> str:
        return self.terms[0].method


# -- splitting ------------------------------------------------------------------------------------


def split_top_level(query: str) -> list[str]:
    """Split at commas that are outside every ``{}``/``()`` pair (Datadog's multi-query rule)."""
    return [query[start:end] for start, end in _top_level_spans(query)]


def count_subqueries(query: str) -> int:
    """How many sub-queries a ``query`` parameter carries (top-level commas + 1), without parsing
    it; brackets that do not balance count as they stand."""
    depth = 0
    commas = 0
    for char in query:
        if char in "{(":
            depth += 1
        elif char in ")}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            commas += 1
    return commas + 1


def _top_level_spans(query: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    closing = {"{": "}", "(": ")"}
    start = 0
    for position, char in enumerate(query):
        if char in closing:
            stack.append((closing[char], position))
        elif char in ")}":
            if not stack or stack[-1][0] != char:
                raise QueryError(f"unbalanced {char!r} at character {position + 1}")
            stack.pop()
        elif char == "," and not stack:
            spans.append((start, position))
            start = position + 1
    if stack:
        wanted, opened = stack[-1]
        raise QueryError(
            f"missing {wanted!r} at the end of the query (opened at character {opened + 1})"
        )
    spans.append((start, len(query)))
    return spans


def parse_query(query: str) -> list[SubQuery]:
    """Parse a whole ``query`` parameter; raise :class:`QueryError` on anything unsupported."""
    if not query.strip():
        raise QueryError("the query is empty")
    for position, char in enumerate(query):
        if ord(char) < 0x20 or ord(char) == 0x7F:
            raise QueryError(f"control character {char!r} at character {position + 1}")
    subqueries = []
    for index, (start, end) in enumerate(_top_level_spans(query)):
        text = query[start:end]
        if not text.strip():
            raise QueryError(f"sub-query {index} is empty (stray comma?)")
        parser = _Parser(query, start, end)
        expr = parser.parse()
        terms = tuple(_terms(expr))
        if not terms:
            raise QueryError(f"sub-query {index} ({text.strip()!r}) has no metric in it")
        subqueries.append(SubQuery(index=index, text=text.strip(), expr=expr, terms=terms))
    return subqueries


def _terms(node: Node) -> list[Term]:
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Unary):
        return _terms(node.operand)
    if isinstance(node, Binary):
        return _terms(node.left) + _terms(node.right)
    if isinstance(node, Call):
        return _terms(node.series)
    return []


# -- the parser -----------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over ``text[start:end]``; positions in messages are 1-based characters
    of the whole ``query`` parameter."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        self.pos = start
        self.end = end

    # helpers
    def fail(self, what: str, at: int | None = None) -> QueryError:
        where = self.pos if at is None else at
        shown = self.text[where : min(self.end, where + 20)]
        near = f" near {shown!r}" if shown else " at the end"
        return QueryError(f"{what} at character {where + 1}{near}")

    def skip(self) -> None:
        while self.pos < self.end and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < self.end else ""

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r} {what}")
        self.pos += 1

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        self.skip()
        found = pattern.match(self.text, self.pos, self.end)
        if found is not None:
            self.pos = found.end()
        return found

    # grammar
    def parse(self) -> Node:
        node = self.expr()
        if self.peek():
            raise self.fail("unexpected text after the end of the expression")
        return node

    def expr(self) -> Node:
        node = self.product()
        while self.peek() in ("+", "-"):
            op = self.text[self.pos]
            self.pos += 1
            node = Binary(op, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.text[self.pos]
            self.pos += 1
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.pos += 1
            return Unary(self.unary())
        return self.primary()

    def primary(self) -> Node:
        char = self.peek()
        if not char:
            raise self.fail("expected a metric, a number or '('")
        if char == "(":
            self.pos += 1
            node = self.expr()
            self.expect(")", "to close the parenthesis")
            if self.peek() == ".":
                raise self.fail("a modifier must follow a metric term, not a parenthesis")
            return node
        number = self.match(_NUMBER)
        if number is not None:
            return Number(float(number.group(0)))
        start = self.pos
        ident = self.match(_IDENT)
        if ident is None:
            raise self.fail("expected a metric, a number or '('")
        name = ident.group(0)
        after = self.peek()
        if after == "(":
            return self.call(name, start)
        if after == ":":
            self.pos += 1
            return self.term(self._space(name, start), start)
        if after == "{":
            return self.term(("avg", None), start, metric=name)
        raise self.fail(f"expected '{{<scope>}}' after metric {name!r}")

    def _space(self, name: str, at: int) -> tuple[str, Fraction | None]:
        if name in SPACE_AGGREGATORS or name == "count":
            return name, None
        found = _PERCENTILE.fullmatch(name)
        if found is not None:
            value = Fraction(f"{found.group(1)}.{found.group(2) or '0'}")
            if value <= 100:
                return name, value
        raise self.fail(
            f"unknown space aggregator {name!r} (expected one of "
            f"{', '.join(SPACE_AGGREGATORS)}, count, or a percentile such as p99)",
            at,
        )

    def term(self, space: tuple[str, Fraction | None], start: int, metric: str = "") -> Term:
        if not metric:
            found = self.match(_IDENT)
            if found is None:
                raise self.fail(f"expected a metric name after '{space[0]}:'")
            metric = found.group(0)
        if self.peek() != "{":
            raise self.fail(f"missing '{{<scope>}}' after metric {metric!r}")
        inside = self.braces()
        where = self.text[start : self.pos]
        keyword = _KEYWORDS.search(inside) is not None or "(" in inside
        scope = _ScopeParser(inside, where).parse() if keyword else None
        filters = () if keyword else _parse_scope(inside, where)
        by: tuple[str, ...] = ()
        self.skip()
        if self.text.startswith("by", self.pos) and self.pos + 2 <= self.end:
            save = self.pos
            self.pos += 2
            if self.peek() == "{":
                by = _parse_by(self.braces(), self.text[start : self.pos])
            else:
                self.pos = save
        term = Term(space=space[0], metric=metric, filters=filters, by=by, percentile=space[1],
                    scope=scope, scope_source=inside.strip() if keyword else "")  # fmt: skip
        seen: set[str] = set()
        while self.peek() == ".":
            self.pos += 1
            term = self.modifier(term, seen)
        return term

    def braces(self) -> str:
        """The text inside ``{…}`` at the current position (balanced by the splitter)."""
        close = self.text.find("}", self.pos, self.end)
        if close < 0:  # pragma: no cover - _top_level_spans rejects unbalanced braces
            raise self.fail("missing '}'")
        inside = self.text[self.pos + 1 : close]
        self.pos = close + 1
        return inside

    def modifier(self, term: Term, seen: set[str]) -> Term:
        """``term`` with the modifier at the current position applied (``seen``: those so far)."""
        metric = term.metric
        at = self.pos
        found = self.match(_IDENT)
        name = found.group(0) if found else ""
        if name not in ("rollup", "as_count", "as_rate", "fill", "weighted"):
            raise self.fail(
                f"unknown modifier {'.' + name if name else '.'!r} on {metric!r} (expected "
                ".rollup(), .as_count(), .as_rate(), .fill() or .weighted())",
                at,
            )
        if name in seen or {name, *seen} >= {"as_count", "as_rate"}:
            raise self.fail(f"modifier .{name}() repeated or contradicted on {metric!r}", at)
        seen.add(name)
        self.expect("(", f"after .{name}")
        close = self.text.find(")", self.pos, self.end)
        if close < 0:  # pragma: no cover - the splitter rejects unbalanced parentheses
            raise self.fail(f"missing ')' after '.{name}('")
        arguments = self.text[self.pos : close]
        self.pos = close + 1
        parts = [part.strip() for part in arguments.split(",")]
        context = f".{name}({arguments}) on {metric!r}"
        if name in ("as_count", "as_rate", "weighted"):
            if arguments.strip():
                raise QueryError(f"{context} takes no arguments")
            if name == "as_count":
                return replace(term, as_count=True)
            if name == "as_rate":
                return replace(term, as_rate=True)
            return replace(term, weighted=True)
        if name == "rollup":
            method, seconds = _parse_rollup(parts, context)
            return replace(term, rollup_method=method, rollup_seconds=seconds)
        fill_method, fill_seconds = _parse_fill(parts, context)
        return replace(term, fill_method=fill_method, fill_seconds=fill_seconds)

    def call(self, name: str, start: int) -> Node:
        shorthand = _TOP_SHORTHAND.fullmatch(name)
        if shorthand is None and name not in FUNCTIONS:
            raise self.fail(f"unknown function {name!r}", start)
        self.expect("(", f"after {name}")
        arguments: list[Node | str] = []
        while True:
            word = self.match(_WORD)
            if word is not None:
                arguments.append(word.group(1) or word.group(2))
            else:
                arguments.append(self.expr())
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect(")", f"to close {name}(")
            break
        if self.peek() == ".":
            raise self.fail(f"a modifier must follow a metric term, not {name}()")
        series = arguments[0]
        if isinstance(series, str) or not _terms(series):
            raise QueryError(f"the first argument of {name}() must be a metric query")
        rest = arguments[1:]
        if shorthand is not None:
            if rest:
                raise QueryError(f"{name}() takes one argument, got {len(arguments)}")
            direction = "desc" if shorthand.group(1) == "top" else "asc"
            return Call("top", series, (float(shorthand.group(2)),),
                        (shorthand.group(3), direction))  # fmt: skip
        kinds = FUNCTIONS[name]
        required = len(kinds) if name != "top" else 0
        if not required <= len(rest) <= len(kinds):
            wanted = f"{required + 1}" if required == len(kinds) else f"1 to {len(kinds) + 1}"
            raise QueryError(f"{name}() takes {wanted} arguments, got {len(arguments)}")
        numbers: list[float] = []
        words: list[str] = []
        for position, (kind, argument) in enumerate(zip(kinds, rest), start=2):
            if kind == "n":
                value = _constant(argument)
                if value is None:
                    raise QueryError(f"argument {position} of {name}() must be a number")
                numbers.append(value)
            else:
                if not isinstance(argument, str):
                    raise QueryError(f"argument {position} of {name}() must be a quoted word")
                words.append(argument)
        return _checked_call(Call(name, series, tuple(numbers), tuple(words)))


def _constant(node: Node | str) -> float | None:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Unary):
        inner = _constant(node.operand)
        return None if inner is None else -inner
    return None


def _checked_call(call: Call) -> Call:
    if call.name == "top":
        limit = call.numbers[0] if call.numbers else 10.0
        ranking = call.words[0] if call.words else "mean"
        direction = call.words[1] if len(call.words) > 1 else "desc"
        if limit != int(limit) or not 1 <= limit <= 1000:
            raise QueryError(f"top(): the number of series must be 1 to 1000, got {limit:g}")
        if ranking not in TOP_RANKINGS:
            raise QueryError(
                f"top(): unknown ranking {ranking!r} (expected one of {', '.join(TOP_RANKINGS)})"
            )
        if direction not in TOP_DIRECTIONS:
            raise QueryError(f"top(): unknown direction {direction!r} (expected asc or desc)")
        return Call("top", call.series, (limit,), (ranking, direction))
    if call.name == "timeshift":
        shift = call.numbers[0]
        if shift != int(shift) or abs(shift) > MAX_ROLLUP_SECONDS:
            raise QueryError(f"timeshift(): the shift must be whole seconds, got {shift:g}")
    return call


def _parse_scope(scope: str, text: str) -> tuple[tuple[str, str], ...]:
    scope = scope.strip()
    if not scope:
        raise QueryError(f"empty scope '{{}}' in {text!r} (use '{{*}}' for everything)")
    if scope == "*":
        return ()
    filters: list[tuple[str, str]] = []
    for item in (part.strip() for part in scope.split(",")):
        key, colon, value = item.partition(":")
        name = key[1:] if key.startswith("!") else key
        if not colon or _TAG_KEY.fullmatch(name) is None or _TAG_VALUE.fullmatch(value) is None:
            raise QueryError(
                f"invalid scope filter {item!r} in {text!r} (expected key:value or !key:value)"
            )
        filters.append((key, value))
    return tuple(filters)


_KEYWORDS = re.compile(r"(?<![\w.\-/:*!])(AND|OR|NOT|IN)(?![\w.\-/:*])", re.IGNORECASE)
_SCOPE_TOKEN = re.compile(r"\s*(\(|\)|,|!?[\w.\-/:*]+)")


class _ScopeParser:
    """The keyword form of a scope: ``env:prod AND (host:a OR NOT host:b)``, ``key IN (a, b)``."""

    def __init__(self, text: str, where: str) -> None:
        self.tokens: list[str] = []
        self.where = where
        position = 0
        while text[position:].strip():
            found = _SCOPE_TOKEN.match(text, position)
            if found is None:
                raise QueryError(f"unexpected {text[position:].strip()[:20]!r} in the scope of "
                                 f"{where!r}")  # fmt: skip
            self.tokens.append(found.group(1))
            position = found.end()
        self.position = 0

    def fail(self, what: str) -> QueryError:
        near = " ".join(self.tokens[self.position : self.position + 4]) or "the end"
        return QueryError(f"{what} near {near!r} in the scope of {self.where!r}")

    def peek(self) -> str:
        return self.tokens[self.position] if self.position < len(self.tokens) else ""

    def take(self) -> str:
        token = self.peek()
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        if self.peek().upper() == word:
            self.position += 1
            return True
        return False

    def parse(self) -> Scope:
        node = self.disjunction()
        if self.peek():
            raise self.fail("unexpected text")
        return node

    def disjunction(self) -> Scope:
        items = [self.conjunction()]
        while self.keyword("OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolScope("OR", tuple(items))

    def conjunction(self) -> Scope:
        items = [self.negation()]
        while self.keyword("AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else BoolScope("AND", tuple(items))

    def negation(self) -> Scope:
        if self.keyword("NOT"):
            return BoolScope("NOT", (self.negation(),))
        if self.peek() == "(":
            self.take()
            node = self.disjunction()
            if self.take() != ")":
                raise self.fail("expected ')'")
            return node
        token = self.take()
        if not token or token in "(),":
            raise self.fail("expected a tag filter")
        if ":" not in token:  # key [NOT] IN (values)
            negated = self.keyword("NOT")
            if not self.keyword("IN") or _TAG_KEY.fullmatch(token) is None:
                raise self.fail(f"expected key:value or 'key IN (…)', got {token!r}")
            if self.take() != "(":
                raise self.fail("expected '(' after IN")
            values = [self.take()]
            while self.peek() == ",":
                self.take()
                values.append(self.take())
            if self.take() != ")":
                raise self.fail("expected ')' to close IN (…)")
            if not all(_TAG_VALUE.fullmatch(value) for value in values):
                raise self.fail("invalid value in IN (…)")
            return TagTest(token, tuple(values), negated)
        negated = token.startswith("!")
        key, _, value = token.lstrip("!").partition(":")
        if _TAG_KEY.fullmatch(key) is None or _TAG_VALUE.fullmatch(value) is None:
            raise self.fail(f"invalid tag filter {token!r}")
        return TagTest(key, (value,), negated)


def _parse_by(keys: str, text: str) -> tuple[str, ...]:
    result: list[str] = []
    for key in (part.strip() for part in keys.split(",")):
        if _TAG_KEY.fullmatch(key) is None:
            raise QueryError(f"invalid tag key {key!r} in 'by {{…}}' of {text!r}")
        if key in result:
            raise QueryError(f"tag key {key!r} repeated in 'by {{…}}' of {text!r}")
        result.append(key)
    return tuple(result)


def _seconds(text: str, context: str, what: str, upper: int) -> int:
    if re.fullmatch(r"[0-9]+", text) is None:
        raise QueryError(f"{what} {text!r} in {context} is not a whole number of seconds")
    seconds = int(text)
    if not 0 < seconds <= upper:
        raise QueryError(f"{what} {seconds} in {context} is out of range (1 to {upper} seconds)")
    return seconds


def _parse_rollup(parts: list[str], context: str) -> tuple[str | None, int | None]:
    if len(parts) > 2:
        raise QueryError(f"{context}: rollup takes a method and an interval")
    if len(parts) == 1 and re.fullmatch(r"[0-9]+", parts[0]):  # .rollup(60)
        return None, _seconds(parts[0], context, "rollup interval", MAX_ROLLUP_SECONDS)
    method = parts[0]
    if method not in ROLLUP_METHODS:
        raise QueryError(
            f"unknown rollup method {method!r} in {context} (expected one of "
            f"{', '.join(ROLLUP_METHODS)})"
        )
    if len(parts) == 1:
        return method, None
    return method, _seconds(parts[1], context, "rollup interval", MAX_ROLLUP_SECONDS)


def _parse_fill(parts: list[str], context: str) -> tuple[str, int]:
    if len(parts) > 2:
        raise QueryError(f"{context}: fill takes a method and a limit")
    method = parts[0]
    if method not in FILL_METHODS:
        raise QueryError(
            f"unknown fill method {method!r} in {context} (expected one of "
            f"{', '.join(FILL_METHODS)})"
        )
    if len(parts) == 1:
        return method, DEFAULT_FILL_SECONDS
    return method, _seconds(parts[1], context, "fill limit", MAX_FILL_SECONDS)
