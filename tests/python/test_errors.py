"""Errors: the exception hierarchy, auth and query errors from the server, validate(), retrying a
failed chunk, cancellation, and keys never leaking into messages, reprs or logs."""

from __future__ import annotations

import logging
import pickle
import threading
import time

import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, T0, make_config, read_all
from ddstream._lib import ffi, lib
from ddstream.errors import error_class_for_status
from ddstream.testing import FakeDatadog

ALL_ERRORS = [dd.ConfigError, dd.AuthError, dd.RateLimitError, dd.QueryError, dd.ServerError,
              dd.NetworkError, dd.RequestTimeoutError, dd.ProtocolError, dd.CancelledError,
              dd.InternalError]


def assert_no_keys(*texts: str) -> None:
    for text in texts:
        assert API_KEY not in text, text
        assert APP_KEY not in text, text


def test_hierarchy() -> None:
    for cls in ALL_ERRORS:
        assert issubclass(cls, dd.DDStreamError)
        assert issubclass(cls, RuntimeError)
    expected = {
        lib.DDSTREAM_E_CONFIG: dd.ConfigError,
        lib.DDSTREAM_E_AUTH: dd.AuthError,
        lib.DDSTREAM_E_RATE_LIMITED: dd.RateLimitError,
        lib.DDSTREAM_E_QUERY: dd.QueryError,
        lib.DDSTREAM_E_SERVER: dd.ServerError,
        lib.DDSTREAM_E_NETWORK: dd.NetworkError,
        lib.DDSTREAM_E_TIMEOUT: dd.RequestTimeoutError,
        lib.DDSTREAM_E_PROTOCOL: dd.ProtocolError,
        lib.DDSTREAM_E_CANCELLED: dd.CancelledError,
        lib.DDSTREAM_E_INTERNAL: dd.InternalError,
        lib.DDSTREAM_E_NOMEM: dd.InternalError,
        lib.DDSTREAM_E_INVALID_ARGUMENT: dd.InternalError,
    }
    for status, cls in expected.items():
        assert error_class_for_status(status) is cls
    assert error_class_for_status(999) is dd.DDStreamError
    err = dd.QueryError("bad", status=22, http_status=400, chunk_start=60, chunk_end=120)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is dd.QueryError
    assert (copy.message, copy.status, copy.http_status, copy.chunk_start, copy.chunk_end) == (
        "bad", 22, 400, 60, 120)


BUILTIN_BASES = [
    (dd.ConfigError, ValueError),
    (dd.NetworkError, ConnectionError),
    (dd.RequestTimeoutError, TimeoutError),
    (dd.errors.LibraryLoadError, ImportError),
]


@pytest.mark.parametrize(("cls", "builtin"), BUILTIN_BASES)
def test_errors_also_inherit_the_matching_builtin(cls: type[dd.DDStreamError],
                                                  builtin: type[Exception]) -> None:
    """As pyarrow's ArrowInvalid is a ValueError: generic handlers catch ddstream's errors, which
    keep their attributes, their message (str) and their type through pickling."""
    assert issubclass(cls, builtin) and issubclass(cls, dd.DDStreamError)
    assert cls.__mro__.index(dd.DDStreamError) < cls.__mro__.index(builtin)
    err = cls("what went wrong", status=24, http_status=502, chunk_start=60, chunk_end=120)
    assert str(err) == err.message == "what went wrong"
    with pytest.raises(builtin) as info:
        raise err
    assert info.value is err
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls and str(copy) == "what went wrong"
    assert (copy.status, copy.http_status, copy.chunk_start, copy.chunk_end) == (24, 502, 60, 120)


def test_other_errors_are_not_mistaken_for_builtins() -> None:
    for cls in (dd.AuthError, dd.QueryError, dd.CancelledError, dd.InternalError,
                dd.RateLimitError, dd.ServerError, dd.ProtocolError, dd.ForkedStreamError):
        assert not issubclass(cls, (ValueError, OSError, ImportError)), cls


def test_builtin_handlers_catch_real_failures(fake: FakeDatadog) -> None:
    """The real failures, caught the way code unaware of ddstream would catch them."""
    with pytest.raises(ValueError, match="granularity") as bad_value:
        dd.DDStream(make_config(fake, granularity=-5))
    assert isinstance(bad_value.value, dd.ConfigError)
    with pytest.raises(TypeError) as bad_type:  # a wrong type stays a TypeError, as before
        dd.DDStream(make_config(fake, granularity="60"))
    assert not isinstance(bad_type.value, dd.DDStreamError)
    unreachable = make_config(base_url="http://127.0.0.1:9", range_end=T0 + 3600, max_retries=0)
    with dd.DDStream(unreachable) as stream, pytest.raises(ConnectionError) as refused:
        read_all(stream)
    assert isinstance(refused.value, dd.NetworkError)
    fake.latency = 2.0
    slow = make_config(fake, range_end=T0 + 3600, request_timeout_ms=300, max_retries=0)
    with dd.DDStream(slow) as stream, pytest.raises(TimeoutError) as timed_out:
        read_all(stream)
    assert isinstance(timed_out.value, dd.RequestTimeoutError)


