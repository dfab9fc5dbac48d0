"""base_url is checked on libcurl's own reading of the URL (libddstream/base_url.c): a table of
URLs that a hand-written splitter and libcurl read differently, and end to end, every bypass
aimed at a listener on a non-loopback address, which must see no connection and no byte."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, make_config
from ddstream._lib import ffi, lib

PROBE = Path(__file__).with_name("foreign_host_probe.py")

REFUSED = [
    # The two of the report: userinfo that looks like a host, and a login sent as Basic auth.
    ("http://127.0.0.1:80@example.com:8080", "credentials"),
    ("https://user:pass@127.0.0.1", "credentials"),
    ("http://user@127.0.0.1", "credentials"),
    ("http://:@127.0.0.1", "credentials"),
    ("http://127.0.0.1;x@example.com", "credentials"),
    ("http://127.0.0.1%2f@example.com", "credentials"),
    ("http://127.0.0.1\\@example.com", "backslash"),
    ("http://example.com?@127.0.0.1", "query"),
    ("http://example.com#@127.0.0.1", "fragment"),
    ("http://127.0.0.1/?", "query"),
    ("http://127.0.0.1/#", "fragment"),
    ("http://[::1%25lo]:80", "zone id"),
    ("http://127.0.0.1./", "non-loopback host"),
    ("http://localhost./", "non-loopback host"),
    ("http://0/", "non-loopback host"),
    ("http://[::ffff:10.0.0.1]", "non-loopback host"),
    ("http://3323068417", "non-loopback host"),
    ("http://%31%39%38.18.0.1", "without '%'"),
    ("http://%31", "without '%'"),
    ("http://%31%32%37.1", "without '%'"),
    ("HTTP://EXAMPLE.COM", "non-loopback host"),
    ("http:/127.0.0.1", "followed by the host"),
    ("http:///127.0.0.1", "followed by the host"),
    ("ftp://127.0.0.1", "not ftp://"),
    ("http://127.0.0.1:99999", "not a valid URL"),
    ("http://[::1", "not a valid URL"),
    ("http://", "no host"),
    ("http://127.0.0.1\r\nX-Injected: 1", "spaces or control characters"),
]

# Accepted; the URL requests are then built on (libcurl's rendering: "http://127.0.0.1" for
# "http://0x7f.0.0.1") is asserted in tests/c/test_base_url.c, which sees the settings.
ACCEPTED = ["http://127.0.0.1:8126/", "http://127.1:9", "http://0x7f.0.0.1", "http://127.0.0.1/a%20b",
            "HTTP://LocalHost:1/", "http://[0:0:0:0:0:0:0:1]:5", "https://api.datadoghq.com/"]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_tricky_urls_are_refused(url: str, why: str) -> None:
    cfg = make_config(base_url=url)
    for call in (dd.DDStream, dd.DDStream.plan, dd.DDStream.check):
        with pytest.raises(dd.ConfigError, match="base_url") as caught:
            call(cfg)
        assert why in str(caught.value)
        assert "pass" not in str(caught.value) and "user" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["https://user:pass@127.0.0.1", "http://127.0.0.1:80@example.com", "http://[::1%25lo]",
            "http://127.0.0.1/?a=1", "http://127.0.0.1/#x"])
def test_allow_insecure_http_never_allows_userinfo_query_fragment_zone(url: str) -> None:
    with pytest.raises(dd.ConfigError, match="base_url"):
        dd.DDStream.plan(make_config(base_url=url, allow_insecure_http=True))


@pytest.mark.parametrize("url", ACCEPTED)
def test_loopback_and_https_urls_are_accepted(url: str) -> None:
    cfg = make_config(base_url=url)
    assert len(dd.DDStream.plan(cfg)) == 1
    native = cfg.to_native()
    err = ffi.new("ddstream_error *")
    assert lib.ddstream_config_validate(native.ptr, err) == 0, ffi.string(err.message)


def test_no_byte_reaches_a_non_loopback_host() -> None:
    """Each bypass aimed at 198.18.0.1 (a namespace's own address, see foreign_host_probe.py)
    through DDStream(), check(), plan() and DDSTREAM_BASE_URL: a ConfigError every time, and the
    listener sees nothing; the control request (allow_insecure_http) does reach it, key and all."""
    templates = [
        "http://127.0.0.1:80@198.18.0.1:{port}",
        "http://127.0.0.1@198.18.0.1:{port}",
        "http://localhost:{port}@198.18.0.1:{port}",
        "http://127.0.0.1;x@198.18.0.1:{port}",
        "http://127.0.0.1\\@198.18.0.1:{port}",
        "http://198.18.0.1:{port}#@127.0.0.1",
        "http://198.18.0.1:{port}?@127.0.0.1",
        "http://198.18.0.1:{port}/127.0.0.1",
        "http://198.18.0.1:{port}",
        "http:/198.18.0.1:{port}",
        "http://3323068417:{port}",
        "http://0xc6.0x12.0.1:{port}",
        "http://[::ffff:198.18.0.1]:{port}",
        "http://198.18.0.1.:{port}",
        "https://user:pass@198.18.0.1:{port}",
    ]
    proc = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(templates), API_KEY, APP_KEY],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if "setup_error" in report:
        pytest.fail("cannot make a network namespace with a non-loopback address, so the bypass "
                    f"test cannot run: {report['setup_error']}")
    assert len(report["results"]) == len(templates)
    for row in report["results"]:
        for entry in ("DDStream", "check", "plan", "environment"):
            assert row[entry].startswith("ConfigError: base_url"), (row["url"], entry, row[entry])
            assert "pass" not in row[entry], row[entry]
    assert report["reached"] == {"connections": 0, "bytes": 0}
    # The listener is not blind: a request allowed to go there arrives, with the key in it.
    assert not report["control"].startswith("ConfigError"), report["control"]
    assert report["control_connections"] >= 1
    assert report["control_saw_key"]
