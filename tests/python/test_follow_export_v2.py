"""The followed Parquet export (``FollowExport``, ``ddstream export --follow``) with formulas over
named queries (v2): on a FakeClock shared by the fake server and the stream, every file's rows
are exact against ``test_formulas``' numpy truth, each bucket and host once across files and
restarts, one request per new chunk and none before it settled; the state binds the formulas;
and the real command in real time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, subprocess_env
from ddstream._follow_export import STATE_FILE, FollowExport
from ddstream.testing import FakeClock, FakeDatadog
from reference import bucket_starts, expected_buckets
from test_follow_v2 import FOLLOW_START, FORMULA, HOSTS, SETTLE, STEP, asked
from test_formulas import START, A, B, G, truths

pytest.importorskip("pyarrow.parquet", reason="the followed export writes Parquet")


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def export(server: FakeDatadog, clock: FakeClock, folder: Path, partition: str,
           **changes: Any) -> FollowExport:
    options: dict[str, Any] = {
        "formulas": [FORMULA], "start": FOLLOW_START, "granularity": G, "chunk_seconds": STEP,
        "settle_seconds": SETTLE, "partition": partition, "clock": clock, "api_key": API_KEY,
        "app_key": APP_KEY, "base_url": server.url, "max_retries": 0, "max_in_flight": 1,
    }
    options.update(changes)
    queries = options.pop("queries", {"a": A, "b": B})
    return FollowExport(queries, folder, **options)


def epoch_seconds(stamps: pd.Series) -> Any:
    """UTC timestamps (of whatever unit pandas reads) as epoch seconds."""
    return stamps.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)


def check_folder(folder: Path, chunks: int) -> None:
    """The folder's rows: the first ``chunks`` chunks, every host's every bucket once, the
    formula's value (NaN included) from the truth, v1's statistics NaN."""
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))
    frame = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    assert list(frame.columns) == ["query", "timestamp", "series", "avg", "min", "max", "sum",
                                   "value"]
    assert set(frame["query"]) == {FORMULA}
    assert frame[["avg", "min", "max", "sum"]].isna().all(axis=None)
    grid = bucket_starts(FOLLOW_START, FOLLOW_START + chunks * STEP, G)
    assert sorted(frame["series"].unique()) == list(HOSTS)
    truth = truths()[FORMULA]
    for tags, rows in frame.groupby("series"):
        rows = rows.sort_values("timestamp")
        seconds = epoch_seconds(rows["timestamp"])
        assert np.array_equal(seconds, grid), f"{tags}: a bucket missing or repeated"
        want = truth[str(tags)][(grid - START) // G]
        np.testing.assert_array_equal(rows["value"].to_numpy(), want, err_msg=str(tags))
    assert len(frame) == len(HOSTS) * len(grid)
    assert not frame["value"].isna().all()


@pytest.mark.parametrize("partition", ["chunk", "day"])
def test_followed_formula_grows_exact_and_resumes(fake: FakeDatadog, tmp_path: Path,
                                                  partition: str) -> None:
    clock = FakeClock(FOLLOW_START + 3 * STEP + SETTLE)
    fake.clock = clock
    folder = tmp_path / "out"
    written: list[tuple[str, int]] = []
    first = export(fake, clock, folder, partition)
    report = first.run(max_chunks=3, on_file=lambda name, rows: written.append((name, rows)))
    assert report.chunks == 3 and report.rows == 3 * 5 * len(HOSTS)
    assert [rows for _, rows in written] == [5 * len(HOSTS)] * 3
    check_folder(folder, 3)
    state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    assert state["query"] == {"queries": {"a": A, "b": B}, "formulas": [FORMULA]}
    # Two more chunks settle, one by one: each is asked once, after it settled.
    for seen in (4, 5):
        clock.advance(STEP)
        assert export(fake, clock, folder, partition).run(max_chunks=1).chunks == 1
        check_folder(folder, seen)
    requests = asked(fake)
    assert [lo for lo, _, _ in requests] == [FOLLOW_START + i * STEP for i in range(5)]
    assert all(when >= hi + SETTLE for _, hi, when in requests), "asked before it settled"
    # A crash after a file but before the state: the restart writes that chunk again, in place.
    behind = dict(state, resume_token=state["resume_token"].rsplit("-", 1)[0] + "-4")
    (folder / STATE_FILE).write_text(json.dumps(behind), encoding="utf-8")
    clock.advance(STEP)
    assert export(fake, clock, folder, partition).run(max_chunks=2).chunks == 2
    check_folder(folder, 6)
    assert not [p for p in folder.rglob(".*") if p.name != STATE_FILE], "a temporary was left"
    # Other formulas, or the queries over v1, are another export: refused, not mixed in.
    with pytest.raises(dd.ConfigError, match="another query"):
        export(fake, clock, folder, partition, formulas=["a * 2 / b"]).run(max_chunks=1)
    with pytest.raises(dd.ConfigError, match="another query"):
        export(fake, clock, folder, partition, formulas=None, queries=A).run(max_chunks=1)


def test_api_v2_without_formulas_labels_rows_by_query(fake: FakeDatadog, tmp_path: Path) -> None:
    clock = FakeClock(FOLLOW_START + 2 * STEP + SETTLE)
    fake.clock = clock
    report = export(fake, clock, tmp_path, "chunk", formulas=None, api="v2",
                    queries=[A, B]).run(max_chunks=2)
    assert report.chunks == 2
    frame = pd.concat([pd.read_parquet(p) for p in sorted(tmp_path.rglob("chunk-*.parquet"))])
    assert set(frame["query"]) == {A, B}
    grid = bucket_starts(FOLLOW_START, FOLLOW_START + 2 * STEP, G)
    b = frame[frame["query"] == B].sort_values("timestamp")
    assert b["series"].isna().all()  # the ungrouped query's one series, null as in v1's files
    ((_, want),) = expected_buckets("v2py.total", None, None, "avg", "avg", grid[0],
                                    grid[-1] + G, G).values()
    np.testing.assert_array_equal(b["value"].to_numpy(), want)
    assert len(frame) == len(grid) * (len(HOSTS) + 1)


def test_cli_export_follow_formula_in_real_time(tmp_path: Path) -> None:
    """``ddstream export --follow --formula`` with NAME=QUERY arguments: files appear as chunks
    settle; after Ctrl-C their rows are each bucket once with the formula's value."""
    with FakeDatadog(raw_interval=1) as server:
        env = subprocess_env(server)
        env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
        folder = tmp_path / "out"
        start = int(time.time()) // 2 * 2 - 4
        child = subprocess.Popen(
            [sys.executable, "-m", "ddstream", "export", "--follow", "--formula", "a + b",
             "a=avg:system.cpu.user{*}", "b=avg:system.cpu.system{*}", "--to-parquet",
             str(folder), "--from", str(start), "--granularity", "1", "--chunk-seconds", "2",
             "--settle-seconds", "1"],
            env=env, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while len(list(folder.rglob("chunk-*.parquet"))) < 4:
                assert child.poll() is None, child.stderr.read() if child.stderr else ""
                assert time.monotonic() < deadline, "no files in 30 s"
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGINT)
            assert child.wait(10) == 130
        assert child.stderr is not None and "(2 rows)" in child.stderr.read()
    frame = pd.concat([pd.read_parquet(p) for p in sorted(folder.rglob("chunk-*.parquet"))])
    frame = frame.sort_values("timestamp")
    seconds = epoch_seconds(frame["timestamp"])
    assert list(seconds) == list(range(start, start + len(seconds))) and len(seconds) >= 8
    assert set(frame["query"]) == {"a + b"} and frame["series"].isna().all()
    ((_, a),) = expected_buckets("system.cpu.user", None, None, "avg", "avg", start,
                                 start + len(seconds), 1, raw_interval=1).values()
    ((_, b),) = expected_buckets("system.cpu.system", None, None, "avg", "avg", start,
                                 start + len(seconds), 1, raw_interval=1).values()
    np.testing.assert_array_equal(frame["value"].to_numpy(), a + b)
    assert not np.isnan(frame["value"].to_numpy()).all()
