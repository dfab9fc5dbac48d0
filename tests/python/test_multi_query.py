"""Several queries in one stream (issue 14), end to end through the C library and FakeDatadog.

The stream is opened through the C API itself (``ddstream_config.queries`` and the other new
fields, set with cffi), so that these tests check the library's packing, fetching, splitting and
assembling whatever the Python options look like; the batches go through the package's own
conversion (``_batch_view``). Every value is compared with the truth computed independently of
the server (``reference.py``), and the requests are counted at the fake.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, T0
from ddstream._batch_view import batch_from_box, new_batch_box
from ddstream._lib import ffi, lib
from ddstream.testing import FakeDatadog, QueryTimedOut
from reference import expected_buckets

STATUS_OK, STATUS_END, STATUS_E_CONFIG = 0, 1, 11
STAT_AVG, STAT_MIN, STAT_MAX, STAT_SUM = 1, 2, 4, 8
STATISTICS = ("avg", "min", "max", "sum")
DAY = 86400


@dataclass(frozen=True)
class Q:
    """One simple query the fake understands, with what the reference needs for its truth."""

    space: str
    metric: str
    filters: tuple[tuple[str, str], ...] = ()
    by: tuple[str, ...] = ()
    rollup: str | None = None  # a rollup of its own: a value-only query

    @property
    def text(self) -> str:
        scope = ",".join(f"{k}:{v}" for k, v in self.filters) or "*"
        by = f" by {{{','.join(self.by)}}}" if self.by else ""
        own = f".rollup({self.rollup})" if self.rollup else ""
        return f"{self.space}:{self.metric}{{{scope}}}{by}{own}"

    def truth(self, method: str, start: int, end: int, g: int) -> dict[str, Any]:
        """Expected (timestamps, values) per series tags ("" when ungrouped)."""
        got = expected_buckets(
            self.metric, dict(self.filters), list(self.by), self.space, method, start, end, g
        )
        return {",".join(key): value for key, value in got.items()}


def queries(n: int) -> list[Q]:
    """n distinct queries, every third grouped by host, with various scopes and aggregators."""
    spaces = ("avg", "sum", "min", "max")
    out = []
    for i in range(n):
        filters = (("env", "prod"),) if i % 4 == 1 else ()
        by = ("host",) if i % 3 == 2 else ()
        out.append(Q(spaces[i % 4], f"multi.metric{i:02d}", filters, by))
    return out


class RawStream:
    """A stream opened with a ``ddstream_config`` built field by field (cffi)."""

    def __init__(self, fake: FakeDatadog, **fields: Any) -> None:
        self._keep: list[Any] = []
        cfg = ffi.new("ddstream_config *")
        lib.ddstream_config_init(cfg)
        fields = {
            "api_key": API_KEY,
            "app_key": APP_KEY,
            "base_url": fake.url,
            "range_start": T0,
            "range_end": T0 + 2 * DAY,
            "granularity": 60,
            "max_retries": 0,
            **fields,
        }
        for name, value in fields.items():
            if name == "queries":
                texts = [self._string(q) for q in value]
                array = ffi.new("const char *[]", texts)
                self._keep.append(array)
                cfg.queries = array
                cfg.query_count = len(texts)
            elif isinstance(value, str):
                setattr(cfg, name, self._string(value))
            else:
                setattr(cfg, name, value)
        self.cfg = cfg
        self.err = ffi.new("ddstream_error *")
        box = ffi.new("ddstream_stream **")
        self.status = lib.ddstream_open(cfg, box, self.err)
        self.stream = box[0] if self.status == STATUS_OK else ffi.NULL

    def _string(self, text: str) -> Any:
        s = ffi.new("char[]", text.encode())
        self._keep.append(s)
        return s

    @property
    def message(self) -> str:
        return str(ffi.string(self.err.message).decode())

    def batches(self) -> Iterator[dd.Batch]:
        assert self.status == STATUS_OK, self.message
        while True:
            box = new_batch_box()
            st = lib.ddstream_next(self.stream, -1, box, self.err)
            if st == STATUS_END:
                return
            assert st == STATUS_OK, self.message
            yield batch_from_box(box)

    def resume_token(self) -> str:
        buf = ffi.new("char[64]")
        assert lib.ddstream_resume_token(self.stream, buf, 64) == STATUS_OK
        return str(ffi.string(buf).decode())

    def close(self) -> None:
        if self.stream != ffi.NULL:
            lib.ddstream_close(self.stream)
            self.stream = ffi.NULL

    def __enter__(self) -> RawStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_against_truth(
    batches: Sequence[dd.Batch], qs: Sequence[Q], g: int = 60, stats: Sequence[str] = STATISTICS
) -> int:
    """Every row of every batch equals the reference; returns the rows checked."""
    rows = 0
    for batch in batches:
        start, end = batch["chunk_start_ms"] // 1000, batch["chunk_end_ms"] // 1000
        query = batch["query"]
        assert np.all(np.diff(query) >= 0), "rows are ordered by query"
        if "series" in batch:
            series, tags = batch["series"], batch["series_tags"]
            series_query = batch["series_query"]
        else:  # one ungrouped query: the flat shape, one series
            assert len(qs) == 1 and not qs[0].by
            series, tags = np.zeros(len(query), np.int32), [""]
            series_query = np.zeros(1, np.int32)
        assert len(series_query) == len(tags)
        for q, spec in enumerate(qs):
            truth = {s: spec.truth(s, start, end, g) for s in STATISTICS}
            mine = [k for k in range(len(tags)) if series_query[k] == q]
            names = [tags[k] for k in mine]
            assert names == sorted(names), "series ordered by tags within a query"
            if not spec.by:
                assert names == [""], "an ungrouped query has one series, tags ''"
            # Groups without a single value in the chunk may be left out (the server omits them).
            for missing in set(truth["avg"]) - set(names):
                assert all(np.isnan(truth[s][missing][1]).all() for s in STATISTICS)
            for k in mine:
                at = np.flatnonzero(series == k)
                assert np.all(query[at] == q)
                ts, _ = truth["avg"][tags[k]]
                np.testing.assert_array_equal(batch["timestamps"][at], ts)
                for s in STATISTICS:
                    want = truth[s][tags[k]][1] if s in stats else np.full(len(at), np.nan)
                    np.testing.assert_array_equal(batch[s][at], want, err_msg=f"{spec.text} {s}")
                rows += len(at)
        assert rows <= sum(len(b["timestamps"]) for b in batches)
    assert rows == sum(len(b["timestamps"]) for b in batches), "every row belongs to a query"
    return rows


@pytest.mark.parametrize("n", [2, 5, 12])
def test_values_equal_the_truth(fake: FakeDatadog, n: int) -> None:
    qs = queries(n)
    with RawStream(fake, queries=[q.text for q in qs]) as s:
        batches = list(s.batches())
    assert len(batches) == 2  # two days at 60 s: two chunks of up to 1500 buckets
    assert all(b["chunk_index"] == i for i, b in enumerate(batches))
    assert check_against_truth(batches, qs) >= 2 * 1440 * n
    for b in batches:
        assert "value" not in b
        assert b["query"].dtype == np.int32


def test_requests_per_chunk_are_the_floor(fake: FakeDatadog) -> None:
    """ceil(sub-queries / 35) requests a chunk: 12 queries x 4 statistics = 48 -> 2."""
    qs = queries(12)
    with RawStream(fake, queries=[q.text for q in qs]) as s:
        chunks = len(list(s.batches()))
    sent = fake.query_requests
    assert len(sent) == chunks * math.ceil(48 / 35) == 4
    counts = sorted(len(r.query.split(".rollup(")) - 1 for r in sent if r.query)
    assert counts == [13, 13, 35, 35]
    # Two statistics: 24 sub-queries, one request a chunk, and the others are NaN.
    fake.clear_log()
    with RawStream(fake, queries=[q.text for q in qs], statistics=STAT_MIN | STAT_SUM) as s:
        batches = list(s.batches())
    assert len(fake.query_requests) == len(batches) == 2
    check_against_truth(batches, qs, stats=("min", "sum"))


def _uri_bytes(record: Any) -> int:
    escaped = urllib.parse.quote(record.query, safe="-._~")
    return len(f"/api/v1/query?from={record.from_ts}&to={record.to_ts}&query={escaped}")


def test_budgets_split_the_requests(fake: FakeDatadog) -> None:
    qs = queries(5)  # 20 sub-queries
    with RawStream(fake, queries=[q.text for q in qs], max_subqueries_per_request=6) as s:
        batches = list(s.batches())
    assert len(fake.query_requests) == 2 * math.ceil(20 / 6)
    check_against_truth(batches, qs)
    # A URI budget that holds about three sub-queries: more requests, none over the budget.
    one = len(urllib.parse.quote(qs[0].text + ".rollup(avg,60)", safe="-._~"))
    budget = 60 + 3 * one + 12
    fake.clear_log()
    with RawStream(fake, queries=[q.text for q in qs], max_request_uri_bytes=budget) as s:
        batches = list(s.batches())
    sent = fake.query_requests
    assert len(sent) >= 2 * math.ceil(20 / 4)
    assert all(_uri_bytes(r) <= budget for r in sent)
    check_against_truth(batches, qs)
    # A budget no sub-query fits in: refused up front, naming the query.
    fake.clear_log()
    with RawStream(fake, queries=[q.text for q in qs], max_request_uri_bytes=80) as s:
        assert s.status == STATUS_E_CONFIG
        assert s.message.startswith("queries[0]: one of its sub-queries alone makes a request URI")
    assert fake.query_requests == []


def test_query_timed_out_is_split_by_subqueries(fake: FakeDatadog) -> None:
    """8 sub-queries answered 'Query timed out' above 3 a request: 8 -> 4 + 4 -> 2 x 4."""
    qs = queries(2)
    fake.add_fault(QueryTimedOut(3))
    with RawStream(fake, queries=[q.text for q in qs]) as s:
        batches = list(s.batches())
    check_against_truth(batches, qs)
    per_request = [len(r.query.split(".rollup(")) - 1 for r in fake.query_requests if r.query]
    assert sorted(per_request) == sorted([8, 4, 4, 2, 2, 2, 2] * 2)
    assert sum(1 for r in fake.query_requests if r.status == 400) == 3 * 2


def test_query_timed_out_on_one_subquery_is_split_in_time(fake: FakeDatadog) -> None:
    """One sub-query over a day times out, over half a day too, over a quarter not: 1+2+4."""
    qs = queries(1)
    fake.add_fault(QueryTimedOut(1, min_seconds=DAY // 2, status=504))
    day = T0 - T0 % DAY
    one_day = {"range_start": day, "range_end": day + DAY}
    with RawStream(fake, queries=[q.text for q in qs], statistics=STAT_MAX, **one_day) as s:
        batches = list(s.batches())
    assert len(batches) == 1
    check_against_truth(batches, qs, stats=("max",))
    spans = sorted(r.to_ts - r.from_ts + 1 for r in fake.query_requests)  # type: ignore[operator]
    assert spans == [DAY // 4] * 4 + [DAY // 2] * 2 + [DAY]


def test_timed_out_to_the_last_bucket_fails(fake: FakeDatadog) -> None:
    fake.add_fault(QueryTimedOut(0))
    with RawStream(fake, queries=[queries(1)[0].text], statistics=STAT_AVG) as s:
        box = new_batch_box()
        st = lib.ddstream_next(s.stream, -1, box, s.err)
        assert st == 22  # DDSTREAM_E_QUERY: Datadog's own 400
        assert "Query timed out" in s.message
        assert "even for one sub-query over 60 s" in s.message


def test_value_only_query_fills_the_value_column(fake: FakeDatadog) -> None:
    """A rollup of its own: one sub-query, its values in `value`, NaN statistics on its rows."""
    qs = [Q("avg", "multi.a"), Q("max", "multi.b", by=("host",), rollup="max")]
    with RawStream(fake, queries=[q.text for q in qs]) as s:
        batches = list(s.batches())
    assert len(fake.query_requests) == 2  # 5 sub-queries, one request a chunk
    assert any(".rollup(max,60)" in (r.query or "") for r in fake.query_requests)
    for b in batches:
        start, end = b["chunk_start_ms"] // 1000, b["chunk_end_ms"] // 1000
        first = b["query"] == 0
        assert np.isnan(b["value"][first]).all()
        truth = qs[1].truth("max", start, end, 60)
        for k, tags in enumerate(b["series_tags"]):
            at = np.flatnonzero(b["series"] == k)
            if b["series_query"][k] == 1:
                np.testing.assert_array_equal(b["value"][at], truth[tags][1])
                for s in STATISTICS:
                    assert np.isnan(b[s][at]).all()
        check_against_truth([_without_query(b, 1)], qs[:1])


def _without_query(batch: dd.Batch, q: int) -> dd.Batch:
    """The batch's rows and series of the other queries only (for check_against_truth)."""
    keep = batch["query"] != q
    series_keep = batch["series_query"] != q
    renumber = np.cumsum(series_keep) - 1
    out: dict[str, Any] = dict(batch)
    for key in ("timestamps", "avg", "min", "max", "sum", "query"):
        out[key] = batch[key][keep]
    out["series"] = renumber[batch["series"][keep]].astype(np.int32)
    out["series_tags"] = [t for t, k in zip(batch["series_tags"], series_keep) if k]
    out["series_query"] = batch["series_query"][series_keep]
    return out  # type: ignore[return-value]


