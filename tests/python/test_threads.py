"""Threads: streams in different threads fetch in parallel, the GIL is released while C blocks,
and one stream can be shared (progress, cancel and close from other threads)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ddstream as dd
from conftest import T0, make_config, read_all
from ddstream._lib import ffi, lib
from ddstream.testing import FakeDatadog

LATENCY = 0.5


def test_two_streams_in_two_threads_overlap(fake: FakeDatadog) -> None:
    # The first request to a (server, key) goes out alone, to learn the rate-limit budget that
    # every stream of the process shares (docs/design-notes.md); learn it before timing.
    assert dd.DDStream.validate(make_config(fake)) is None
    fake.clear_log()
    fake.latency = LATENCY
    barrier = threading.Barrier(2)

    def one_chunk(query: str) -> int:
        cfg = make_config(fake, query=query, range_end=T0 + 3600, enable_prefetch=False)
        with dd.DDStream(cfg) as stream:
            assert stream.chunk_count == 1
            barrier.wait()
            return sum(len(b["timestamps"]) for b in stream)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = list(pool.map(one_chunk, ["avg:system.cpu.user{*}", "avg:system.mem.used{*}"]))
    wall = time.monotonic() - started
    print(f"\ntwo streams, one {LATENCY} s chunk each: {wall:.2f} s, "
          f"server concurrency {fake.max_concurrency}")
    assert counts == [60, 60]
    assert fake.max_concurrency >= 2
    assert wall < 2 * LATENCY


def test_gil_is_released_during_the_c_call(fake: FakeDatadog) -> None:
    """A direct ddstream_next with a long timeout: if cffi kept the GIL, the counter could not
    move for the whole wait."""
    fake.latency = LATENCY
    cfg = make_config(fake, range_end=T0 + 3600, enable_prefetch=True)
    with dd.DDStream(cfg) as stream:
        ptr = stream._handle.ptr
        box = ffi.new("ddstream_batch **")
        err = ffi.new("ddstream_error *")
        result: list[int] = []
        done = threading.Event()

        def blocking_call() -> None:
            result.append(lib.ddstream_next(ptr, 5000, box, err))
            done.set()

        counter = 0
        worker = threading.Thread(target=blocking_call)
        worker.start()
        time.sleep(0.05)  # let the worker enter the C call
        started = time.monotonic()
        while not done.is_set():
            counter += 1
        elapsed = time.monotonic() - started
        worker.join()
        lib.ddstream_batch_free(box[0])
    assert result == [lib.DDSTREAM_OK]
    assert elapsed > 0.3
    print(f"\nmain thread counted to {counter} in {elapsed:.2f} s while C blocked")
    assert counter > 10_000


def test_main_thread_keeps_running_while_next_batch_blocks(fake: FakeDatadog) -> None:
    fake.latency = LATENCY
    cfg = make_config(fake, range_end=T0 + 3600, enable_prefetch=False)
    with dd.DDStream(cfg) as stream:
        got: list[dd.Batch | None] = []
        worker = threading.Thread(target=lambda: got.append(stream.next_batch()))
        counter = 0
        last = time.monotonic()
        max_gap = 0.0
        worker.start()
        while worker.is_alive():
            counter += 1
            now = time.monotonic()
            max_gap = max(max_gap, now - last)
            last = now
        worker.join()
    assert got and got[0] is not None
    print(f"\nmain thread: {counter} iterations, longest pause {max_gap * 1000:.1f} ms")
    assert counter > 10_000
    # Holding the GIL for a 100 ms slice would show as a pause of about that length.
    assert max_gap < 0.08


def test_many_streams_in_a_pool(fake: FakeDatadog) -> None:
    fake.latency = 0.05
    queries = [f"avg:metric.{i}{{*}}" for i in range(8)]

    def fetch(query: str) -> np.ndarray:
        cfg = make_config(fake, query=query, range_end=T0 + 6 * 3600, chunk_seconds=3600)
        with dd.DDStream(cfg) as stream:
            return np.concatenate([b["avg"] for b in stream])

    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(fetch, queries))
    serial = [fetch(q) for q in queries[:2]]
    for a, b in zip(parallel, serial):
        np.testing.assert_array_equal(a, b)
    assert all(len(a) == 360 for a in parallel)


def test_progress_from_another_thread(fake: FakeDatadog) -> None:
    fake.latency = 0.1
    cfg = make_config(fake, chunk_seconds=14400, enable_prefetch=False)
    seen: list[float] = []
    with dd.DDStream(cfg) as stream:
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                try:
                    seen.append(stream.progress())
                except ValueError:
                    return
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        batches = read_all(stream)
        stop.set()
        watcher.join()
    assert len(batches) == 6
    assert seen == sorted(seen) and seen[0] >= 0.0 and seen[-1] <= 1.0
    assert len(set(seen)) >= 3


def test_close_from_another_thread_wakes_the_reader(fake: FakeDatadog) -> None:
    fake.latency = 3.0
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=20000)
    stream = dd.DDStream(cfg)
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()
    assert stream.next_batch() is None
    assert time.monotonic() - started < 1.5
    assert stream.last_error()
    time.sleep(0.1)
    assert stream.closed
    with pytest.raises(ValueError, match="closed"):
        stream.next_batch()
