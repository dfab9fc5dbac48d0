"""``DDStreamConfig``: the options of a stream, and their translation into ``ddstream_config``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ._lib import ffi, lib
from ._log import c_level_for_logger
from .errors import STATUS_E_CONFIG, ConfigError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # type checkers only: no runtime dependency

__all__ = ["APIS", "STATISTICS", "ConfigOptions", "DDStreamConfig", "NativeConfig", "StreamOptions",
           "statistics_mask"]

# name -> default. None for a C-side option means "the library's default" (see ddstream.h).
_DEFAULTS: dict[str, Any] = {
    "api_key": None,
    "app_key": None,
    "query": "",
    "range_start": 0,
    "range_end": 0,
    "granularity": 60,
    "chunk_seconds": 0,
    "enable_prefetch": True,
    "prefetch_chunks": 2,
    "max_in_flight": 4,
    "log_level": None,
    "enable_arrow": False,
    "site": None,
    "base_url": None,
    "max_retries": None,
    "max_retry_wait_ms": None,
    "connect_timeout_ms": None,
    "request_timeout_ms": None,
    "max_body_bytes": None,
    "ca_bundle": None,
    "allow_insecure_http": False,
    "retry_backoff_ms": None,
    "low_speed_limit": None,
    "low_speed_time_ms": None,
    "start_chunk": 0,
    "resume_token": None,
    "max_chunks": None,
    "max_batch_rows": None,
    "queries": None,
    "statistics": None,
    "distribution_metrics": None,
    "max_subqueries_per_request": None,
    "max_request_uri_bytes": None,
    "cache_dir": None,
    "cache_max_bytes": None,
    "follow": False,
    "settle_seconds": None,
    "formulas": None,
    "api": "auto",
    # New fields go here, in DDStreamConfig's annotations, its __init__ and StreamOptions too
    # (tests/python/test_config.py checks the four lists agree).
}

_STRING_FIELDS = (
    "api_key",
    "app_key",
    "site",
    "base_url",
    "query",
    "ca_bundle",
    "resume_token",
    "cache_dir",
)
_INT_FIELDS = (
    "range_start",
    "range_end",
    "granularity",
    "chunk_seconds",
    "prefetch_chunks",
    "max_in_flight",
    "log_level",
    "max_retries",
    "max_retry_wait_ms",
    "connect_timeout_ms",
    "request_timeout_ms",
    "max_body_bytes",
    "retry_backoff_ms",
    "low_speed_limit",
    "low_speed_time_ms",
    "start_chunk",
    "max_chunks",
    "max_batch_rows",
    "cache_max_bytes",
    "max_subqueries_per_request",
    "max_request_uri_bytes",
    "settle_seconds",
)
_BOOL_FIELDS = ("enable_prefetch", "allow_insecure_http", "follow")
_SECRET_FIELDS = ("api_key", "app_key")
# The statistics a four-statistics query can fill, and their bits in ddstream_config.statistics
# (DDSTREAM_STAT_AVG..SUM: #defines, which the cffi declarations do not carry).
STATISTICS = ("avg", "min", "max", "sum")
_STAT_BITS = {"avg": 1, "min": 2, "max": 4, "sum": 8}
_ALL_STATS = 15
# Fields holding a list of strings: compared as tuples, whatever sequence was given.
_LIST_FIELDS = ("queries", "statistics", "distribution_metrics", "formulas")
# config.api (DDSTREAM_API_AUTO/V1/V2: #defines, which the cffi declarations do not carry).
_API_VALUES = {"auto": 0, "v1": 1, "v2": 2}
APIS = tuple(_API_VALUES)


class NativeConfig:
    """A ``ddstream_config *`` (cffi cdata) plus the C strings it points to.

    The strings live exactly as long as this object: keep it while the C library may read the
    config (the library copies everything it needs during the call it is passed to).
    """

    __slots__ = ("_strings", "ptr")

    def __init__(self, ptr: Any, strings: list[Any]) -> None:
        self.ptr = ptr
        self._strings = strings


class StreamOptions(TypedDict, total=False):
    """The :class:`DDStreamConfig` fields that ``DDStream(query=..., **options)`` takes as they
    are (``range_start``/``range_end`` and ``enable_arrow`` are its own keywords there).

    For type checkers: ``**options: Unpack[StreamOptions]`` makes a misspelled keyword or a value
    of the wrong type an error at the call.
    """

    api_key: str | None
    app_key: str | None
    query: str
    granularity: int
    chunk_seconds: int
    enable_prefetch: bool
    prefetch_chunks: int
    max_in_flight: int
    log_level: int | None
    site: str | None
    base_url: str | None
    max_retries: int | None
    max_retry_wait_ms: int | None
    connect_timeout_ms: int | None
    request_timeout_ms: int | None
    max_body_bytes: int | None
    ca_bundle: str | None
    allow_insecure_http: bool
    retry_backoff_ms: int | None
    low_speed_limit: int | None
    low_speed_time_ms: int | None
    start_chunk: int
    resume_token: str | None
    max_chunks: int | None
    max_batch_rows: int | None
    queries: list[str] | tuple[str, ...] | Mapping[str, str] | None
    statistics: list[str] | tuple[str, ...] | None
    distribution_metrics: list[str] | tuple[str, ...] | None
    max_subqueries_per_request: int | None
    max_request_uri_bytes: int | None
    cache_dir: str | os.PathLike[str] | None
    cache_max_bytes: int | None
    follow: bool
    settle_seconds: int | None
    formulas: list[str] | tuple[str, ...] | None
    api: Literal["auto", "v1", "v2"]


class ConfigOptions(StreamOptions, total=False):
    """Every :class:`DDStreamConfig` field, as keywords (``DDStreamConfig.copy(**changes)``)."""

    range_start: int
    range_end: int
    enable_arrow: bool


def _without_userinfo(url: str) -> str:
    """``url`` with anything up to its last ``@`` after the scheme masked: the library refuses a
    base_url with a user name or password, but a repr is printed before that check runs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    return f"{scheme}{sep}<redacted>@{rest.rpartition('@')[2]}"