def test_one_query_is_sent_and_shaped_as_before(fake: FakeDatadog) -> None:
    """`query` with one expression: the four rollups in one request, no query or value column."""
    q = "avg:system.cpu.user{*} by {host}"
    with RawStream(fake, query=q) as s:
        batches = list(s.batches())
    want = ",".join(f"{q}.rollup({m},60)" for m in STATISTICS)
    assert [r.query for r in fake.query_requests] == [want, want]
    for b in batches:
        assert "query" not in b and "value" not in b and "series_query" not in b
        assert "series" in b


def test_one_listed_query_has_the_query_column(fake: FakeDatadog) -> None:
    q = Q("sum", "multi.one")
    with RawStream(fake, queries=[q.text]) as s:
        batches = list(s.batches())
    for b in batches:
        assert "series" not in b
        assert (b["query"] == 0).all()
        start, end = b["chunk_start_ms"] // 1000, b["chunk_end_ms"] // 1000
        for s in STATISTICS:
            np.testing.assert_array_equal(b[s], q.truth(s, start, end, 60)[""][1])


def test_arrow_columns(fake: FakeDatadog) -> None:
    pa = pytest.importorskip("pyarrow")
    qs = [Q("avg", "multi.a"), Q("sum", "multi.b", by=("host",)), Q("max", "multi.c", rollup="max")]
    with RawStream(fake, queries=[q.text for q in qs]) as s:
        want = list(s.batches())
    with RawStream(fake, queries=[q.text for q in qs]) as s:
        c_stream = ffi.new("struct ArrowArrayStream *")
        assert lib.ddstream_stream_arrow(s.stream, c_stream, s.err) == STATUS_OK, s.message
        s.stream = ffi.NULL  # the Arrow stream owns it now
        reader = pa.RecordBatchReader._import_from_c(int(ffi.cast("uintptr_t", c_stream)))
        table = reader.read_all()
    assert table.schema.names == [
        "timestamp",
        "avg",
        "min",
        "max",
        "sum",
        "series",
        "query",
        "value",
    ]
    assert table.schema.field("query").type == pa.dictionary(pa.int32(), pa.string())
    assert table.schema.field("value").type == pa.float64()
    rows = sum(len(b["timestamps"]) for b in want)
    assert table.num_rows == rows
    texts = table.column("query").to_pylist()
    indices = np.concatenate([b["query"] for b in want])
    assert texts == [qs[i].text for i in indices]
    values = np.concatenate([b["value"] for b in want])
    got = table.column("value").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(got, values)  # nulls come back as NaN
    assert table.column("value").null_count == int(np.isnan(values).sum())


