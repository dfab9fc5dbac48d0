"""``ddstream.scalar(..., request_gate=)``: every scalar request (each attempt: a 429's retry and
a timed-out piece's halves too) asks the gate first and is reported to it, as a stream's are; a
gate that raises refuses the request with the error a stream gives, nothing is sent, and the
gate is let go of once the scalar is done (it is never released by the library)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY
from ddstream._gate import live_gates
from ddstream.testing import FakeDatadog
from ddstream.testing._faults import QueryTimeout, RetryAfter
from test_request_gate import CountingGate, RefusingGate
from test_scalar import END, PIECES, SCALAR_PATH, START, WEEK, check, options, truth_a


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_keys={API_KEY}, app_keys={APP_KEY}) as server:
        yield server


def scalar_requests(fake: FakeDatadog, before: int) -> int:
    return sum(1 for record in fake.requests[before:] if record.path == SCALAR_PATH)


def test_every_scalar_request_passes_the_gate(fake: FakeDatadog) -> None:
    gate = CountingGate(waits=2)
    before, gates = len(fake.requests), live_gates()
    table = dd.scalar(aggregator="max", chunk_seconds=WEEK, request_gate=gate, **options(fake))
    sent = scalar_requests(fake, before)
    assert table.chunks == PIECES and table.requests == sent == PIECES
    assert gate.let_through == sent and gate.asked == sent + 2  # two asks were told to wait
    assert [answer[0] for answer in gate.answers] == [200] * sent
    check(table, {(0, tags): v for tags, v in truth_a("max").items()}, ("max",))
    assert live_gates() == gates  # dropped: the library never releases a scalar's gate


def test_retries_and_timeout_splits_ask_again(fake: FakeDatadog) -> None:
    fake.add_fault(RetryAfter(0, status=429, path=SCALAR_PATH, times=1))
    gate = CountingGate()
    before = len(fake.requests)
    table = dd.scalar(aggregator="min", chunk_seconds=END - START, request_gate=gate,
                      **options(fake, max_retries=2, retry_backoff_ms=1))
    assert scalar_requests(fake, before) == gate.let_through == 2  # the 429, then its retry
    assert sorted(answer[0] for answer in gate.answers) == [200, 429]
    assert len(gate.answers) == 2
    check(table, {(0, tags): v for tags, v in truth_a("min").items()}, ("min",))

    fake.add_fault(QueryTimeout(path=SCALAR_PATH, status=504, times=1))
    gate = CountingGate()
    before = len(fake.requests)
    table = dd.scalar(aggregator="max", chunk_seconds=END - START, request_gate=gate,
                      **options(fake))
    assert table.requests == 3  # the whole range timed out: asked again in two halves
    assert scalar_requests(fake, before) == gate.let_through == len(gate.answers) == 3
    check(table, {(0, tags): v for tags, v in truth_a("max").items()}, ("max",))


def test_a_refusing_gate_is_a_stream_s_error(fake: FakeDatadog) -> None:
    gate = RefusingGate()
    before, gates = len(fake.requests), live_gates()
    with pytest.raises(dd.RateLimitError) as info:
        dd.scalar(aggregator="avg", request_gate=gate, **options(fake))
    assert "refused by the request gate" in info.value.message
    assert "RefusingGate.before_request raised LookupError" in info.value.message
    assert isinstance(info.value.__cause__, LookupError)
    assert "apikey-in-a-message" not in str(info.value)
    assert scalar_requests(fake, before) == 0 and gate.answers == []
    assert live_gates() == gates
    # The same gate, refusing no more, lets the same scalar through.
    gate.refuse = False
    table = dd.scalar(aggregator="avg", request_gate=gate, **options(fake))
    assert len(table) == 3 and scalar_requests(fake, before) == gate.let_through >= 1


def test_bad_gates_and_configs_leave_no_gate_behind(fake: FakeDatadog) -> None:
    gates = live_gates()
    with pytest.raises(TypeError, match="before_request"):
        dd.scalar(request_gate=object(), **options(fake))  # type: ignore[arg-type]
    with pytest.raises(dd.ConfigError, match="unknown query name 'c'"):
        dd.scalar(request_gate=CountingGate(), **options(fake, formulas=["a / c"]))
    with pytest.raises(dd.AuthError):
        dd.scalar(request_gate=CountingGate(), **options(fake, api_key="wrong-key-123"))
    assert live_gates() == gates
