"""The cluster's request budget on the Dask scheduler, and how a worker reaches it.

:class:`BudgetPlugin` is a ``distributed`` scheduler plugin: it adds two handlers to the
scheduler (``ddstream_budget_acquire``, ``ddstream_budget_report``) that run
:class:`._budget.WindowBudget` in the scheduler's event loop, one budget per (server, API-key
hash). The scheduler already is the one process every worker talks to, survives the loss of any
worker, and runs its handlers one at a time: no scheduler of our own, no lock, no extra service.

Workers call the handlers over their existing connection pool to the scheduler, from
libddstream's fetcher threads (see :func:`worker_gate`). The plugin is registered by the first
partition a worker runs (``idempotent``: later registrations keep the running budget), so a
``read_metrics`` frame computed on any ``distributed`` cluster is paced without a set-up step;
the scheduler's environment needs ``ddstream`` importable (as it needs ``dask.dataframe``).
"""

from __future__ import annotations

import logging
import pickle
import threading
from typing import Any

from .._dependencies import distributed, distributed_plugin
from ._budget import ClusterGate, WindowBudget, monotonic, run_on_loop

__all__ = ["PLUGIN_NAME", "BudgetPlugin", "worker_gate"]

PLUGIN_NAME = "ddstream-budget"
_ACQUIRE = "ddstream_budget_acquire"
_REPORT = "ddstream_budget_report"
_SNAPSHOT = "ddstream_budget_snapshot"
#: How long a worker waits for the scheduler to answer a lease request (seconds).
RPC_TIMEOUT = 10.0

logger = logging.getLogger("ddstream.dask")


class BudgetPlugin(distributed_plugin.SchedulerPlugin):
    """Holds the cluster's request budgets in the scheduler (see the module docstring)."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.budgets: dict[str, WindowBudget] = {}

    async def start(self, scheduler: Any) -> None:
        scheduler.handlers[_ACQUIRE] = self.acquire
        scheduler.handlers[_REPORT] = self.report
        scheduler.handlers[_SNAPSHOT] = self.snapshot

    def _budget(self, name: str) -> WindowBudget:
        budget = self.budgets.get(name)
        if budget is None:
            budget = self.budgets[name] = WindowBudget()
        return budget

    def acquire(self, name: str) -> tuple[float, int]:
        lease = self._budget(name).acquire(monotonic())
        return lease.wait, lease.id

    def report(self, name: str, lease: int, status: int, limit: int | None,
               remaining: int | None, reset_s: float | None, period_s: float | None) -> None:
        self._budget(name).report(lease, status, limit, remaining, reset_s, period_s, monotonic())

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every budget's state, by position (names hold a key hash: not handed out)."""
        return {str(i): b.snapshot() for i, b in enumerate(self.budgets.values())}


_registered: set[str] = set()  # scheduler addresses this worker process registered the plugin on
_registered_lock = threading.Lock()


def worker_gate(name: str) -> ClusterGate | None:
    """The gate for a partition running in a ``distributed`` worker (``None`` elsewhere)."""
    try:
        worker: Any = distributed.get_worker()
    except ValueError:
        return None  # not in a worker: dask's local schedulers run in one process
    loop = worker.loop.asyncio_loop
    scheduler = worker.scheduler
    address = str(worker.scheduler.address)
    with _registered_lock:
        if address not in _registered:
            plugin = pickle.dumps(BudgetPlugin())
            run_on_loop(loop, lambda: scheduler.register_scheduler_plugin(
                plugin=plugin, name=PLUGIN_NAME, idempotent=True), RPC_TIMEOUT)
            _registered.add(address)

    def call(op: str, wait: bool = True, **kwargs: Any) -> Any:
        method = getattr(scheduler, _ACQUIRE if op == "acquire" else _REPORT)
        return run_on_loop(loop, lambda: method(**kwargs), RPC_TIMEOUT, wait=wait)

    return ClusterGate(call, name)


def budget_snapshot(client: Any) -> dict[str, dict[str, Any]]:
    """The scheduler's budgets (limit, epoch, leases granted, 429s seen), for reports."""
    async def ask(dask_scheduler: Any) -> Any:
        plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
        return {} if plugin is None else plugin.snapshot()

    result: dict[str, dict[str, Any]] = client.run_on_scheduler(ask)
    return result
