"""One request budget for a whole cluster: the window arithmetic, and the gate the workers use.

Datadog counts query requests per organisation in fixed windows and says so in every answer
(``x-ratelimit-limit``, ``-remaining``, ``-reset``, ``-period``). libddstream paces each process
from those headers, but N worker processes each reading "remaining: 40" would together send 40 x N.
So the window is handed out from one place, the Dask scheduler (see :mod:`._plugin`), and every
worker asks it for a lease before each request (:class:`ClusterGate`, a
:class:`ddstream.RequestGate`) and reports what the answer's headers said.

:class:`WindowBudget` is the arithmetic, kept free of any I/O so that it can be tested with a
clock of our own. The rules (the same as libddstream's per-process budget, docs/design-notes.md):

* nothing known yet (no answer with headers so far): one request at a time goes out to find out;
* known: a lease is granted while the estimate of what is left of the window is positive. The
  estimate is the lowest ``remaining`` any answer of this window gave (the server's latest
  count) minus every lease not answered yet (they may not have been counted when the server
  wrote that number) and every lease that got no answer (it may have counted). A lease answered
  late with a higher ``remaining`` was counted before that lowest one, so its answer rightly
  frees its place: the estimate never counts one of our requests twice, which would leave part
  of every window unused, and never counts it zero times, which would send into a 429;
* the window's end is the earliest ``arrival + reset`` of its answers. The arrival is measured
  here, after the server wrote the header, and ``reset`` is rounded up, so every such time is at
  or after the true end: the estimate converges on the true end from above and never rolls over
  early. A new window starts with one request (a probe) whose answer says what is left: leases
  granted just before our estimate of the end may have landed in the new window, and other
  clients of the organisation may have spent some of it. That costs one round trip per window
  (Datadog's windows are long) and is what keeps a cluster's first burst of a window from
  running into 429s;
* answers to leases granted in an earlier window are ignored (they describe that window);
* a 429 is authoritative: nothing more until its reset;
* a server that never sends the headers is not paced (as libddstream does);
* a lease never answered (its worker died) expires after ``lease_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ClusterGate", "Lease", "WindowBudget", "budget_name"]

logger = logging.getLogger("ddstream.dask")

#: While probing (nothing known yet), how long the others wait before asking again (seconds).
PROBE_WAIT = 0.05
#: The longest wait handed out at once: a worker asks again after it, so that a window that
#: ends earlier than thought (a lower estimate from a later answer) is used at once.
MAX_WAIT = 2.0
#: The shortest wait handed out (seconds): below this, asking again costs more than it saves.
MIN_WAIT = 0.005
#: A lease that was never answered (its worker died mid-request) stops counting after this long.
LEASE_TIMEOUT = 300.0
#: After a 429 without a reset header: how long the window is taken to be spent.
DEFAULT_SPENT = 1.0


@dataclass(frozen=True)
class Lease:
    """The answer to a request for a lease: ``wait == 0`` means granted (``id`` names it)."""

    wait: float
    id: int = 0
    epoch: int = 0


class WindowBudget:
    """The state of one budget (one server and API key), for the whole cluster.

    Not thread-safe on purpose: it lives in the scheduler's event loop, which runs one handler
    at a time. ``now`` is any monotonic clock in seconds (the caller's; tests pass their own).
    """

    def __init__(self, lease_timeout: float = LEASE_TIMEOUT) -> None:
        self.limit: int | None = None  # x-ratelimit-limit, once seen
        self.period: float | None = None  # x-ratelimit-period, once seen
        self.window_end: float | None = None  # our (never early) estimate of the window's end
        self.lowest_remaining: int | None = None  # this window's; None: unknown (probe)
        self.lost = 0  # leases of this window that got no answer (they may have counted)
        self.unpaced = False  # the server answered without rate-limit headers
        self.epoch = 0  # our count of windows; a lease carries the epoch it was granted in
        self.lease_timeout = lease_timeout
        self._leases: dict[int, tuple[int, float]] = {}  # id -> (epoch, granted at)
        self._next_id = 1
        # Counters for reports and tests.
        self.granted = 0
        self.answered = 0
        self.refused_429 = 0

    # -- the two operations ---------------------------------------------------------------

    def acquire(self, now: float) -> Lease:
        """A lease for one request, or how long to wait before asking again."""
        self._expire(now)
        self._roll(now)
        if not self.unpaced:
            if self.available is None:  # probing: one request of this window until it answers
                if any(epoch == self.epoch for epoch, _ in self._leases.values()):
                    return Lease(PROBE_WAIT)
            elif self.available <= 0:
                if self.window_end is None:
                    return Lease(PROBE_WAIT)
                return Lease(min(MAX_WAIT, max(MIN_WAIT, self.window_end - now)))
        lease = Lease(0.0, self._next_id, self.epoch)
        self._next_id += 1
        self._leases[lease.id] = (lease.epoch, now)
        self.granted += 1
        return lease

    def report(self, lease_id: int, status: int, limit: int | None, remaining: int | None,
               reset_s: float | None, period_s: float | None, now: float) -> None:
        """What the answer to lease ``lease_id`` said (``status`` 0: no answer)."""
        entry = self._leases.pop(lease_id, None)
        self._roll(now)
        if status == 0:
            if entry is not None and entry[0] == self.epoch:
                self.lost += 1  # no answer: the request may or may not have counted
            return
        self.answered += 1
        if limit is not None and limit > 0:
            self.limit = limit
        if period_s is not None and period_s > 0:
            self.period = float(period_s)
        epoch = entry[0] if entry is not None else -1
        if status == 429:
            self.refused_429 += 1
            # Authoritative whatever the window it belongs to: spent until its reset.
            spent_until = now + (reset_s if reset_s is not None else DEFAULT_SPENT)
            self.lowest_remaining = 0
            self.unpaced = False
            if self.window_end is None or spent_until > self.window_end:
                self.window_end = spent_until
            return
        if remaining is None or reset_s is None:
            if self.limit is None and self.lowest_remaining is None:
                self.unpaced = True  # nothing to pace on: as libddstream, do not pace
            return
        self.unpaced = False
        if epoch != self.epoch:
            return  # it describes an earlier window
        if self.lowest_remaining is None or remaining < self.lowest_remaining:
            self.lowest_remaining = remaining
        end = now + reset_s
        if self.window_end is None or end < self.window_end:
            self.window_end = end

    # -- the window ----------------------------------------------------------------------

    def _roll(self, now: float) -> None:
        """At the estimated end of the window, start the next one."""
        if self.window_end is None or now < self.window_end:
            return
        self.epoch += 1
        if self.period is not None:
            skipped = math.floor((now - self.window_end) / self.period) + 1
            self.window_end += skipped * self.period
        else:
            self.window_end = None
        self.lowest_remaining = None  # probe: the first answer of the window says what is left
        self.lost = 0

    def _expire(self, now: float) -> None:
        if not self._leases:
            return
        stale = [i for i, (_, at) in self._leases.items() if now - at > self.lease_timeout]
        for lease_id in stale:
            del self._leases[lease_id]

    @property
    def available(self) -> int | None:
        """Leases left in this window by our estimate; ``None`` while unknown (probing)."""
        if self.lowest_remaining is None:
            return None
        return max(0, self.lowest_remaining - len(self._leases) - self.lost)

    @property
    def in_flight(self) -> int:
        return len(self._leases)

    def snapshot(self) -> dict[str, Any]:
        """The state, for reports and tests (no key, no key hash: ``budget_name`` is separate)."""
        return {
            "limit": self.limit,
            "period": self.period,
            "available": self.available,
            "in_flight": self.in_flight,
            "epoch": self.epoch,
            "unpaced": self.unpaced,
            "granted": self.granted,
            "answered": self.answered,
            "refused_429": self.refused_429,
        }


def budget_name(base_url: str, api_key: str) -> str:
    """The name of a budget: the server and a hash of the API key (never the key itself).

    Datadog's quota is per organisation; keys of one organisation cannot be told apart from
    here, so keys are a stand-in, as in libddstream's budget."""
    # surrogatepass: a key that is not valid text still gets a name here, and its ConfigError
    # (which never quotes it) from the config check, instead of a UnicodeEncodeError showing it.
    key = api_key.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(b"ddstream-budget\0" + key).hexdigest()[:16]
    return f"{base_url}#{digest}"


class ClusterGate:
    """A :class:`ddstream.RequestGate` that takes its leases from the scheduler's budget.

    ``call(op, **kwargs)`` runs a budget operation on the scheduler and returns its result
    (:func:`._plugin.scheduler_caller` makes one for a worker). The libddstream fetcher thread
    that asked ``before_request`` is the one told ``after_response`` for that request (each
    fetcher sends one request at a time), so the lease is remembered per thread.

    If the scheduler cannot be reached, the gate lets requests through (libddstream's own
    per-process budget still paces them) and logs a warning once: a lost coordinator should
    slow an export down, not fail it.
    """

    def __init__(self, call: Callable[..., Any], name: str) -> None:
        self._call = call
        self._name = name
        self._local = threading.local()
        self._warned = False

    def before_request(self) -> float:
        try:
            wait, lease_id = self._call("acquire", name=self._name)
        except Exception as exc:
            self._warn(exc)
            self._local.lease = 0
            return 0.0
        wait = float(wait)
        self._local.lease = 0 if wait > 0 else int(lease_id)
        return wait

    def after_response(self, status: int, limit: int | None, remaining: int | None,
                       reset_s: float | None, period_s: int | None) -> None:
        lease_id = getattr(self._local, "lease", 0)
        self._local.lease = 0
        if not lease_id:
            return
        try:
            self._call("report", name=self._name, lease=lease_id, status=int(status),
                       limit=limit, remaining=remaining, reset_s=reset_s, period_s=period_s,
                       wait=False)
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            # The type only: messages from the network stack name hosts, not keys, but say less.
            logger.warning("ddstream.dask: the cluster's request budget is unreachable (%s); "
                           "this worker paces on its own", type(exc).__name__)


def run_on_loop(loop: asyncio.AbstractEventLoop, make: Callable[[], Any], timeout: float,
                wait: bool = True) -> Any:
    """Run the coroutine ``make()`` on ``loop`` (another thread's) and return its result."""

    async def runner() -> Any:
        return await make()

    future = asyncio.run_coroutine_threadsafe(runner(), loop)
    if not wait:
        return None
    return future.result(timeout)


def monotonic() -> float:
    return time.monotonic()