class DDStreamConfig:
    """Options of a :class:`~ddstream.DDStream`, set as keywords or as attributes.

    Attributes:
        api_key: Datadog API key; ``None`` reads ``DD_API_KEY`` from the environment.
        app_key: Datadog application key; ``None`` reads ``DD_APP_KEY``.
        query: one metric query, e.g. ``"avg:system.cpu.user{*} by {host}"``, without
            ``.rollup()`` (ddstream adds the avg/min/max/sum rollups itself). Several queries:
            ``queries`` (a comma-separated ``query`` reads as they do).
        queries: several metric queries, one expression each, read as one stream: every
            chunk's sub-queries are packed into as few requests as the budgets below allow, and
            each row says which query it belongs to (the batch's ``query`` index into this
            list). Set ``query`` or ``queries``, not both (``None``: not used). A dict
            ``{name: query}`` names them for ``formulas`` (a letter or ``_``, then letters,
            digits, ``_``; each one metric term with its modifiers); a list's are ``q0``,
            ``q1``, ...
        formulas: formulas over the queries' names, e.g. ``["a / b * 100", "per_second(a)"]``
            (``None``: none). The stream then reads Datadog's v2 endpoint: one value per bucket
            and group of each formula (the batch's ``value``), the formula's index in
            ``formulas`` in ``query`` (docs/formulas.md). Every query must be used by some
            formula; a mistake is a :class:`~ddstream.ConfigError` pointing at the character.
        api: which Datadog endpoint to read: ``"auto"`` (default: v2 with ``formulas``, else
            v1), ``"v1"`` (formulas refused) or ``"v2"`` (without formulas each query is its
            own formula, and the batches' ``value`` holds it).
        statistics: the statistics to fetch for each four-statistics query, a subset of
            ``("avg", "min", "max", "sum")`` (``None``: all four). Fewer statistics, fewer
            sub-queries per request; the others are NaN.
        distribution_metrics: names of the distribution metrics the queries use: their
            statistics come from ``avg:``/``min:``/``max:``/``sum:`` space aggregation, as
            Datadog defines them for distributions (``None``: none; ``pNN:`` percentiles are
            recognised without this).
        max_subqueries_per_request: the most sub-queries one request carries (``None``: 35).
        max_request_uri_bytes: the longest request URI, path and escaped query, in bytes
            (``None``: 7000).
        range_start: epoch seconds, inclusive.
        range_end: epoch seconds, exclusive.
        granularity: bucket size in seconds (default 60).
        chunk_seconds: seconds per request; 0 (default) means the largest chunk Datadog's
            1500-point cap allows, i.e. the fewest requests. Other values are rounded down to a
            multiple of ``granularity`` and clamped to the cap.
        enable_prefetch: fetch the next chunks while the caller works on this one (default True).
        prefetch_chunks: how many chunks ahead, 1..64 (default 2).
        max_in_flight: with prefetch, how many requests run at once, each on its own keep-alive
            connection, 1..32 (default 4). Batches still come in chunk order; fetching runs up
            to ``max(prefetch_chunks, max_in_flight)`` chunks ahead. Without prefetch one
            request at a time.
        log_level: ``None`` (default): log what the ``logging`` logger ``"ddstream"`` is
            enabled for when the stream opens (``logging.getLogger("ddstream").setLevel(...)``,
            or the root logger's level), and nothing the logger would drop is even formatted.
            Or force a level: 0=NONE, 1=ERROR, 2=WARN, 3=INFO, 4=DEBUG. Lines always go to the
            logger ``"ddstream"``.
        enable_arrow: iterating the stream yields :class:`~ddstream.ArrowBatch` objects instead
            of :data:`~ddstream.Batch` dicts (docs/arrow.md).
        site: Datadog site, e.g. ``"datadoghq.eu"``; ``None`` reads ``DD_SITE``, else
            ``"datadoghq.com"``.
        base_url: API base URL; ``None`` reads ``DDSTREAM_BASE_URL``, else ``https://api.<site>``.
        max_retries: retries per request on 408/429/5xx/network errors (``None``: the
            library's default, 5).
        max_retry_wait_ms: time one request may spend retrying after its first failure,
            backoff and retried attempts included, rate-limit waits not (``None``: 300000).
        connect_timeout_ms: ``None``: 10000.
        request_timeout_ms: whole request, connect to last byte (``None``: 120000).
        max_body_bytes: largest answer accepted, decompressed (``None``: 256 MiB).
        ca_bundle: path to a CA bundle; ``None`` uses the system's CA store.
        allow_insecure_http: allow ``http://`` to hosts other than loopback (default False).
        retry_backoff_ms: the first retry waits 50-100% of this, doubling per retry up to 30 s
            (``None``: 500).
        low_speed_limit: abort a transfer slower than this many bytes/s for
            ``low_speed_time_ms`` (``None``: 1 B/s for 30000 ms; 0 turns it off); a slow or stalled
            server is then retried like any network error.
        low_speed_time_ms: see ``low_speed_limit``.
        start_chunk: the first chunk to deliver (default 0): resume a stream without refetching
            the chunks before it.
        resume_token: a token from :meth:`DDStream.resume_token`: start where it says, after
            checking it was made for this query and plan (``None``: not resuming).
        max_chunks: the largest plan accepted, in chunks (one request each); a longer plan is a
            :class:`~ddstream.ConfigError` up front (``None``: 1,000,000, about 26 days of
            requests at Datadog's default rate limit of 1600 an hour).
        max_batch_rows: the largest batch one chunk may make, in rows (buckets x series, about
            44 bytes each); past it the chunk fails with :class:`~ddstream.ProtocolError` before
            its batch is allocated (``None``: 10,000,000, about 440 MB).
        cache_dir: a folder for the persistent chunk cache (``None``, the default: no cache;
            ``~`` is expanded).
            Answers of chunks that have settled are kept there, and a stream asking for them
            again reads them without a request (docs/cache.md). Entries are scoped by a one-way
            hash of the API key. A folder that cannot be created or written is a
            :class:`~ddstream.ConfigError` when the stream opens.
        cache_max_bytes: the cache folder's bound; least recently used entries go first
            (``None``: 1 GiB).
        follow: the stream never ends: after the range it goes on, delivering each new chunk
            once it has settled (ended ``settle_seconds`` ago). ``range_end`` 0 follows from
            ``range_start``; a later ``range_end`` only bounds :meth:`DDStream.plan`. With
            ``chunk_seconds`` 0, chunks of 60 buckets (an hour at 60 s). See docs/follow.md.
        settle_seconds: how long after its end a chunk has settled (Datadog fills its last
            buckets in late; ``None``: 300): a follow stream fetches a chunk only then, and the
            chunk cache stores only settled chunks.

    Every field is a keyword of the constructor and an attribute, both annotated, so a type
    checker reports a misspelled name or a value of the wrong type. At run time a misspelled
    keyword raises :class:`TypeError`, a misspelled attribute :class:`AttributeError`, and a
    value of the wrong type :class:`TypeError` naming the field when the stream opens.
    """

    __slots__ = tuple(_DEFAULTS)

    api_key: str | None
    app_key: str | None
    query: str
    range_start: int
    range_end: int
    granularity: int
    chunk_seconds: int
    enable_prefetch: bool
    prefetch_chunks: int
    max_in_flight: int
    log_level: int | None
    enable_arrow: bool
    site: str | None
    base_url: str | None
    max_retries: int | None
    max_retry_wait_ms: int | None
    connect_timeout_ms: int | None
    request_timeout_ms: int | None
    max_body_bytes: int | None
    ca_bundle: str | None
    allow_insecure_http: bool
    retry_backoff_ms: int | None
    low_speed_limit: int | None
    low_speed_time_ms: int | None
    start_chunk: int
    resume_token: str | None
    max_chunks: int | None
    max_batch_rows: int | None
    queries: list[str] | tuple[str, ...] | Mapping[str, str] | None
    statistics: list[str] | tuple[str, ...] | None
    distribution_metrics: list[str] | tuple[str, ...] | None
    max_subqueries_per_request: int | None
    max_request_uri_bytes: int | None
    cache_dir: str | os.PathLike[str] | None
    cache_max_bytes: int | None
    follow: bool
    settle_seconds: int | None
    formulas: list[str] | tuple[str, ...] | None
    api: Literal["auto", "v1", "v2"]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        app_key: str | None = None,
        query: str = "",
        range_start: int = 0,
        range_end: int = 0,
        granularity: int = 60,
        chunk_seconds: int = 0,
        enable_prefetch: bool = True,
        prefetch_chunks: int = 2,
        max_in_flight: int = 4,
        log_level: int | None = None,
        enable_arrow: bool = False,
        site: str | None = None,
        base_url: str | None = None,
        max_retries: int | None = None,
        max_retry_wait_ms: int | None = None,
        connect_timeout_ms: int | None = None,
        request_timeout_ms: int | None = None,
        max_body_bytes: int | None = None,
        ca_bundle: str | None = None,
        allow_insecure_http: bool = False,
        retry_backoff_ms: int | None = None,
        low_speed_limit: int | None = None,
        low_speed_time_ms: int | None = None,
        start_chunk: int = 0,
        resume_token: str | None = None,
        max_chunks: int | None = None,
        max_batch_rows: int | None = None,
        queries: list[str] | tuple[str, ...] | Mapping[str, str] | None = None,
        statistics: list[str] | tuple[str, ...] | None = None,
        distribution_metrics: list[str] | tuple[str, ...] | None = None,
        max_subqueries_per_request: int | None = None,
        max_request_uri_bytes: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_max_bytes: int | None = None,
        follow: bool = False,
        settle_seconds: int | None = None,
        formulas: list[str] | tuple[str, ...] | None = None,
        api: Literal["auto", "v1", "v2"] = "auto",
    ) -> None:
        # The defaults above are _DEFAULTS' (a test checks): locals() holds exactly the fields.
        values = locals()
        for name in _DEFAULTS:
            object.__setattr__(self, name, values[name])

    def copy(self, **changes: Unpack[ConfigOptions]) -> DDStreamConfig:
        """A copy of this config, with ``changes`` applied."""
        values: dict[str, Any] = {name: getattr(self, name) for name in _DEFAULTS}
        values.update(changes)
        return DDStreamConfig(**values)

    def __repr__(self) -> str:
        parts = []
        for name in _DEFAULTS:
            value = getattr(self, name)
            if name in _SECRET_FIELDS:
                parts.append(f"{name}={'<unset>' if value is None else '<set>'}")
            elif name == "base_url" and isinstance(value, str):
                parts.append(f"{name}={_without_userinfo(value)!r}")
            elif value != _DEFAULTS[name]:
                parts.append(f"{name}={value!r}")
        return f"DDStreamConfig({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DDStreamConfig):
            return NotImplemented
        return all(_comparable(n, getattr(self, n)) == _comparable(n, getattr(other, n))
                   for n in _DEFAULTS)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _DEFAULTS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, default in _DEFAULTS.items():
            object.__setattr__(self, name, state.get(name, default))

    def to_native(self) -> NativeConfig:
        """Build the C ``ddstream_config`` (via ``ddstream_config_init``) for this config.

        Types are checked here (``TypeError``); values are checked by the C library, which names
        the field in its message. Strings are encoded as UTF-8 and must not contain NUL.
        """
        ptr = ffi.new("ddstream_config *")
        lib.ddstream_config_init(ptr)
        if ptr.struct_size != ffi.sizeof("ddstream_config"):
            raise ImportError(
                "ddstream: the library's ddstream_config does not match the header "
                f"({ptr.struct_size} != {ffi.sizeof('ddstream_config')} bytes)"
            )
        strings: list[Any] = []
        if self.queries is not None and self.query not in ("", None):
            raise ConfigError("query and queries are both set: give one query as query, or "
                              "several as queries, not both", status=STATUS_E_CONFIG)
        for name in _STRING_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue  # NULL: the library's default (environment, then built-in)
            if name == "cache_dir" and isinstance(value, (str, os.PathLike)):
                value = os.path.expanduser(os.fspath(value))  # "~/..." as a shell reads it
            if name == "query" and self.queries is not None:
                continue  # the library takes the queries instead, and wants query NULL
            if not isinstance(value, str):
                raise TypeError(f"DDStreamConfig.{name} must be a str or None, not "
                                f"{type(value).__name__}")
            if "\0" in value:
                raise ConfigError(f"{name}: must not contain a NUL character",
                                  status=STATUS_E_CONFIG)
            buf = ffi.new("char[]", _utf8(name, value))
            strings.append(buf)
            setattr(ptr, name, buf)
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue  # keep ddstream_config_init's default
            number = _as_int(name, value)
            try:
                setattr(ptr, name, number)
            except OverflowError:
                raise ConfigError(f"{name}: {number} is out of range",
                                  status=STATUS_E_CONFIG) from None
        for name in _BOOL_FIELDS:
            setattr(ptr, name, 1 if getattr(self, name) else 0)
        if self.queries is not None:
            names, texts = _named_queries(self.queries)
            if not texts:
                raise ConfigError("queries: the list is empty; give at least one query",
                                  status=STATUS_E_CONFIG)
            ptr.queries = _c_string_array("queries", texts, strings)
            ptr.query_count = len(texts)
            if names is not None:
                ptr.query_names = _c_string_array("queries", names, strings)
        if self.formulas is not None:
            formulas = _string_list("formulas", self.formulas)
            if not formulas:
                raise ConfigError("formulas: the list is empty; give at least one formula, or "
                                  "None", status=STATUS_E_CONFIG)
            ptr.formulas = _c_string_array("formulas", formulas, strings)
            ptr.formula_count = len(formulas)
        ptr.api = _api_value(self.api)
        if self.distribution_metrics is not None:
            names = _string_list("distribution_metrics", self.distribution_metrics)
            if names:
                ptr.distribution_metrics = _c_string_array("distribution_metrics", names, strings)
                ptr.distribution_metric_count = len(names)
        if self.statistics is not None:
            ptr.statistics = statistics_mask(self.statistics)
        if self.log_level is None:
            ptr.log_level = c_level_for_logger()  # what logging would show, read at open
        ptr.log_to_queue = 1  # drained into logging.getLogger("ddstream") after each call
        ptr.log_fn = ffi.NULL  # never call back into Python from C
        return NativeConfig(ptr, strings)


