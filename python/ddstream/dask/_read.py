"""``read_metrics``: many queries over a long range as one Dask DataFrame, one partition per
(query, or group of queries read as one stream, run of consecutive chunks) of libddstream's own
plan.

A partition is described by a :class:`Part`: its queries, the bounds of its chunks and the
non-secret options. That (and the name of a module-level function) is all the task graph holds;
the worker opens a :class:`ddstream.DDStream` over exactly those bounds, which plans exactly
those chunks (checked when the graph is built, see :func:`plan_parts`), so rows at partition
boundaries are neither repeated nor lost. Keys are read from the workers' environment
(``DD_API_KEY``, ``DD_APP_KEY``), never passed through the graph.

Formulas over named queries (Datadog's v2 endpoint, docs/formulas.md) are partitioned in time
the same way: every partition is one v2 stream of all the named queries and formulas (a formula
needs every query it names in its request), and its ``query`` column holds the formula texts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._config import DDStreamConfig
from .._dependencies import dask_dataframe
from .._dependencies import pandas as pd
from .._explain import explain
from .._stream import DDStream, queries_of
from .._timespec import TimeLike, parse_time
from ..errors import STATUS_E_CONFIG, STATUS_E_INTERNAL, ConfigError, InternalError

__all__ = ["COLUMNS", "Part", "empty_frame", "plan_parts", "read_metrics", "read_part"]

#: The columns of every partition, in order (and ``value`` last when a query is value-only).
COLUMNS = ("query", "timestamp", "series", "avg", "min", "max", "sum")
#: ``query`` and ``series``: pandas' Arrow-backed strings (what Dask turns text columns into).
STRING = pd.StringDtype("pyarrow")
#: ``timestamp``: bucket start, UTC, nanoseconds (pandas' native unit; Parquet keeps it as is).
TIMESTAMP = pd.DatetimeTZDtype("ns", "UTC")
VALUES = ("avg", "min", "max", "sum")
#: Chunks (requests) per partition unless told: what one stream fetches at once by default.
DEFAULT_CHUNKS_PER_PARTITION = 4

# Options that identify what is read: given as read_metrics' own arguments, or not at all.
_OWN = frozenset({"query", "queries", "range_start", "range_end", "granularity", "chunk_seconds",
                  "start_chunk", "resume_token", "enable_arrow", "enable_prefetch",
                  "prefetch_chunks"})
_SECRETS = frozenset({"api_key", "app_key"})


@dataclass(frozen=True)
class Part:
    """One partition: ``queries`` (one, or several read as one stream, their sub-queries packed
    into as few requests per chunk as the budgets allow) over chunks ``first_chunk ..
    last_chunk`` (inclusive) of their plan, which cover ``[start, end)`` epoch seconds.
    ``options``: other DDStreamConfig fields (never keys). ``with_value``: the frame has a
    ``value`` column (some query of the read is value-only, or the read is over v2).
    ``names``: the queries' names when they were given as ``{name: query}`` (v2), else empty;
    ``formulas``: the formulas over them (v2), or ``None``."""

    queries: tuple[str, ...]
    start: int
    end: int
    first_chunk: int
    last_chunk: int
    granularity: int
    chunk_seconds: int
    options: tuple[tuple[str, Any], ...] = field(default=())
    with_value: bool = False
    names: tuple[str, ...] = ()
    formulas: tuple[str, ...] | None = None

    @property
    def v2(self) -> bool:
        """Whether the part reads Datadog's v2 endpoint (formulas, or ``api="v2"``)."""
        return self.formulas is not None or dict(self.options).get("api") == "v2"

    @property
    def labels(self) -> tuple[str, ...]:
        """The texts the frame's ``query`` column holds, as the batches' ``query`` index counts
        them: the formulas, or (without formulas) the queries."""
        return self.formulas if self.formulas is not None else self.queries

    @property
    def query(self) -> str:
        """The part's query; for a part of several queries, ``ValueError`` (see ``queries``)."""
        if len(self.queries) != 1:
            raise ValueError(f"this part reads {len(self.queries)} queries: see Part.queries")
        return self.queries[0]

    @property
    def chunk_count(self) -> int:
        return self.last_chunk - self.first_chunk + 1

    def config(self) -> DDStreamConfig:
        """The stream config of this partition (keys: ``None``, read from the environment)."""
        options = dict(self.options)
        in_flight = min(int(options.pop("max_in_flight", None) or 4), self.chunk_count)
        return DDStreamConfig(
            **_which(self.queries, self.names, self.formulas, self.v2),
            range_start=self.start, range_end=self.end,
            granularity=self.granularity, chunk_seconds=self.chunk_seconds,
            # Prefetch the whole partition: it is held in memory anyway, and its bounds are its
            # chunks', so nothing outside the partition is ever fetched.
            enable_prefetch=True, prefetch_chunks=max(1, min(64, self.chunk_count)),
            max_in_flight=max(1, min(32, in_flight)), **options,
        )

    @property
    def query_hash(self) -> str:
        """16 hex digits naming (queries, granularity): file names of ``export_parquet``."""
        # surrogatepass: an unencodable query is the config check's to report (ConfigError).
        # NUL joins: no query holds one (refused), and one query hashes as it always has.
        text = f"{chr(0).join(self.queries)}\0{self.granularity}"
        if self.v2:  # the names and formulas are part of what is read; "v2" keeps it apart
            formulas = chr(1).join(self.formulas or ())
            text = f"v2\0{chr(1).join(self.names)}\0{text}\0{formulas}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    @property
    def file_name(self) -> str:
        """``part-<query hash>-<start>-<end>.parquet``: deterministic, so a rerun finds it."""
        return f"part-{self.query_hash}-{self.start}-{self.end}.parquet"

    def first_bucket(self) -> int:
        return -(-self.start // self.granularity) * self.granularity

    def last_bucket(self) -> int:
        return ((self.end - 1) // self.granularity) * self.granularity


def empty_frame(index: str | None = None, with_value: bool = False) -> pd.DataFrame:
    """A frame with no rows and exactly the columns and dtypes of every partition."""
    frame = pd.DataFrame({
        "query": pd.array([], dtype=STRING),
        "timestamp": pd.Series([], dtype=TIMESTAMP),
        "series": pd.array([], dtype=STRING),
        **{name: np.array([], dtype=np.float64) for name in _numeric(with_value)},
    })
    return frame.set_index("timestamp") if index == "timestamp" else frame


def _which(queries: tuple[str, ...], names: tuple[str, ...], formulas: tuple[str, ...] | None,
           v2: bool) -> dict[str, Any]:
    """The DDStreamConfig fields naming what a part reads."""
    if names:
        return {"queries": dict(zip(names, queries)), "formulas": formulas}
    if v2:
        return {"queries": list(queries), "formulas": formulas}
    # One query as `query`: the stream (requests, batches) of a one-query read as ever.
    return {"query": queries[0]} if len(queries) == 1 else {"queries": list(queries)}


def _check_options(options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    secret = sorted(_SECRETS & set(options))
    if secret:
        raise TypeError(
            f"{', '.join(secret)}: keys are not taken as arguments (they would be written into "
            "the task graph); set DD_API_KEY and DD_APP_KEY in the workers' environment "
            "(docs/dask.md)")
    own = sorted(_OWN & set(options))
    if own:
        raise TypeError(f"{', '.join(own)}: set by read_metrics itself")
    DDStreamConfig(**options)  # unknown names raise TypeError here, on the client
    # Lists (statistics, distribution_metrics) as tuples: a Part is hashable and tokenizes.
    return tuple(sorted((name, tuple(value) if isinstance(value, list) else value)
                        for name, value in options.items()))


def _numeric(with_value: bool) -> tuple[str, ...]:
    return (*VALUES, "value") if with_value else VALUES


def _groups(items: list[Any], per_group: int) -> list[tuple[Any, ...]]:
    return [tuple(items[i:i + per_group]) for i in range(0, len(items), per_group)]


def _named(queries: str | Iterable[str] | Mapping[str, str],
           formulas: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The query texts and their names (empty: not named) of read_metrics' ``queries``."""
    if isinstance(queries, Mapping):
        for name, text in queries.items():
            if not isinstance(name, str) or not isinstance(text, str):
                raise TypeError(f"queries[{name!r}] must be a str named by a str, not "
                                f"{type(text).__name__}")
        query_list, names = list(queries.values()), list(queries.keys())
    else:
        query_list = [queries] if isinstance(queries, str) else list(queries)
        names = []
    if not query_list:
        raise ValueError("read_metrics needs at least one query")
    # Without formulas each query's rows are labelled by its text; formulas may share a query.
    if len(set(query_list)) != len(query_list) and formulas is None:
        raise ValueError("each query may appear only once (its rows would be read twice)")
    return query_list, names


def plan_parts(queries: str | Iterable[str] | Mapping[str, str], start: TimeLike, end: TimeLike,
               *, granularity: int = 60, chunk_seconds: int = 0,
               chunks_per_partition: int | None = None, queries_per_partition: int | None = None,
               site: str | None = None, base_url: str | None = None,
               formulas: Sequence[str] | None = None, **options: Any) -> list[Part]:
    """The partitions of ``read_metrics`` (no network I/O): per group of
    ``queries_per_partition`` queries in the order given (default 1: each query alone), their
    plan's chunks in runs of ``chunks_per_partition``. Each run's own plan is checked to be
    exactly that slice of the whole plan. With ``formulas`` every partition reads all the
    queries (the formulas need them in one request)."""
    if formulas is not None:
        if isinstance(formulas, str) or not isinstance(formulas, Sequence):
            raise TypeError(f"formulas must be a list of str, not {type(formulas).__name__}")
        formulas = tuple(formulas)
    query_list, names = _named(queries, formulas)
    per_part = DEFAULT_CHUNKS_PER_PARTITION if chunks_per_partition is None else int(
        chunks_per_partition)
    if per_part < 1:
        raise ValueError(f"chunks_per_partition must be at least 1, got {per_part}")
    per_group = 1 if queries_per_partition is None else int(queries_per_partition)
    if per_group < 1:
        raise ValueError(f"queries_per_partition must be at least 1, got {per_group}")
    if formulas is not None:
        if queries_per_partition is not None:
            raise ValueError("queries_per_partition: with formulas every partition reads all "
                             "the queries (a formula needs each query it names in its request)")
        per_group = len(query_list)
    if site is not None:
        options["site"] = site
    if base_url is not None:
        options["base_url"] = base_url
    frozen = _check_options(options)
    try:
        range_start, range_end = parse_time(start), parse_time(end)
    except ValueError as exc:
        raise ConfigError(str(exc), status=STATUS_E_CONFIG) from None
    v2 = formulas is not None or options.get("api") == "v2"
    groups = _groups(query_list, per_group)
    name_groups = _groups(names, per_group) if names else [()] * len(groups)
    planned: list[tuple[tuple[str, ...], tuple[str, ...], DDStreamConfig, Any]] = []
    with_value = v2  # a v2 stream's rows are in `value`
    for group, named in zip(groups, name_groups):
        # Planning needs no keys (the workers read theirs) and sends nothing; the config's own
        # checks (names, formulas, api) run here, on the client.
        cfg = DDStreamConfig(**_which(group, named, formulas, v2), range_start=range_start,
                             range_end=range_end, granularity=granularity,
                             chunk_seconds=chunk_seconds, **dict(frozen))
        planned.append((group, named, cfg, DDStream.plan(cfg)))
        if not v2:
            with_value = with_value or _has_value_only(cfg)
        elif len(set(queries_of(cfg))) != len(queries_of(cfg)):
            raise ValueError("each formula may appear only once (its rows would be read twice)")
    parts: list[Part] = []
    for group, named, cfg, plan in planned:
        for first in range(0, len(plan), per_part):
            chunks = plan[first:first + per_part]
            part = Part(group, chunks[0][0], chunks[-1][1], first, first + len(chunks) - 1,
                        granularity, chunk_seconds, frozen, with_value, named, formulas)
            own = DDStream.plan(cfg.copy(range_start=part.start, range_end=part.end))
            if own != chunks:  # pragma: no cover - a plan that depends on where it starts
                raise InternalError(
                    f"the plan of chunks {first}..{part.last_chunk} on their own differs from "
                    "the whole plan's", status=STATUS_E_INTERNAL)
            parts.append(part)
    return parts


def _has_value_only(cfg: DDStreamConfig) -> bool:
    """Whether some query of ``cfg`` is value-only, so that its rows come in ``value`` (the
    library's compiler says, without network I/O)."""
    return any(q["statistics"] == ["value"] for q in explain(cfg)["queries"])


def read_part(part: Part, index: str | None = None, budget: bool = True) -> pd.DataFrame:
    """One partition, read in this process (on a ``distributed`` worker: under the cluster's
    request budget when ``budget``)."""
    cfg = part.config()
    gate = _cluster_gate(cfg) if budget else None
    with DDStream(cfg, request_gate=gate) as stream:
        frame = _frame(part, stream)
    if index == "timestamp":
        # The query column is constant in a one-query part: its sort is by (time, series).
        frame = frame.sort_values(["timestamp", "query", "series"],
                                  kind="stable").set_index("timestamp")
    return frame


def _cluster_gate(cfg: DDStreamConfig) -> Any:
    """The cluster's gate when running in a ``distributed`` worker, else ``None``."""
    try:
        from ._plugin import worker_gate
    except ImportError:  # no distributed: dask's local schedulers, one process
        return None
    from ._budget import budget_name

    site = cfg.site or os.environ.get("DD_SITE") or "datadoghq.com"
    base_url = cfg.base_url or os.environ.get("DDSTREAM_BASE_URL") or f"https://api.{site}"
    return worker_gate(budget_name(base_url.rstrip("/"), os.environ.get("DD_API_KEY", "")))


def _frame(part: Part, batches: Iterable[Any]) -> pd.DataFrame:
    """The rows of ``batches`` (DDStream batch dicts) as a partition of ``part``."""
    stamps: list[np.ndarray[Any, Any]] = []
    series: list[np.ndarray[Any, Any]] = []
    queries: list[np.ndarray[Any, Any]] = []
    names = _numeric(part.with_value)
    values: dict[str, list[np.ndarray[Any, Any]]] = {name: [] for name in names}
    texts = np.array(part.labels, dtype=object)
    for batch in batches:
        n = len(batch["timestamps"])
        stamps.append(batch["timestamps"])
        if "series" in batch:
            tags = np.array(batch["series_tags"] or [""], dtype=object)
            series.append(tags[batch["series"]] if n else np.array([], dtype=object))
        else:
            series.append(np.full(n, "", dtype=object))
        if "query" in batch:  # several queries, or v2: each row's index into part.labels
            queries.append(texts[batch["query"]] if n else np.array([], dtype=object))
        else:
            queries.append(np.full(n, part.labels[0], dtype=object))
        for name in names:
            column = batch.get(name)
            values[name].append(np.full(n, np.nan) if column is None else column)
    if not stamps:
        return empty_frame(with_value=part.with_value)
    seconds = np.concatenate(stamps).astype(np.int64)
    timestamp = pd.Series(seconds.astype("datetime64[s]").astype("datetime64[ns]")
                          ).dt.tz_localize("UTC")
    return pd.DataFrame({
        "query": pd.Series(pd.array(np.concatenate(queries), dtype=STRING)),
        "timestamp": timestamp,
        "series": pd.Series(pd.array(np.concatenate(series), dtype=STRING)),
        # Copies: the batches' memory belongs to the C library until they are dropped.
        **{name: np.concatenate(arrays).astype(np.float64, copy=False)
           for name, arrays in values.items()},
    })


def read_metrics(queries: str | Sequence[str] | Mapping[str, str], start: TimeLike,
                 end: TimeLike = "now", *, granularity: int = 60, chunk_seconds: int = 0,
                 chunks_per_partition: int | None = None,
                 queries_per_partition: int | None = None, site: str | None = None,
                 base_url: str | None = None, index: str | None = None, budget: bool = True,
                 formulas: Sequence[str] | None = None, **options: Any) -> Any:
    """Datadog metric queries over ``[start, end)`` as a ``dask.dataframe.DataFrame``.

    Columns: ``query`` and ``series`` (Arrow-backed strings; ``series`` is the comma-joined tag
    set of a grouped query's row, ``""`` for an ungrouped query), ``timestamp`` (bucket start,
    ``datetime64[ns, UTC]``), ``avg``, ``min``, ``max``, ``sum`` (float64, NaN where Datadog had
    no value), and ``value`` (float64) after them when some query is value-only (a percentile,
    ``top()``, a query's own ``.rollup()``: docs/queries.md). One partition per query and run of
    ``chunks_per_partition`` consecutive chunks of libddstream's plan, in query order then time
    order.

    ``queries_per_partition=N`` (default 1): each partition reads N consecutive queries as one
    stream, whose every chunk packs their sub-queries into as few requests as the budgets allow
    (up to 35 sub-queries, about 8 four-statistics queries, per request): N times fewer
    partitions and up to about 8 times fewer requests. Rows are in query order within a
    partition.

    Formulas (Datadog's v2 endpoint, docs/formulas.md): ``queries`` as ``{name: query}`` and
    ``formulas=["a / b * 100", ...]`` over the names (``api="auto"`` or ``"v2"``; ``api="v2"``
    without formulas reads each query as its own formula). Every partition is one v2 stream of
    all the queries and formulas over its run of chunks (``queries_per_partition`` does not
    apply with formulas); ``query`` holds each row's formula text, ``value`` its value, and
    ``avg``, ``min``, ``max``, ``sum`` are NaN (as in every v2 batch).

    ``index=None`` (default): each partition has a 0-based RangeIndex, divisions unknown.
    ``index="timestamp"``: ``timestamp`` is the index, each partition sorted by time then
    series; with a single query the divisions are known (the partitions' first buckets).

    Keys come from the environment of the process that reads (``DD_API_KEY``, ``DD_APP_KEY``),
    never from arguments, so they never enter the task graph. On a ``distributed`` cluster every
    request first takes a lease from the scheduler's budget (``budget=False``: only each
    process's own pacing). Other keywords are :class:`ddstream.DDStreamConfig` options
    (``max_in_flight``, ``max_retries``, ``request_timeout_ms``, ...). No network I/O here.
    """
    dd: Any = dask_dataframe  # dask's own types are incomplete: used through Any
    if index not in (None, "timestamp"):
        raise ValueError(f"index must be None or 'timestamp', not {index!r}")
    parts = plan_parts(queries, start, end, granularity=granularity, chunk_seconds=chunk_seconds,
                       chunks_per_partition=chunks_per_partition,
                       queries_per_partition=queries_per_partition, site=site, base_url=base_url,
                       formulas=formulas, **options)
    divisions: Any = None
    if index == "timestamp" and len({p.queries for p in parts}) == 1:
        bounds = [p.first_bucket() for p in parts] + [parts[-1].last_bucket()]
        divisions = tuple(pd.Timestamp(b, unit="s", tz="UTC").as_unit("ns") for b in bounds)
    meta = empty_frame(index, with_value=parts[0].with_value)
    return dd.from_map(read_part, parts, index=index, budget=budget, meta=meta,
                       divisions=divisions, label="ddstream-read-metrics",
                       enforce_metadata=False)
