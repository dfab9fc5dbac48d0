"""``ddstream.scalar`` through the chunk cache: real files, a real FakeDatadog counting the
scalar POSTs, the run's clock a FakeClock (what has settled is decided on it).

A 90-day scalar asked in weekly pieces is asked once: run again it sends nothing and gives the same
table; with its last piece not settled, only that piece is asked again. A scalar piece and a
timeseries chunk over the same range and query are entries of their own; a damaged entry is
fetched again and replaced; the halves of a timed-out piece are entries; the one request over a
range (an aggregator that does not split) is cached once settled; ``ddstream scalar
--cache-dir`` caches, ``--no-cache`` does not.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, subprocess_env
from ddstream.testing import FakeClock, FakeDatadog
from ddstream.testing._faults import QueryTimeout
from test_cache import corrupt, entries

DAY = 86400
WEEK = 7 * DAY
G = 3600
END = 1_793_491_200  # 2026-11-01T00:00:00Z
START = END - 90 * DAY
PIECES = math.ceil(90 / 7)  # 13: twelve weeks and six days
A = "avg:v2py.used{*} by {host}.rollup(avg, 3600)"
B = "avg:v2py.total{*}.rollup(avg, 3600)"
SCALAR = "/api/v2/query/scalar"
TIMESERIES = "/api/v2/query/timeseries"
SETTLE = 300


@pytest.fixture
def fake() -> Any:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def options(fake: FakeDatadog, folder: Path, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "api_key": API_KEY, "app_key": APP_KEY, "base_url": fake.url,
        "queries": {"a": A, "b": B}, "formulas": ["a / b * 100", "b"],
        "range_start": START, "range_end": END, "granularity": G, "chunk_seconds": WEEK,
        "max_retries": 0, "cache_dir": str(folder), "settle_seconds": SETTLE,
    }
    values.update(changes)
    return values


def posts(fake: FakeDatadog, path: str = SCALAR) -> list[tuple[int, int]]:
    """(from, to) in seconds of each POST to path logged since the last clear, in order."""
    out = []
    for record in fake.requests:
        if record.path == path:
            attributes = json.loads(record.body)["data"]["attributes"]
            out.append((attributes["from"] // 1000, attributes["to"] // 1000))
    return out


def assert_same(a: dd.ScalarTable, b: dd.ScalarTable) -> None:
    assert a.formulas == b.formulas
    assert a.formula.tolist() == b.formula.tolist()
    assert a.group_tags.tolist() == b.group_tags.tolist()
    np.testing.assert_array_equal(a.value, b.value)  # bit for bit: the same answers combined
    assert (a.chunks, a.split_reason) == (b.chunks, b.split_reason)


def run(fake: FakeDatadog, clock: FakeClock, aggregator: Any = "max", **opts: Any
        ) -> dd.ScalarTable:
    fake.clear_log()
    return dd.scalar(aggregator=aggregator, clock=clock, **opts)


def test_second_run_of_a_90_day_scalar_makes_no_request(fake: FakeDatadog,
                                                        tmp_path: Path) -> None:
    clock = FakeClock(END + DAY)
    opts = options(fake, tmp_path)
    aggs = {"a": "avg", "b": "min"}
    first = run(fake, clock, aggs, **opts)
    assert len(posts(fake)) == PIECES
    assert (first.chunks, first.requests, first.cache_hits) == (PIECES, PIECES, 0)
    assert len(entries(tmp_path)) == PIECES
    assert first.group_tags.tolist() == ["host:h00", "host:h01", "host:h02", ""]
    assert all(math.isfinite(v) for v in first.value)
    second = run(fake, clock, aggs, **opts)
    assert fake.requests == []
    assert (second.chunks, second.requests, second.cache_hits) == (PIECES, 0, PIECES)
    assert_same(first, second)
    assert repr(second).startswith(f"ScalarTable(4 rows, {PIECES} chunks, {PIECES} from the cache)")
    assert repr(first).startswith(f"ScalarTable(4 rows, {PIECES} chunks)\n")
    # And it is the answer: the same run without the cache asks the server for the same table.
    fetched = run(fake, clock, aggs, **{**opts, "cache_dir": None})
    assert len(posts(fake)) == PIECES and fetched.cache_hits == 0
    assert_same(first, fetched)
    for path in tmp_path.rglob("*"):  # no key in the folder, neither in names nor in files
        assert API_KEY not in path.name
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes()
            assert APP_KEY.encode() not in path.read_bytes()


def test_unsettled_last_piece_is_the_only_request_again(fake: FakeDatadog,
                                                        tmp_path: Path) -> None:
    clock = FakeClock(END + 100)  # the last piece ended 100 s ago: not settled (300 s)
    opts = options(fake, tmp_path)
    first = run(fake, clock, **opts)
    assert len(posts(fake)) == PIECES
    assert len(entries(tmp_path)) == PIECES - 1
    last = (START + (PIECES - 1) * WEEK, END)
    for _ in range(2):
        again = run(fake, clock, **opts)
        assert posts(fake) == [last]
        assert (again.requests, again.cache_hits) == (1, PIECES - 1)
        assert_same(first, again)
        assert len(entries(tmp_path)) == PIECES - 1
    clock.advance(SETTLE - 100)  # settled now: asked once more, and kept
    settled = run(fake, clock, **opts)
    assert posts(fake) == [last]
    assert len(entries(tmp_path)) == PIECES
    assert_same(first, settled)
    final = run(fake, clock, **opts)
    assert fake.requests == [] and final.cache_hits == PIECES
    assert_same(first, final)


def test_scalar_piece_and_timeseries_chunk_never_share_an_entry(fake: FakeDatadog,
                                                                tmp_path: Path) -> None:
    """One week, one query, one formula: the scalar's one POST and the stream's one chunk cover
    the same range with the same query, at another path with another body."""
    clock = FakeClock(END + DAY)
    week = {"queries": {"a": A}, "formulas": ["a"], "range_start": END - WEEK}
    scalar_opts = options(fake, tmp_path, **week)
    stream_cfg = dd.DDStreamConfig(**options(fake, tmp_path, **week))
    scalar = run(fake, clock, **scalar_opts)
    assert posts(fake) == [(END - WEEK, END)] and scalar.requests == 1
    assert len(entries(tmp_path)) == 1
    fake.clear_log()
    with dd.DDStream(stream_cfg, clock=clock) as stream:
        batches = list(stream.batches())
    assert posts(fake, TIMESERIES) == [(END - WEEK, END)]  # not answered by the scalar's entry
    assert len(entries(tmp_path)) == 2
    assert sum(len(b["timestamps"]) for b in batches) == 3 * WEEK // G
    again = run(fake, clock, **scalar_opts)  # the scalar reads its own entry, not the chunk's
    assert fake.requests == [] and again.cache_hits == 1
    assert_same(scalar, again)
    fake.clear_log()
    with dd.DDStream(stream_cfg, clock=clock) as stream:
        cached = list(stream.batches())
    assert fake.requests == []
    for x, y in zip(batches, cached, strict=True):
        np.testing.assert_array_equal(x["value"], y["value"])
    # The scalar's maxima are the stream's hourly values' maxima per host.
    values = np.concatenate([b["value"] for b in batches])
    tags = np.concatenate([np.asarray(b["series_tags"])[b["series"]] for b in batches])
    for host, value in zip(scalar.group_tags.tolist(), scalar.value.tolist(), strict=True):
        assert value == np.nanmax(values[tags == host])


@pytest.mark.parametrize("how", ["flipped byte", "truncated", "garbage"])
def test_damaged_entry_is_fetched_again_and_replaced(fake: FakeDatadog, tmp_path: Path,
                                                     how: str) -> None:
    clock = FakeClock(END + DAY)
    opts = options(fake, tmp_path)
    first = run(fake, clock, **opts)
    stored = entries(tmp_path)
    assert len(stored) == PIECES
    corrupt(stored[5], how)
    again = run(fake, clock, **opts)
    assert len(posts(fake)) == 1
    assert (again.requests, again.cache_hits) == (1, PIECES - 1)
    assert_same(first, again)
    third = run(fake, clock, **opts)  # replaced by the answer fetched for it
    assert fake.requests == [] and third.cache_hits == PIECES
    assert_same(first, third)


def test_one_request_over_the_range_is_cached_once_settled(fake: FakeDatadog,
                                                          tmp_path: Path) -> None:
    # l2norm does not split: one request over the range (40 days: under the fake's point cap).
    clock = FakeClock(END + 100)
    opts = options(fake, tmp_path, range_start=END - 40 * DAY)
    aggs = {"a": "l2norm", "b": "min"}
    first = run(fake, clock, aggs, **opts)
    assert first.split_reason is not None and "l2norm" in first.split_reason
    assert posts(fake) == [(END - 40 * DAY, END)] and entries(tmp_path) == []
    unsettled = run(fake, clock, aggs, **opts)
    assert len(posts(fake)) == 1 and unsettled.cache_hits == 0
    assert_same(first, unsettled)
    clock.advance(SETTLE)
    settled = run(fake, clock, aggs, **opts)
    assert len(posts(fake)) == 1 and len(entries(tmp_path)) == 1
    cached = run(fake, clock, aggs, **opts)
    assert fake.requests == [] and (cached.chunks, cached.requests, cached.cache_hits) == (1, 0, 1)
    assert_same(first, settled)
    assert_same(first, cached)


def test_halves_of_a_timed_out_piece_are_cached(fake: FakeDatadog, tmp_path: Path) -> None:
    """Four weeks asked as one piece time out and are asked in halves: the halves are entries.
    The piece that timed out has no answer to keep, so a second run asks it again; timing out
    again, it finds both halves in the cache."""
    clock = FakeClock(END + DAY)
    start = END - 4 * WEEK
    opts = options(fake, tmp_path, range_start=start, chunk_seconds=4 * WEEK)
    mid = start + 2 * WEEK
    tables = []
    for want in ([(start, END), (start, mid), (mid, END)], [(start, END)]):
        fake.add_fault(QueryTimeout(path=SCALAR, status=504, times=1))
        tables.append(run(fake, clock, **opts))
        assert posts(fake) == want
        assert len(entries(tmp_path)) == 2
    first, second = tables
    assert (first.chunks, first.requests, first.cache_hits) == (2, 3, 0)
    assert (second.chunks, second.requests, second.cache_hits) == (2, 1, 2)
    assert first.split_reason is None
    assert_same(first, second)


def test_cache_dir_that_cannot_be_used_is_a_config_error(fake: FakeDatadog,
                                                         tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    fake.clear_log()
    with pytest.raises(dd.ConfigError) as caught:
        dd.scalar(clock=FakeClock(END + DAY), **options(fake, blocker / "cache"))
    assert "cache_dir" in caught.value.message and "a-file" in caught.value.message
    assert fake.requests == []


def cli(fake: FakeDatadog, *args: str) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(fake)
    env.update(DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY)
    return subprocess.run([sys.executable, "-m", "ddstream", "scalar", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_cache_dir_and_no_cache(fake: FakeDatadog, tmp_path: Path) -> None:
    folder = tmp_path / "cli-cache"
    start = END - 4 * WEEK
    common = ("--formula", "a / b * 100", "--aggregator", "a=max", "--aggregator", "b=min",
              f"a={A}", f"b={B}", "--from", str(start), "--to", str(END), "--granularity",
              str(G), "--chunk-seconds", str(WEEK))
    outputs = []
    for k in range(2):
        out = tmp_path / f"run{k}.json"
        fake.clear_log()
        done = cli(fake, *common, "--cache-dir", str(folder), "-o", str(out))
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(out.read_text()))
        assert len(posts(fake)) == (4 if k == 0 else 0)
    assert "3 rows; 4 chunks, 0 requests; 4 from the cache" in done.stderr
    assert (outputs[0]["cache_hits"], outputs[1]["cache_hits"]) == (0, 4)
    assert outputs[0]["rows"] == outputs[1]["rows"]
    assert len(entries(folder)) == 4
    fake.clear_log()
    done = cli(fake, *common, "--no-cache", "-o", str(tmp_path / "fetched.json"))
    assert done.returncode == 0, done.stderr
    assert len(posts(fake)) == 4
    assert json.loads((tmp_path / "fetched.json").read_text())["rows"] == outputs[0]["rows"]