def _comparable(name: str, value: Any) -> Any:
    """``value`` as ``__eq__`` compares it: a list field's list and tuple are the same; named
    queries compare in order (their order is the batches' ``query`` index without formulas)."""
    if name in _LIST_FIELDS and isinstance(value, (list, tuple)):
        return tuple(value)
    if name == "queries" and isinstance(value, Mapping):
        return ("named", tuple(value.items()))
    return value


def _named_queries(value: Any) -> tuple[list[str] | None, list[str]]:
    """``(names, texts)`` of ``queries``: a mapping name -> query gives both (the names are
    what formulas refer to); a list gives its texts and no names (the library's q0, q1, ...)."""
    if not isinstance(value, Mapping):
        return None, _string_list("queries", value)
    names: list[str] = []
    texts: list[str] = []
    for name, text in value.items():
        if not isinstance(name, str):
            raise TypeError("DDStreamConfig.queries: a query's name must be a str, not "
                            f"{type(name).__name__}")
        if not isinstance(text, str):
            raise TypeError(f"DDStreamConfig.queries[{name!r}] must be a str, not "
                            f"{type(text).__name__}")
        for what in (name, text):
            if "\0" in what:
                raise ConfigError(f"queries[{name!r}]: must not contain a NUL character",
                                  status=STATUS_E_CONFIG)
        names.append(name)
        texts.append(text)
    return names, texts