# A query the library's parser accepts and the fake server refuses with a 400 (it has no such
# function): the path of a query Datadog itself rejects.
SERVER_REFUSES = "robust_trend(avg:system.cpu.user{*})"


def test_bad_query_is_a_query_error(fake: FakeDatadog) -> None:
    # Valid to the library's parser, refused by the server (the fake lacks this function).
    cfg = make_config(fake, query=SERVER_REFUSES, range_end=T0 + 3600)
    with dd.DDStream(cfg) as stream:
        with pytest.raises(dd.QueryError) as info:
            read_all(stream)
        err = info.value
        assert err.http_status == 400
        assert (err.chunk_start, err.chunk_end) == stream.chunks[0]
        assert "Error parsing query" in str(err)  # the server's own message is passed on
        # has_next/next_batch form: None, then last_error() says why.
        assert stream.has_next()
        assert stream.next_batch() is None
        assert "Error parsing query" in stream.last_error()
    message = dd.DDStream.validate(cfg)
    assert message is not None and "scope" in message
    # A 400 is not retried: one request per attempt.
    statuses = [r.status for r in fake.query_requests]
    assert statuses and set(statuses) == {400}


def test_wrong_api_key_is_an_auth_error() -> None:
    with FakeDatadog(api_keys=["good-api-key"], app_keys=["good-app-key"]) as server:
        cfg = make_config(server, range_end=T0 + 3600)
        with dd.DDStream(cfg) as stream, pytest.raises(dd.AuthError) as info:
            next(stream)
        assert info.value.http_status == 403
        message = dd.DDStream.validate(cfg)
        assert message is not None
        assert_no_keys(str(info.value), message, repr(stream), repr(cfg))
        # Not retried (max_retries=0 aside, 401/403 are final): one query request per attempt.
        assert [r.status for r in server.query_requests] == [403]
        # validate() stops at /api/v1/validate when the API key is refused.
        assert [r.path for r in server.requests][-1] == "/api/v1/validate"

        good = make_config(server, api_key="good-api-key", app_key="good-app-key",
                           range_end=T0 + 3600)
        assert dd.DDStream.validate(good) is None
        wrong_app = make_config(server, api_key="good-api-key", range_end=T0 + 3600)
        message = dd.DDStream.validate(wrong_app)
        assert message is not None
        assert_no_keys(message)
        with dd.DDStream(wrong_app) as stream, pytest.raises(dd.AuthError) as info:
            read_all(stream)
        assert info.value.http_status == 403


def test_401_is_an_auth_error(fake: FakeDatadog) -> None:
    fake.inject(401, times=None)
    fake.inject(401, times=None, path="/api/v1/validate")
    cfg = make_config(fake, range_end=T0 + 3600, max_retries=3)
    with dd.DDStream(cfg) as stream:
        assert stream.next_batch() is None
        assert "401" in stream.last_error() or "auth" in stream.last_error().lower()
        with pytest.raises(dd.AuthError) as info:
            next(stream)
    assert info.value.http_status == 401
    assert dd.DDStream.validate(cfg) is not None
    # 401 is final: no retries despite max_retries=3.
    assert len(fake.query_requests) == 2


def test_error_then_retry_same_chunk(fake: FakeDatadog) -> None:
    cfg = make_config(fake, chunk_seconds=14400, enable_prefetch=False, max_retries=1,
                      max_retry_wait_ms=1000)
    with dd.DDStream(cfg) as stream:
        first = stream.next_batch()
        assert first is not None and first["chunk_index"] == 0
        fake.inject(503, times=2)  # first try and its one retry
        assert stream.next_batch() is None
        message = stream.last_error()
        assert message
        with pytest.raises(dd.ServerError):
            raise_from_stream(stream)
        # The failed chunk is delivered by the next call: nothing skipped.
        batch = stream.next_batch()
        assert batch is not None and batch["chunk_index"] == 1
        assert stream.last_error() == ""
        assert [b["chunk_index"] for b in stream] == [2, 3, 4, 5]
    attempts = [(r.from_ts, r.status) for r in fake.query_requests]
    assert [s for _, s in attempts].count(503) == 2


def raise_from_stream(stream: dd.DDStream) -> None:
    """Reproduce the iterator's error for the last failure (the stream keeps it)."""
    exc = stream._last_exc
    if exc is not None:
        raise exc


