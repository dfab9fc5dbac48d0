"""``DDStreamConfig``: the options of a stream, and their translation into ``ddstream_config``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from ._lib import ffi, lib
from ._log import c_level_for_logger
from .errors import STATUS_E_CONFIG, ConfigError

if TYPE_CHECKING:
    from typing_extensions import Unpack  # type checkers only: no runtime dependency

__all__ = ["ConfigOptions", "DDStreamConfig", "NativeConfig", "StreamOptions"]

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
    "follow": False,
    "settle_seconds": None,
    # New fields go here, in DDStreamConfig's annotations, its __init__ and StreamOptions too
    # (tests/python/test_config.py checks the four lists agree).
}

_STRING_FIELDS = ("api_key", "app_key", "site", "base_url", "query", "ca_bundle", "resume_token")
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
    "settle_seconds",
)
_BOOL_FIELDS = ("enable_prefetch", "allow_insecure_http", "follow")
_SECRET_FIELDS = ("api_key", "app_key")


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
    follow: bool
    settle_seconds: int | None


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
            ``.rollup()`` (ddstream adds the avg/min/max/sum rollups itself).
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
        follow: the stream never ends: after the range it goes on, delivering each new chunk
            once it has settled (ended ``settle_seconds`` ago). ``range_end`` 0 follows from
            ``range_start``; a later ``range_end`` only bounds :meth:`DDStream.plan`. With
            ``chunk_seconds`` 0, chunks of 60 buckets (an hour at 60 s). See docs/follow.md.
        settle_seconds: with ``follow``, how long after its end a chunk is fetched (Datadog
            fills its last buckets in late; ``None``: 300).

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
    follow: bool
    settle_seconds: int | None

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
        follow: bool = False,
        settle_seconds: int | None = None,
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
        return all(getattr(self, n) == getattr(other, n) for n in _DEFAULTS)

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
        for name in _STRING_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue  # NULL: the library's default (environment, then built-in)
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
        if self.log_level is None:
            ptr.log_level = c_level_for_logger()  # what logging would show, read at open
        ptr.log_to_queue = 1  # drained into logging.getLogger("ddstream") after each call
        ptr.log_fn = ffi.NULL  # never call back into Python from C
        return NativeConfig(ptr, strings)


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