def _api_value(value: Any) -> int:
    """``ddstream_config.api`` of ``DDStreamConfig.api`` ("auto", "v1" or "v2")."""
    if not isinstance(value, str):
        raise TypeError(f"DDStreamConfig.api must be a str ({', '.join(map(repr, APIS))}), "
                        f"not {type(value).__name__}")
    number = _API_VALUES.get(value.strip().lower())
    if number is None:
        raise ConfigError(f"api: unknown value {value!r}; choose from {', '.join(APIS)}",
                          status=STATUS_E_CONFIG)
    return number


def _string_list(name: str, value: Any) -> list[str]:
    """The items of a list-of-str field, each checked as a string field is."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        # A lone string would be taken for a list of its characters.
        raise TypeError(f"DDStreamConfig.{name} must be a list of str or None, not "
                        f"{type(value).__name__}")
    items: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"DDStreamConfig.{name}[{i}] must be a str, not "
                            f"{type(item).__name__}")
        if "\0" in item:
            raise ConfigError(f"{name}[{i}]: must not contain a NUL character",
                              status=STATUS_E_CONFIG)
        items.append(item)
    return items


def _c_string_array(name: str, items: list[str], strings: list[Any]) -> Any:
    """A ``const char *[]`` of ``items``; it and its strings are kept alive in ``strings``."""
    buffers = [ffi.new("char[]", _utf8(f"{name}[{i}]", item)) for i, item in enumerate(items)]
    array = ffi.new("const char *[]", buffers)
    strings.extend(buffers)
    strings.append(array)
    return array


def statistics_mask(names: Any) -> int:
    """The ``ddstream_config.statistics`` mask of a list of statistic names (0: all four, the
    library's default, so that naming all four is the same config as naming none)."""
    items = _string_list("statistics", names)
    if not items:
        raise ConfigError("statistics: the list is empty; name at least one of "
                          f"{', '.join(STATISTICS)}", status=STATUS_E_CONFIG)
    mask = 0
    for item in items:
        bit = _STAT_BITS.get(item.strip().lower())
        if bit is None:
            raise ConfigError(f"statistics: unknown statistic {item!r}; choose from "
                              f"{', '.join(STATISTICS)}", status=STATUS_E_CONFIG)
        mask |= bit
    return 0 if mask == _ALL_STATS else mask


def _utf8(name: str, value: str) -> bytes:
    """value as UTF-8, or a ConfigError naming the field, never quoting it: a key with a lone
    surrogate (text from a bad decode, or an escape typed by hand) must not reach a traceback."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Raised outside the except block: exc.object is the value itself, and an exception
        # raised in here would carry exc as its __context__.
        position = exc.start
    raise ConfigError(f"{name}: not valid text: the character at position {position} (a lone "
                      "surrogate) cannot be encoded as UTF-8", status=STATUS_E_CONFIG)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        # Accept integral floats (e.g. time.time() arithmetic) but nothing fractional.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"DDStreamConfig.{name} must be an int, not {type(value).__name__}"
                        + (f" ({value!r})" if isinstance(value, float) else ""))
    return int(value.__index__())