def test_transient_errors_are_retried(fake: FakeDatadog) -> None:
    fake.inject(503, times=1)
    fake.inject(500, times=1)
    cfg = make_config(fake, range_end=T0 + 3600, max_retries=3, max_retry_wait_ms=5000)
    with dd.DDStream(cfg) as stream:
        assert len(read_all(stream)) == 1
    assert [r.status for r in fake.query_requests] == [503, 500, 200]


def test_unreachable_server_is_a_network_error() -> None:
    # Port 9 on loopback: nothing listens; connection refused at once.
    cfg = make_config(base_url="http://127.0.0.1:9", range_end=T0 + 3600)
    with dd.DDStream(cfg) as stream, pytest.raises(dd.NetworkError):
        read_all(stream)
    assert dd.DDStream.validate(cfg) is not None


def test_request_timeout(fake: FakeDatadog) -> None:
    fake.latency = 2.0
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=300)
    started = time.monotonic()
    with dd.DDStream(cfg) as stream, pytest.raises(dd.RequestTimeoutError):
        read_all(stream)
    assert time.monotonic() - started < 1.8


def test_html_error_page(fake: FakeDatadog) -> None:
    fake.inject(502, html=True, times=None)
    cfg = make_config(fake, range_end=T0 + 3600)
    with dd.DDStream(cfg) as stream, pytest.raises(dd.ServerError) as info:
        read_all(stream)
    assert info.value.http_status == 502


def test_cancel_from_another_thread(fake: FakeDatadog) -> None:
    fake.latency = 3.0
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=20000)
    with dd.DDStream(cfg) as stream:
        threading.Timer(0.2, stream.cancel).start()
        started = time.monotonic()
        assert stream.next_batch() is None
        assert time.monotonic() - started < 1.5
        assert stream.last_error()
        with pytest.raises(dd.CancelledError):
            next(stream)  # still cancelled
        # reset() clears the cancellation.
        fake.latency = 0.0
        stream.reset()
        assert len(read_all(stream)) == 1


@pytest.mark.parametrize("scenario", ["ok", "auth", "query", "server"])
def test_keys_never_leak(
    scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ddstream")
    keys = {"api_keys": [API_KEY], "app_keys": [APP_KEY]} if scenario != "auth" else {
        "api_keys": ["someone-else"]}
    with FakeDatadog(**keys) as server:
        if scenario == "server":
            server.inject(500, times=None)
        query = SERVER_REFUSES if scenario == "query" else "avg:system.cpu.user{*}"
        cfg = make_config(server, query=query, log_level=4, range_end=T0 + 7200,
                          chunk_seconds=3600, max_retries=1, max_retry_wait_ms=500)
        texts = [repr(cfg), str(cfg)]
        texts.append(str(dd.DDStream.validate(cfg)))
        with dd.DDStream(cfg) as stream:
            texts.append(repr(stream))
            try:
                read_all(stream)
            except dd.DDStreamError as exc:
                texts += [str(exc), repr(exc), exc.message]
            stream.next_batch()
            texts.append(stream.last_error())
            texts.append(ffi.string(lib.ddstream_last_error(stream._handle.ptr)).decode())
        assert not any(r.keys_in_url for r in server.requests)
        assert all(r.api_key_sent for r in server.requests)
        for record in server.requests:
            texts += list(record.params.values())
    records = [r for r in caplog.records if r.name == "ddstream"]
    assert records, "log_level=4 produced no log record"
    texts += [r.getMessage() for r in records]
    assert_no_keys(*texts)


def test_last_error_matches_the_library(fake: FakeDatadog) -> None:
    fake.inject(500, times=None)
    cfg = make_config(fake, range_end=T0 + 3600)
    with dd.DDStream(cfg) as stream:
        assert stream.next_batch() is None
        ours = stream.last_error()
        theirs = ffi.string(lib.ddstream_last_error(stream._handle.ptr)).decode()
        assert ours == theirs and ours
        fake.clear_faults()
        assert stream.next_batch() is not None
        assert stream.last_error() == ""
        assert ffi.string(lib.ddstream_last_error(stream._handle.ptr)).decode() == ""


def test_validate_writes_nothing_to_stderr(
    fake: FakeDatadog, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = make_config(fake, log_level=4)
    assert dd.DDStream.validate(cfg) is None
    assert dd.DDStream.validate(cfg.copy(query="avg:system.cpu.user{}")) is not None
    with dd.DDStream(cfg.copy(range_end=T0 + 3600)) as stream:
        read_all(stream)
    out, err = capfd.readouterr()
    assert "ddstream" not in err and "ddstream" not in out
