"""Cancellation, Ctrl-C and close while busy.

``ddstream_cancel`` from any thread makes a blocked call return within 200 ms — whether the worker
is in a transfer that trickles, in a backoff sleep between retries, or waiting for a rate-limit
window. Ctrl-C (SIGINT) raises KeyboardInterrupt in a blocked ``next_batch`` or iteration within
half a second and leaves the stream usable (or cleanly closable). Closing a busy stream is prompt
and safe.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import ddstream as dd
from conftest import T0, make_config, subprocess_env
from ddstream._lib import ffi, lib
from ddstream.testing import FakeDatadog, SlowBody

# The promises of the issue this file tests.
CANCEL_WITHIN = 0.2
SIGINT_WITHIN = 0.5


def _busy(fake: FakeDatadog, how: str) -> dict[str, Any]:
    """Make the server keep a stream's worker busy in one way; returns config overrides."""
    if how == "slow transfer":
        fake.add_fault(SlowBody(chunk=1, pause=0.05, times=None))
        return {"low_speed_limit": 0}
    if how == "backoff sleep":
        fake.inject(503, times=None)
        return {"max_retries": 10, "retry_backoff_ms": 20000, "max_retry_wait_ms": 600000}
    if how == "rate-limit wait":
        # Another stream of this process spends the window: the next one waits for the reset
        # before sending anything (the pacing wait, not a retry).
        fake.rate_limit = (1, 2.0)
        with dd.DDStream(make_config(fake, range_start=T0 + 86400, range_end=T0 + 90000)) as other:
            assert len(list(other)) == 1
        return {}
    raise AssertionError(how)


def _wait_for_request(fake: FakeDatadog) -> None:
    deadline = time.monotonic() + 10
    while not fake.query_requests and fake.in_flight == 0:
        assert time.monotonic() < deadline, "the worker never sent its request"
        time.sleep(0.005)
    time.sleep(0.1)  # the worker is now inside the transfer, or the sleep after it


WAYS = ["slow transfer", "backoff sleep", "rate-limit wait"]


@pytest.mark.parametrize("how", WAYS)
def test_cancel_wakes_a_blocked_c_call(fake: FakeDatadog, how: str) -> None:
    """The C promise, without Python's slicing: ddstream_next(timeout -1) returns within 200 ms."""
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=60000, **_busy(fake, how))
    with dd.DDStream(cfg) as stream:
        ptr = stream._handle.ptr
        result: dict[str, Any] = {}

        def blocked_call() -> None:
            box = ffi.new("ddstream_batch **")
            err = ffi.new("ddstream_error *")
            result["status"] = lib.ddstream_next(ptr, -1, box, err)  # releases the GIL
            result["at"] = time.monotonic()

        caller = threading.Thread(target=blocked_call, daemon=True)
        caller.start()
        _wait_for_request(fake)
        assert caller.is_alive()
        cancelled_at = time.monotonic()
        stream.cancel()
        caller.join(5)
        assert not caller.is_alive()
        assert result["status"] == lib.DDSTREAM_E_CANCELLED
        latency = result["at"] - cancelled_at
        print(f"\ncancel during {how}: ddstream_next returned in {latency * 1000:.1f} ms")
        assert latency < CANCEL_WITHIN, latency


@pytest.mark.parametrize("how", WAYS)
def test_cancel_from_another_thread_during(fake: FakeDatadog, how: str) -> None:
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=60000, **_busy(fake, how))
    with dd.DDStream(cfg) as stream:
        _wait_for_request(fake)
        timer = threading.Timer(0.1, stream.cancel)
        timer.start()
        with pytest.raises(dd.CancelledError):
            next(stream)
        timer.join()
        with pytest.raises(dd.CancelledError):
            next(stream)  # it stays cancelled...
        # ...until reset(), which clears the cancellation and fetches the chunk again.
        fake.clear_faults()
        stream.reset()
        assert [b["chunk_index"] for b in stream] == [0]


