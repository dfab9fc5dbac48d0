"""The cluster's request budget: the window arithmetic with a clock of our own, and the gate
driving real streams (libddstream's fetcher threads, real HTTP) against a rate-limited fake.

The cluster end to end (scheduler plugin, process workers) is in test_dask.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

pytest.importorskip("dask.dataframe", reason="ddstream.dask needs dask[dataframe]")

import ddstream as dd
from conftest import T0, make_config
from ddstream.dask._budget import (
    MAX_WAIT,
    PROBE_WAIT,
    ClusterGate,
    WindowBudget,
    budget_name,
)
from ddstream.testing import FakeDatadog


def answered(budget: WindowBudget, lease: int, now: float, remaining: int, reset: float,
             status: int = 200, limit: int = 10, period: float = 10.0) -> None:
    budget.report(lease, status, limit, remaining, reset, period, now)


def test_nothing_known_one_probe_at_a_time() -> None:
    b = WindowBudget()
    first = b.acquire(0.0)
    assert first.wait == 0 and first.id
    assert b.acquire(0.01).wait == PROBE_WAIT  # the probe has not answered yet
    answered(b, first.id, 0.1, remaining=9, reset=10)
    grants = [b.acquire(0.2) for _ in range(12)]
    assert [g.wait == 0 for g in grants].count(True) == 9  # what the server said is left
    refused = grants[-1]
    assert 0 < refused.wait <= MAX_WAIT


def test_unanswered_leases_count_against_the_estimate_and_none_counts_twice() -> None:
    b = WindowBudget()
    probe = b.acquire(0.0)
    answered(b, probe.id, 0.1, remaining=9, reset=10)
    leases = [b.acquire(0.2) for _ in range(4)]  # 5 left by our count
    # The server counts them in some order: 8, 7, 6, 5 left. An answer saying 8 left while
    # three of ours are still unanswered: at most 8 - 3 = 5.
    answered(b, leases[0].id, 0.3, remaining=8, reset=10)
    assert b.available == 5
    answered(b, leases[2].id, 0.4, remaining=6, reset=10)  # counted third, answered second
    assert b.available == 4  # 6 left, two of ours in flight
    # Counted second, answered late: it is inside the 6 already, so it frees its place.
    answered(b, leases[1].id, 0.5, remaining=7, reset=10)
    assert b.available == 5
    assert sum(b.acquire(0.6).wait == 0 for _ in range(9)) == 5
    answered(b, leases[3].id, 0.7, remaining=2, reset=10)  # others spend the window too
    assert b.available == 0  # 2 left, five of ours in flight


def test_window_end_is_the_earliest_arrival_plus_reset_and_a_new_window_probes() -> None:
    b = WindowBudget()
    probe = b.acquire(0.0)
    answered(b, probe.id, 0.5, remaining=0, reset=10)  # ends at 10.5 at the latest
    lease = b.acquire(1.0)
    assert lease.wait > 0 and b.window_end == pytest.approx(10.5)
    b.report(0, 200, 10, 0, 9.0, 10, 1.2)  # an unknown lease changes nothing of the window
    assert b.window_end == pytest.approx(10.5)
    assert b.acquire(10.49).wait > 0  # never early
    new = b.acquire(10.5)  # the new window: one probe first
    assert new.wait == 0 and new.epoch == 1
    assert b.acquire(10.5).wait == PROBE_WAIT
    answered(b, new.id, 10.6, remaining=9, reset=10)
    assert sum(b.acquire(10.7).wait == 0 for _ in range(12)) == 9


def test_answers_from_an_earlier_window_are_ignored() -> None:
    b = WindowBudget()
    probe = b.acquire(0.0)
    answered(b, probe.id, 0.1, remaining=5, reset=2, period=2)
    late = b.acquire(1.9)  # granted just before the end, answered after it
    new = b.acquire(2.2)
    assert new.epoch == late.epoch + 1
    answered(b, late.id, 2.3, remaining=0, reset=0.5)  # says nothing about the new window
    assert b.available is None and b.window_end == pytest.approx(4.1)
    answered(b, new.id, 2.4, remaining=7, reset=1.5)
    assert b.available == 7 and b.window_end == pytest.approx(3.9)


def test_a_429_spends_the_window_until_its_reset() -> None:
    b = WindowBudget()
    probe = b.acquire(0.0)
    answered(b, probe.id, 0.1, remaining=5, reset=10)
    lease = b.acquire(0.2)
    b.report(lease.id, 429, 10, 0, 20.0, 10, 0.3)
    assert b.available == 0 and b.window_end == pytest.approx(20.3)
    assert b.acquire(5.0).wait == MAX_WAIT
    assert b.acquire(20.3).wait == 0  # the probe of the next window
    assert b.refused_429 == 1


def test_no_headers_means_no_pacing_and_no_answer_keeps_the_lease_spent() -> None:
    b = WindowBudget()
    probe = b.acquire(0.0)
    b.report(probe.id, 200, None, None, None, None, 0.1)
    assert all(b.acquire(0.2).wait == 0 for _ in range(50))
    c = WindowBudget()
    probe = c.acquire(0.0)
    answered(c, probe.id, 0.1, remaining=3, reset=10)
    lease = c.acquire(0.2)
    c.report(lease.id, 0, None, None, None, None, 0.3)  # network error: it may have counted
    assert c.available == 2


def test_a_lease_never_answered_expires() -> None:
    b = WindowBudget(lease_timeout=30)
    b.acquire(0.0)  # its worker died
    assert b.acquire(1.0).wait == PROBE_WAIT
    assert b.acquire(31.0).wait == 0


def test_budget_name_holds_no_key() -> None:
    name = budget_name("https://api.datadoghq.com", "apikey-7f3a9c1e-DO-NOT-LEAK")
    assert "apikey" not in name and "LEAK" not in name
    assert name != budget_name("https://api.datadoghq.com", "another")
    assert name.startswith("https://api.datadoghq.com#")


class _LocalCoordinator:
    """A WindowBudget behind a lock: what the scheduler plugin is, without the cluster."""

    def __init__(self) -> None:
        self.budget = WindowBudget()
        self.lock = threading.Lock()
        self.ops: Counter[str] = Counter()

    def call(self, op: str, wait: bool = True, **kwargs: Any) -> Any:
        import time

        with self.lock:
            self.ops[op] += 1
            if op == "acquire":
                lease = self.budget.acquire(time.monotonic())
                return lease.wait, lease.id
            self.budget.report(kwargs["lease"], kwargs["status"], kwargs["limit"],
                               kwargs["remaining"], kwargs["reset_s"], kwargs["period_s"],
                               time.monotonic())
            return None


def test_gate_paces_real_streams_sharing_one_budget() -> None:
    """Four streams on threads, four fetchers each, one gate budget: no 429, every request
    leased and reported once."""
    coordinator = _LocalCoordinator()
    with FakeDatadog(rate_limit=(12, 1.0)) as fake:
        results: dict[int, int] = {}
        errors: list[BaseException] = []

        def run(i: int) -> None:
            gate = ClusterGate(coordinator.call, "test")
            cfg = make_config(fake, query=f"avg:gate.metric{i}{{*}}", range_start=T0,
                              range_end=T0 + 6 * 3600, granularity=60, chunk_seconds=3600,
                              max_in_flight=4, max_retries=3)
            try:
                with dd.DDStream(cfg, request_gate=gate) as stream:
                    results[i] = sum(len(b["timestamps"]) for b in stream)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        statuses = Counter(r.status for r in fake.query_requests)
    assert results == dict.fromkeys(range(4), 360)
    assert statuses == {200: 24}
    assert coordinator.ops["acquire"] >= 24
    assert coordinator.budget.granted == 24 and coordinator.budget.answered == 24
    assert coordinator.budget.in_flight == 0


def test_gate_without_coordinator_lets_requests_through(fake: FakeDatadog,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    def unreachable(op: str, wait: bool = True, **kwargs: Any) -> Any:
        raise OSError("scheduler gone")

    gate = ClusterGate(unreachable, "test")
    with dd.DDStream(make_config(fake), request_gate=gate) as stream:
        assert sum(len(b["timestamps"]) for b in stream) == 1440
    warnings = [r for r in caplog.records if "budget is unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once, not per request
