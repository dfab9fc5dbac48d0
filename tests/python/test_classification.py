"""What a bad answer or a bad input is classified as, end to end against FakeDatadog.

- a syntactically broken 200 is a ProtocolError after one request; only a document that is a
  correct beginning of JSON and stops early is "cut short" (a NetworkError, retried);
- U+0000 in any string of an answer (tags, scope, expression, metric, status, error message, a key)
  is a ProtocolError naming its JSON path: two tag sets that differ after a NUL never merge;
- a key of any length that the server echoes is scrubbed;
- a key or query that cannot be encoded is a ConfigError naming the field, never quoting a key.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import ddstream as dd
from conftest import T0, make_config
from ddstream import testing
from ddstream.testing import FakeDatadog

BROKEN = [
    b'{"series":[}',
    b'{"series":[}]}',
    b'{"series":[{"query_index":0,,"tag_set":[]}]}',
    b'{"series":[1 2]}',
    b'{"series":[{"pointlist":[[1, tru e]]}]}',
    b'{"series":[{"tag_set":["a\\x"]}]}',
    b'{"series":[]]}',
    b'{"series":{]}',
]

CUT = [
    b'{"series":[',
    b'{"series":[{"query_index":0,"tag_set":["host:a',
    b'{"series":[{"pointlist":[[1000,1.5e',
    b'{"series":[{"tag_set":["\\u00',
]


@pytest.mark.parametrize("body", BROKEN)
def test_broken_json_is_a_protocol_error_not_retried(body: bytes) -> None:
    with FakeDatadog() as server:
        server.add_fault(testing.Garbage(body, times=None))
        cfg = make_config(server, range_end=T0 + 3600, max_retries=5, retry_backoff_ms=500)
        started = time.monotonic()
        with dd.DDStream(cfg) as stream, pytest.raises(dd.ProtocolError,
                                                       match="invalid JSON at byte"):
            next(stream)
        assert time.monotonic() - started < 2.0
        assert len(server.requests) == 1


@pytest.mark.parametrize("body", CUT)
def test_cut_short_json_is_retried(body: bytes) -> None:
    with FakeDatadog() as server:
        server.add_fault(testing.Garbage(body, times=None))
        cfg = make_config(server, range_end=T0 + 3600, max_retries=2, retry_backoff_ms=1)
        with dd.DDStream(cfg) as stream, pytest.raises(dd.NetworkError, match="cut short"):
            next(stream)
        assert len(server.requests) == 3


def _put_nul(where: str) -> Any:
    def change(doc: dict[str, Any], exchange: testing.Exchange) -> Any:
        series = doc["series"]
        if where == "tag_set":
            series[0]["tag_set"] = ["host:a\0x"]
            series.append(dict(series[0], tag_set=["host:a\0y"]))
        elif where in ("scope", "expression", "metric"):
            series[0][where] = series[0][where] + "\0hidden"
        elif where == "key":
            series[0]["tag_set\0"] = ["other"]
        elif where == "status":
            doc["status"] = "ok\0"
        elif where == "error":
            return {"status": "error", "error": "bad query\0 and more"}
        return doc

    return change


NUL_PATHS = {
    "tag_set": r"series\[0\]\.tag_set\[0\]",
    "scope": r"series\[0\]\.scope",
    "expression": r"series\[0\]\.expression",
    "metric": r"series\[0\]\.metric",
    "key": r"series\[0\]\.<a key>",
    "status": r"status",
    "error": r"error",
}


@pytest.mark.parametrize("where", list(NUL_PATHS))
def test_nul_in_any_string_is_refused_with_its_path(where: str) -> None:
    with FakeDatadog() as server:
        server.add_fault(testing.Mutate(_put_nul(where), times=None))
        cfg = make_config(server, range_end=T0 + 3600, query="avg:system.cpu.user{*} by {host}")
        with dd.DDStream(cfg) as stream, pytest.raises(
                dd.ProtocolError, match=NUL_PATHS[where] + r": a string holds U\+0000"):
            next(stream)
        assert len(server.requests) == 1


@pytest.mark.parametrize("length", [1, 2, 3, 5, 7, 8, 40])
def test_an_echoed_key_of_any_length_is_scrubbed(length: int) -> None:
    api_key = "QZ!#&~%@"[:length] if length <= 8 else "Q" * length
    app_key = "app-key-that-is-long-enough-0123456789"
    with FakeDatadog(api_keys={api_key}, app_keys={app_key}) as server:
        server.inject(403, f'{{"errors": ["API key {api_key} is not valid"]}}', times=None)
        cfg = make_config(server, api_key=api_key, app_key=app_key, range_end=T0 + 3600)
        with dd.DDStream(cfg) as stream, pytest.raises(dd.AuthError) as caught:
            next(stream)
        texts = [str(caught.value), repr(caught.value), caught.value.message]
        assert all(api_key not in text for text in texts), texts
        assert "API key *" in caught.value.message


@pytest.mark.parametrize("field", ["api_key", "app_key", "query", "site", "base_url"])
@pytest.mark.parametrize("bad", ["abc\ud800def", "\udfff", "x\ud83d"])
def test_unencodable_text_is_a_config_error_naming_the_field(field: str, bad: str) -> None:
    cfg = make_config(**{field: bad})
    for call in (dd.DDStream, dd.DDStream.plan, dd.DDStream.check):
        with pytest.raises(dd.ConfigError, match=f"^{field}: not valid text") as caught:
            call(cfg)
        exc = caught.value
        # No UnicodeEncodeError behind it: its .object would be the whole value.
        assert exc.__context__ is None and exc.__cause__ is None
        if field.endswith("_key"):
            for text in (str(exc), repr(exc), repr(exc.args)):
                assert bad not in text and "abc" not in text and "def" not in text
    message = dd.DDStream.validate(cfg)
    assert message is not None and message.startswith(f"{field}: not valid text")
