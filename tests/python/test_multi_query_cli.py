"""Several queries in one stream, from Python and from the ``ddstream`` command (a subprocess),
against the fake Datadog server: every value checked against the fake's truth computed
independently (reference.py), the requests counted at the server, each output format read back
(csv, jsonl, and Parquet through pandas, polars and DuckDB), ``explain``, and resuming.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import ddstream as dd
from ddstream.testing import CannedResponse, Exchange, FakeDatadog, split_top_level
from reference import expected_buckets

API, APP = "mq-api", "mq-app"
# An aligned Sunday 03:00-07:00 UTC: the fake's daily blackout (05:00-05:10) gives empty buckets.
START = 1_699_747_200 + 3 * 3600
END = START + 4 * 3600
CHUNK = 3600  # four chunks
STATS = ("avg", "min", "max", "sum")


class Spec(NamedTuple):
    """A query and what it asks of the data, for the reference."""

    text: str
    metric: str
    filters: dict[str, str] | None
    by: list[str] | None
    space: str
    rollup: str | None = None  # a query's own .rollup(m, 60): value-only, its value is m's


SPECS = [
    Spec("avg:system.cpu.user{*}", "system.cpu.user", None, None, "avg"),
    Spec("max:system.load.1{env:prod} by {host}", "system.load.1", {"env": "prod"}, ["host"],
         "max"),
    Spec("sum:mq.requests{*} by {env}", "mq.requests", None, ["env"], "sum"),
    Spec("avg:system.mem.used{env:staging}", "system.mem.used", {"env": "staging"}, None, "avg"),
]
QUERIES = [s.text for s in SPECS]

Row = tuple[int, str, int, list[float]]  # (query index, series tags, epoch seconds, stats)


def expected_rows(specs: Sequence[Spec], stats: Sequence[str] = STATS,
                  value: bool = False) -> list[Row]:
    """The rows of a stream of ``specs`` over START..END in CHUNK chunks, in the library's order:
    chunk, then query, then series tags, then time. A grouped query's group without any value
    in a chunk has no rows there (the server sends no series for it); an ungrouped query's
    buckets are all there. Statistics not in ``stats`` are NaN. With ``value``, a fifth number:
    a value-only query's value (its statistics NaN), NaN on the other queries' rows."""
    truth = []
    for spec in specs:
        per_stat = {m: expected_buckets(spec.metric, spec.filters, spec.by, spec.space, m, START,
                                        END, 60) for m in STATS}
        truth.append(per_stat)
    rows: list[Row] = []
    for chunk_start in range(START, END, CHUNK):
        for q, spec in enumerate(specs):
            groups = truth[q]["avg"]
            for key in sorted(groups, key=lambda k: ",".join(k)):
                stamps = groups[key][0]
                inside = (stamps >= chunk_start) & (stamps < chunk_start + CHUNK)
                blank = np.full(int(inside.sum()), np.nan)
                columns = [truth[q][m][key][1][inside] if m in stats and not spec.rollup
                           else blank for m in STATS]
                if value:
                    columns.append(truth[q][spec.rollup][key][1][inside] if spec.rollup
                                   else blank)
                if spec.by and all(np.isnan(truth[q][m][key][1][inside]).all() for m in STATS):
                    continue
                for i, ts in enumerate(stamps[inside].tolist()):
                    rows.append((q, ",".join(key), ts, [float(c[i]) for c in columns]))
    assert any(math.isnan(r[3][0]) for r in rows), "the range must include empty buckets"
    return rows


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def assert_rows(got: list[Row], want: list[Row]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:3] == w[:3], (g, w)
        assert all(_same(x, y) for x, y in zip(g[3], w[3])), (g, w)


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=dt.timezone.utc).timestamp())


def subqueries_per_request(fake: FakeDatadog) -> list[int]:
    """Sub-queries of each answered request, in chunk order (requests run concurrently)."""
    answered = sorted((r.from_ts or 0, -len(split_top_level(r.query or "")))
                       for r in fake.query_requests if r.status == 200)
    return [-count for _, count in answered]


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API}, app_keys={APP}) as server:
        yield server


def cli(fake: FakeDatadog | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "DDSTREAM_BASE_URL")}
    if fake is not None:
        env.update(DDSTREAM_BASE_URL=fake.url, DD_API_KEY=API, DD_APP_KEY=APP)
    package_parent = str(Path(dd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "ddstream", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def range_args(fmt: str, out: Path) -> list[str]:
    return ["--from", iso(START), "--to", iso(END), "--chunk-seconds", str(CHUNK),
            "--format", fmt, "-o", str(out), "-q"]


def stream_config(fake: FakeDatadog, **changes: Any) -> dd.DDStreamConfig:
    values: dict[str, Any] = {"api_key": API, "app_key": APP, "base_url": fake.url,
                              "queries": QUERIES, "range_start": START, "range_end": END,
                              "chunk_seconds": CHUNK, "max_retries": 0}
    values.update(changes)
    return dd.DDStreamConfig(**values)


def rows_of_batches(batches: Sequence[dd.Batch]) -> list[Row]:
    rows: list[Row] = []
    for batch in batches:
        tags = batch["series_tags"]
        for i, ts in enumerate(batch["timestamps"].tolist()):
            rows.append((int(batch["query"][i]), tags[int(batch["series"][i])], ts,
                         [float(batch[m][i]) for m in STATS]))
    return rows


# ------------------------------------------------------------------------------- Python


def test_stream_of_several_queries_is_exact(fake: FakeDatadog) -> None:
    with dd.DDStream(stream_config(fake)) as stream:
        assert stream.queries == tuple(QUERIES)
        assert "queries=" in repr(stream)
        batches = list(stream.batches())
    for batch in batches:
        assert batch["query"].dtype == np.int32 and len(batch["query"]) == len(batch["avg"])
        assert batch["series_query"].dtype == np.int32
        assert len(batch["series_query"]) == len(batch["series_tags"])
        # A series is a (query, tag set) pair: each row's query is its series' query.
        assert (batch["series_query"][batch["series"]] == batch["query"]).all()
        assert "value" not in batch  # no value-only query
    assert_rows(rows_of_batches(batches), expected_rows(SPECS))
    # 4 queries x 4 statistics = 16 sub-queries: one request per chunk.
    assert subqueries_per_request(fake) == [16] * 4


class CountingGate:
    """A request gate that counts the requests it lets through and the answers it is told."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.asked = 0
        self.statuses: list[int] = []

    def before_request(self) -> float:
        with self.lock:
            self.asked += 1
        return 0.0

    def after_response(self, status: int, limit: int | None, remaining: int | None,
                       reset_s: float | None, period_s: int | None) -> None:
        with self.lock:
            self.statuses.append(status)


