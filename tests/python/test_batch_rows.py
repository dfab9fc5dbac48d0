"""max_batch_rows: what one chunk's batch may cost, bounded the way max_body_bytes bounds the body.

A batch has a row for every bucket of every series, whether Datadog sent points or not, so a
small answer naming many groups with empty point lists asked for a huge batch: a 1 MB answer of
20,000 groups made a 30-million-row batch (1.3 GB). FakeDatadog's ``WideAnswer`` sends such
answers; the chunk now fails with a ProtocolError that names it, before its batch is allocated.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest

import ddstream as dd
from conftest import GROUPED_QUERY, make_config, subprocess_env
from ddstream.testing import FakeDatadog, WideAnswer

DAY0 = 1_793_491_200  # 2026-11-01T00:00:00Z, aligned


def wide_config(fake: FakeDatadog, buckets: int, **overrides: object) -> dd.DDStreamConfig:
    """One chunk of ``buckets`` 60 s buckets of a grouped query."""
    return make_config(fake, query=GROUPED_QUERY, range_start=DAY0,
                       range_end=DAY0 + 60 * buckets, chunk_seconds=0, **overrides)


def test_the_issues_answer_is_refused_with_the_default_limit(fake: FakeDatadog) -> None:
    fake.add_fault(WideAnswer(20_000, times=None))
    with dd.DDStream(wide_config(fake, 1500)) as stream:
        for _ in range(2):  # the same chunk again on the next call: never skipped
            with pytest.raises(dd.ProtocolError) as info:
                next(stream)
            message = str(info.value)
            assert "chunk 1 of 1" in message
            assert "20000 series x 1500 buckets = 30000000 rows" in message
            assert "more than max_batch_rows (10000000)" in message
            assert "chunk_seconds" in message and "raise max_batch_rows" in message
            assert info.value.chunk_start == DAY0 and info.value.chunk_end == DAY0 + 90_000
        assert "30000000 rows" in stream.last_error()
    assert [r.status for r in fake.query_requests] == [200, 200]


def test_refusing_costs_no_batch_memory(fake: FakeDatadog) -> None:
    """In a fresh process (so its peak resident memory is this test's): refusing the 30M-row
    chunk must not have allocated the 1.3 GB batch first."""
    fake.add_fault(WideAnswer(20_000, times=None))
    script = textwrap.dedent(f"""
        import resource, ddstream as dd
        cfg = dd.DDStreamConfig(api_key="k", app_key="a", base_url={fake.url!r},
                                query={GROUPED_QUERY!r}, range_start={DAY0},
                                range_end={DAY0 + 90_000}, max_retries=0)
        with dd.DDStream(cfg) as stream:
            try:
                next(stream)
            except dd.ProtocolError as exc:
                print("refused:", exc)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    """)
    run = subprocess.run([sys.executable, "-c", script], env=subprocess_env(fake),
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("refused:") and "30000000 rows" in lines[0]
    peak_mb = int(lines[-1])
    assert peak_mb < 400, f"peak RSS {peak_mb} MB: the batch was allocated before the check"


@pytest.mark.parametrize(("groups", "buckets"), [(2000, 10), (7, 1500), (1, 1)])
def test_at_the_limit_and_one_past(fake: FakeDatadog, groups: int, buckets: int) -> None:
    fake.add_fault(WideAnswer(groups, times=None))
    rows = groups * buckets
    with dd.DDStream(wide_config(fake, buckets, max_batch_rows=rows)) as stream:
        batch = next(stream)
        assert len(batch["timestamps"]) == rows
        assert len(batch["series_tags"]) == groups
        assert batch["series_tags"][0] == "host:w000000"
        assert batch["series"].tolist() == [g for g in range(groups) for _ in range(buckets)]
        assert all(math.isnan(v) for v in batch["avg"].tolist())
    with dd.DDStream(wide_config(fake, buckets, max_batch_rows=rows - 1 or 1)) as stream:
        if rows == 1:  # 1 row is the smallest limit there is: it passes
            assert len(next(stream)["timestamps"]) == 1
            return
        with pytest.raises(dd.ProtocolError, match=f"{groups} series x {buckets} buckets = "
                                                   f"{rows} rows, more than max_batch_rows "
                                                   rf"\({rows - 1}\)"):
            next(stream)


def test_the_arrow_path_is_bounded_the_same(fake: FakeDatadog) -> None:
    pa = pytest.importorskip("pyarrow")
    fake.add_fault(WideAnswer(2000, times=None))
    with dd.DDStream(wide_config(fake, 10, max_batch_rows=20_000)) as stream:
        table = stream.to_arrow().read_all()
        assert table.num_rows == 20_000 and isinstance(table, pa.Table)
    with dd.DDStream(wide_config(fake, 10, max_batch_rows=19_999)) as stream:
        reader = stream.to_arrow()
        with pytest.raises(Exception, match="2000 series x 10 buckets = 20000 rows"):
            reader.read_all()
    arrow_cfg = wide_config(fake, 10, max_batch_rows=19_999, enable_arrow=True)
    with dd.DDStream(arrow_cfg) as stream, pytest.raises(dd.ProtocolError,
                                                         match="more than max_batch_rows"):
        list(stream)


def test_real_answers_pass_the_default(fake: FakeDatadog) -> None:
    """The normal grouped answer (3 hosts, full 1500-bucket chunks) is far inside the default."""
    with dd.DDStream(wide_config(fake, 3000)) as stream:
        batches = list(stream)
    assert [len(b["timestamps"]) for b in batches] == [4500, 4500]


@pytest.mark.parametrize("value", [-1, -(2**63)])
def test_max_batch_rows_must_not_be_negative(value: int) -> None:
    with pytest.raises(dd.ConfigError, match="max_batch_rows must be 0 .the default, 10000000. "
                                             f"or positive, got {value}"):
        dd.DDStream.check(make_config(max_batch_rows=value))
