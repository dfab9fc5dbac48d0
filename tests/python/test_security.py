"""Security: TLS verified by default (a private CA through ca_bundle), no keys over plain http to
anything but loopback, no redirects followed, and the keys absent from every log line (at every
level, on stderr too), error, exception and repr — even when a hostile server echoes them back."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, QUERY, T0, make_config, subprocess_env
from ddstream import testing
from ddstream._lib import ffi, lib
from ddstream.testing import FakeDatadog


def assert_no_keys(*texts: str) -> None:
    for text in texts:
        assert API_KEY not in text and APP_KEY not in text, text


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server() -> Any:
    with FakeDatadog(tls=True) as server:
        yield server


def test_self_signed_certificate_is_refused_by_default(tls_server: FakeDatadog) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    before = len(tls_server.requests)
    cfg = make_config(tls_server, range_end=T0 + 3600, max_retries=3, retry_backoff_ms=10)
    with dd.DDStream(cfg) as stream, pytest.raises(dd.NetworkError) as caught:
        next(stream)
    message = caught.value.message
    assert "TLS certificate verification failed" in message, message
    assert "self-signed certificate" in message or "self signed certificate" in message, message
    assert "set ca_bundle" in message
    assert "after" not in message  # not retried: a certificate does not get better
    assert len(tls_server.requests) == before  # no request got through the handshake
    assert "TLS certificate verification failed" in str(dd.DDStream.validate(cfg))


def test_ca_bundle_trusts_the_private_ca(tls_server: FakeDatadog) -> None:
    cfg = make_config(tls_server, range_end=T0 + 7200, chunk_seconds=3600,
                      ca_bundle=tls_server.ca_file)
    assert dd.DDStream.validate(cfg) is None
    with dd.DDStream(cfg) as stream:
        got = [np.array(b["avg"]) for b in stream]
    with FakeDatadog() as plain, dd.DDStream(cfg.copy(base_url=plain.url, ca_bundle=None)) as s:
        want = [np.array(b["avg"]) for b in s]
    assert len(got) == 2
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_ssl_cert_file_is_the_store_when_ca_bundle_is_unset(
    tls_server: FakeDatadog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$SSL_CERT_FILE names the CA store when ca_bundle is unset (libcurl, built with a CA file of
    its own, would ignore it); an explicit ca_bundle still wins over it."""
    cfg = make_config(tls_server, range_end=T0 + 3600)
    monkeypatch.setenv("SSL_CERT_FILE", tls_server.ca_file)
    assert dd.DDStream.validate(cfg) is None
    with dd.DDStream(cfg) as stream:
        assert len(next(stream)["avg"]) == 60
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    assert dd.DDStream.validate(cfg.copy(ca_bundle=tls_server.ca_file)) is None
    with dd.DDStream(cfg) as stream, pytest.raises(dd.ConfigError, match="SSL_CERT_FILE"):
        next(stream)


def test_missing_ca_bundle_is_a_config_error(tls_server: FakeDatadog, tmp_path: Any) -> None:
    cfg = make_config(tls_server, range_end=T0 + 3600, ca_bundle=str(tmp_path / "missing.pem"))
    with dd.DDStream(cfg) as stream, pytest.raises(dd.ConfigError, match="ca_bundle"):
        next(stream)


def test_https_certificate_must_match_the_host(tls_server: FakeDatadog) -> None:
    """The certificate is for 127.0.0.1 and localhost: any other name for the same server fails
    verification even with the right CA (here: the same address written differently)."""
    cfg = make_config(base_url=f"https://127.0.0.2:{tls_server.port}", range_end=T0 + 3600,
                      ca_bundle=tls_server.ca_file, connect_timeout_ms=1000)
    with dd.DDStream(cfg) as stream, pytest.raises(dd.NetworkError):
        next(stream)


# -- plain http and redirects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://api.datadoghq.com", "http://10.0.0.1:8080", "http://127.0.0.1.example.com",
     "http://127.0.0.1.:80", "http://127.0.0.256", "http://localhost.example.com"],
)
def test_plain_http_to_other_hosts_is_refused(url: str) -> None:
    cfg = make_config(base_url=url)
    with pytest.raises(dd.ConfigError, match="plain http to a non-loopback host"):
        dd.DDStream(cfg)
    # The user can say so explicitly (a trusted private network).
    assert len(dd.DDStream.plan(cfg.copy(allow_insecure_http=True))) == 1


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1", "http://127.1.2.3:1", "http://localhost:1", "http://[::1]:1"]
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert len(dd.DDStream.plan(make_config(base_url=url))) == 1


def test_redirects_are_not_followed() -> None:
    with FakeDatadog() as elsewhere, FakeDatadog() as server:
        server.add_fault(testing.Redirect(elsewhere.url, status=307, times=None))
        cfg = make_config(server, range_end=T0 + 3600, max_retries=3)
        with dd.DDStream(cfg) as stream, pytest.raises(dd.ServerError, match="not followed"):
            next(stream)
        assert [r.status for r in server.requests] == [307]
        assert elsewhere.requests == []  # the keys never went there


# -- keys never leak ------------------------------------------------------------------------------

KEY_ECHO = f"invalid key {API_KEY} for application {APP_KEY}"


