"""Answers of megabytes: the decoded body's buffer is reused for the chunk's batch
(dds_http_take_spare → dds_batch_new_in), and the client gives such buffers back rather than
keep them. The batch built in it must be exactly the batch built from small answers."""

from __future__ import annotations

import urllib.parse
import urllib.request

import numpy as np

import ddstream as dd
from conftest import API_KEY, APP_KEY, GROUPED_QUERY, T0, make_config
from ddstream.testing import FakeDatadog


def read(cfg: dd.DDStreamConfig) -> dict[str, np.ndarray]:
    with dd.DDStream(cfg) as stream:
        batches = list(stream)
    tags = [b["series_tags"] for b in batches]
    out = {name: np.concatenate([b[name] for b in batches])
           for name in ("timestamps", "avg", "min", "max", "sum")}
    out["series"] = np.concatenate([np.asarray(t, dtype=object)[b["series"]]
                                    for t, b in zip(tags, batches)])
    # A chunk has rows for the series it has data for: compare the buckets with a value.
    valued = ~(np.isnan(out["avg"]) & np.isnan(out["min"]) & np.isnan(out["max"])
               & np.isnan(out["sum"]))
    order = np.lexsort((out["timestamps"][valued], out["series"][valued]))
    return {name: column[valued][order] for name, column in out.items()}


def answer_bytes(fake: FakeDatadog, query: str, start: int, end: int) -> int:
    """The decoded size of the answer the fake gives to this request."""
    params = urllib.parse.urlencode({"from": start, "to": end, "query": query})
    request = urllib.request.Request(f"{fake.url}/api/v1/query?{params}",
                                     headers={"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APP_KEY})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return len(answer.read())


def test_a_large_answer_gives_the_batch_of_small_ones() -> None:
    with FakeDatadog(hosts=40, cache_size=64) as fake:
        day = T0 - T0 % 86400
        big = make_config(fake, query=GROUPED_QUERY, range_start=day, range_end=day + 86400,
                          chunk_seconds=0)
        small = big.copy(chunk_seconds=3600)
        whole = read(big)
        [answer] = fake.query_requests
        assert answer.query and answer.from_ts is not None and answer.to_ts is not None
        # Decoded, at least the size from which buffers are reused (bigalloc.h: 4 MiB).
        assert answer_bytes(fake, answer.query, answer.from_ts, answer.to_ts) > 4 << 20
        pieces = read(small)
        # Twice more over the same client's connection: a buffer reused or given back between
        # answers must not leak one answer into the next.
        again = read(big)
    assert len(set(whole["series"])) == 40
    assert 0.5 * 40 * 1440 < len(whole["timestamps"]) <= 40 * 1440
    for name, column in whole.items():
        np.testing.assert_array_equal(column, pieces[name], err_msg=name)
        np.testing.assert_array_equal(column, again[name], err_msg=name)
