"""Huge plans: the Python side stays lazy like the C plan, and a plan past max_chunks is refused.

``DDStream.plan()`` and ``DDStream.chunks`` used to build a list of every chunk: 100 years at 1 s
in 1 s chunks (3.15e9 chunks) ran for minutes and ended in a bare ``MemoryError``. They are now
``ChunkPlan`` views computed from three numbers the library gives; these tests hold them to the
list they stand for (as the C library computes it, chunk by chunk) and bound their cost.
"""

from __future__ import annotations

import pickle
import time
import tracemalloc

import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, make_config
from ddstream._lib import ffi, lib
from ddstream._plan import ChunkPlan
from ddstream.testing import FakeDatadog

DAY0 = 1_793_491_200  # 2026-11-01T00:00:00Z, aligned
YEAR = 365 * 86400
MAX_EPOCH = 253_402_300_799  # the last second the library accepts (year 9999)


def c_plan(cfg: dd.DDStreamConfig) -> list[tuple[int, int]]:
    """The whole plan as the C library writes it out with ddstream_plan (small plans only)."""
    native = cfg.to_native()
    count = ffi.new("size_t *")
    assert lib.ddstream_plan(native.ptr, ffi.NULL, 0, count, ffi.NULL) == 0
    n = int(count[0])
    chunks = ffi.new("ddstream_chunk[]", max(n, 1))
    assert lib.ddstream_plan(native.ptr, chunks, n, count, ffi.NULL) == 0
    return [(int(chunks[i].start), int(chunks[i].end)) for i in range(n)]


# Plans of every shape: aligned or not, automatic, rounded, clamped, one chunk, one bucket.
SHAPES = [
    {"range_start": DAY0, "range_end": DAY0 + 86400},
    {"range_start": DAY0 + 7, "range_end": DAY0 + 86400 * 3 + 13, "chunk_seconds": 3600},
    {"range_start": DAY0 + 1, "range_end": DAY0 + 3601, "chunk_seconds": 3601},
    {"range_start": DAY0, "range_end": DAY0 + 86400 * 9, "chunk_seconds": 10**12},
    {"range_start": DAY0, "range_end": DAY0 + 60},
    {"range_start": DAY0 + 59, "range_end": DAY0 + 61},
    {"range_start": DAY0, "range_end": DAY0 + 3 * 86400 + 1, "granularity": 7,
     "chunk_seconds": 700},
    {"range_start": 0, "range_end": 10 * YEAR, "granularity": 31_536_000},
]


