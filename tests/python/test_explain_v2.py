"""``ddstream.explain`` and ``ddstream explain`` for streams with formulas (Datadog's v2): the
explanation is held to what a real stream then sends FakeDatadog — the first chunk's POST body
byte for byte, the path, the chunk count — and a v1 explanation keeps its layout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY
from ddstream.testing import FakeDatadog

DAY = 86400
G = 60
# 2026-11-01T00:00:00Z; the ranges below start off the grid, so the first chunk's bounds are
# the plan's, not the range's.
START = 1_793_491_200 + 37
A = "avg:v2py.used{*} by {host}"
B = "avg:v2py.total{*}"
V2_PATH = "/api/v2/query/timeseries"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def config(fake: FakeDatadog, **changes: Any) -> dd.DDStreamConfig:
    values: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": fake.url,
        "queries": {"a": A, "b": B}, "formulas": ["a / b * 100", "b"],
        "range_start": START, "range_end": START + 2 * DAY, "granularity": G,
        "chunk_seconds": DAY // 2, "max_retries": 0, "max_in_flight": 1,
    }
    values.update(changes)
    return dd.DDStreamConfig(**values)


def first_chunk_sent(fake: FakeDatadog, cfg: dd.DDStreamConfig) -> tuple[Any, int, int]:
    """The request a stream over ``cfg`` sends for its first chunk, and its number of chunks and
    requests (the fake's log, read after the whole stream)."""
    before = len(fake.requests)
    with dd.DDStream(cfg) as stream:
        chunks = len(stream.chunks)
        first = next(iter(stream.batches()))
        rest = sum(1 for _ in stream.batches())
    sent = fake.requests[before:]
    starts = [r for r in sent if r.path == V2_PATH
              and json.loads(r.body)["data"]["attributes"]["from"] == first["chunk_start_ms"]]
    assert len(starts) == 1, [r.path for r in sent]
    assert rest == chunks - 1
    return starts[0], chunks, len(sent)


@pytest.mark.parametrize("changes", [
    {},  # two formulas, one grouped
    {"formulas": None, "api": "v2", "queries": {"total": B}},  # the query its own formula
    {"range_start": START + 5000, "granularity": 300, "chunk_seconds": 0},  # default chunks
])
def test_explained_body_is_what_the_fake_receives(fake: FakeDatadog,
                                                  changes: dict[str, Any]) -> None:
    cfg = config(fake, **changes)
    report = dd.explain(cfg.copy(api_key=None, app_key=None))  # no keys needed
    sent, chunks, requests = first_chunk_sent(fake, cfg)
    assert report["api"] == "v2"
    assert report["chunks"] == chunks
    assert report["requests_per_chunk"] == 1 and requests == chunks  # one POST a chunk
    [request] = report["requests"]
    assert (request["method"], request["path"]) == (sent.method, sent.path) == ("POST", V2_PATH)
    assert request["body"].encode("utf-8") == sent.body  # byte for byte
    attributes = json.loads(sent.body)["data"]["attributes"]
    assert request["chunk"] == [attributes["from"] // 1000, attributes["to"] // 1000]
    assert request["chunk"] == list(dd.DDStream.plan(cfg)[0])
    assert report["interval"] == cfg.granularity
    names = dict(cfg.queries or {})  # a dict in every case above
    assert [(q["name"], q["query"]) for q in report["queries"]] == list(names.items())
    assert [q["grouped"] for q in report["queries"]] == [" by {" in q for q in names.values()]
    assert report["formulas"] == list(cfg.formulas or [])


def test_a_v1_explanation_keeps_its_layout() -> None:
    report = dd.explain(queries=[A, B], range_start=START, range_end=START + DAY)
    assert "api" not in report
    assert list(report) == ["queries", "requests_per_chunk", "requests", "chunks"]
    assert [q["query"] for q in report["queries"]] == [A, B]
    assert report["queries"][0]["subqueries"][0] == f"{A}.rollup(avg,60)"


def test_explain_errors_point_at_the_formula() -> None:
    with pytest.raises(dd.ConfigError, match=r"formulas\[1\]: at character 5: unknown query "
                                             r"name 'c'"):
        dd.explain(queries={"a": A, "b": B}, formulas=["a", "b / c"], range_start=START,
                   range_end=START + DAY)
    with pytest.raises(dd.ConfigError, match="formulas need the v2 endpoint"):
        dd.explain(queries={"a": A}, formulas=["a"], api="v1", range_start=START,
                   range_end=START + DAY)


def test_an_empty_plan_has_no_request() -> None:
    # A range inside one bucket: no bucket starts in it, so no chunk and nothing sent.
    report = dd.explain(queries={"a": A}, formulas=["a * 2"], range_start=START + 1,
                        range_end=START + 2, granularity=3600)
    assert report["chunks"] == 0 and report["requests"] == []


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "DDSTREAM_BASE_URL")}
    package_parent = str(Path(dd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "ddstream", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_explain_shows_the_formulas_and_the_body(fake: FakeDatadog) -> None:
    times = ("--from", str(START), "--to", str(START + 2 * DAY), "--chunk-seconds",
             str(DAY // 2))
    proc = cli("explain", "--formula", "a / b * 100", "--formula", "b", f"a={A}", f"b={B}",
               *times)
    assert proc.returncode == 0, proc.stderr
    sent, chunks, _ = first_chunk_sent(fake, config(fake))
    lines = proc.stdout.splitlines()
    assert lines[:4] == [f"query a: {A}  (grouped)", f"query b: {B}", "formula 0: a / b * 100",
                         "formula 1: b"]
    assert lines[4] == f"{chunks} chunks x 1 request per chunk = {chunks} requests, interval 60 s"
    assert lines[5].endswith(f"POST {V2_PATH}")
    assert lines[6].encode("utf-8") == sent.body and len(lines) == 7
    proc = cli("explain", "--json", "--formula", "a / b * 100", "--formula", "b", f"a={A}",
               f"b={B}", *times)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == dd.explain(config(fake).copy(api_key=None, app_key=None))
