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

from .._dependencies import import_optional

# Fail at import, naming what to install, rather than at the first read: the imports below
# come after this check on purpose (E402).
import_optional("dask.dataframe", purpose="ddstream.dask",
                needs="dask[dataframe] (and distributed for a cluster)")

from ._budget import ClusterGate, WindowBudget  # noqa: E402
from ._parquet import ExportReport, export_parquet  # noqa: E402
from ._read import COLUMNS, Part, empty_frame, plan_parts, read_metrics  # noqa: E402

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
