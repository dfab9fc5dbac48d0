"""A week of a grouped metric into pandas: resample to hourly means per host and save a plot.

    python examples/python/pandas_plot.py [OUT.png]          # against the built-in fake Datadog
    DD_API_KEY=... DD_APP_KEY=... python examples/python/pandas_plot.py OUT.png --real

Needs pandas, pyarrow and matplotlib (pip install 'ddstream[pandas,arrow]' matplotlib).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt

import ddstream as dd
from ddstream.testing import FakeDatadog


def run(base_url: str | None, out: str) -> None:
    keys = {"api_key": "demo-api-key", "app_key": "demo-app-key"} if base_url else {}
    stream = dd.DDStream(query="avg:system.cpu.user{*} by {host}", start="-7d", granularity=300,
                         base_url=base_url, **keys)
    frame = stream.to_pandas()  # timestamp, avg, min, max, sum, series
    hourly = (
        frame.set_index("timestamp")
        .groupby("series", observed=True)["avg"]
        .resample("1h")
        .mean()
        .unstack(level=0)
    )
    ax = hourly.plot(figsize=(10, 4), title="avg:system.cpu.user by host, hourly mean")
    ax.set_xlabel("time (UTC)")
    ax.figure.tight_layout()
    ax.figure.savefig(out, dpi=80)
    plt.close(ax.figure)
    print(f"{len(frame)} rows, {hourly.shape[0]} hours x {hourly.shape[1]} hosts -> {out}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--real"]
    target = args[0] if args else "cpu.png"
    if "--real" in sys.argv:
        run(None, target)
    else:
        with FakeDatadog() as fake:
            run(fake.url, target)
