"""DDStreamConfig: construction, defaults, repr, the environment, and configs the library refuses
(before any network I/O)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, QUERY, T0, make_config
from ddstream._lib import ffi
from ddstream.testing import FakeDatadog


def test_defaults() -> None:
    cfg = dd.DDStreamConfig()
    assert cfg.api_key is None
    assert cfg.app_key is None
    assert cfg.query == ""
    assert cfg.granularity == 60
    assert cfg.chunk_seconds == 0
    assert cfg.enable_prefetch is True
    assert cfg.prefetch_chunks == 2
    assert cfg.log_level is None  # follow logging.getLogger("ddstream")
    assert cfg.enable_arrow is False
    assert cfg.site is None
    assert cfg.base_url is None
    assert cfg.allow_insecure_http is False
    for name in ("max_retries", "max_retry_wait_ms", "connect_timeout_ms",
                 "request_timeout_ms", "max_body_bytes", "ca_bundle"):
        assert getattr(cfg, name) is None, name


def test_keywords_and_attributes_agree() -> None:
    a = dd.DDStreamConfig(query=QUERY, range_start=1, range_end=2, granularity=10)
    b = dd.DDStreamConfig()
    b.query = QUERY
    b.range_start = 1
    b.range_end = 2
    b.granularity = 10
    assert a == b
    assert a.copy() == a
    assert a.copy(granularity=60) != a
    assert pickle.loads(pickle.dumps(a)) == a


def test_unknown_names_are_refused() -> None:
    cfg = dd.DDStreamConfig()
    with pytest.raises(AttributeError):
        cfg.granulairty = 60  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="granulairty"):
        dd.DDStreamConfig(granulairty=60)


def test_repr_hides_keys() -> None:
    cfg = dd.DDStreamConfig(api_key=API_KEY, app_key=APP_KEY, query=QUERY)
    text = repr(cfg)
    assert API_KEY not in text and APP_KEY not in text
    assert "api_key=<set>" in text and "app_key=<set>" in text
    assert repr(dd.DDStreamConfig()).startswith("DDStreamConfig(api_key=<unset>, app_key=<unset>")
    assert QUERY in text


def test_to_native_fills_every_field() -> None:
    cfg = make_config(
        base_url="http://127.0.0.1:1",
        site="datadoghq.eu",
        chunk_seconds=3600,
        enable_prefetch=False,
        prefetch_chunks=5,
        log_level=3,
        max_retries=7,
        max_retry_wait_ms=1234,
        connect_timeout_ms=2345,
        request_timeout_ms=3456,
        max_body_bytes=4567,
        ca_bundle="bundle.pem",
        allow_insecure_http=True,
    )
    native = cfg.to_native()
    c = native.ptr
    assert c.struct_size == ffi.sizeof("ddstream_config")
    assert ffi.string(c.api_key).decode() == API_KEY
    assert ffi.string(c.app_key).decode() == APP_KEY
    assert ffi.string(c.query).decode() == QUERY
    assert ffi.string(c.site).decode() == "datadoghq.eu"
    assert ffi.string(c.base_url).decode() == "http://127.0.0.1:1"
    assert ffi.string(c.ca_bundle).decode() == "bundle.pem"
    assert (c.range_start, c.range_end, c.granularity, c.chunk_seconds) == (
        T0, T0 + 86400, 60, 3600)
    assert (c.enable_prefetch, c.prefetch_chunks, c.log_level, c.log_to_queue) == (0, 5, 3, 1)
    assert (c.max_retries, c.max_retry_wait_ms, c.connect_timeout_ms) == (7, 1234, 2345)
    assert (c.request_timeout_ms, c.max_body_bytes, c.allow_insecure_http) == (3456, 4567, 1)
    assert c.log_fn == ffi.NULL


def test_to_native_keeps_library_defaults_for_none() -> None:
    c = dd.DDStreamConfig().to_native().ptr
    assert c.api_key == ffi.NULL and c.app_key == ffi.NULL and c.site == ffi.NULL
    assert c.base_url == ffi.NULL and c.ca_bundle == ffi.NULL
    assert c.max_retries == 5
    assert c.max_retry_wait_ms == 300000
    assert c.connect_timeout_ms == 10000
    assert c.request_timeout_ms == 120000
    assert c.max_body_bytes == 256 * 1024 * 1024


def test_wrong_types_raise_type_error() -> None:
    with pytest.raises(TypeError, match="granularity"):
        dd.DDStream(make_config(granularity="60"))
    with pytest.raises(TypeError, match="query"):
        dd.DDStream(make_config(query=b"avg:x{*}"))
    with pytest.raises(TypeError, match="range_start"):
        dd.DDStream(make_config(range_start=1.5))
    # Whole floats (time.time() arithmetic) are accepted.
    assert make_config(range_start=float(T0)).to_native().ptr.range_start == T0


def test_out_of_range_numbers_are_config_errors() -> None:
    with pytest.raises(dd.ConfigError, match="prefetch_chunks"):
        make_config(prefetch_chunks=2**40).to_native()
    with pytest.raises(dd.ConfigError, match="query"):
        make_config(query="avg:a{*}\0").to_native()


BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    ("missing api key", {"api_key": None}, "api_key"),
    ("missing app key", {"app_key": None}, "app_key"),
    ("empty query", {"query": ""}, "query"),
    ("blank query", {"query": "   "}, "query"),
    ("start == end", {"range_end": T0}, "range"),
    ("start > end", {"range_end": T0 - 60}, "range"),
    ("zero granularity", {"granularity": 0}, "granularity"),
    ("negative granularity", {"granularity": -60}, "granularity"),
    ("unknown site", {"site": "datadoghq.example", "base_url": None}, "site"),
    ("unclosed scope", {"query": "avg:system.cpu.user{host:a"}, "query: at character 27"),
    ("empty query between commas", {"query": "avg:system.cpu.user{*},,avg:b{*}"}, "query"),
    ("insecure http", {"base_url": "http://example.com"}, "base_url"),
    ("malformed base_url", {"base_url": "not a url"}, "base_url"),
    ("negative chunk_seconds", {"chunk_seconds": -1}, "chunk_seconds"),
    ("prefetch_chunks 0", {"prefetch_chunks": 0}, "prefetch_chunks"),
]


@pytest.mark.parametrize(("changes", "field"), [c[1:] for c in BAD_CONFIGS],
                         ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_raises_before_any_request(
    fake: FakeDatadog, changes: dict[str, Any], field: str
) -> None:
    cfg = make_config(fake, enable_prefetch=True, **changes)
    with pytest.raises(dd.ConfigError) as info:
        dd.DDStream(cfg)
    err = info.value
    assert isinstance(err, dd.DDStreamError) and isinstance(err, RuntimeError)
    assert field in str(err), str(err)
    assert err.status == 11
    assert err.http_status == 0
    # plan() (unless only a key is missing: a plan needs none) and validate() say the same,
    # still without a request.
    if field.endswith("_key"):
        assert dd.DDStream.plan(cfg) == dd.DDStream.plan(make_config(fake, **{field: "k"}))
    else:
        with pytest.raises(dd.ConfigError):
            dd.DDStream.plan(cfg)
    message = dd.DDStream.validate(cfg)
    assert message is not None and field in message
    assert fake.requests == []
    for text in (str(err), message):
        assert API_KEY not in text and APP_KEY not in text


def test_keys_from_the_environment(fake: FakeDatadog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    cfg = make_config(fake, api_key=None, app_key=None, range_end=T0 + 3600)
    assert dd.DDStream.validate(cfg) is None
    with dd.DDStream(cfg) as stream:
        assert len(list(stream)) == 1
    assert all(r.api_key_sent and r.app_key_sent for r in fake.query_requests)


def test_missing_keys_with_empty_environment(fake: FakeDatadog) -> None:
    cfg = make_config(fake, api_key=None, app_key=None)
    with pytest.raises(dd.ConfigError, match=r"api_key|DD_API_KEY"):
        dd.DDStream(cfg)
    assert fake.requests == []


def test_base_url_from_the_environment(fake: FakeDatadog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DDSTREAM_BASE_URL", fake.url)
    cfg = make_config(None, range_end=T0 + 3600)
    assert cfg.base_url is None
    with dd.DDStream(cfg) as stream:
        assert len(list(stream)) == 1
    assert len(fake.query_requests) == 1


def test_explicit_base_url_wins_over_environment(
    fake: FakeDatadog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment points at a closed port: an explicit base_url must be used instead.
    monkeypatch.setenv("DDSTREAM_BASE_URL", "http://127.0.0.1:9")
    cfg = make_config(fake, range_end=T0 + 3600)
    with dd.DDStream(cfg) as stream:
        assert len(list(stream)) == 1


def test_known_sites_plan_without_network() -> None:
    for site in ("datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu",
                 "ap1.datadoghq.com", "ap2.datadoghq.com", "uk1.datadoghq.com", "ddog-gov.com",
                 "us2.ddog-gov.com"):
        cfg = make_config(site=site)
        assert len(dd.DDStream.plan(cfg)) == 1, site


def test_site_from_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_SITE", "not-a-datadog-site.example")
    with pytest.raises(dd.ConfigError, match=r"site|DD_SITE"):
        dd.DDStream.plan(make_config())


def test_plan_shapes() -> None:
    g = 60
    start, end = T0, T0 + 30 * 86400
    fewest = dd.DDStream.plan(make_config(range_start=start, range_end=end, chunk_seconds=0))
    assert len(fewest) == 29
    assert all((e - s) // g <= 1500 for s, e in fewest)
    four_hours = dd.DDStream.plan(make_config(range_start=start, range_end=end,
                                              chunk_seconds=14400))
    assert len(four_hours) == 180
    # A user's chunk size is rounded down to the granularity...
    odd = dd.DDStream.plan(make_config(range_end=start + 86400, chunk_seconds=3601))
    assert {e - s for s, e in odd[:-1]} == {3600}
    # ...and clamped to the point cap.
    huge = dd.DDStream.plan(make_config(range_end=start + 86400 * 3, chunk_seconds=10**9))
    assert max(e - s for s, e in huge) == 1500 * g
    for plan in (fewest, four_hours, odd, huge):
        assert plan[0][0] == -(-start // g) * g
        assert all(a[1] == b[0] for a, b in zip(plan, plan[1:]))
        assert all(s % g == 0 and e % g == 0 for s, e in plan)
    print(f"\n30 days at 60 s: {len(fewest)} chunks with chunk_seconds=0, "
          f"{len(four_hours)} with 14400")


# ------------------------------------------------------------------------------- several queries

TWO = ["avg:system.cpu.user{*}", "max:system.load.1{*} by {host}"]


def test_queries_and_their_options_reach_the_library() -> None:
    cfg = make_config(query="", queries=TWO, statistics=("avg", "max"),
                      distribution_metrics=["trace.http.request.duration"],
                      max_subqueries_per_request=12, max_request_uri_bytes=3000)
    c = cfg.to_native().ptr
    assert c.query == ffi.NULL  # the library wants one or the other
    assert c.query_count == 2
    assert [ffi.string(c.queries[i]).decode() for i in range(2)] == TWO
    assert c.statistics == 1 | 4  # DDSTREAM_STAT_AVG | DDSTREAM_STAT_MAX
    assert c.distribution_metric_count == 1
    assert ffi.string(c.distribution_metrics[0]).decode() == "trace.http.request.duration"
    assert (c.max_subqueries_per_request, c.max_request_uri_bytes) == (12, 3000)
    # All four statistics is the default (0), so that both spellings are one config.
    assert make_config(statistics=["sum", "min", "max", "avg"]).to_native().ptr.statistics == 0
    defaults = make_config().to_native().ptr
    assert defaults.queries == ffi.NULL and defaults.query_count == 0
    assert defaults.statistics == 0 and defaults.distribution_metrics == ffi.NULL
    assert ffi.string(defaults.query).decode() == QUERY


def test_stat_bits_are_the_headers() -> None:
    from ddstream._config import _STAT_BITS
    from ddstream._lib import HEADER_PATH

    header = HEADER_PATH.read_text(encoding="utf-8")
    for name, bit in _STAT_BITS.items():
        assert f"#define DDSTREAM_STAT_{name.upper()} {bit}u" in header


def test_list_fields_compare_pickle_and_repr() -> None:
    a = dd.DDStreamConfig(queries=TWO, statistics=["avg"])
    b = dd.DDStreamConfig(queries=tuple(TWO), statistics=("avg",))
    assert a == b and pickle.loads(pickle.dumps(a)) == a and a.copy() == a
    assert a != b.copy(queries=TWO[:1])
    assert f"queries={TWO!r}" in repr(a) and "statistics=['avg']" in repr(a)
    # An earlier pickle, without the new fields, loads with their defaults.
    state = {k: v for k, v in dd.DDStreamConfig(query=QUERY).__getstate__().items()
             if k not in ("queries", "statistics", "distribution_metrics")}
    old = dd.DDStreamConfig.__new__(dd.DDStreamConfig)
    old.__setstate__(state)
    assert old.queries is None and old == dd.DDStreamConfig(query=QUERY)


QUERIES_MISTAKES: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("query and queries", {"queries": TWO}, dd.ConfigError, "query and queries"),
    ("a string as queries", {"query": "", "queries": TWO[0]}, TypeError, "queries"),
    ("a number in queries", {"query": "", "queries": [TWO[0], 7]}, TypeError, r"queries\[1\]"),
    ("NUL in queries", {"query": "", "queries": [TWO[0], "avg:a{*}\0"]}, dd.ConfigError,
     r"queries\[1\]"),
    ("empty queries", {"query": "", "queries": []}, dd.ConfigError, "queries"),
    ("unknown statistic", {"statistics": ["avg", "median"]}, dd.ConfigError, "median"),
    ("no statistic", {"statistics": []}, dd.ConfigError, "statistics"),
    ("statistics as one string", {"statistics": "avg"}, TypeError, "statistics"),
    ("a number in distribution_metrics", {"distribution_metrics": [1]}, TypeError,
     r"distribution_metrics\[0\]"),
]


@pytest.mark.parametrize(("changes", "error", "match"), [c[1:] for c in QUERIES_MISTAKES],
                         ids=[c[0] for c in QUERIES_MISTAKES])
def test_queries_mistakes_are_refused(fake: FakeDatadog, changes: dict[str, Any],
                                      error: type[Exception], match: str) -> None:
    cfg = make_config(fake, **changes)
    with pytest.raises(error, match=match):
        dd.DDStream(cfg)
    with pytest.raises(error, match=match):
        dd.DDStream.plan(cfg)
    assert fake.requests == []


def test_library_checks_of_queries(fake: FakeDatadog) -> None:
    # A query's error points at it, by index, and at the offending character.
    with pytest.raises(dd.ConfigError, match=r"queries\[1\]: at character \d+") as info:
        dd.DDStream(make_config(fake, query="", queries=[TWO[0], "avg:m{host:a"]))
    assert "^" in str(info.value)
    for budget in ({"max_subqueries_per_request": -1}, {"max_request_uri_bytes": -5}):
        with pytest.raises(dd.ConfigError, match=next(iter(budget))):
            dd.DDStream(make_config(fake, query="", queries=TWO, **budget))
    # A single sub-query over the URI budget names its query.
    with pytest.raises(dd.ConfigError, match="queries"):
        dd.DDStream(make_config(fake, query="", queries=TWO, max_request_uri_bytes=60))
    assert fake.requests == []
