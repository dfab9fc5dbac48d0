"""The benchmark scenarios, full size and quick (``--quick``: the same shapes, small enough that
the whole suite runs in under a minute). See docs/benchmarks.md for why each one exists."""

from __future__ import annotations

from dataclasses import dataclass, replace

DAY = 86400
# A fixed range, so that runs on different days ask for the same data (and the JSON of two runs
# compares like with like): it ends at midnight UTC, 2023-11-15, a multiple of every chunk size.
RANGE_END = 1_700_006_400
QUERY = "avg:system.cpu.user{*}"
GROUPED_QUERY = "avg:system.cpu.user{*} by {host}"
SEED_CHUNK_SECONDS = 14400  # the original guide's 4-hour chunks
MAX_POINTS = 1500  # Datadog's points per series per answer


@dataclass(frozen=True)
class Scenario:
    id: str
    note: str = ""
    query: str = QUERY
    days: float = 30
    granularity: int = 60
    chunk_seconds: int = SEED_CHUNK_SECONDS
    hosts: int = 3  # the fake server's dataset; {*} averages them into one series
    latency: float = 0.0  # seconds added to every answer
    rate_limit: tuple[int, float] | None = None  # (requests, window seconds)
    repeat: int = 1  # default runs per client (CPU figures: the median is reported)
    memory_reference: str | None = None  # the 1-day scenario this one's peak RSS is compared to
    # "fake": the fake's own values (multiples of small fractions, few digits) and timestamps
    # written as floats; "realistic": what Datadog sends (see shared recordings): values with the
    # full precision of a float64 as Python's repr writes it (15-17 significant digits) and
    # integer-millisecond timestamps.
    values: str = "fake"
    limits: bool = False  # also time its first answer against the physical limits (limits.py)

    @property
    def title(self) -> str:
        days = f"{self.days:g} d"
        series = f"{self.hosts} hosts by {{host}}" if "by {" in self.query else "1 series"
        chunks = "chunk_seconds=0" if self.chunk_seconds == 0 else f"{self.chunk_seconds} s chunks"
        parts = [days, series, f"{self.granularity} s", chunks]
        if self.latency:
            parts.append(f"+{self.latency * 1000:g} ms per answer")
        if self.rate_limit:
            parts.append(f"{self.rate_limit[0]} req / {self.rate_limit[1]:g} s")
        if self.values != "fake":
            parts.append(f"{self.values} values")
        return ", ".join(parts) + (f" ({self.note})" if self.note else "")

    @property
    def range_start(self) -> int:
        return RANGE_END - int(self.days * DAY)

    @property
    def range_end(self) -> int:
        return RANGE_END

    @property
    def buckets(self) -> int:
        return (self.range_end - self.range_start) // self.granularity

    @property
    def min_requests(self) -> int:
        """The fewest requests Datadog's point cap allows for this range (per series)."""
        return -(-self.buckets // MAX_POINTS)


def full() -> list[Scenario]:
    s1 = Scenario("s1", repeat=3, memory_reference="m1")
    s2 = replace(s1, id="s2", chunk_seconds=0, memory_reference="m2")
    s3 = Scenario(
        "s3", query=GROUPED_QUERY, days=1, chunk_seconds=0, hosts=200, repeat=3, limits=True
    )
    s4 = replace(s1, id="s4", latency=0.150, repeat=1, memory_reference=None)
    s5 = replace(s2, id="s5", rate_limit=(20, 10.0), repeat=1, memory_reference=None)
    s3r = replace(s3, id="s3r", values="realistic")
    m1 = replace(s1, id="m1", note="RSS reference of s1", days=1, memory_reference=None)
    m2 = replace(s2, id="m2", note="RSS reference of s2", days=1, memory_reference=None)
    return [s1, s2, s3, s3r, s4, s5, m1, m2]


def quick() -> list[Scenario]:
    """Small versions: a few days instead of 30, 20 hosts instead of 200, a 4-per-2-s limit."""
    shrink: dict[str, dict[str, object]] = {
        "s1": {"days": 3},
        "s2": {"days": 3},
        "s3": {"hosts": 20},
        "s3r": {"hosts": 20},
        "s4": {"days": 2},
        "s5": {"days": 6, "rate_limit": (4, 2.0)},
    }
    return [replace(s, repeat=1, **shrink.get(s.id, {})) for s in full()]  # type: ignore[arg-type]