@pytest.mark.parametrize("shape", SHAPES, ids=range(len(SHAPES)))
def test_the_view_is_the_plan_the_library_computes(shape: dict[str, int]) -> None:
    cfg = make_config(**shape)
    expected = c_plan(cfg)
    plan = dd.DDStream.plan(cfg)
    assert isinstance(plan, ChunkPlan)
    assert len(plan) == len(expected)
    assert list(plan) == expected and plan == expected and expected == plan
    assert list(reversed(plan)) == expected[::-1]
    n = len(expected)
    for i in {0, 1, n // 2, n - 2, n - 1} & set(range(n)):
        assert plan[i] == expected[i] and plan[i - n] == expected[i - n]
        assert expected[i] in plan and plan.index(expected[i]) == i and plan.count(expected[i]) == 1
    for sl in (slice(1, None), slice(None, -1), slice(2, 5), slice(None, None, 2),
               slice(None, None, -3), slice(n, None), slice(-2, None)):
        assert list(plan[sl]) == expected[sl] and plan[sl] == expected[sl]
    with pytest.raises(IndexError, match=f"out of range for a plan of {n} chunks"):
        plan[n]
    with pytest.raises(IndexError):
        plan[-n - 1]
    assert (expected[0][0] + 1, expected[0][1]) not in plan
    assert (expected[-1][0], expected[-1][1] + 1) not in plan
    assert "not a chunk" not in plan and (1, 2, 3) not in plan
    with pytest.raises(ValueError, match="is not a chunk of this plan"):
        plan.index((expected[0][0], expected[0][1] + 1))
    assert pickle.loads(pickle.dumps(plan)) == expected


@pytest.mark.parametrize("shape", SHAPES[:4], ids=range(4))
def test_a_streams_chunks_are_its_chunk_at(fake: FakeDatadog, shape: dict[str, int]) -> None:
    cfg = make_config(fake, enable_prefetch=False, **shape)
    with dd.DDStream(cfg) as stream:
        chunks = stream.chunks
        assert stream.chunk_count == len(chunks) == len(c_plan(cfg))
        assert chunks == dd.DDStream.plan(cfg) == c_plan(cfg)
    assert stream.chunks == c_plan(cfg)  # still readable once the stream is closed


def test_runs_of_a_plan_equal_the_plan_of_their_range() -> None:
    """What ddstream.dask relies on: chunks a..b of a plan are the plan of their own range."""
    cfg = make_config(range_start=DAY0 + 7, range_end=DAY0 + 86400 * 40 + 13, chunk_seconds=3600)
    plan = dd.DDStream.plan(cfg)
    for first in (0, 1, 17, len(plan) - 3):
        run = plan[first:first + 4]
        own = dd.DDStream.plan(cfg.copy(range_start=run[0][0], range_end=run[-1][1]))
        assert own == run and list(own) == list(run)
    assert plan[:3] != plan[1:4] and plan != plan[:-1] and plan != [] and plan != "x"


def test_a_huge_legal_plan_is_instant_and_small() -> None:
    cfg = make_config(range_start=DAY0, range_end=DAY0 + 100 * YEAR, granularity=1,
                      chunk_seconds=1, max_chunks=10**12)
    tracemalloc.start()
    t0 = time.perf_counter()
    plan = dd.DDStream.plan(cfg)
    n = len(plan)
    last = plan[-1]
    middle = plan[n // 2]
    tail = plan[-3:]
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 100 * YEAR == 3_153_600_000
    assert last == (DAY0 + n - 1, DAY0 + n) and middle == (DAY0 + n // 2, DAY0 + n // 2 + 1)
    assert tail == [(DAY0 + n - 3, DAY0 + n - 2), (DAY0 + n - 2, DAY0 + n - 1), last]
    assert elapsed < 1.0, f"planning took {elapsed:.3f} s"
    assert peak < 256 * 1024, f"planning allocated {peak} bytes"
    assert "3153600000 chunks" in repr(plan)


def test_the_widest_plan_opens_a_stream_at_once(fake: FakeDatadog) -> None:
    """Year 1970 to 9999 at granularity 1 in 1 s chunks, limit lifted: int64 arithmetic at its
    extremes, and a stream that opens in no time and still reads its first chunk."""
    cfg = make_config(fake, range_start=0, range_end=MAX_EPOCH, granularity=1, chunk_seconds=1,
                      max_chunks=2**63 - 1, enable_prefetch=False)
    t0 = time.perf_counter()
    with dd.DDStream(cfg) as stream:
        assert time.perf_counter() - t0 < 1.0
        assert stream.chunk_count == MAX_EPOCH
        assert stream.chunks[-1] == (MAX_EPOCH - 1, MAX_EPOCH)
        assert f"chunks={MAX_EPOCH}" in repr(stream)
        batch = stream.next_batch()
        assert batch is not None and batch["timestamps"].tolist() == [0]
        stream.seek(stream.chunk_count)
        assert stream.next_batch() is None
        with pytest.raises(IndexError):
            stream.seek(stream.chunk_count + 1)
    assert len(fake.query_requests) == 1


def test_the_default_limit_passes_a_month_of_minutes() -> None:
    cfg = make_config(range_start=DAY0, range_end=DAY0 + 30 * 86400, chunk_seconds=60)
    plan = dd.DDStream.plan(cfg)
    assert len(plan) == 43_200 and plan[-1] == (DAY0 + 30 * 86400 - 60, DAY0 + 30 * 86400)


@pytest.mark.parametrize(
    ("overrides", "count", "limit"),
    [
        ({"range_end": DAY0 + 100 * YEAR, "granularity": 1, "chunk_seconds": 1}, 3_153_600_000,
         1_000_000),
        ({"range_end": DAY0 + 30 * 86400, "chunk_seconds": 60, "max_chunks": 43_199}, 43_200,
         43_199),
        ({"range_end": DAY0 + 4 * YEAR, "granularity": 60, "chunk_seconds": 60}, 2_102_400,
         1_000_000),
    ],
    ids=["100y-at-1s", "one-past-a-set-limit", "4y-of-1min-chunks"],
)
def test_a_plan_past_max_chunks_is_refused_up_front(
    fake: FakeDatadog, overrides: dict[str, int], count: int, limit: int
) -> None:
    cfg = make_config(fake, range_start=DAY0, **overrides)
    for attempt in (lambda: dd.DDStream.plan(cfg), lambda: dd.DDStream(cfg),
                    lambda: dd.DDStream.check(cfg)):
        t0 = time.perf_counter()
        with pytest.raises(dd.ConfigError) as info:
            attempt()
        assert time.perf_counter() - t0 < 1.0
        message = str(info.value)
        assert f"the plan has {count} chunks" in message
        assert f"more than max_chunks ({limit})" in message
        for fix in ("chunk_seconds", "granularity", "shorter range", "raise max_chunks"):
            assert fix in message
        assert API_KEY not in message and APP_KEY not in message
    assert fake.requests == []  # refused before anything was sent
    assert len(dd.DDStream.plan(cfg.copy(max_chunks=count))) == count  # at the limit: accepted


@pytest.mark.parametrize("value", [-1, -(2**63)])
def test_max_chunks_must_not_be_negative(value: int) -> None:
    with pytest.raises(dd.ConfigError, match="max_chunks must be 0 .the default, 1000000. or "
                                             f"positive, got {value}"):
        dd.DDStream.plan(make_config(max_chunks=value))


def test_max_chunks_type_and_range_are_checked() -> None:
    with pytest.raises(TypeError, match="max_chunks must be an int"):
        dd.DDStream.plan(make_config(max_chunks="many"))
    with pytest.raises(dd.ConfigError, match=r"max_chunks: .* is out of range"):
        dd.DDStream.plan(make_config(max_chunks=2**63))
    assert dd.DDStreamConfig(max_chunks=5).max_chunks == 5
    assert dd.DDStreamConfig().max_chunks is None
