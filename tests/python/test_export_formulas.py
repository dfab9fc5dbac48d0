"""``ddstream export`` with formulas (``--formula``, ``NAME=QUERY`` arguments or queries-file
lines, ``--api``): the real command on a local Dask cluster against FakeDatadog, its Parquet files
exact against ``test_dask_formulas``' numpy truth, an export cut short by a failing chunk
completed by the rerun, and usage errors that name the bad argument before any request or
cluster. The followed export (``--follow``) with formulas is in test_follow_export_v2.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("dask.dataframe", reason="ddstream export needs dask[dataframe]")
pytest.importorskip("distributed", reason="ddstream export needs distributed")

import pandas as pd

import ddstream as dd
from conftest import API_KEY, APP_KEY, subprocess_env
from ddstream import cli
from ddstream.testing import FakeDatadog
from ddstream.testing._exchange import CannedResponse, Exchange
from reference import bucket_starts
from test_dask_formulas import (
    DAY,
    END,
    FORMULAS,
    NAMED,
    START,
    V2_PATH,
    A,
    B,
    C,
    G,
    check_exact,
)

CHUNK = DAY // 2
CHUNKS = 4  # the plan's first chunk starts at START's first bucket: four cover two days


class RejectChunk(CannedResponse):
    """A 400 (query rejected, never retried) for the v2 request of the chunk from ``start``."""

    def __init__(self, start: int) -> None:
        super().__init__(400, '{"errors": ["rejected by the test"]}', path=V2_PATH, times=None)
        self.start = start

    def matches(self, exchange: Exchange) -> bool:
        if not super().matches(exchange):
            return False
        attributes = json.loads(exchange.body)["data"]["attributes"]
        return bool(attributes["from"] // 1000 == self.start)


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def env_for(server: FakeDatadog) -> dict[str, str]:
    env = subprocess_env(server)
    env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
    if os.environ.get("DDSTREAM_LIBRARY"):
        env["DDSTREAM_LIBRARY"] = os.environ["DDSTREAM_LIBRARY"]
    return env


def export_command(out: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "ddstream", "export", *arguments, "--to-parquet", str(out),
            "--from", str(START), "--to", str(END), "--granularity", str(G),
            "--chunk-seconds", str(CHUNK), "--chunks-per-partition", "1", "--workers", "1",
            "--threads-per-worker", "1", "--no-cache"]


def v2_requests(server: FakeDatadog, since: int) -> int:
    return sum(1 for r in server.requests[since:] if r.path == V2_PATH)


def test_formulas_exported_exactly_and_resumed_after_a_failed_run(fake: FakeDatadog,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    formulas = [part for f in FORMULAS for part in ("--formula", f)]
    command = export_command(out, *formulas, *(f"{n}={q}" for n, q in NAMED.items()))
    plan = dd.DDStream.plan(dd.DDStreamConfig(queries=NAMED, formulas=FORMULAS, range_start=START,
                                              range_end=END, granularity=G, chunk_seconds=CHUNK))
    assert len(plan) == CHUNKS
    (last_start, last_end) = plan[-1]
    fake.add_fault(RejectChunk(last_start))
    first = subprocess.run(command, env=env_for(fake), capture_output=True, text=True,
                           timeout=180)
    assert first.returncode == 6, first.stderr  # query rejected
    assert "rejected by the test" in first.stderr
    kept = sorted(p.name for p in out.glob("part-*.parquet"))
    # The rejected chunk's partition is not written; those done before it are (dask's order of a
    # fixed graph on one thread puts others before it).
    assert 1 <= len(kept) < CHUNKS
    assert not any(name.endswith(f"-{last_start}-{last_end}.parquet") for name in kept)
    fake.clear_faults()
    before = len(fake.requests)
    again = subprocess.run(command, env=env_for(fake), capture_output=True, text=True,
                           timeout=180)
    assert again.returncode == 0, again.stderr
    missing = CHUNKS - len(kept)
    assert (f"3 formulas over 3 queries, {missing} partitions written, {len(kept)} already "
            "there") in again.stderr
    assert v2_requests(fake, before) == missing == len(fake.requests) - before
    frame = pd.read_parquet(out)
    assert check_exact(frame, FORMULAS) == 7 * len(bucket_starts(START, END, G))
    assert frame[["avg", "min", "max", "sum"]].isna().all(axis=None)
    for key in (API_KEY, APP_KEY):
        assert key not in first.stderr + again.stderr + first.stdout + again.stdout


def test_named_queries_file_arguments_and_api(fake: FakeDatadog, tmp_path: Path) -> None:
    """Named lines of a queries file with a NAME=QUERY argument beside it, ``--api v2``; then
    ``--api v2`` without formulas: each named query is its own formula, labelled by its text."""
    queries = tmp_path / "named.txt"
    queries.write_text(f"# the used and total\na = {A}\n\nb={B}\n", encoding="utf-8")
    out = tmp_path / "formulas"
    done = subprocess.run(
        export_command(out, str(queries), f"c={C}", "--formula", "a - c", "--formula", "b",
                       "--api", "v2"),
        env=env_for(fake), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "2 formulas over 3 queries, 4 partitions written, 0 already there" in done.stderr
    check_exact(pd.read_parquet(out), ["a - c", "b"])
    # The same file, no formula: v2 reads each query as its own formula.
    out = tmp_path / "each"
    before = len(fake.requests)
    done = subprocess.run(export_command(out, str(queries), "--api", "v2"), env=env_for(fake),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    check_exact(pd.read_parquet(out), [A, B])
    # Each query its own partitions (queries_per_partition 1): one POST a query and chunk.
    assert v2_requests(fake, before) == 2 * CHUNKS == len(fake.requests) - before


def run_cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, err.getvalue()


@pytest.mark.parametrize("follow", [False, True])
def test_usage_errors_name_the_argument_before_any_request(fake: FakeDatadog, tmp_path: Path,
                                                           follow: bool) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text(f"{A}\n", encoding="utf-8")
    named = tmp_path / "named.txt"
    named.write_text(f"a={A}\n", encoding="utf-8")
    base = ["--to-parquet", str(tmp_path / "out"), "--base-url", fake.url, "--from", str(START),
            "--to", str(END), *(["--follow"] if follow else [])]
    cases: list[tuple[list[str], str]] = [
        ([], "no query: give a QUERIES_FILE, or NAME=QUERY arguments with --formula"),
        (["--formula", "a / b", "a=" + A, A],
         f"{A!r} is neither NAME=QUERY (e.g. 'a=avg:system.cpu.user{{*}}') nor a queries file"),
        (["--formula", "a", str(plain)], f"with --formula, each query is NAME=QUERY (e.g. "
                                         f"'a=avg:system.cpu.user{{*}}'), not {A!r}"),
        (["--formula", "a", str(named), "a=" + B], "the query name 'a' is given twice"),
        ([str(named)], f"'a={A}' is a named query: NAME=QUERY goes with --formula (or --api v2)"),
        (["b=" + B], f"'b={B}' is a named query: NAME=QUERY goes with --formula"),
        (["--formula", "a / z", "a=" + A], "formulas[0]: at character 5: unknown query name 'z'"),
        (["--formula", "a", "--api", "v1", "a=" + A], "formulas need the v2 endpoint"),
        ([str(tmp_path / "nosuch.txt")], "nosuch.txt' is neither NAME=QUERY"),
        ([str(plain), str(plain)], f"query listed more than once: {A}"),
    ]
    if not follow:  # options of the Dask export only
        cases.append((["--formula", "a", "a=" + A, "--queries-per-partition", "2"],
                      "queries_per_partition: with formulas every partition reads all"))
    for arguments, message in cases:
        code, err = run_cli("export", *arguments, *base)
        assert code == 2, (arguments, err)
        assert message in err, (arguments, err)
    assert fake.requests == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
