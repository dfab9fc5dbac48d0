"""A day of a grouped metric into polars, straight from the Arrow C stream, and a summary.

    python examples/python/polars_example.py             # against the built-in fake Datadog
    DD_API_KEY=... DD_APP_KEY=... python examples/python/polars_example.py --real

Needs polars and pyarrow (pip install 'ddstream[polars,arrow]').
"""

from __future__ import annotations

import sys

import polars as pl

import ddstream as dd
from ddstream.testing import FakeDatadog


def run(base_url: str | None) -> None:
    keys = {"api_key": "demo-api-key", "app_key": "demo-app-key"} if base_url else {}
    stream = dd.DDStream(query="avg:system.cpu.user{*} by {host}", start="-1d", base_url=base_url,
                         **keys)
    frame = pl.DataFrame(stream)  # through __arrow_c_stream__: no copy of the columns
    summary = (
        frame.group_by("series")
        .agg(
            pl.len().alias("rows"),
            pl.col("avg").null_count().alias("missing"),
            pl.col("avg").mean().round(3).alias("mean"),
            pl.col("max").max().alias("peak"),
        )
        .sort("series")
    )
    print(summary)


if __name__ == "__main__":
    if "--real" in sys.argv:
        run(None)
    else:
        with FakeDatadog() as fake:
            run(fake.url)
