"""DDStream: batches, zero-copy arrays and their lifetime, reset/seek, prefetch, grouped queries,
logging, closing, Ctrl-C."""

from __future__ import annotations

import gc
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest

import ddstream as dd
from conftest import GROUPED_QUERY, T0, make_config, read_all
from ddstream.testing import FakeDatadog
from reference import bucket_starts, expected_buckets

BATCH_KEYS = {"timestamps", "avg", "min", "max", "sum", "chunk_start_ms", "chunk_end_ms",
              "is_last"}


def columns(batches: list[dd.Batch], name: str) -> np.ndarray:
    return np.concatenate([b[name] for b in batches])


def test_batches_are_dicts_of_numpy_arrays(fake: FakeDatadog) -> None:
    cfg = make_config(fake, chunk_seconds=14400)
    with dd.DDStream(cfg) as stream:
        assert stream.chunk_count == 6
        assert stream.chunks == dd.DDStream.plan(cfg)
        assert stream.progress() == 0.0
        batches = read_all(stream)
        assert stream.progress() == 1.0
        assert not stream.has_next()
        assert stream.next_batch() is None
        assert stream.last_error() == ""
    assert len(batches) == 6
    for i, (batch, (start, end)) in enumerate(zip(batches, stream.chunks)):
        assert set(batch) >= BATCH_KEYS
        assert "series" not in batch and "series_tags" not in batch
        assert batch["timestamps"].dtype == np.int64
        for name in ("avg", "min", "max", "sum"):
            assert batch[name].dtype == np.float64
            assert len(batch[name]) == len(batch["timestamps"])
        assert batch["chunk_start_ms"] == start * 1000
        assert batch["chunk_end_ms"] == end * 1000
        assert batch["chunk_index"] == i
        assert batch["interval"] == 60
        assert batch["is_last"] is (i == 5)
        ts = batch["timestamps"]
        assert np.all(ts >= start) and np.all(ts < end)
        np.testing.assert_array_equal(ts, np.arange(start, end, 60))
    want = expected_buckets("system.cpu.user", None, None, "avg", "avg", T0, T0 + 86400, 60)[()]
    np.testing.assert_array_equal(columns(batches, "timestamps"), want[0])
    np.testing.assert_array_equal(columns(batches, "avg"), want[1])
    assert np.isnan(want[1]).any()  # the day holds the fake's 10-minute daily gap


def test_arrays_are_zero_copy_and_outlive_stream_and_dict(fake: FakeDatadog) -> None:
    cfg = make_config(fake, range_end=T0 + 4 * 3600)
    stream = dd.DDStream(cfg)
    batch = stream.next_batch()
    assert batch is not None
    ts, avg, mx = batch["timestamps"], batch["avg"], batch["max"]
    expected_ts, expected_avg = ts.copy(), avg.copy()
    # Zero-copy: no array owns its data; the base chain ends in the holder of the C batch.
    for arr in (ts, avg, mx):
        assert not arr.flags.owndata
        assert arr.flags.writeable
        assert type(arr.base).__name__ == "_Column"
    stream.close()
    del batch, stream
    gc.collect()
    # Churn the allocator so that freed memory would be reused and show up as garbage.
    junk = [np.full(len(ts), 12345.0) for _ in range(50)]
    np.testing.assert_array_equal(ts, expected_ts)
    np.testing.assert_array_equal(avg, expected_avg)
    view = avg[10:20]
    del avg, ts, junk
    gc.collect()
    np.testing.assert_array_equal(view, expected_avg[10:20])
    view[0] = 1.5  # writable, and ours
    assert view[0] == 1.5


def test_batch_is_freed_when_the_last_array_goes(fake: FakeDatadog) -> None:
    freed = []
    with dd.DDStream(make_config(fake, range_end=T0 + 3600)) as stream:
        batch = stream.next_batch()
        assert batch is not None
        holder = batch["avg"].base
        box = holder._owner
        weakref.finalize(box, freed.append, True)
        del batch, holder, box
        gc.collect()
    assert freed == [True]