def test_resume_token_binds_the_query_list(fake: FakeDatadog) -> None:
    texts = [q.text for q in queries(3)]
    with RawStream(fake, queries=texts) as s:
        it = s.batches()
        next(it)
        token = s.resume_token()
    before = len(fake.query_requests)
    for changed in (
        {"queries": texts[:2]},
        {"queries": [texts[1], texts[0], texts[2]]},
        {"queries": texts, "statistics": STAT_AVG},
        {"query": ", ".join(texts[:2])},
    ):
        with RawStream(fake, resume_token=token, **changed) as s:
            assert s.status == STATUS_E_CONFIG, changed
            assert "resume_token was made for another query" in s.message
    assert len(fake.query_requests) == before  # refused before any request
    with RawStream(fake, queries=texts, resume_token=token) as s:
        rest = list(s.batches())
    assert [b["chunk_index"] for b in rest] == [1]
    check_against_truth(rest, queries(3))


def test_config_errors_name_the_item(fake: FakeDatadog) -> None:
    with RawStream(fake, queries=["avg:a{*}", "avg:b{host:x"]) as s:
        assert s.status == STATUS_E_CONFIG
        assert s.message.startswith(
            "queries[1]: at character 13: expected '}' to close the scope opened at character 6"
        )
    with RawStream(fake, queries=["avg:a{*}"], query="avg:b{*}") as s:
        assert s.status == STATUS_E_CONFIG
        assert "query and queries are both set" in s.message
    with RawStream(fake, queries=["avg:a{*}, avg:b{*}"]) as s:
        assert s.status == STATUS_E_CONFIG
        assert "queries[0] holds 2 queries" in s.message
    with RawStream(fake, queries=["avg:a{*}"], statistics=16) as s:
        assert s.status == STATUS_E_CONFIG
        assert "statistics must be a mask" in s.message
    assert fake.requests == []


