"""``DDStreamConfig``: the options of a stream, and their translation into ``ddstream_config``."""

from __future__ import annotations

from typing import Any

from ._lib import ffi, lib
from .errors import STATUS_E_CONFIG, ConfigError

__all__ = ["DDStreamConfig", "NativeConfig"]

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
    "log_level": 0,
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
)
_BOOL_FIELDS = ("enable_prefetch", "allow_insecure_http")
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
        log_level: 0=NONE, 1=ERROR, 2=WARN, 3=INFO, 4=DEBUG; lines go to the ``logging`` logger
            ``"ddstream"`` (default 0).
        enable_arrow: reserved for Arrow output; not used yet by this version.
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

    Setting an attribute that does not exist raises :class:`AttributeError`.
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
    log_level: int
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

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(_DEFAULTS))
        if unknown:
            raise TypeError(
                f"DDStreamConfig() got unexpected keyword argument(s): {', '.join(unknown)}"
            )
        for name, default in _DEFAULTS.items():
            object.__setattr__(self, name, kwargs.get(name, default))

    def copy(self, **changes: Any) -> DDStreamConfig:
        """A copy of this config, with ``changes`` applied."""
        values = {name: getattr(self, name) for name in _DEFAULTS}
        values.update(changes)
        return DDStreamConfig(**values)

    def __repr__(self) -> str:
        parts = []
        for name in _DEFAULTS:
            value = getattr(self, name)
            if name in _SECRET_FIELDS:
                parts.append(f"{name}={'<unset>' if value is None else '<set>'}")
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
