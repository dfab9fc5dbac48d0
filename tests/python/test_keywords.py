"""DDStream(query=..., start=..., end=...): keyword construction with human times."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, QUERY, T0, make_config
from ddstream.testing import FakeDatadog


def _timestamps(stream: dd.DDStream) -> np.ndarray:
    return np.concatenate([b["timestamps"] for b in stream])


def test_keywords_equal_a_config(fake: FakeDatadog) -> None:
    start = dt.datetime.fromtimestamp(T0, dt.timezone.utc)
    end_iso = dt.datetime.fromtimestamp(T0 + 7200, dt.timezone.utc).isoformat()
    by_keywords = dd.DDStream(query=QUERY, start=start, end=end_iso, api_key=API_KEY,
                              app_key=APP_KEY, base_url=fake.url, chunk_seconds=3600)
    by_config = dd.DDStream(make_config(fake, range_end=T0 + 7200, chunk_seconds=3600))
    np.testing.assert_array_equal(_timestamps(by_keywords), _timestamps(by_config))
    # naive datetimes are UTC, never the machine's local time
    naive = dd.DDStream(query=QUERY, start=start.replace(tzinfo=None), end=T0 + 7200,
                        api_key=API_KEY, app_key=APP_KEY, base_url=fake.url)
    assert naive.chunks[0][0] == by_config.chunks[0][0]


def test_relative_start_ends_now(fake: FakeDatadog) -> None:
    before = int(time.time())
    stream = dd.DDStream(query=QUERY, start="-2h", api_key=API_KEY, app_key=APP_KEY,
                         base_url=fake.url)
    first, last = stream.chunks[0][0], stream.chunks[-1][1]
    assert before - 7200 <= first <= before - 7200 + 120
    assert before <= last <= int(time.time()) + 60
    assert len(_timestamps(stream)) in (120, 121)


def test_bad_keywords_are_clear(fake: FakeDatadog) -> None:
    with pytest.raises(dd.ConfigError, match="range_start: not a time: 'last tuesday'"):
        dd.DDStream(query=QUERY, start="last tuesday", api_key=API_KEY, app_key=APP_KEY,
                    base_url=fake.url)
    with pytest.raises(TypeError, match="not both"):
        dd.DDStream(make_config(fake), start="-1h")
    with pytest.raises(TypeError, match="no_such_option"):
        dd.DDStream(query=QUERY, start="-1h", no_such_option=1)
    assert fake.requests == []