def test_request_gate_sees_one_call_per_request(fake: FakeDatadog) -> None:
    """The gate is asked once per request (and told of its answer once), several a chunk."""
    phases: list[int] = []

    @ffi.callback("int64_t(void *, const ddstream_request_info *)")
    def gate(_data: Any, info: Any) -> int:
        phases.append(int(info.phase))
        return 0

    qs = queries(12)
    with RawStream(fake, queries=[q.text for q in qs], request_gate=gate) as s:
        batches = list(s.batches())
    sent = len(fake.query_requests)
    assert sent == 2 * len(batches) == 4
    assert phases.count(0) == sent  # DDSTREAM_REQUEST_BEFORE
    assert phases.count(1) == sent  # DDSTREAM_REQUEST_ANSWERED
    check_against_truth(batches, qs)


def test_validate_asks_the_first_query(fake: FakeDatadog) -> None:
    """ddstream_validate: the key check, then one query request with the first query's
    sub-queries (all four of a single query, as before)."""
    texts = [q.text for q in queries(3)]
    with RawStream(fake, queries=texts, enable_prefetch=0) as s:
        pass  # the config, with nothing fetched (without prefetch, only what next() asks for)
    assert fake.requests == []
    err = ffi.new("ddstream_error *")
    assert lib.ddstream_validate(s.cfg, err) == STATUS_OK, ffi.string(err.message)
    asked = [r.query for r in fake.query_requests]
    assert asked == [",".join(f"{texts[0]}.rollup({m},60)" for m in STATISTICS)]