def test_zero_length_and_all_nan_batches(fake: FakeDatadog) -> None:
    # A metric without data: grouped batches have no rows (no series at all); ungrouped batches
    # still have one row per bucket, all NaN.
    grouped = make_config(fake, query="avg:nodata.metric{*} by {host}", range_end=T0 + 7200,
                          chunk_seconds=3600)
    with dd.DDStream(grouped) as stream:
        batches = read_all(stream)
    assert len(batches) == len(dd.DDStream.plan(grouped)) == 2
    for batch in batches:
        assert len(batch["timestamps"]) == 0
        assert batch["timestamps"].dtype == np.int64 and batch["avg"].dtype == np.float64
        assert len(batch["series"]) == 0 and batch["series"].dtype == np.int32
        assert batch["series_tags"] == []
    flat = make_config(fake, query="avg:nodata.metric{*}", range_end=T0 + 7200)
    with dd.DDStream(flat) as stream:
        batches = read_all(stream)
    ts = columns(batches, "timestamps")
    np.testing.assert_array_equal(ts, bucket_starts(T0, T0 + 7200, 60))
    for name in ("avg", "min", "max", "sum"):
        assert np.isnan(columns(batches, name)).all()


def test_grouped_batches_match_reference(fake: FakeDatadog) -> None:
    cfg = make_config(fake, query=GROUPED_QUERY, range_end=T0 + 6 * 3600, chunk_seconds=7200)
    with dd.DDStream(cfg) as stream:
        batches = read_all(stream)
    assert len(batches) == 3
    want = {
        method: expected_buckets("system.cpu.user", None, ["host"], "avg", method,
                                 T0, T0 + 6 * 3600, 60)
        for method in ("avg", "min", "max", "sum")
    }
    assert sorted(want["avg"]) == [("host:h00",), ("host:h01",), ("host:h02",)]
    got: dict[str, dict[str, list[np.ndarray]]] = {}
    for batch in batches:
        series, tags = batch["series"], batch["series_tags"]
        assert series.dtype == np.int32 and len(series) == len(batch["timestamps"])
        assert len(set(tags)) == len(tags)
        assert np.all((series >= 0) & (series < len(tags)))
        # Rows are ordered by series, then time.
        assert np.all(np.diff(series) >= 0)
        for index, tag in enumerate(tags):
            rows = series == index
            assert rows.any()
            for name in ("timestamps", "avg", "min", "max", "sum"):
                got.setdefault(tag, {}).setdefault(name, []).append(batch[name][rows])
    assert sorted(got) == ["host:h00", "host:h01", "host:h02"]
    for tag, cols in got.items():
        key = (tag,)
        np.testing.assert_array_equal(np.concatenate(cols["timestamps"]), want["avg"][key][0])
        for method in ("avg", "min", "max", "sum"):
            np.testing.assert_array_equal(np.concatenate(cols[method]), want[method][key][1],
                                          err_msg=f"{tag} {method}")


def test_reset_gives_identical_data(fake: FakeDatadog) -> None:
    cfg = make_config(fake, query=GROUPED_QUERY, chunk_seconds=14400)
    with dd.DDStream(cfg) as stream:
        first = read_all(stream)
        stream.reset()
        assert stream.has_next() and stream.progress() == 0.0
        second = read_all(stream)
        # reset in the middle, too
        stream.reset()
        assert stream.next_batch() is not None
        stream.reset()
        third = read_all(stream)
    assert len(first) == len(second) == len(third) == 6
    for a, b, c in zip(first, second, third):
        for key in a:
            if isinstance(a[key], np.ndarray):
                np.testing.assert_array_equal(a[key], b[key])
                np.testing.assert_array_equal(a[key], c[key])
            else:
                assert a[key] == b[key] == c[key]


def test_seek(fake: FakeDatadog) -> None:
    cfg = make_config(fake, chunk_seconds=14400)
    with dd.DDStream(cfg) as stream:
        everything = read_all(stream)
        stream.seek(4)
        tail = read_all(stream)
        assert [b["chunk_index"] for b in tail] == [4, 5]
        np.testing.assert_array_equal(tail[0]["avg"], everything[4]["avg"])
        stream.seek(stream.chunk_count)
        assert not stream.has_next()
        assert stream.next_batch() is None and stream.last_error() == ""
        with pytest.raises(IndexError):
            stream.seek(stream.chunk_count + 1)
        with pytest.raises(IndexError):
            stream.seek(-1)


@pytest.mark.parametrize("query", ["avg:system.cpu.user{*}", GROUPED_QUERY])
def test_prefetch_on_and_off_give_identical_data(fake: FakeDatadog, query: str) -> None:
    results = []
    for prefetch, depth in ((False, 1), (True, 1), (True, 4)):
        cfg = make_config(fake, query=query, chunk_seconds=10800, enable_prefetch=prefetch,
                          prefetch_chunks=depth)
        with dd.DDStream(cfg) as stream:
            results.append(read_all(stream))
    for other in results[1:]:
        assert len(other) == len(results[0]) == 8
        for a, b in zip(results[0], other):
            for name in ("timestamps", "avg", "min", "max", "sum"):
                np.testing.assert_array_equal(a[name], b[name])
            assert a.get("series_tags") == b.get("series_tags")


