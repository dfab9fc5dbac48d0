"""Waits the server asks for are bounded, logged and visible.

One answer with an absurd ``x-ratelimit-reset`` (a 429, or a 200 saying ``remaining: 0``) used to
park every later request of the process, new streams included, for up to an hour, silently. Now
a wait is never longer than the window's period (``x-ratelimit-period``), or 60 s when the
answer does not say it; a longer one is cut and logged at INFO; ``DDStream.rate_limit_wait()``
(which the CLI's progress line shows) says how long is left; and ``Retry-After`` on a 503 (or a
429 without ``x-ratelimit-*``), as seconds or as an HTTP date, is honoured with the same bound,
within the retry budget (``max_retry_wait_ms``).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from typing import Any

import pytest

import ddstream as dd
from conftest import T0, make_config
from ddstream._progress import Progress
from ddstream.testing import AbsurdReset, FakeDatadog, RetryAfter

FOUR_HOURS = 4 * 3600


def config(server: FakeDatadog, chunks: int = 2, **overrides: Any) -> dd.DDStreamConfig:
    values: dict[str, Any] = {
        "range_end": T0 + chunks * FOUR_HOURS,
        "chunk_seconds": FOUR_HOURS,
        "max_retries": 3,
        "max_retry_wait_ms": 30000,
        "retry_backoff_ms": 20000,  # a plain backoff would take 10-20 s: too slow to pass
        "log_level": 3,
        "max_in_flight": 1,
    }
    values.update(overrides)
    return make_config(server, **values)


def absurd_resets() -> list[str]:
    """An absurd x-ratelimit-reset in each form a client accepts: seconds to go, an epoch in
    seconds, an epoch in milliseconds — each some three years away."""
    now = int(time.time())
    return ["99999999", str(now + 99_999_999), str((now + 99_999_999) * 1000)]


@pytest.mark.parametrize("status", [429, 200])
@pytest.mark.parametrize("form", range(3))
def test_an_absurd_reset_waits_one_period_at_most(
    status: int, form: int, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeDatadog() as fake:
        fake.add_fault(AbsurdReset(status=status, reset=absurd_resets()[form], period=2))
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="ddstream"), dd.DDStream(config(fake)) as stream:
            batches = list(stream)
        took = time.monotonic() - started
        assert [b["chunk_index"] for b in batches] == [0, 1]
        assert took < 5, f"waited {took:.1f} s for a window whose period is 2 s"
        if status == 429:
            assert took > 1.5, "the 429 was not waited out at all"
        # a new stream of the same process is not parked either
        started = time.monotonic()
        later_day = config(fake, range_start=T0 + 86400, range_end=T0 + 86400 + FOUR_HOURS)
        with dd.DDStream(later_day) as again:
            assert len(list(again)) == 1
        assert time.monotonic() - started < 3
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("x-ratelimit-reset asks to wait" in m and "period (x-ratelimit-period: 2 s)" in m
               and "waiting 2 s at most" in m for m in said), said


@pytest.mark.parametrize("status", [429, 200])
def test_without_a_period_the_wait_is_capped_at_a_minute_and_visible(status: int) -> None:
    with FakeDatadog() as fake:
        fake.add_fault(AbsurdReset(status=status, period=None))
        stream = dd.DDStream(config(fake, chunks=3, max_retry_wait_ms=600000))
        try:
            if status == 200:
                assert stream.next_batch() is not None  # the answer that spent the window
            waits = []
            deadline = time.monotonic() + 10
            while not waits or waits[-1] == 0:
                assert time.monotonic() < deadline, "the stream never waited"
                waits.append(stream.rate_limit_wait())
                time.sleep(0.02)
            assert 55 <= waits[-1] <= 60.1, waits[-1]  # (+50 ms: resets are whole seconds)
            started = time.monotonic()
            stream.cancel()
            assert stream.next_batch() is None and "cancel" in stream.last_error()
            assert time.monotonic() - started < 0.5
            while stream.rate_limit_wait() > 0:  # the fetcher wakes from its sleep at once
                assert time.monotonic() - started < 0.5
                time.sleep(0.01)
        finally:
            stream.close()


@pytest.mark.parametrize("http_date", [False, True], ids=["seconds", "http-date"])
@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_honoured(status: int, http_date: bool) -> None:
    with FakeDatadog() as fake:
        fake.add_fault(RetryAfter(2, status=status, http_date=http_date))
        started = time.monotonic()
        with dd.DDStream(config(fake, chunks=1)) as stream:
            seen = []
            reader = threading.Thread(target=lambda: seen.extend(stream))
            reader.start()
            time.sleep(0.5)
            waiting = stream.rate_limit_wait()
            reader.join(10)
        took = time.monotonic() - started
        assert len(seen) == 1
        first, retry = fake.query_requests[:2]
        assert first.status == status and retry.status == 200
        gap = retry.started - first.finished
        # Retry-After 2 s (an HTTP date has whole seconds: up to one less), not the 10-20 s backoff
        assert 0.9 < gap < 3.0, gap
        assert took < 5
        assert 0 < waiting <= 2.0, waiting


def test_an_absurd_retry_after_is_bounded_and_counted_against_the_retry_budget() -> None:
    with FakeDatadog() as fake:
        fake.add_fault(RetryAfter(10**8))
        started = time.monotonic()
        with dd.DDStream(config(fake, chunks=1, max_retry_wait_ms=5000)) as stream:
            assert stream.next_batch() is None
            message = stream.last_error()
        assert time.monotonic() - started < 2
        # the bounded wait (60 s) exceeds the budget: the error says so at once
        assert "HTTP 503" in message and "would exceed max_retry_wait_ms=5000" in message, message
        assert "in 60000 ms" in message or "in 59" in message, message


def test_the_cli_progress_line_shows_the_wait() -> None:
    with FakeDatadog() as fake:
        fake.add_fault(AbsurdReset(status=200, period=3))
        out = io.StringIO()
        with dd.DDStream(config(fake, chunks=2)) as stream:
            progress = Progress(stream.chunk_count, enabled=True, stream=out)
            progress.watch(stream.rate_limit_wait, interval=0.05)
            for batch in stream:
                progress.update(len(batch["timestamps"]))
            progress.finish()
    text = out.getvalue()
    assert "for the rate-limit window" in text, text
    waits = [float(part.split(" s ")[0]) for part in text.split("waiting ")[1:]]
    assert waits and all(0 < w <= 3 for w in waits), waits
    assert text.rstrip().endswith("ETA 0:00:00 \x1b[K"), text[-80:]