def _time_cancel(stream: dd.DDStream, call: Callable[[], object]) -> float:
    """Seconds from cancel() (from another thread) to ``call`` giving up."""
    box: dict[str, float] = {}

    def cancel_soon() -> None:
        time.sleep(0.2)
        box["at"] = time.monotonic()
        stream.cancel()

    helper = threading.Thread(target=cancel_soon)
    helper.start()
    with pytest.raises(dd.CancelledError):
        call()
    returned = time.monotonic()
    helper.join()
    return returned - box["at"]


@pytest.mark.parametrize("how", WAYS)
def test_cancel_latency_through_python(fake: FakeDatadog, how: str) -> None:
    """The same promise through the binding's sliced next_batch and the iterator."""
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=60000, **_busy(fake, how))
    with dd.DDStream(cfg) as stream:
        _wait_for_request(fake)
        latency = _time_cancel(stream, lambda: next(stream))
    print(f"\ncancel during {how}: next(stream) raised in {latency * 1000:.1f} ms")
    assert latency < CANCEL_WITHIN, latency


@pytest.mark.parametrize("how", WAYS)
def test_close_while_the_worker_is_busy(fake: FakeDatadog, how: str) -> None:
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=60000, **_busy(fake, how))
    stream = dd.DDStream(cfg)
    _wait_for_request(fake)
    started = time.monotonic()
    stream.close()
    took = time.monotonic() - started
    print(f"\nclose during {how}: {took * 1000:.1f} ms")
    assert took < CANCEL_WITHIN
    assert stream.closed
    with pytest.raises(ValueError, match="closed"):
        stream.next_batch()


def test_close_from_another_thread_while_next_batch_waits(fake: FakeDatadog) -> None:
    busy = _busy(fake, "backoff sleep")
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=60000, **busy)
    with dd.DDStream(cfg) as stream:
        _wait_for_request(fake)
        threading.Timer(0.1, stream.close).start()
        started = time.monotonic()
        assert stream.next_batch() is None
        assert time.monotonic() - started < 0.1 + CANCEL_WITHIN
        assert "closed" in stream.last_error() or "cancel" in stream.last_error()


# -- Ctrl-C in a real process ---------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    import ddstream as dd

    mode = sys.argv[1]
    cfg = dd.DDStreamConfig(api_key="child-api-key", app_key="child-app-key",
                            query="avg:system.cpu.user{*}", range_start=%(t0)d,
                            range_end=%(t0)d + 7200, chunk_seconds=3600,
                            request_timeout_ms=60000, max_retries=0)
    stream = dd.DDStream(cfg)
    print("ready", flush=True)
    try:
        if mode == "iterate":
            for batch in stream:
                pass
        else:
            stream.next_batch()
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
    if mode == "close":
        stream.close()
        print("closed", stream.closed, flush=True)
        sys.exit(0)
    sys.stdin.readline()  # the parent makes the server fast again
    indexes = [b["chunk_index"] for b in stream]
    print("after", indexes, flush=True)
    """
) % {"t0": T0}


@pytest.mark.parametrize("mode", ["next_batch", "iterate", "close"])
def test_sigint_interrupts_a_blocked_call_in_a_child_process(fake: FakeDatadog, mode: str) -> None:
    """SIGINT sent to a process blocked in next_batch / iteration: KeyboardInterrupt within half
    a second; then the stream carries on from the same chunk (or closes cleanly)."""
    fake.latency = 2.0  # the first answer: long enough to interrupt, short enough to wait out
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        env=subprocess_env(fake),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while fake.in_flight == 0:  # the child's worker is waiting for the server
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        line = child.stdout.readline().split()
        assert line[:1] == ["interrupted"], line
        latency = float(line[1]) - sent
        print(f"\nSIGINT during {mode}: KeyboardInterrupt after {latency * 1000:.0f} ms")
        assert latency < SIGINT_WITHIN, latency
        fake.latency = 0.0  # the stream then gets chunk 0 (still in flight) and chunk 1
        if mode == "close":
            assert child.stdout.readline().strip() == "closed True"
        else:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "after [0, 1]"
        assert child.wait(20) == 0, child.stderr.read() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