def test_request_gate_sees_each_packed_request_once(fake: FakeDatadog) -> None:
    gate = CountingGate()
    # 16 sub-queries, at most 5 a request: 4 requests for each of the 4 chunks.
    with dd.DDStream(stream_config(fake, max_subqueries_per_request=5),
                     request_gate=gate) as stream:
        assert_rows(rows_of_batches(list(stream.batches())), expected_rows(SPECS))
    assert subqueries_per_request(fake) == [5, 5, 5, 1] * 4
    assert gate.asked == len(gate.statuses) == len(fake.query_requests) == 16
    assert set(gate.statuses) == {200}


def test_resume_token_of_several_queries(fake: FakeDatadog) -> None:
    cfg = stream_config(fake)
    with dd.DDStream(cfg) as stream:
        first = [stream.next_batch() for _ in range(2)]
        token = stream.resume_token()
    fake.clear_log()
    with dd.DDStream(cfg, resume=token) as resumed:
        rest = list(resumed.batches())
    assert [b["chunk_index"] for b in rest] == [2, 3]
    assert fake.query_requests and all(r.from_ts is not None and r.from_ts >= START + 2 * CHUNK
                                       for r in fake.query_requests)
    assert_rows(rows_of_batches([b for b in first if b is not None] + rest),
                expected_rows(SPECS))
    # The token binds the whole list: another list, or the same in another order, is refused.
    for other in (QUERIES[:3], [QUERIES[1], QUERIES[0], *QUERIES[2:]]):
        with pytest.raises(dd.ConfigError):
            dd.DDStream(cfg.copy(queries=other), resume=token)


class FailChunk(CannedResponse):
    """A 400 (a query error, not retried) for the request of the chunk starting at ``start``."""

    def __init__(self, start: int) -> None:
        super().__init__(400, '{"errors": ["Error parsing query: a test fault"]}')
        self.start = start

    def matches(self, exchange: Exchange) -> bool:
        return super().matches(exchange) and exchange.params.get("from") == str(self.start)


