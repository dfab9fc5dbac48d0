"""Boundary exactness: for unaligned ranges, every chunk size and granularity, the batches together
hold every bucket of ``[ceil(range_start / g) * g, range_end)`` exactly once, with the values of
an independent computation (tests/python/reference.py), NaN positions included; one HTTP request
per chunk, asking for ``[chunk_start, chunk_end - 1]``, keys in headers only."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, WEEK, make_config
from ddstream.testing import FakeDatadog
from reference import bucket_starts, expected_buckets

METHODS = ("avg", "min", "max", "sum")
GRANULARITIES = (10, 60, 300, 3600)
CHUNKS = (0, 14400, 3601, "1g")
POINT_CAP = 1500

# A Sunday, 00:00 UTC, aligned to every granularity; ranges start hours later, unaligned.
SUNDAY = 1_699_747_200
assert (SUNDAY // 86400) % 7 == 3 and SUNDAY % WEEK == 3 * 86400


class Query:
    def __init__(self, text: str, metric: str, filters: dict[str, str] | None,
                 by: list[str] | None, space: str) -> None:
        self.text, self.metric, self.filters, self.by, self.space = text, metric, filters, by, space

    def __repr__(self) -> str:
        return self.text


UNGROUPED = Query("avg:system.cpu.user{*}", "system.cpu.user", None, None, "avg")
GROUPED = Query("sum:system.net.bytes{env:prod} by {host}", "system.net.bytes", {"env": "prod"},
                ["host"], "sum")
GROUPED_ALL = Query("max:system.load.1{*} by {host}", "system.load.1", None, ["host"], "max")


def effective_chunk(chunk: int | str, g: int) -> int:
    """Seconds per chunk the plan should use."""
    if chunk == "1g":
        return g
    assert isinstance(chunk, int)
    if chunk == 0:
        return POINT_CAP * g
    return min(max(chunk // g, 1), POINT_CAP) * g


def chunk_value(chunk: int | str, g: int) -> int:
    return g if chunk == "1g" else int(chunk)


def make_range(g: int, chunk: int | str, variant: int) -> tuple[int, int]:
    """An unaligned range covering about 2.5 chunks (so 3-4 requests), of several shapes."""
    size = effective_chunk(chunk, g)
    length = size * 2 + size // 2
    start_offsets = (4 * 3600 + 13 * 60 + 7, 4 * 3600 + 60 * 60 - 1, 4 * 3600)
    end_offsets = (11, 0, 1)
    start = SUNDAY + start_offsets[variant]
    end = start + length + end_offsets[variant]
    if variant == 1:
        end -= end % g  # an end exactly on a bucket boundary (exclusive)
    return start, end


def stream_all(cfg: dd.DDStreamConfig) -> tuple[list[dd.Batch], list[tuple[int, int]]]:
    with dd.DDStream(cfg) as stream:
        chunks = stream.chunks
        return list(stream), chunks


def check_plan(chunks: list[tuple[int, int]], start: int, end: int, g: int, size: int) -> None:
    expected = bucket_starts(start, end, g)
    assert chunks, "no chunk"
    assert chunks[0][0] == expected[0]
    assert chunks[-1][0] <= expected[-1] < chunks[-1][1]
    for (_, e), (s2, _) in zip(chunks, chunks[1:]):
        assert e == s2, "chunks must be contiguous"
    for s, e in chunks:
        assert s % g == 0 and e % g == 0 and s < e
        assert e - s <= size
    assert all(e - s == size for s, e in chunks[:-1])


def check_requests(fake: FakeDatadog, chunks: list[tuple[int, int]], g: int) -> None:
    requests = fake.query_requests
    # Several requests are in flight at once (max_in_flight): they reach the server in any order.
    assert sorted((r.from_ts, r.to_ts) for r in requests) == [(s, e - 1) for s, e in chunks]
    for r in requests:
        assert r.status == 200
        assert r.api_key_sent and r.app_key_sent and not r.keys_in_url
        assert r.query is not None and f"rollup(avg,{g})" in r.query
        assert API_KEY not in str(r.params) and APP_KEY not in str(r.params)


def check_ungrouped(batches: list[dd.Batch], chunks: list[tuple[int, int]], query: Query,
                    start: int, end: int, g: int) -> None:
    assert len(batches) == len(chunks)
    for batch, (s, e) in zip(batches, chunks):
        assert (batch["chunk_start_ms"], batch["chunk_end_ms"]) == (s * 1000, e * 1000)
        ts = batch["timestamps"]
        # dense: every bucket of the chunk that lies in the range
        np.testing.assert_array_equal(ts, bucket_starts(max(s, start), min(e, end), g))
    ts = np.concatenate([b["timestamps"] for b in batches])
    assert np.all(np.diff(ts) > 0), "timestamps must strictly increase"
    np.testing.assert_array_equal(ts, bucket_starts(start, end, g))
    for method in METHODS:
        want_ts, want = expected_buckets(query.metric, query.filters, query.by, query.space,
                                         method, start, end, g)[()]
        np.testing.assert_array_equal(ts, want_ts)
        got = np.concatenate([b[method] for b in batches])
        np.testing.assert_array_equal(got, want, err_msg=f"{method} differs")


def check_grouped(batches: list[dd.Batch], chunks: list[tuple[int, int]], query: Query,
                  start: int, end: int, g: int) -> None:
    assert len(batches) == len(chunks)
    want = {m: expected_buckets(query.metric, query.filters, query.by, query.space, m,
                                start, end, g) for m in METHODS}
    groups = {",".join(key): key for key in want["avg"]}
    got: dict[str, dict[str, list[np.ndarray]]] = {}
    for batch, (s, e) in zip(batches, chunks):
        series, tags = batch["series"], batch["series_tags"]
        assert len(set(tags)) == len(tags)
        assert set(tags) <= set(groups), tags
        chunk_buckets = bucket_starts(max(s, start), min(e, end), g)
        if len(tags):
            assert np.all(np.diff(series) >= 0), "rows are ordered by series"
        assert len(batch["timestamps"]) == len(tags) * len(chunk_buckets)
        for index, tag in enumerate(tags):
            rows = series == index
            np.testing.assert_array_equal(batch["timestamps"][rows], chunk_buckets)
            for name in ("timestamps", *METHODS):
                got.setdefault(tag, {}).setdefault(name, []).append(batch[name][rows])
    for tag, key in groups.items():
        want_ts = want["avg"][key][0]
        if tag not in got:
            # A series with no value anywhere in the range is absent, as Datadog does.
            assert all(np.isnan(want[m][key][1]).all() for m in METHODS), tag
            continue
        ts = np.concatenate(got[tag]["timestamps"])
        assert np.all(np.diff(ts) > 0), f"{tag}: timestamps must strictly increase"
        present = np.isin(want_ts, ts)
        np.testing.assert_array_equal(want_ts[present], ts)
        for method in METHODS:
            values = want[method][key][1]
            # Buckets of chunks where the series was absent must be empty in the truth.
            assert np.isnan(values[~present]).all(), f"{tag} {method}: missing values"
            np.testing.assert_array_equal(np.concatenate(got[tag][method]), values[present],
                                          err_msg=f"{tag} {method} differs")


CASES = [
    pytest.param(g, chunk, variant, id=f"g{g}-chunk{chunk}-v{variant}")
    for g, chunk, variant in itertools.product(GRANULARITIES, CHUNKS, (0, 1, 2))
]


@pytest.mark.parametrize(("g", "chunk", "variant"), CASES)
def test_ungrouped_boundaries(module_fake: FakeDatadog, g: int, chunk: Any, variant: int) -> None:
    start, end = make_range(g, chunk, variant)
    cfg = make_config(module_fake, query=UNGROUPED.text, range_start=start, range_end=end,
                      granularity=g, chunk_seconds=chunk_value(chunk, g))
    module_fake.trim_empty_edges = variant == 2
    module_fake.clear_log()
    try:
        batches, chunks = stream_all(cfg)
    finally:
        module_fake.trim_empty_edges = False
    check_plan(chunks, start, end, g, effective_chunk(chunk, g))
    assert chunks == dd.DDStream.plan(cfg)
    check_requests(module_fake, chunks, g)
    check_ungrouped(batches, chunks, UNGROUPED, start, end, g)


@pytest.mark.parametrize(("g", "chunk", "variant"), CASES)
@pytest.mark.parametrize("query", [GROUPED, GROUPED_ALL], ids=["filtered", "all"])
def test_grouped_boundaries(module_fake: FakeDatadog, g: int, chunk: Any, variant: int,
                            query: Query) -> None:
    start, end = make_range(g, chunk, variant)
    cfg = make_config(module_fake, query=query.text, range_start=start, range_end=end,
                      granularity=g, chunk_seconds=chunk_value(chunk, g))
    module_fake.trim_empty_edges = variant == 2
    module_fake.clear_log()
    try:
        batches, chunks = stream_all(cfg)
    finally:
        module_fake.trim_empty_edges = False
    check_plan(chunks, start, end, g, effective_chunk(chunk, g))
    check_requests(module_fake, chunks, g)
    check_grouped(batches, chunks, query, start, end, g)


def test_empty_buckets_are_covered() -> None:
    """The grid above must exercise NaN positions, for ungrouped and grouped queries alike."""
    for g in GRANULARITIES:
        start, end = make_range(g, 0, 0)
        values = expected_buckets(UNGROUPED.metric, None, None, "avg", "avg", start, end, g)[()][1]
        assert np.isnan(values).any(), g
        assert not np.isnan(values).all(), g


@pytest.mark.parametrize("g", [60, 300])
def test_range_inside_one_bucket(fake: FakeDatadog, g: int) -> None:
    """A range that contains no bucket start has nothing to fetch."""
    start = SUNDAY + 4 * 3600 + 1
    cfg = make_config(fake, range_start=start, range_end=start + g - 2, granularity=g)
    assert dd.DDStream.plan(cfg) == []
    with dd.DDStream(cfg) as stream:
        assert stream.chunk_count == 0
        assert not stream.has_next()
        assert stream.next_batch() is None
        assert stream.last_error() == ""
        assert list(stream) == []
    assert fake.requests == []


def test_request_counts_for_30_days(fake: FakeDatadog) -> None:
    start = SUNDAY + 4 * 3600 + 13 * 60 + 7
    end = start + 30 * 86400
    counts = {}
    for chunk in (0, 14400):
        fake.clear_log()
        cfg = make_config(fake, range_start=start, range_end=end, granularity=60,
                          chunk_seconds=chunk)
        with dd.DDStream(cfg) as stream:
            rows = sum(len(b["timestamps"]) for b in stream)
        counts[chunk] = len(fake.query_requests)
        assert rows == len(bucket_starts(start, end, 60))
    print(f"\n30 days at 60 s: {counts[0]} requests with chunk_seconds=0, "
          f"{counts[14400]} with chunk_seconds=14400")
    assert counts == {0: 29, 14400: 180}
