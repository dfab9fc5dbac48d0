"""The request gate (``DDStream(..., request_gate=)``): asked before every query request, told how
each ended, from libddstream's own threads; exceptions refuse the request without crashing
anything; the library lets go of a gate only after its last call (Arrow hand-off included)."""

from __future__ import annotations

import gc
import threading
import time

import pytest

import ddstream as dd
from conftest import T0, make_config
from ddstream._gate import live_gates
from ddstream.testing import FakeDatadog


class CountingGate:
    """Counts what the stream tells it; optionally makes the first asks wait."""

    def __init__(self, waits: int = 0) -> None:
        self.lock = threading.Lock()
        self.asked = 0
        self.let_through = 0
        self.answers: list[tuple[int, int | None, int | None, float | None, int | None]] = []
        self.threads: set[int] = set()
        self.waits = waits

    def before_request(self) -> float:
        with self.lock:
            self.asked += 1
            self.threads.add(threading.get_ident())
            if self.waits > 0:
                self.waits -= 1
                return 0.02
            self.let_through += 1
            return 0.0

    def after_response(self, status: int, limit: int | None, remaining: int | None,
                       reset_s: float | None, period_s: int | None) -> None:
        with self.lock:
            self.answers.append((status, limit, remaining, reset_s, period_s))


def test_every_request_asks_and_is_reported(fake: FakeDatadog) -> None:
    gate = CountingGate(waits=3)
    before = live_gates()
    cfg = make_config(fake, chunk_seconds=3600, max_in_flight=4, prefetch_chunks=8)
    with dd.DDStream(cfg, request_gate=gate) as stream:
        rows = sum(len(batch["timestamps"]) for batch in stream)
        assert live_gates() == before + 1
    assert rows == 1440
    requests = len(fake.query_requests)
    assert requests == 24
    assert gate.let_through == requests
    assert gate.asked == requests + 3
    assert len(gate.answers) == requests
    assert threading.get_ident() not in gate.threads  # the fetcher threads ask, not the caller
    for status, limit, remaining, reset_s, period_s in gate.answers:
        assert status == 200
        assert limit is not None and limit > 0
        assert remaining is not None and 0 <= remaining <= limit
        assert reset_s is not None and reset_s >= 0
        assert period_s is not None and period_s > 0
    assert live_gates() == before  # released at close


def test_rate_limit_headers_reach_the_gate() -> None:
    with FakeDatadog(rate_limit=(5, 60.0)) as fake:
        gate = CountingGate()
        cfg = make_config(fake, range_end=T0 + 3 * 3600, chunk_seconds=3600, max_in_flight=1)
        with dd.DDStream(cfg, request_gate=gate) as stream:
            assert sum(1 for _ in stream) == 3
    remaining = [answer[2] for answer in gate.answers]
    assert remaining == [4, 3, 2]
    assert {answer[1] for answer in gate.answers} == {5}
    assert {answer[4] for answer in gate.answers} == {60}


class RefusingGate(CountingGate):
    def __init__(self) -> None:
        super().__init__()
        self.refuse = True

    def before_request(self) -> float:
        if self.refuse:
            raise LookupError("no lease for " + "apikey-in-a-message")
        return super().before_request()


def test_an_exception_refuses_the_request_and_the_next_call_retries(
        fake: FakeDatadog, caplog: pytest.LogCaptureFixture) -> None:
    gate = RefusingGate()
    cfg = make_config(fake, chunk_seconds=3600)
    with dd.DDStream(cfg, request_gate=gate) as stream:
        assert stream.next_batch() is None
        message = stream.last_error()
        assert "refused by the request gate" in message
        assert "RefusingGate.before_request raised LookupError" in message
        with pytest.raises(dd.RateLimitError) as info:
            next(iter(stream))
        assert isinstance(info.value.__cause__, LookupError)
        assert info.value.chunk_start == cfg.range_start - cfg.range_start % 60 + 60
        gate.refuse = False
        batch = stream.next_batch()  # the chunk refused twice, asked for anew: now it comes
        assert batch is not None and batch["chunk_index"] == 0, stream.last_error()
    assert fake.query_requests[0].query  # sent only once the gate agreed
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "LookupError" in logged
    assert "apikey-in-a-message" not in logged + message


def test_bad_gates() -> None:
    with pytest.raises(TypeError, match="before_request"):
        dd.DDStream(make_config(None), request_gate=object())  # type: ignore[arg-type]


def test_failed_open_drops_the_gate() -> None:
    before = live_gates()
    with pytest.raises(dd.ConfigError):
        dd.DDStream(make_config(None, granularity=0), request_gate=CountingGate())
    assert live_gates() == before


def test_gate_outlives_the_stream_object_through_arrow(fake: FakeDatadog) -> None:
    pa = pytest.importorskip("pyarrow")
    gate = CountingGate()
    before = live_gates()
    stream = dd.DDStream(make_config(fake, chunk_seconds=3600), request_gate=gate)
    reader = pa.RecordBatchReader._import_from_c_capsule(stream.__arrow_c_stream__())
    del stream
    gc.collect()
    assert live_gates() == before + 1  # the C stream lives on inside the reader
    table = reader.read_all()
    assert table.num_rows == 1440
    assert len(gate.answers) == 24
    del reader, table
    gc.collect()
    assert live_gates() == before


def test_a_shared_gate_paces_two_streams_in_two_threads() -> None:
    """A token bucket shared by two streams: together they never exceed it."""

    class Bucket:
        def __init__(self, per_second: float) -> None:
            self.lock = threading.Lock()
            self.interval = 1.0 / per_second
            self.next_at = time.monotonic()
            self.sent: list[float] = []

        def before_request(self) -> float:
            with self.lock:
                now = time.monotonic()
                if now < self.next_at:
                    return self.next_at - now
                self.next_at = max(self.next_at, now) + self.interval
                self.sent.append(now)
                return 0.0

        def after_response(self, status: int, limit: int | None, remaining: int | None,
                           reset_s: float | None, period_s: int | None) -> None:
            pass

    bucket = Bucket(per_second=40.0)
    with FakeDatadog() as fake:
        results: list[int] = []

        def run(query: str) -> None:
            cfg = make_config(fake, query=query, range_end=T0 + 8 * 3600, chunk_seconds=3600)
            with dd.DDStream(cfg, request_gate=bucket) as stream:
                results.append(sum(len(b["timestamps"]) for b in stream))

        threads = [threading.Thread(target=run, args=(q,))
                   for q in ("avg:system.cpu.user{*}", "avg:system.load.1{*}")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [480, 480]
    assert len(bucket.sent) == 16
    gaps = [b - a for a, b in zip(bucket.sent, bucket.sent[1:])]
    assert min(gaps) >= bucket.interval * 0.9
