"""ddstream.dask: many Datadog queries over long ranges, across a Dask cluster, under one budget.

::

    from distributed import Client
    import ddstream.dask

    client = Client(n_workers=4)          # workers read DD_API_KEY / DD_APP_KEY from their env
    df = ddstream.dask.read_metrics(["avg:system.cpu.user{*} by {host}", "sum:trace.hits{*}"],
                                    start="-30d", end="now", granularity=60)
    df.groupby("query")["avg"].mean().compute()
    ddstream.dask.export_parquet(queries, "2026-01-01", "2026-02-01", "out/")  # resumable

Each partition is one query over a run of consecutive chunks of libddstream's plan, read by the C
library in the worker. On a ``distributed`` cluster every request first takes a lease from one
budget held by the scheduler (a scheduler plugin), fed by the ``x-ratelimit-*`` headers of every
answer, so the workers together stay within the organisation's rate limit. See docs/dask.md.

Needs ``dask[dataframe]`` (and ``distributed`` for a cluster): ``pip install 'ddstream[dask]'``.
"""

from __future__ import annotations

try:
    import dask.dataframe  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised only without dask installed
    raise ImportError(
        "ddstream.dask needs dask[dataframe] (and distributed for a cluster): "
        "pip install 'ddstream[dask]'"
    ) from _exc

from ._budget import ClusterGate, WindowBudget
from ._parquet import ExportReport, export_parquet
from ._read import COLUMNS, Part, empty_frame, plan_parts, read_metrics

__all__ = [
    "COLUMNS",
    "ClusterGate",
    "ExportReport",
    "Part",
    "WindowBudget",
    "empty_frame",
    "export_parquet",
    "plan_parts",
    "read_metrics",
]
