"""``ddstream.scalar``: one value per group of each formula over a range (Datadog's
``POST /api/v2/query/scalar``), as a small :class:`ScalarTable`.

The library decides the cut (``ddstream_scalar`` in ddstream.h, docs/formulas.md "Scalars"):
a long range is asked in pieces only where the combined answer is exact, and the table says how
many pieces it took and, when it took one, why. With ``cache_dir`` the settled pieces go through
the chunk cache (docs/cache.md), so that a scalar run again sends only what has changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._config import DDStreamConfig
from ._gate import GateRegistration, RequestGate
from ._lib import ffi, lib
from ._native import error_from, new_error, wait_in_slices
from ._now import ClockRegistration
from ._timespec import TimeLike, parse_time
from .errors import STATUS_E_CONFIG, STATUS_OK, ConfigError

if TYPE_CHECKING:
    import pandas
    import pyarrow
    from typing_extensions import Unpack

    from ._config import ConfigOptions

__all__ = ["ScalarTable", "scalar"]


class ScalarTable:
    """One row per (formula, group): ``formula`` (its index; the query's without formulas),
    ``formula_text`` (the formula, or the query), ``group_tags`` (``""`` when ungrouped) and
    ``value`` (NaN where there was no data), as numpy arrays ordered by formula then tags;
    ``formulas``: the texts of the formulas (or queries) that ``formula`` indexes.
    ``chunks``: the pieces of time the answer was made from; ``requests``: the requests sent;
    ``cache_hits``: the pieces read from the chunk cache instead (0 without ``cache_dir``);
    ``split_reason``: ``None`` when split, else why it is one request over the range."""

    __slots__ = ("cache_hits", "chunks", "formula", "formula_text", "formulas", "group_tags",
                 "requests", "split_reason", "value")

    def __init__(self, formula: npt.NDArray[np.int32], formulas: tuple[str, ...],
                 group_tags: npt.NDArray[np.object_], value: npt.NDArray[np.float64],
                 chunks: int, requests: int, split_reason: str | None,
                 cache_hits: int = 0) -> None:
        self.formula = formula
        self.formulas = formulas
        self.formula_text: npt.NDArray[np.object_] = np.array(
            [formulas[int(i)] for i in formula], dtype=object)
        self.group_tags = group_tags
        self.value = value
        self.chunks = chunks
        self.requests = requests
        self.split_reason = split_reason
        self.cache_hits = cache_hits

    def __len__(self) -> int:
        return len(self.value)

    def to_dict(self) -> dict[tuple[int, str], float]:
        """``{(formula, group_tags): value}``."""
        return {(int(f), str(t)): float(v)
                for f, t, v in zip(self.formula, self.group_tags, self.value)}

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame (needs pandas: ``pip install 'ddstream[pandas]'``)."""
        from ._dependencies import pandas

        return pandas.DataFrame({"formula": self.formula, "formula_text": self.formula_text,
                                 "group_tags": self.group_tags, "value": self.value})

    def to_arrow(self) -> pyarrow.Table:
        """The rows as a pyarrow Table (needs pyarrow: ``pip install 'ddstream[arrow]'``)."""
        from ._dependencies import pyarrow

        return pyarrow.table({
            "formula": pyarrow.array(self.formula, pyarrow.int32()),
            "formula_text": pyarrow.array(self.formula_text.tolist(), pyarrow.string()),
            "group_tags": pyarrow.array(self.group_tags.tolist(), pyarrow.string()),
            "value": pyarrow.array(self.value, pyarrow.float64()),
        })

    def __repr__(self) -> str:
        cut = (f"{self.chunks} chunks" if self.split_reason is None
               else f"1 request: {self.split_reason}")
        if self.cache_hits:
            cut += f", {self.cache_hits} from the cache"
        lines = [f"ScalarTable({len(self)} rows, {cut})"]
        for f, t, v in list(zip(self.formula, self.group_tags, self.value))[:20]:
            lines.append(f"  {self.formulas[int(f)]!s:<24} {str(t) or '(all)':<24} {float(v):.6g}")
        if len(self) > 20:
            lines.append(f"  ... {len(self) - 20} more")
        return "\n".join(lines)


def _query_names(cfg: DDStreamConfig) -> list[str]:
    if isinstance(cfg.queries, Mapping):
        return [str(name) for name in cfg.queries]
    count = 1 if cfg.queries is None else len(cfg.queries)
    return [f"q{k}" for k in range(count)]


def _aggregators(cfg: DDStreamConfig, aggregator: str | Mapping[str, str]) -> list[str]:
    names = _query_names(cfg)
    if isinstance(aggregator, str):
        return [aggregator] * len(names)
    if not isinstance(aggregator, Mapping):
        raise TypeError(f"aggregator must be a str or a dict, not {type(aggregator).__name__}")
    unknown = [name for name in aggregator if name not in names]
    if unknown:
        raise ConfigError(f"aggregator: {unknown[0]!r} is not a query name; the queries are "
                          f"named {', '.join(names)}", status=STATUS_E_CONFIG)
    return [str(aggregator.get(name, "avg")) for name in names]


def _options_config(start: TimeLike | None, end: TimeLike | None, options: dict[str, Any]
                    ) -> DDStreamConfig:
    """A config from keywords: ``start``/``end`` (or ``range_start``/``range_end``) may be human
    times (``-30d``, ISO 8601, ``now``); an end left out is now."""
    if start is not None:
        options["range_start"] = start
    if end is not None:
        options["range_end"] = end
    if "range_start" in options and "range_end" not in options:
        options["range_end"] = "now"
    for name in ("range_start", "range_end"):
        if name in options:
            try:
                options[name] = parse_time(options[name])
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}", status=STATUS_E_CONFIG) from None
    return DDStreamConfig(**options)