def _echo_in_status_error(doc: dict[str, Any], exchange: testing.Exchange) -> dict[str, Any]:
    return {"status": "error", "error": KEY_ECHO}


SCENARIOS: dict[str, Any] = {
    "400 echoing the keys": lambda s: s.inject(400, json.dumps({"errors": [KEY_ECHO]}), times=None),
    "503 HTML echoing the keys": lambda s: s.inject(
        503, f"<html><title>{KEY_ECHO}</title></html>", html=True, times=None),
    "status error echoing the keys": lambda s: s.add_fault(
        testing.Mutate(_echo_in_status_error, times=None)),
    "garbage echoing the keys": lambda s: s.add_fault(
        testing.Garbage(KEY_ECHO.encode(), times=None)),
    # The message quotes 24 bytes from where the JSON breaks: a piece of the key, not all of it.
    "invalid JSON echoing the keys": lambda s: s.add_fault(
        testing.Garbage(('{"series": [' + KEY_ECHO + "]}").encode(), times=None)),
    "503 then data": lambda s: s.inject(503, times=1),
    "reset mid-body then data": lambda s: s.add_fault(testing.ResetMidBody()),
}


@pytest.mark.parametrize("level", [1, 2, 3, 4])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_keys_never_leak(scenario: str, level: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ddstream")
    with FakeDatadog() as server:
        SCENARIOS[scenario](server)
        cfg = make_config(server, range_end=T0 + 3600, log_level=level, max_retries=1,
                          retry_backoff_ms=10)
        texts = [repr(cfg), str(cfg)]
        error: dd.DDStreamError | None = None
        with dd.DDStream(cfg) as stream:
            texts.append(repr(stream))
            try:
                list(stream)
            except dd.DDStreamError as exc:
                error = exc
            texts.append(stream.last_error())
            texts.append(ffi.string(lib.ddstream_last_error(stream._handle.ptr)).decode())
        texts.append(str(dd.DDStream.validate(cfg)))  # after: the stream meets the fault
    records = [r.getMessage() for r in caplog.records if r.name == "ddstream"]
    # A recovered fault logs a warning; a failure is raised, and logged at DEBUG only (not at
    # ERROR: it would be reported twice). So the ERROR level logs nothing here.
    if level == 4 or (level >= 2 and error is None):
        assert records, f"log_level={level} logged nothing"
    if level == 1:
        assert records == []
    if "echo" in scenario:  # the server's text reached the message, with the keys scrubbed
        assert error is not None and "***" in error.message, error
        texts += [str(error), repr(error), error.message, repr(error.args)]
    else:
        assert error is None, error
    assert_no_keys(*texts, *records)


STDERR_CHILD = textwrap.dedent(
    """
    import ddstream as dd
    from ddstream._lib import ffi, lib

    cfg = dd.DDStreamConfig(api_key=%(api)r, app_key=%(app)r, query=%(query)r,
                            range_start=%(t0)d, range_end=%(t0)d + 3600, log_level=4,
                            max_retries=1, retry_backoff_ms=10)
    native = cfg.to_native()
    native.ptr.log_to_queue = 0  # the C library's own sink: lines go to stderr
    out = ffi.new("ddstream_stream **")
    err = ffi.new("ddstream_error *")
    assert lib.ddstream_open(native.ptr, out, err) == 0
    box = ffi.new("ddstream_batch **")
    status = lib.ddstream_next(out[0], -1, box, err)
    print(status, ffi.string(err.message).decode())
    lib.ddstream_close(out[0])
    """
) % {"api": API_KEY, "app": APP_KEY, "query": QUERY, "t0": T0}


def test_keys_never_reach_stderr(fake: FakeDatadog) -> None:
    """C callers without a log callback get lines on stderr: scrubbed too."""
    fake.inject(503, f"<html><title>{KEY_ECHO}</title></html>", html=True, times=None)
    result = subprocess.run([sys.executable, "-c", STDERR_CHILD], env=subprocess_env(fake),
                            capture_output=True, text=True, timeout=60, check=True)
    assert "ddstream DEBUG: GET http://127.0.0.1" in result.stderr
    assert "ddstream WARN: HTTP 503" in result.stderr
    assert result.stdout.startswith(str(lib.DDSTREAM_E_SERVER))
    assert "***" in result.stdout and "***" in result.stderr
    assert_no_keys(result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [
        ("https://user:pass@127.0.0.1:9", "https://<redacted>@127.0.0.1:9"),
        ("http://127.0.0.1:80@198.18.0.1:9", "http://<redacted>@198.18.0.1:9"),
        ("https://a@b@127.0.0.1", "https://<redacted>@127.0.0.1"),
        ("user:pass@127.0.0.1", "<redacted>@127.0.0.1"),
        ("https://127.0.0.1:9", "https://127.0.0.1:9"),
    ],
)
def test_config_repr_masks_userinfo_in_base_url(base_url: str, shown: str) -> None:
    # The library refuses such a base_url at open; a repr printed before that must not show it.
    text = repr(dd.DDStreamConfig(base_url=base_url))
    assert f"base_url={shown!r}" in text
    assert "pass" not in text.replace("<redacted>", "")