def test_cli_resume_of_several_queries(fake: FakeDatadog) -> None:
    """An export to stdout failing at chunk 2 says how to fetch the rest; --resume fetches
    exactly chunks 2 and 3, and the two outputs together are the whole export."""
    args = ["--from", iso(START), "--to", iso(END), "--chunk-seconds", str(CHUNK), "-q"]
    fake.add_fault(FailChunk(START + 2 * CHUNK))
    failed = cli(fake, "query", *QUERIES, *args)
    assert failed.returncode == 6, failed.stderr
    hint = [line for line in failed.stderr.splitlines() if "--resume" in line]
    assert len(hint) == 1 and "chunks 0..1 were written" in hint[0], failed.stderr
    token = hint[0].rsplit(" ", 1)[1]
    fake.clear_log()
    rest = cli(fake, "query", *QUERIES, *args, "--resume", token)
    assert rest.returncode == 0, rest.stderr
    assert sorted({r.from_ts for r in fake.query_requests}) == [START + 2 * CHUNK,
                                                               START + 3 * CHUNK]
    first_lines, rest_lines = failed.stdout.splitlines(), rest.stdout.splitlines()
    assert first_lines[0] == rest_lines[0]  # each run writes its header
    body = list(csv.reader(first_lines[1:] + rest_lines[1:]))
    assert_rows([(QUERIES.index(r[1]), r[2], epoch(r[0]),
                  [float(x) if x else math.nan for x in r[3:7]]) for r in body],
                expected_rows(SPECS))
    # The token is the list's: other queries refuse it before any request.
    fake.clear_log()
    refused = cli(fake, "query", *QUERIES[:3], *args, "--resume", token)
    assert refused.returncode == 2 and "resume_token" in refused.stderr
    assert fake.query_requests == []


def test_explain_from_python() -> None:
    report = dd.explain(queries=QUERIES, range_start=START, range_end=END, chunk_seconds=CHUNK,
                        statistics=("avg", "max"))
    assert [q["query"] for q in report["queries"]] == QUERIES
    assert [q["grouped"] for q in report["queries"]] == [bool(s.by) for s in SPECS]
    assert all(q["statistics"] == ["avg", "max"] and len(q["subqueries"]) == 2
               for q in report["queries"])
    assert report["chunks"] == 4 and report["requests_per_chunk"] == 1
    assert [tuple(s) for s in report["requests"][0]["subqueries"]] == [
        (q, stat) for q in range(4) for stat in ("avg", "max")]
    # The same config, as a DDStreamConfig.
    cfg = dd.DDStreamConfig(queries=QUERIES, range_start=START, range_end=END,
                            chunk_seconds=CHUNK, statistics=["max", "avg"])
    assert dd.explain(cfg) == report
    with pytest.raises(dd.ConfigError, match=r"queries\[1\]"):
        dd.explain(queries=[QUERIES[0], "avg:system.cpu.user{host:a"], range_start=START,
                   range_end=END)


# ------------------------------------------------------------------------------- the CLI


def read_csv_rows(path: Path, stats: Sequence[str] = STATS) -> tuple[list[str], list[Row]]:
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    header, body = table[0], table[1:]
    rows = [(QUERIES.index(r[1]), r[2], epoch(r[0]),
             [float(x) if x else math.nan for x in r[3:7]]) for r in body]
    return header, rows