def scalar(cfg: DDStreamConfig | None = None, *, aggregator: str | Mapping[str, str] = "avg",
           start: TimeLike | None = None, end: TimeLike | None = None,
           clock: Callable[[], float] | None = None,
           request_gate: RequestGate | None = None,
           **options: Unpack[ConfigOptions]) -> ScalarTable:
    """One value per group of each formula (or query) of ``cfg`` (or of a config made from
    keyword ``options``) over its range, reduced with ``aggregator`` (one for every query, or
    ``{name: aggregator}``; unnamed queries default to ``avg``). With keywords, ``start`` and
    ``end`` (or ``range_start``/``range_end``) take human times as DDStream's do.
    ``request_gate``: a :class:`~ddstream.RequestGate` every request (each attempt) asks first
    and reports to, as a stream's do; a gate that raises refuses the request
    (:class:`~ddstream.RateLimitError`, with its exception as the cause).

    With ``cache_dir`` (a config option), every piece that has settled (ended ``settle_seconds``
    ago) is kept in the chunk cache and read from there by a later run: ``cache_hits`` of the
    table counts those. ``clock``: a callable giving epoch seconds that replaces the system clock
    for that decision, as ``DDStream(..., clock=...)`` (tests: a ``ddstream.testing.FakeClock``).

    Blocks while the requests run, with the GIL released; Ctrl-C stops it within a tenth of a
    second and abandons the request in flight.

    Raises:
        ConfigError: the config or an aggregator is invalid (the message names the item).
        DDStreamError: the subclass for what failed (AuthError, QueryError, NetworkError, ...).
    """
    if cfg is None:
        cfg = _options_config(start, end, dict(options))
    elif not isinstance(cfg, DDStreamConfig):
        raise TypeError(f"scalar() takes a DDStreamConfig, not {type(cfg).__name__}")
    elif options or start is not None or end is not None:
        raise TypeError("scalar() takes a DDStreamConfig or keyword options, not both")
    aggregators = _aggregators(cfg, aggregator)
    native = cfg.to_native()
    native.ptr.log_level = 0  # no stream, so no log queue: the exception says what went wrong
    registered = None if clock is None else ClockRegistration(native.ptr, clock)
    try:
        return _run(native, aggregators, request_gate)
    finally:
        if registered is not None:
            registered.drop()  # after the run's thread is joined: nothing reads it any more


def _run(native: Any, aggregators: list[str], request_gate: RequestGate | None) -> ScalarTable:
    keep = [ffi.new("char[]", a.encode("utf-8")) for a in aggregators]
    array = ffi.new("char *[]", keep)
    err = new_error()
    out = ffi.new("ddstream_scalar_run **")
    # The library never releases a scalar's gate (ddstream.h): it is dropped here, once the run
    # has failed to start or its thread is joined (after the gate's last call).
    gate = None if request_gate is None else GateRegistration(native.ptr, request_gate)
    status = int(lib.ddstream_scalar_start(native.ptr, array, out, err))
    if status != STATUS_OK:
        _drop(gate)
        raise error_from(status, err)
    run = ffi.gc(out[0], lib.ddstream_scalar_run_free)
    table = ffi.new("ddstream_scalar_table **")
    try:
        # The run is on the library's thread; waiting in slices lets Ctrl-C in between.
        status = wait_in_slices(
            lambda slice_ms: int(lib.ddstream_scalar_wait(run, slice_ms, table, err)))
    except BaseException:
        lib.ddstream_scalar_cancel(run)
        raise
    finally:
        ffi.release(run)  # joins the thread: prompt once cancelled
        _drop(gate)
    if status != STATUS_OK:
        exc = error_from(status, err)
        raise exc if gate is None else gate.explain(exc)
    owned = ffi.gc(table[0], lib.ddstream_scalar_free)
    try:
        return _from_c(owned)
    finally:
        ffi.release(owned)


def _drop(gate: GateRegistration | None) -> None:
    if gate is not None:
        gate.drop()


def _from_c(t: Any) -> ScalarTable:
    n = int(t.row_count)
    formula = np.frombuffer(ffi.buffer(t.formula, 4 * n), dtype=np.int32).copy() if n else \
        np.zeros(0, dtype=np.int32)
    value = np.frombuffer(ffi.buffer(t.value, 8 * n), dtype=np.float64).copy() if n else \
        np.zeros(0, dtype=np.float64)
    tags = np.array([ffi.string(t.group_tags[i]).decode("utf-8") for i in range(n)], dtype=object)
    texts = tuple(ffi.string(t.formula_text[f]).decode("utf-8")
                  for f in range(int(t.formula_count)))
    reason = None if t.split_reason == ffi.NULL else ffi.string(t.split_reason).decode("utf-8")
    return ScalarTable(formula, texts, tags, value, int(t.chunks), int(t.requests), reason,
                       int(t.cache_hits))
