"""Issue 14's table of query shapes: each shape streamed through ddstream against FakeDatadog and
every cell compared with a truth computed without the fake's code.

Why one table for the test and the docs: ``test_query_shapes.py`` runs every row, and
``scripts/query_shapes_table.py`` prints the same rows as the markdown table of docs/queries.md
(shape | sub-queries sent | result), so the documented table is what the tests check.

The truth comes from ``reference_query`` (distributions, operators, functions, ``top``, ``fill``)
and ``reference`` (gauges), composed here by hand for each shape: nothing is parsed, so a parser
or rewriter bug cannot hide behind the same bug in the truth. Datadog (and the fake) evaluate a
query per request, so the truth is computed per chunk: ``cumsum``, ``top`` or ``fill`` restart at
each chunk, as the stream's answers do.

A row's ``subqueries`` are the rewriting rules of docs/queries.md written out (``<s>`` for each
statistic asked for, ``<g>`` for the granularity); the test checks ``ddstream.explain`` and the
requests the server received against them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

import ddstream as dd
import reference_query as ref
from ddstream.testing import FakeDatadog, split_top_level

__all__ = [
    "API",
    "APP",
    "HOSTS",
    "SHAPES",
    "Shape",
    "fake_server",
    "markdown_table",
    "run_shape",
]

API, APP = "shapes-api", "shapes-app"
HOSTS = 8  # more than top()'s smallest N (5), so that top() selects
DIST = "req.latency"
# Sunday 04:00-06:00 UTC, aligned: the fake's daily blackout (05:00-05:10) gives empty buckets.
START = 1_699_747_200 + 4 * 3600
END = START + 2 * 3600
CHUNK = 1800  # four chunks
STATS = ("avg", "min", "max", "sum")

Truth = Callable[[str, int, int, int], ref.SeriesSet]  # (statistic, start, end, g) -> series


@dataclass(frozen=True)
class Query:
    """One query of a shape: its text, its sub-queries (``<s>``/``<g>`` templates; one without
    ``<s>`` for a value-only query) and its truth per statistic."""

    text: str
    sent: str
    truth: Truth
    value_only: bool = False


@dataclass(frozen=True)
class Shape:
    """A row of the table: queries streamed together, or an error expected at a character."""

    name: str
    queries: tuple[Query, ...] = ()
    statistics: tuple[str, ...] = STATS
    granularity: int = 60
    error_query: str = ""  # a refused query (then ``queries`` is empty)
    error_at: int = 0  # 1-based character the caret points at (0: an error without a caret)
    error_says: str = ""  # a fragment of the message
    items: tuple[str, ...] = field(default=())  # ``queries=`` given as is (the comma case)


def _gauge(metric: str, space: str = "avg", by: tuple[str, ...] = (),
           filters: dict[str, str] | None = None, method: str | None = None,
           keep: Callable[[tuple[str, ...]], bool] | None = None) -> Truth:  # fmt: skip
    """``space:metric{filters} by {by}.rollup(<s>|method, g)``, optionally only some groups."""

    def truth(s: str, start: int, end: int, g: int) -> ref.SeriesSet:
        got = ref.gauge(metric, filters, by, space, method or s, start, end, g, hosts=HOSTS)
        return {k: v for k, v in got.items() if keep is None or keep(k)}

    return truth


def _dist(by: tuple[str, ...] = (), statistic: str | None = None,
          percentile: str | None = None) -> Truth:  # fmt: skip
    """The distribution DIST: statistic ``<s>`` (or ``statistic``), or a percentile."""

    def truth(s: str, start: int, end: int, g: int) -> ref.SeriesSet:
        if percentile is not None:
            return ref.distribution(DIST, None, by, "percentile", start, end, g,
                                    Fraction(percentile), hosts=HOSTS)  # fmt: skip
        return ref.distribution(DIST, None, by, statistic or s, start, end, g, hosts=HOSTS)

    return truth


def _binary(op: str, left: Truth, right: Truth) -> Truth:
    return lambda s, a, b, g: ref.binary(op, left(s, a, b, g), right(s, a, b, g))


def _scalar(op: str, inner: Truth, number: float, number_first: bool = False) -> Truth:
    return lambda s, a, b, g: ref.scalar(op, inner(s, a, b, g), number, number_first)


def _apply(inner: Truth, fn: Callable[[list[float], int], list[float]]) -> Truth:
    return lambda s, a, b, g: ref.apply(inner(s, a, b, g), lambda v: fn(v, g))


def _nan_or(fn: Callable[[float], float]) -> Callable[[list[float], int], list[float]]:
    return lambda v, g: [math.nan if math.isnan(x) else fn(x) for x in v]


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else math.nan


def _default_zero(v: list[float], g: int) -> list[float]:
    return v if all(math.isnan(x) for x in v) else [0.0 if math.isnan(x) else x for x in v]


def _shifted(inner: Truth, seconds: int) -> Truth:
    return lambda s, a, b, g: inner(s, a + seconds, b + seconds, g)


def _top(inner: Truth, limit: int, ranking: str, direction: str) -> Truth:
    return lambda s, a, b, g: ref.top(inner(s, a, b, g), limit, ranking, direction, g)


def _fill(inner: Truth, method: str, limit: int) -> Truth:
    return lambda s, a, b, g: ref.fill(inner(s, a, b, g), method, limit, g)


def _four(text: str, sent: str, truth: Truth) -> Query:
    return Query(text, sent, truth)


def _value(text: str, sent: str, truth: Truth) -> Query:
    return Query(text, sent, truth, value_only=True)


_HOST = ("host",)
Q_PLAIN = _four(
    "avg:system.cpu.user{*}", "avg:system.cpu.user{*}.rollup(<s>,<g>)", _gauge("system.cpu.user")
)
Q_GROUPED = _four(
    "max:system.load.1{*} by {host}",
    "max:system.load.1{*} by {host}.rollup(<s>,<g>)",
    _gauge("system.load.1", "max", _HOST),
)
Q_RATIO = _four(
    "avg:a{*} / avg:b{*} * 100",
    "avg:a{*}.rollup(<s>,<g>) / avg:b{*}.rollup(<s>,<g>) * 100",
    _scalar("*", _binary("/", _gauge("a"), _gauge("b")), 100.0),
)
Q_TOP = _value(
    "top(avg:a{*} by {host}, 5, 'mean', 'desc')",
    "top(avg:a{*} by {host}.rollup(avg,<g>), 5, 'mean', 'desc')",
    _top(_gauge("a", by=_HOST, method="avg"), 5, "mean", "desc"),
)
Q_P99 = _value(
    "p99:req.latency{*} by {host}",
    "p99:req.latency{*} by {host}.rollup(avg,<g>)",
    _dist(_HOST, percentile="99"),
)
Q_DIST = _four("avg:req.latency{*}", "<s>:req.latency{*}.rollup(<s>,<g>)", _dist())
Q_OWN_ROLLUP = _value(
    "avg:a{*} by {host}.rollup(max, 60)",
    "avg:a{*} by {host}.rollup(max,60)",
    _gauge("a", by=_HOST, method="max"),
)
Q_AS_COUNT = _four("sum:a{*}.as_count()", "sum:a{*}.as_count().rollup(<s>,<g>)", _gauge("a", "sum"))

SHAPES: tuple[Shape, ...] = (
    Shape("plain", (Q_PLAIN,)),
    Shape("grouped", (Q_GROUPED,)),
    Shape(
        "scope filter",
        (
            _four(
                "avg:a{env:prod} by {host}",
                "avg:a{env:prod} by {host}.rollup(<s>,<g>)",
                _gauge("a", by=_HOST, filters={"env": "prod"}),
            ),
        ),
    ),
    Shape(
        "scope negation",
        (
            _four(
                "sum:a{!host:h01} by {host}",
                "sum:a{!host:h01} by {host}.rollup(<s>,<g>)",
                _gauge("a", "sum", _HOST, keep=lambda k: k != ("host:h01",)),
            ),
        ),
    ),
    Shape(
        "scope wildcard",
        (
            _four(
                "avg:a{host:h0*} by {env}",
                "avg:a{host:h0*} by {env}.rollup(<s>,<g>)",
                _gauge("a", by=("env",)),
            ),
        ),
    ),
    Shape(
        "scope keywords",
        (
            _four(
                "avg:a{env:prod AND NOT host:h02} by {host}",
                "avg:a{env:prod AND NOT host:h02} by {host}.rollup(<s>,<g>)",
                _gauge("a", by=_HOST, filters={"env": "prod"}, keep=lambda k: k != ("host:h02",)),
            ),
        ),
    ),
    Shape("arithmetic a/b*100", (Q_RATIO,)),
    Shape(
        "precedence",
        (
            _four(
                "avg:a{*} - avg:b{*} * 2",
                "avg:a{*}.rollup(<s>,<g>) - avg:b{*}.rollup(<s>,<g>) * 2",
                _binary("-", _gauge("a"), _scalar("*", _gauge("b"), 2.0)),
            ),
        ),
    ),
    Shape(
        "parentheses",
        (
            _four(
                "(avg:a{*} - avg:b{*}) * 2",
                "(avg:a{*}.rollup(<s>,<g>) - avg:b{*}.rollup(<s>,<g>)) * 2",
                _scalar("*", _binary("-", _gauge("a"), _gauge("b")), 2.0),
            ),
        ),
    ),
    Shape(
        "number literals",
        (
            _four(
                "1000 - max:a{*} * 2.5",
                "1000 - max:a{*}.rollup(<s>,<g>) * 2.5",
                _scalar("-", _scalar("*", _gauge("a", "max"), 2.5), 1000.0, number_first=True),
            ),
        ),
    ),
    Shape(
        "unary minus",
        (
            _four(
                "-avg:a{*} by {host} + 1000",
                "-avg:a{*} by {host}.rollup(<s>,<g>) + 1000",
                _scalar(
                    "+", lambda s, a, b, g: ref.negate(_gauge("a", by=_HOST)(s, a, b, g)), 1000.0
                ),
            ),
        ),
    ),
    Shape(
        "per_second",
        (
            _four(
                "per_second(avg:a{*} by {host})",
                "per_second(avg:a{*} by {host}.rollup(<s>,<g>))",
                _apply(_gauge("a", by=_HOST), lambda v, g: [x / g for x in v]),
            ),
        ),
    ),
    Shape(
        "abs",
        (
            _four(
                "abs(avg:a{*} - 950)",
                "abs(avg:a{*}.rollup(<s>,<g>) - 950)",
                _apply(_scalar("-", _gauge("a"), 950.0), _nan_or(abs)),
            ),
        ),
    ),
    Shape(
        "log10",
        (
            _four(
                "log10(sum:a{*} by {env})",
                "log10(sum:a{*} by {env}.rollup(<s>,<g>))",
                _apply(_gauge("a", "sum", ("env",)), _nan_or(_log10)),
            ),
        ),
    ),
    Shape(
        "timeshift",
        (
            _four(
                "timeshift(avg:a{*}, -3600)",
                "timeshift(avg:a{*}.rollup(<s>,<g>), -3600)",
                _shifted(_gauge("a"), -3600),
            ),
        ),
    ),
    Shape("top", (Q_TOP,)),
    Shape(
        "clamp_min",
        (
            _four(
                "clamp_min(avg:a{*} by {host}, 950)",
                "clamp_min(avg:a{*} by {host}.rollup(<s>,<g>), 950)",
                _apply(_gauge("a", by=_HOST), _nan_or(lambda x: max(x, 950.0))),
            ),
        ),
    ),
    Shape(
        "default_zero",
        (
            _four(
                "default_zero(avg:a{host:h01})",
                "default_zero(avg:a{host:h01}.rollup(<s>,<g>))",
                _apply(_gauge("a", filters={"host": "h01"}), _default_zero),
            ),
        ),
    ),
    Shape("as_count", (Q_AS_COUNT,)),
    Shape(
        "as_rate",
        (
            _four(
                "sum:a{*} by {host}.as_rate()",
                "sum:a{*} by {host}.as_rate().rollup(<s>,<g>)",
                _gauge("a", "sum", _HOST),
            ),
        ),
    ),
    Shape(
        "fill (granularity 10 s)",
        (
            _four(
                "avg:a{host:h01}.fill(zero)",
                "avg:a{host:h01}.fill(zero).rollup(<s>,<g>)",
                _fill(_gauge("a", filters={"host": "h01"}), "zero", 300),
            ),
        ),
        granularity=10,
    ),
    Shape("own rollup with interval", (Q_OWN_ROLLUP,)),
    Shape(
        "own rollup without interval",
        (_value("avg:a{*}.rollup(sum)", "avg:a{*}.rollup(sum,<g>)", _gauge("a", method="sum")),),
    ),
    Shape(
        "own rollup interval != granularity",
        error_query="avg:a{*}.rollup(sum, 300)",
        error_at=22,
        error_says="granularity",
    ),
    Shape("distribution avg: (four statistics)", (Q_DIST,)),
    Shape(
        "distribution max: by host",
        (
            _four(
                "max:req.latency{*} by {host}",
                "<s>:req.latency{*} by {host}.rollup(<s>,<g>)",
                _dist(_HOST),
            ),
        ),
    ),
    Shape(
        "distribution mixed with a gauge",
        (
            _four(
                "avg:req.latency{*} / avg:a{*}",
                "<s>:req.latency{*}.rollup(<s>,<g>) / avg:a{*}.rollup(<s>,<g>)",
                _binary("/", _dist(), _gauge("a")),
            ),
        ),
    ),
    Shape(
        "percentile p50",
        (
            _value(
                "p50:req.latency{*}", "p50:req.latency{*}.rollup(avg,<g>)", _dist(percentile="50")
            ),
        ),
    ),
    Shape("percentile p99 by host", (Q_P99,)),
    Shape(
        "percentile p99.9",
        (
            _value(
                "p99.9:req.latency{*}",
                "p99.9:req.latency{*}.rollup(avg,<g>)",
                _dist(percentile="99.9"),
            ),
        ),
    ),
    Shape(
        "count: on a distribution",
        (
            _value(
                "count:req.latency{*}",
                "count:req.latency{*}.rollup(avg,<g>)",
                _dist(statistic="count"),
            ),
        ),
    ),
    Shape(
        "several queries, all kinds",
        (Q_PLAIN, Q_GROUPED, Q_RATIO, Q_TOP, Q_P99, Q_DIST, Q_OWN_ROLLUP, Q_AS_COUNT),
    ),
    Shape("statistics avg,max", (Q_GROUPED, Q_RATIO, Q_P99), statistics=("avg", "max")),
    Shape("statistics sum", (Q_DIST, Q_AS_COUNT), statistics=("sum",)),
    Shape("error: unclosed scope", error_query="avg:a{host:h01", error_at=15, error_says="'}'"),
    Shape(
        "error: unknown aggregator", error_query="mean:a{*}", error_at=1, error_says="aggregator"
    ),
    Shape(
        "error: unknown function",
        error_query="avg:a{*} + per_sec(avg:b{*})",
        error_at=12,
        error_says="per_sec",
    ),
    Shape(
        "error: top() N",
        error_query="top(avg:a{*} by {host}, 7, 'mean', 'desc')",
        error_at=25,
        error_says="5",
    ),
    Shape("error: empty scope", error_query="avg:a{} by {host}", error_at=7, error_says="scope"),
    Shape("error: trailing text", error_query="avg:a{*} avg:b{*}", error_at=10, error_says=""),
    Shape("error: two queries in one item", error_query="avg:a{*}, avg:b{*}", error_says="holds 2"),
    Shape("error: missing operand", error_query="avg:a{*} *", error_at=11, error_says=""),
)


def fake_server() -> FakeDatadog:
    """The server every shape runs against (enter it with ``with``)."""
    return FakeDatadog(api_keys={API}, app_keys={APP}, hosts=HOSTS, distribution_metrics={DIST})


def _config(fake: FakeDatadog, shape: Shape, queries: Sequence[str]) -> dd.DDStreamConfig:
    return dd.DDStreamConfig(api_key=API, app_key=APP, base_url=fake.url, queries=list(queries),
                             range_start=START, range_end=END, chunk_seconds=CHUNK,
                             granularity=shape.granularity, statistics=shape.statistics,
                             distribution_metrics=[DIST], max_retries=0)  # fmt: skip


def _sent(query: Query, shape: Shape) -> list[str]:
    g = str(shape.granularity)
    if query.value_only:
        return [query.sent.replace("<g>", g)]
    return [query.sent.replace("<s>", s).replace("<g>", g) for s in STATS if s in shape.statistics]


@dataclass
class Outcome:
    """What a row showed: the sub-queries sent (per query), and the result."""

    subqueries: list[list[str]]
    result: str
    requests: int = 0


def _expected_rows(shape: Shape, grouped: list[bool]) -> dict[tuple[int, str, int], list[float]]:
    """(query, series tags, time) -> [avg, min, max, sum, value], per chunk as the fake answers."""
    g = shape.granularity
    rows: dict[tuple[int, str, int], list[float]] = {}
    for chunk in range(START, END, CHUNK):
        stamps = list(range(chunk, chunk + CHUNK, g))  # START and CHUNK are multiples of g
        for q, query in enumerate(shape.queries):
            columns: dict[str, ref.SeriesSet] = {}
            if query.value_only:
                columns["value"] = query.truth("value", chunk, chunk + CHUNK, g)
            else:
                for s in shape.statistics:
                    columns[s] = query.truth(s, chunk, chunk + CHUNK, g)
            keys = sorted({key for series in columns.values() for key in series})
            for key in keys:
                present = any(key in c and not np.isnan(c[key]).all() for c in columns.values())
                if grouped[q] and not present:
                    continue  # no series answered: no rows in this chunk
                for j, ts in enumerate(stamps):
                    cells = [float(columns[m][key][j]) if m in columns and key in columns[m]
                             else math.nan for m in (*STATS, "value")]  # fmt: skip
                    rows[(q, ",".join(key), ts)] = cells
            if not grouped[q] and not keys:  # an ungrouped query: every bucket, empty or not
                for ts in stamps:
                    rows[(q, "", ts)] = [math.nan] * 5
    return rows


def _streamed_rows(batches: Sequence[Any]) -> dict[tuple[int, str, int], list[float]]:
    rows: dict[tuple[int, str, int], list[float]] = {}
    for batch in batches:
        # One ungrouped query: one dense series, no query or series columns.
        tags = batch.get("series_tags", [""])
        n = len(batch["timestamps"])
        query = batch.get("query", np.zeros(n, dtype=np.int32))
        series = batch.get("series", np.zeros(n, dtype=np.int32))
        order = []
        for i, ts in enumerate(batch["timestamps"].tolist()):
            key = (int(query[i]), tags[int(series[i])], int(ts))
            order.append(key)
            assert key not in rows, f"row {key} streamed twice"
            value = float(batch["value"][i]) if "value" in batch else math.nan
            rows[key] = [*(float(batch[m][i]) for m in STATS), value]
        assert order == sorted(order), "rows not ordered by query, series tags, time"
    return rows


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _check_error(fake: FakeDatadog, shape: Shape) -> str:
    items = list(shape.items) or [shape.error_query]
    try:
        dd.explain(_config(fake, shape, items))
    except dd.ConfigError as e:
        message = str(e)
    else:
        raise AssertionError(f"{shape.error_query!r} was accepted")
    if shape.error_at == 0:  # a rule about the item, not a character of it
        assert message.startswith("queries[0] ") and shape.error_says in message, message
        return message
    head, excerpt, caret = message.split("\n")[:3]
    assert head.startswith(f"queries[0]: at character {shape.error_at}: "), message
    assert shape.error_says in head, message
    column = caret.index("^")
    assert caret.strip() == "^" and excerpt.startswith("  "), message
    text = shape.error_query
    offending = text[shape.error_at - 1] if shape.error_at <= len(text) else ""
    # The excerpt is the text around the character (at most ~60 of them); the caret under it.
    assert excerpt[2:] in text, message
    assert excerpt[column : column + 1] == offending, message
    start = text.index(excerpt[2:]) if excerpt[2:] else 0
    assert start + column - 2 == shape.error_at - 1, message
    # With query= the same error, prefixed "query: ".
    with_query = dd.DDStreamConfig(
        api_key=API,
        app_key=APP,
        base_url=fake.url,
        query=text,
        range_start=START,
        range_end=END,
        granularity=shape.granularity,
    )
    try:
        dd.explain(with_query)
    except dd.ConfigError as e:
        again = str(e)
    else:
        raise AssertionError(f"{text!r} was accepted as query=")
    assert again == "query: " + message.split(": ", 1)[1], again
    return head.split(": ", 1)[1]


def run_shape(fake: FakeDatadog, shape: Shape) -> Outcome:
    """Stream the shape's queries and compare every cell with the truth (AssertionError when a
    cell differs), or check its error. ``fake`` must be ``fake_server()``'s."""
    if not shape.queries:
        return Outcome([], _check_error(fake, shape))
    texts = [q.text for q in shape.queries]
    cfg = _config(fake, shape, texts)
    plan = dd.explain(cfg)
    want_sent = [_sent(q, shape) for q in shape.queries]
    got_sent = [list(q["subqueries"]) for q in plan["queries"]]
    assert got_sent == want_sent, (got_sent, want_sent)
    for query, compiled in zip(shape.queries, plan["queries"]):
        wanted = ["value"] if query.value_only else [s for s in STATS if s in shape.statistics]
        assert compiled["statistics"] == wanted
        assert (compiled["reason"] is not None) == query.value_only
    grouped = [bool(q["grouped"]) for q in plan["queries"]]
    fake.clear_log()
    with dd.DDStream(cfg) as stream:
        batches = list(stream.batches())
    # What reached the server is what explain said: every sub-query, once per chunk.
    answered = [r for r in fake.query_requests if r.status == 200]
    chunks = len(range(START, END, CHUNK))
    assert len(answered) == plan["requests_per_chunk"] * chunks
    seen = sorted(part for r in answered for part in split_top_level(r.query or ""))
    assert seen == sorted([s for sent in want_sent for s in sent] * chunks), seen
    if any(q.value_only for q in shape.queries):
        assert all("value" in b for b in batches)
    else:
        assert all("value" not in b for b in batches)
    got = _streamed_rows(batches)
    want = _expected_rows(shape, grouped)
    assert sorted(got) == sorted(want), (sorted(set(got) ^ set(want)))[:5]
    filled = 0
    for key, cells in want.items():
        assert all(_same(a, b) for a, b in zip(got[key], cells)), (key, got[key], cells)
        filled += sum(not math.isnan(c) for c in cells)
    assert filled, "a shape whose truth is empty proves little"
    return Outcome(got_sent, "exact against the fake", len(answered))


def markdown_table(outcomes: Sequence[tuple[Shape, Outcome]]) -> str:
    """shape | sub-queries sent | result, one row per shape."""

    def code(text: str) -> str:
        return "`" + text.replace("|", "\\|") + "`"

    lines = [
        "| Shape | Query | Sub-queries sent (per query; … = the statistics between) | Result |",
        "|---|---|---|---|",
    ]
    for shape, outcome in outcomes:
        queries = "<br>".join(code(q.text) for q in shape.queries) or code(shape.error_query)
        # Four sub-queries differ only by their statistic: the first and the last say how.
        sent = "<br>".join(
            " … ".join(code(s) for s in (subs if len(subs) < 3 else [subs[0], subs[-1]]))
            for subs in outcome.subqueries
        )
        result = outcome.result if shape.queries else "ConfigError: " + code(outcome.result)
        lines.append(f"| {shape.name} | {queries} | {sent or '—'} | {result} |")
    return "\n".join(lines)