def test_prefetch_fetches_ahead(fake: FakeDatadog) -> None:
    cfg = make_config(fake, chunk_seconds=3600, enable_prefetch=True, prefetch_chunks=3)
    with dd.DDStream(cfg):
        deadline = time.monotonic() + 5
        while len(fake.query_requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        # Up to prefetch_chunks ahead of the caller, not the whole range.
        assert 3 <= len(fake.query_requests) <= 4
    fake.clear_log()
    with dd.DDStream(make_config(fake, chunk_seconds=3600, enable_prefetch=False)):
        time.sleep(0.2)
        assert fake.query_requests == []


def test_context_manager_close_and_finalizer(fake: FakeDatadog) -> None:
    with dd.DDStream(make_config(fake)) as stream:
        assert not stream.closed
        assert "open" in repr(stream)
    assert stream.closed
    assert "closed" in repr(stream)
    stream.close()  # idempotent
    assert not stream.has_next()
    with pytest.raises(ValueError, match="closed"):
        stream.next_batch()
    with pytest.raises(ValueError, match="closed"):
        stream.reset()
    with pytest.raises(ValueError, match="closed"):
        stream.progress()
    stream.cancel()  # harmless

    forgotten = dd.DDStream(make_config(fake, chunk_seconds=3600))
    finalizer = forgotten._finalizer
    assert finalizer.alive
    del forgotten
    gc.collect()
    assert not finalizer.alive


def test_iteration_continues_from_current_position(fake: FakeDatadog) -> None:
    with dd.DDStream(make_config(fake, chunk_seconds=14400)) as stream:
        first = next(iter(stream))
        assert first["chunk_index"] == 0
        rest = list(stream)
        assert [b["chunk_index"] for b in rest] == [1, 2, 3, 4, 5]
        assert list(stream) == []


def test_logging_goes_to_the_ddstream_logger(
    fake: FakeDatadog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ddstream")
    cfg = make_config(fake, log_level=4, range_end=T0 + 3 * 86400, chunk_seconds=10**7)
    with dd.DDStream(cfg) as stream:
        read_all(stream)
    records = [r for r in caplog.records if r.name == "ddstream"]
    assert records
    levels = {r.levelno for r in records}
    assert logging.DEBUG in levels
    # chunk_seconds above the point cap is clamped, with a warning.
    assert any(r.levelno == logging.WARNING and "chunk_seconds" in r.getMessage()
               for r in records), [r.getMessage() for r in records]

    caplog.clear()
    with dd.DDStream(make_config(fake, log_level=0)) as stream:
        read_all(stream)
    assert [r for r in caplog.records if r.name == "ddstream"] == []


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_ctrl_c_interrupts_a_blocked_next_batch(fake: FakeDatadog) -> None:
    fake.latency = 1.5
    cfg = make_config(fake, range_end=T0 + 3600, request_timeout_ms=20000)
    main = threading.get_ident()
    with dd.DDStream(cfg) as stream:
        timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
        started = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            stream.next_batch()
        waited = time.monotonic() - started
        timer.join()
        assert waited < 1.0, f"KeyboardInterrupt took {waited:.2f} s"
        # The stream is still usable, and the chunk is not lost.
        batch = stream.next_batch()
        assert batch is not None and batch["chunk_index"] == 0
        assert not stream.has_next()


def test_batch_delivered_during_ctrl_c_is_not_lost(
    fake: FakeDatadog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C landing just after the C call delivered a batch: the next call returns it."""
    # Private on purpose: the test must interrupt at one exact point, just after the C call
    # delivered a batch, and the log drain that follows every call is that point.
    import ddstream._native as native_module

    real_drain = native_module.drain_logs
    calls = []

    def interrupted_drain(ptr: object) -> None:
        real_drain(ptr)
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    cfg = make_config(fake, chunk_seconds=14400, enable_prefetch=True)
    with dd.DDStream(cfg) as stream:
        deadline = time.monotonic() + 5
        while not fake.query_requests and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the first batch is ready: the first slice returns it at once
        monkeypatch.setattr(native_module, "drain_logs", interrupted_drain)
        with pytest.raises(KeyboardInterrupt):
            stream.next_batch()
        monkeypatch.setattr(native_module, "drain_logs", real_drain)
        assert stream.has_next()
        assert [b["chunk_index"] for b in stream] == [0, 1, 2, 3, 4, 5]


def test_library_version_and_package_version() -> None:
    assert dd.__version__ == "0.1.0"
    assert dd.library_version() == "0.1.0"


def test_environment_override_of_the_library_path() -> None:
    import ddstream._lib as lib_module

    assert lib_module.LIBRARY_PATH.is_file()
    if "DDSTREAM_LIBRARY" in os.environ:
        assert str(lib_module.LIBRARY_PATH) == os.environ["DDSTREAM_LIBRARY"]
    else:
        assert lib_module.LIBRARY_PATH.parent == lib_module.HEADER_PATH.parent


def test_cdef_comes_from_the_header() -> None:
    from ddstream._lib import HEADER_PATH, read_cdef

    cdef = read_cdef(HEADER_PATH.read_text(encoding="utf-8"))
    # The export macro is gone (names that merely start with it, DDSTREAM_API_V2, may stay in
    # comments).
    assert re.search(r"\bDDSTREAM_API\b", cdef) is None
    assert "#" not in cdef
    assert "ddstream_next" in cdef and "typedef struct ddstream_batch" in cdef


def _import_in_child(env_changes: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from conftest import subprocess_env

    with FakeDatadog() as server:
        env = subprocess_env(server)
    env.update(env_changes)
    # The library loads on first use of the stream API, not at `import ddstream` (which stays
    # quick for `ddstream --help`): that first use is where a broken install must be refused.
    return subprocess.run([sys.executable, "-c", "import ddstream; ddstream.DDStream"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_version_mismatch_between_header_and_library_is_refused(tmp_path: Path) -> None:
    from ddstream._lib import HEADER_PATH, HEADER_VERSION_INT

    version_header = HEADER_PATH.with_name("ddstream_version.h")
    text = version_header.read_text(encoding="utf-8")
    line = f"#define DDSTREAM_VERSION_INT {HEADER_VERSION_INT}"
    assert line in text
    (tmp_path / "ddstream.h").write_text(HEADER_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "ddstream_version.h").write_text(
        text.replace(line, "#define DDSTREAM_VERSION_INT 999"), encoding="utf-8")
    proc = _import_in_child({"DDSTREAM_HEADER": str(tmp_path / "ddstream.h")})
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "ABI version" in proc.stderr


def test_header_without_its_version_header_is_refused(tmp_path: Path) -> None:
    from ddstream._lib import HEADER_PATH

    (tmp_path / "ddstream.h").write_text(HEADER_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    proc = _import_in_child({"DDSTREAM_HEADER": str(tmp_path / "ddstream.h")})
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "ddstream_version.h is missing" in proc.stderr


def test_missing_library_override_is_a_clear_import_error(tmp_path: Path) -> None:
    proc = _import_in_child({"DDSTREAM_LIBRARY": str(tmp_path / "nope.so")})
    assert proc.returncode != 0
    assert "DDSTREAM_LIBRARY" in proc.stderr and "is not a file" in proc.stderr


def test_meson_installs_every_module() -> None:
    """python/meson.build lists the package's files by name: none may be missing."""
    from conftest import REPO

    build_file = REPO / "python" / "meson.build"
    package = REPO / "python" / "ddstream"
    if not build_file.is_file():
        pytest.skip("not a source checkout")
    listed = build_file.read_text(encoding="utf-8")
    for path in [*sorted(package.rglob("*.py")), package / "py.typed"]:
        relative = path.relative_to(package.parent).as_posix()
        assert f"'{relative}'" in listed, f"{relative} is not installed by python/meson.build"


@pytest.mark.parametrize("enable_arrow", [False, True])
def test_batches_yields_dicts_and_survives_an_error(fake: FakeDatadog, enable_arrow: bool) -> None:
    # DDStream.batches(): numpy dicts whatever enable_arrow says; a failed chunk raises, and the
    # same iterator then retries that chunk (no chunk skipped, none repeated).
    cfg = make_config(fake, range_end=T0 + 3 * 3600, chunk_seconds=3600,
                      enable_arrow=enable_arrow, enable_prefetch=False)
    with dd.DDStream(cfg) as stream:
        batches = stream.batches()
        first = next(batches)
        fake.inject(400, times=1)
        with pytest.raises(dd.QueryError):
            next(batches)
        rest = list(batches)
    assert all(isinstance(b, dict) for b in [first, *rest])
    assert [b["chunk_index"] for b in [first, *rest]] == [0, 1, 2]
