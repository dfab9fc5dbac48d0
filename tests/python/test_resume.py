"""Nothing lost, nothing fetched twice: resuming a stream from a chunk index or a resume token, in
the same process or a new one, after a clean stop, an error or Ctrl-C."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import GROUPED_QUERY, T0, make_config, subprocess_env
from ddstream._lib import ffi, lib
from ddstream.testing import FakeDatadog

CHUNK = 3600


def config(server: FakeDatadog, **overrides: Any) -> dd.DDStreamConfig:
    values: dict[str, Any] = {"range_end": T0 + 6 * CHUNK, "chunk_seconds": CHUNK,
                              "query": GROUPED_QUERY}
    values.update(overrides)
    return make_config(server, **values)


def requested_chunks(server: FakeDatadog) -> list[int]:
    """The chunk index of each query request, from its ``from`` parameter, in chunk order
    (several requests in flight reach the server in any order)."""
    first = (T0 // 60 + 1) * 60
    return sorted(((r.from_ts or 0) - first) // CHUNK for r in server.query_requests)


def test_token_round_trip_in_a_new_process(fake: FakeDatadog) -> None:
    """Read two chunks, keep the token, and let another process finish: the chunks it asks the
    server for are exactly the missing ones, and the two halves are the whole stream."""
    cfg = config(fake, enable_prefetch=False)
    with dd.DDStream(cfg) as stream:
        whole = [np.array(b["avg"]) for b in stream]
    fake.clear_log()
    with dd.DDStream(cfg) as stream:
        first_half = [np.array(stream.next_batch()["avg"]) for _ in range(2)]  # type: ignore[index]
        token = stream.resume_token()
    assert re.fullmatch(r"dds1-[0-9a-f]{16}-2", token), token
    assert requested_chunks(fake) == [0, 1]
    fake.clear_log()
    child = textwrap.dedent(
        f"""
        import json, ddstream as dd
        cfg = dd.DDStreamConfig(api_key="k-api-key", app_key="k-app-key", query={GROUPED_QUERY!r},
                                range_start={T0}, range_end={T0 + 6 * CHUNK},
                                chunk_seconds={CHUNK})
        with dd.DDStream(cfg, resume={token!r}) as stream:
            print(json.dumps([[b["chunk_index"], b["avg"].tolist()] for b in stream]))
        """
    )
    out = subprocess.run([sys.executable, "-c", child], env=subprocess_env(fake),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rest = [(i, np.array(v, dtype=float)) for i, v in json.loads(out)]
    assert [i for i, _ in rest] == [2, 3, 4, 5]
    assert requested_chunks(fake) == [2, 3, 4, 5]
    for got, want in zip(first_half + [v for _, v in rest], whole):
        np.testing.assert_array_equal(got, want)


def test_start_chunk_fetches_nothing_before_it(fake: FakeDatadog) -> None:
    with dd.DDStream(config(fake, start_chunk=4)) as stream:
        assert stream.progress() == pytest.approx(4 / 6)
        assert [b["chunk_index"] for b in stream] == [4, 5]
        assert stream.resume_token().endswith("-6")
    assert requested_chunks(fake) == [4, 5]
    with dd.DDStream(config(fake, start_chunk=6)) as stream:
        assert not stream.has_next()
    with pytest.raises(dd.ConfigError, match="start_chunk 7 is past the plan's 6 chunks"):
        dd.DDStream(config(fake, start_chunk=7))
    with pytest.raises(dd.ConfigError, match="start_chunk must not be negative"):
        dd.DDStream(config(fake, start_chunk=-1))


def test_token_after_an_error_points_at_the_failed_chunk(fake: FakeDatadog) -> None:
    cfg = config(fake, enable_prefetch=False, max_retries=0)
    with dd.DDStream(cfg) as stream:
        assert stream.next_batch() is not None
        fake.inject(503)
        with pytest.raises(dd.ServerError):
            next(stream)
        token = stream.resume_token()
    assert token.endswith("-1")
    with dd.DDStream(cfg, resume=token) as stream:
        assert [b["chunk_index"] for b in stream] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "change",
    [
        {"query": "avg:system.cpu.system{*} by {host}"},
        {"granularity": 120},
        {"range_start": T0 + 3600},
        {"chunk_seconds": 2 * CHUNK},
    ],
    ids=["query", "granularity", "range", "chunk size"],
)
def test_token_for_another_plan_is_refused(fake: FakeDatadog, change: dict[str, Any]) -> None:
    # Without prefetch the first stream sends nothing: a request it had in flight when closed
    # could reach the server's log after `before` is read, and look like the refused stream's.
    with dd.DDStream(config(fake, start_chunk=3, enable_prefetch=False)) as stream:
        token = stream.resume_token()
    before = len(fake.requests)
    with pytest.raises(dd.ConfigError, match="resume_token was made for another query, range, "
                                             "granularity or chunk size"):
        dd.DDStream(config(fake, **change), resume=token)
    assert len(fake.requests) == before  # refused before any request


@pytest.mark.parametrize("token", ["", "dds1-", "dds1-0123456789abcdef", "dds1-XYZ-1",
                                   "dds1-0123456789abcdef-1x", "dds2-0123456789abcdef-1",
                                   "dds1-0123456789abcdef-99999999999999999999999"])
def test_malformed_tokens_are_config_errors(fake: FakeDatadog, token: str) -> None:
    with pytest.raises(dd.ConfigError, match="resume_token"):
        dd.DDStream(config(fake), resume=token)


def test_token_and_start_chunk_must_agree(fake: FakeDatadog) -> None:
    with dd.DDStream(config(fake, start_chunk=2)) as stream:
        token = stream.resume_token()
    with dd.DDStream(config(fake, start_chunk=2, resume_token=token)) as stream:
        assert stream.next_batch()["chunk_index"] == 2  # type: ignore[index]
    with pytest.raises(dd.ConfigError, match=r"start_chunk 3 and resume_token \(chunk 2\)"):
        dd.DDStream(config(fake, start_chunk=3, resume_token=token))


def test_token_is_the_same_in_c(fake: FakeDatadog) -> None:
    """ddstream_resume_token / _at from C, with the buffer rules of the header."""
    with dd.DDStream(config(fake, start_chunk=1)) as stream:
        ptr = stream._handle.ptr
        buf = ffi.new("char[]", 64)
        assert lib.ddstream_resume_token(ptr, buf, 64) == lib.DDSTREAM_OK
        assert ffi.string(buf).decode() == stream.resume_token()
        assert lib.ddstream_resume_token_at(ptr, 6, buf, 64) == lib.DDSTREAM_OK
        assert ffi.string(buf).decode().endswith("-6")
        assert lib.ddstream_resume_token_at(ptr, 7, buf, 64) == lib.DDSTREAM_E_INVALID_ARGUMENT
        assert lib.ddstream_resume_token(ptr, buf, 63) == lib.DDSTREAM_E_INVALID_ARGUMENT
        assert lib.ddstream_resume_token(ffi.NULL, buf, 64) == lib.DDSTREAM_E_INVALID_ARGUMENT


def test_token_counts_a_batch_held_back_by_ctrl_c(
    fake: FakeDatadog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C just after the library delivered a batch: the binding keeps it for the next call,
    so the token must still point at that chunk, or resuming would skip it."""
    # Private on purpose: the test must interrupt at one exact point, just after the C call
    # delivered a batch, and the log drain that follows every call is that point.
    import ddstream._native as native_module

    real_drain = native_module.drain_logs
    calls: list[int] = []

    def interrupted_drain(ptr: object) -> None:
        real_drain(ptr)
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with dd.DDStream(config(fake)) as stream:
        deadline = time.monotonic() + 5
        while len(fake.query_requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.next_batch()["chunk_index"] == 0  # type: ignore[index]
        monkeypatch.setattr(native_module, "drain_logs", interrupted_drain)
        with pytest.raises(KeyboardInterrupt):
            stream.next_batch()  # chunk 1 delivered by C, held by the binding
        monkeypatch.setattr(native_module, "drain_logs", real_drain)
        token = stream.resume_token()
    assert token.endswith("-1"), token