def test_cli_csv_of_several_queries_is_exact(fake: FakeDatadog, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    proc = cli(fake, "query", *QUERIES, *range_args("csv", out))
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv_rows(out)
    assert header == ["timestamp", "query", "series", "avg", "min", "max", "sum"]
    assert_rows(rows, expected_rows(SPECS))
    assert subqueries_per_request(fake) == [16] * 4
    for key in (API, APP):
        assert key not in proc.stdout + proc.stderr


def test_cli_comma_separated_query_is_the_same_stream(fake: FakeDatadog, tmp_path: Path) -> None:
    # One argument holding comma-separated queries (a comma inside {} does not split) reads as
    # the same queries given one by one.
    texts = [QUERIES[0], "avg:system.cpu.user{env:prod,host:h00} by {host}"]
    listed, joined = tmp_path / "listed.csv", tmp_path / "joined.csv"
    assert cli(fake, "query", *texts, *range_args("csv", listed)).returncode == 0
    proc = cli(fake, "query", ", ".join(texts), *range_args("csv", joined))
    assert proc.returncode == 0, proc.stderr
    assert joined.read_text(encoding="utf-8") == listed.read_text(encoding="utf-8")
    with dd.DDStream(stream_config(fake, queries=None, query=",".join(texts))) as stream:
        assert stream.queries == tuple(texts)


def test_cli_queries_file_statistics_and_budget(fake: FakeDatadog, tmp_path: Path) -> None:
    queries_file = tmp_path / "queries.txt"
    queries_file.write_text(f"# the dashboard's queries\n\n{QUERIES[0]}\n  {QUERIES[1]}  \n"
                            f"# {QUERIES[2]} is off\n\n{QUERIES[3]}\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    # One query on the command line, three from the file: four, in that order.
    proc = cli(fake, "query", QUERIES[2], "--queries-file", str(queries_file),
               "--statistics", "avg,max", "--max-subqueries-per-request", "3",
               *range_args("csv", out))
    assert proc.returncode == 0, proc.stderr
    order = [QUERIES[2], QUERIES[0], QUERIES[1], QUERIES[3]]
    specs = [SPECS[QUERIES.index(q)] for q in order]
    with open(out, newline="", encoding="utf-8") as handle:
        body = list(csv.reader(handle))[1:]
    rows = [(order.index(r[1]), r[2], epoch(r[0]), [float(x) if x else math.nan for x in r[3:7]])
            for r in body]
    assert_rows(rows, expected_rows(specs, stats=("avg", "max")))
    # 4 queries x 2 statistics = 8 sub-queries, at most 3 a request: 3 requests per chunk.
    assert subqueries_per_request(fake) == [3, 3, 2] * 4


def test_cli_jsonl_of_several_queries(fake: FakeDatadog, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli(fake, "query", *QUERIES[:2], *range_args("jsonl", out))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert list(lines[0]) == ["timestamp", "query", "series", "avg", "min", "max", "sum"]
    rows = [(QUERIES.index(r["query"]), r["series"], epoch(r["timestamp"]),
             [math.nan if r[m] is None else r[m] for m in STATS]) for r in lines]
    assert_rows(rows, expected_rows(SPECS[:2]))


def test_cli_table_of_several_queries(fake: FakeDatadog) -> None:
    proc = cli(fake, "query", *QUERIES[:2], "--from", iso(START), "--to", iso(END),
               "--chunk-seconds", str(CHUNK), "--format", "table", "-q")
    assert proc.returncode == 0, proc.stderr
    head, *lines = proc.stdout.splitlines()
    assert head.split() == ["timestamp", "query", "series", "avg", "min", "max", "sum"]
    want = expected_rows(SPECS[:2])
    assert len(lines) == len(want)
    width = max(len(q) for q in QUERIES[:2])  # the query column: as wide as the longest
    for line, (q, tags, ts, stats) in zip(lines, want):
        assert line.startswith(f"{iso(ts):<20}  {QUERIES[q]:<{width}}  {tags:<24}  "), line
        cells = line[20 + 2 + width + 2 + 24 + 2:].split()
        assert len(cells) == sum(not math.isnan(v) for v in stats)


def test_cli_parquet_query_column_in_pandas_polars_duckdb(fake: FakeDatadog,
                                                          tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    out = tmp_path / "out.parquet"
    proc = cli(fake, "query", *QUERIES, *range_args("parquet", out))
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out)
    stamps = frame["timestamp"].astype("datetime64[ns, UTC]").astype("int64") // 10**9
    rows = [(QUERIES.index(str(q)), str(s), int(t), [float(x) for x in v])
            for q, s, t, *v in zip(frame["query"], frame["series"], stamps,
                                   *(frame[m].astype("float64") for m in STATS))]
    assert_rows(rows, expected_rows(SPECS))
    want = expected_rows(SPECS)
    counts = {q: sum(1 for r in want if r[0] == i) for i, q in enumerate(QUERIES)}
    pl = pytest.importorskip("polars")
    grouped = pl.read_parquet(out).group_by(pl.col("query").cast(pl.Utf8)).len()
    assert dict(zip(grouped["query"].to_list(), grouped["len"].to_list())) == counts
    duckdb = pytest.importorskip("duckdb")
    answer = duckdb.sql(f"select query::varchar, count(*) from read_parquet('{out}') "
                        "group by 1").fetchall()
    assert dict(answer) == counts


def test_cli_explain(tmp_path: Path) -> None:
    # No server, no keys: explain sends nothing.
    proc = cli(None, "explain", *QUERIES, "--from", iso(START), "--to", iso(END),
               "--chunk-seconds", str(CHUNK), "--max-subqueries-per-request", "10")
    assert proc.returncode == 0, proc.stderr
    report = dd.explain(queries=QUERIES, range_start=START, range_end=END, chunk_seconds=CHUNK,
                        max_subqueries_per_request=10)
    text = proc.stdout
    for i, query in enumerate(report["queries"]):
        assert f"query {i}: {query['query']}" in text
        for sub in query["subqueries"]:
            assert f"  {sub}\n" in text
    assert "4 chunks x 2 requests per chunk = 8 requests" in text
    assert "request 1: 10 sub-queries" in text and "request 2: 6 sub-queries" in text
    as_json = cli(None, "explain", *QUERIES, "--from", iso(START), "--to", iso(END),
                  "--chunk-seconds", str(CHUNK), "--max-subqueries-per-request", "10", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == report


@pytest.mark.parametrize(("args", "message"), [
    (["query"], "no query"),
    (["query", QUERIES[0], QUERIES[1], "--statistics", "avg,p99"], "statistics"),
    (["query", QUERIES[0], "avg:system.cpu.user{host:a"], "queries[1]"),
    (["query", "--queries-file", "/nonexistent/queries.txt"], "cannot read"),
    (["explain", QUERIES[0], "--statistics", ","], "statistics"),
])
def test_cli_mistakes_are_usage_errors(fake: FakeDatadog, args: list[str], message: str) -> None:
    proc = cli(fake, *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert fake.query_requests == []


VALUE_ONLY = Spec("max:system.load.1{*} by {host}.rollup(min, 60)", "system.load.1", None,
                  ["host"], "max", rollup="min")


def test_value_only_query_in_python_csv_and_jsonl(fake: FakeDatadog, tmp_path: Path) -> None:
    specs = [SPECS[0], VALUE_ONLY]
    texts = [s.text for s in specs]
    want = expected_rows(specs, value=True)
    with dd.DDStream(stream_config(fake, queries=texts)) as stream:
        batches = list(stream.batches())
    got = rows_of_batches(batches)
    values = [float(v) for b in batches for v in b["value"].tolist()]
    assert_rows([(*r[:3], [*r[3], v]) for r, v in zip(got, values)], want)
    out = tmp_path / "out.csv"
    proc = cli(fake, "query", *texts, *range_args("csv", out))
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["timestamp", "query", "series", "avg", "min", "max", "sum", "value"]
    assert_rows([(texts.index(r[1]), r[2], epoch(r[0]),
                  [float(x) if x else math.nan for x in r[3:8]]) for r in table[1:]], want)
    out = tmp_path / "out.jsonl"
    proc = cli(fake, "query", *texts, *range_args("jsonl", out))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert_rows([(texts.index(r["query"]), r["series"], epoch(r["timestamp"]),
                  [math.nan if r[m] is None else r[m] for m in (*STATS, "value")])
                 for r in lines], want)


def test_empty_range_still_gets_the_columns(fake: FakeDatadog, tmp_path: Path) -> None:
    # A range shorter than one bucket: no row, and still the header the rows would have had.
    texts = [SPECS[0].text, VALUE_ONLY.text]
    out = tmp_path / "empty.csv"
    proc = cli(fake, "query", *texts, "--from", str(START + 1), "--to", str(START + 30),
               "--format", "csv", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == "timestamp,query,series,avg,min,max,sum,value\n"


def test_cli_one_query_output_is_unchanged(fake: FakeDatadog, tmp_path: Path) -> None:
    # One query, on the command line or alone in a file: the columns of a one-query stream.
    queries_file = tmp_path / "one.txt"
    queries_file.write_text(f"# one\n{QUERIES[1]}\n", encoding="utf-8")
    for source in ([QUERIES[1]], ["--queries-file", str(queries_file)]):
        out = tmp_path / "one.csv"
        proc = cli(fake, "query", *source, *range_args("csv", out))
        assert proc.returncode == 0, proc.stderr
        with open(out, newline="", encoding="utf-8") as handle:
            table = list(csv.reader(handle))
        assert table[0] == ["timestamp", "series", "avg", "min", "max", "sum"]
        rows = [(1, r[1], epoch(r[0]), [float(x) if x else math.nan for x in r[2:6]])
                for r in table[1:]]
        assert_rows(rows, [(1, *r[1:]) for r in expected_rows(SPECS[1:2])])
