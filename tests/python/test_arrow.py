"""Arrow output end to end: the C library's Arrow C stream read by pyarrow, polars, DuckDB and
pandas, against FakeDatadog; the same values as the numpy path; zero-copy; early release; errors
in mid-stream; enable_arrow iteration (ArrowBatch); the C consumer example."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import ddstream as dd
from conftest import GROUPED_QUERY, QUERY, REPO, T0, make_config, read_all
from ddstream.testing import FakeDatadog

DAY = 86400


def numpy_rows(cfg: dd.DDStreamConfig) -> dict[str, Any]:
    """Every row of the numpy path, concatenated (series as tag strings)."""
    with dd.DDStream(cfg) as stream:
        batches = read_all(stream)
    out: dict[str, Any] = {
        name: np.concatenate([b[name] for b in batches])
        for name in ("timestamps", "avg", "min", "max", "sum")
    }
    if "series" in batches[0]:
        out["series"] = [b["series_tags"][i] for b in batches for i in b["series"]]
    out["batches"] = [len(b["timestamps"]) for b in batches]
    return out


@pytest.mark.parametrize("query", [QUERY, GROUPED_QUERY])
def test_arrow_equals_numpy(module_fake: FakeDatadog, query: str) -> None:
    cfg = make_config(module_fake, query=query, chunk_seconds=14400)
    want = numpy_rows(cfg)
    with dd.DDStream(cfg) as stream:
        reader = stream.to_arrow()
        assert isinstance(reader, pa.RecordBatchReader)
        batches = list(reader)
    assert [b.num_rows for b in batches] == want["batches"]  # one record batch per chunk
    table = pa.Table.from_batches(batches)
    ts = table.column("timestamp")
    assert ts.type == pa.timestamp("s", tz="UTC")
    assert ts.null_count == 0
    np.testing.assert_array_equal(ts.cast(pa.int64()).to_numpy(), want["timestamps"])
    for name in ("avg", "min", "max", "sum"):
        column = table.column(name)
        assert column.type == pa.float64()
        nan = np.isnan(want[name])
        assert nan.any(), "the range must hold buckets without a value"
        # null exactly where numpy has NaN, and no NaN anywhere in the Arrow data
        np.testing.assert_array_equal(column.is_null().to_numpy(), nan)
        assert not pa.compute.any(pa.compute.is_nan(column.drop_null())).as_py()
        np.testing.assert_array_equal(column.to_numpy(zero_copy_only=False)[~nan], want[name][~nan])
    if query == GROUPED_QUERY:
        series = table.column("series")
        assert pa.types.is_dictionary(series.type)
        assert series.type.value_type == pa.string()
        assert series.to_pylist() == want["series"]
    else:
        assert "series" not in table.column_names
    meta = table.schema.metadata
    assert meta[b"ddstream.query"] == query.encode()
    assert meta[b"ddstream.chunk_count"] == b"6"


def test_import_is_zero_copy(module_fake: FakeDatadog) -> None:
    """Importing the batches allocates nothing in pyarrow: the buffers are the C batches'."""
    cfg = make_config(module_fake, query=GROUPED_QUERY, chunk_seconds=14400)
    with dd.DDStream(cfg) as stream:
        reader = stream.to_arrow()
        before = pa.total_allocated_bytes()
        batches = list(reader)
        assert pa.total_allocated_bytes() == before
    assert sum(b.num_rows for b in batches) > 0
    for batch in batches:
        for name in ("timestamp", "avg", "series"):
            data = batch.column(name).buffers()[1]
            assert data.address % 64 == 0  # ddstream's 64-byte aligned columns, not a copy
    # the batches outlive the stream (closed above) and still read correctly
    assert pa.Table.from_batches(batches).column("timestamp")[0].value == 1699762440


def test_pyarrow_polars_duckdb_read_a_stream(module_fake: FakeDatadog) -> None:
    cfg = make_config(module_fake, query=GROUPED_QUERY, chunk_seconds=14400)
    want = numpy_rows(cfg)
    rows, valid = len(want["timestamps"]), int((~np.isnan(want["avg"])).sum())

    table = pa.table(dd.DDStream(cfg))
    assert table.num_rows == rows and table.column("avg").null_count == rows - valid

    frame = pl.DataFrame(dd.DDStream(cfg))
    print("\npolars frame built from a live stream:\n", frame.head(5))
    assert frame.shape == (rows, 6)
    assert frame["avg"].null_count() == rows - valid
    assert frame["timestamp"].dtype == pl.Datetime("ms", "UTC")  # polars has no seconds unit
    from_reader = pl.from_arrow(dd.DDStream(cfg).to_arrow())
    assert isinstance(from_reader, pl.DataFrame) and from_reader.equals(frame)
    # from_arrow on a bare C stream gives one struct Series (polars' rule): unnest for a frame
    assert pl.from_arrow(dd.DDStream(cfg)).struct.unnest().equals(frame)  # type: ignore[union-attr]

    stream = dd.DDStream(cfg)
    # A stream is read once: fetch the result once (printing the relation would run it too).
    got = duckdb.sql(
        "select series, count(*) as buckets, count(avg) as with_value, round(avg(avg), 3) as mean "
        "from stream group by series order by series"
    ).fetchall()
    print("DuckDB query over a live stream (series, buckets, with_value, mean):\n", got)
    tags = sorted(set(want["series"]))
    assert [g[0] for g in got] == tags
    assert sum(g[1] for g in got) == rows
    assert sum(g[2] for g in got) == valid
    series = np.array(want["series"])
    for tag, _, _, mean in got:
        values = want["avg"][series == tag]
        assert mean == pytest.approx(np.nanmean(values), abs=1e-3)
    stream.close()


def test_to_pandas(module_fake: FakeDatadog) -> None:
    cfg = make_config(module_fake, query=GROUPED_QUERY, chunk_seconds=14400)
    want = numpy_rows(cfg)
    frame = dd.DDStream(cfg).to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["timestamp", "avg", "min", "max", "sum", "series"]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert isinstance(frame["series"].dtype, pd.CategoricalDtype)
    np.testing.assert_array_equal(frame["avg"].to_numpy(), want["avg"])  # NaN where null
    assert list(frame["series"].astype(str)) == want["series"]


def test_enable_arrow_iteration_yields_record_batches_and_ipc(module_fake: FakeDatadog) -> None:
    cfg = make_config(module_fake, chunk_seconds=14400, enable_arrow=True)
    stream = dd.DDStream(cfg)
    chunks = stream.chunks
    got = list(stream)
    assert len(got) == 6
    for i, batch in enumerate(got):
        assert isinstance(batch, dd.ArrowBatch)
        assert isinstance(batch, bytes)
        # the seed guide's use: the bytes are an Arrow IPC stream
        table = pa.ipc.open_stream(batch).read_all()
        assert table.column_names == ["timestamp", "avg", "min", "max", "sum"]
        assert table.num_rows == 240
        # and it is a record batch in every way pyarrow (and DuckDB) accept one
        assert isinstance(batch.record_batch, pa.RecordBatch)
        assert batch.num_rows == 240 and batch.schema == table.schema
        assert batch["avg"].null_count == table.column("avg").null_count
        assert pa.record_batch(batch).equals(batch.record_batch)
        assert pa.table(batch).num_rows == 240
        assert (batch.chunk_index, batch.chunk_start, batch.chunk_end) == (i, *chunks[i])
        meta = table.schema.metadata
        assert meta[b"ddstream.chunk_start"] == str(chunks[i][0]).encode()
        assert meta[b"ddstream.chunk_end"] == str(chunks[i][1]).encode()
        assert table.column("timestamp")[0].value == chunks[i][0]
    assert "rows=240" in repr(got[0])
    first = got[0]
    assert duckdb.sql("select count(*) from first").fetchall() == [(240,)]
    assert pl.DataFrame(first.record_batch).shape == (240, 5)
    assert not stream.has_next()
    with pytest.raises(ValueError, match="handed to Arrow"):
        stream.next_batch()


def test_write_ipc(module_fake: FakeDatadog, tmp_path: Path) -> None:
    cfg = make_config(module_fake, query=GROUPED_QUERY, chunk_seconds=14400)
    path = tmp_path / "day.arrows"
    assert dd.DDStream(cfg).write_ipc(str(path)) == 6
    table = pa.ipc.open_stream(path.read_bytes()).read_all()
    assert table.equals(dd.DDStream(cfg).to_arrow().read_all())


def test_resumes_where_numpy_reading_stopped(module_fake: FakeDatadog) -> None:
    cfg = make_config(module_fake, chunk_seconds=14400)
    with dd.DDStream(cfg) as stream:
        first = stream.next_batch()
        assert first is not None
        table = stream.to_arrow().read_all()
        assert table.schema.metadata[b"ddstream.first_chunk"] == b"1"
        assert table.num_rows == 5 * 240
        assert table.column("timestamp")[0].value == int(first["timestamps"][-1]) + 60
        for call in (stream.next_batch, stream.has_next, stream.reset, stream.progress):
            with pytest.raises(ValueError, match="handed to Arrow"):
                call()


def test_early_release_stops_fetching() -> None:
    """A reader released after one batch stops the stream: no request after that."""
    with FakeDatadog(latency=0.05) as fake:
        cfg = make_config(fake, range_end=T0 + 7 * DAY, chunk_seconds=14400, prefetch_chunks=2)
        reader = dd.DDStream(cfg).to_arrow()  # the DDStream itself is gone at once
        batch = reader.read_next_batch()
        assert batch.num_rows == 240
        reader.close()
        del reader
        time.sleep(0.3)
        after_release = len(fake.query_requests)
        time.sleep(0.5)
        assert len(fake.query_requests) == after_release
        # 42 chunks in the plan; at most the batch read and a window of max(prefetch_chunks 2,
        # max_in_flight 4 by default) chunks after it
        assert after_release <= 5, after_release
        assert batch.column("avg").to_pylist()[0] is not None  # the batch outlives the stream


def test_close_cancels_readers(module_fake: FakeDatadog) -> None:
    cfg = make_config(module_fake, chunk_seconds=14400, enable_prefetch=False)
    stream = dd.DDStream(cfg)
    reader = stream.to_arrow()
    assert reader.read_next_batch().num_rows == 240
    stream.close()
    with pytest.raises(dd.CancelledError):
        reader.read_next_batch()


@pytest.mark.parametrize(
    ("status", "exc_type"), [(400, dd.QueryError), (403, dd.AuthError)]
)
def test_mid_stream_errors(fake: FakeDatadog, status: int, exc_type: type[Exception]) -> None:
    cfg = make_config(fake, chunk_seconds=14400, enable_prefetch=False)
    chunks = dd.DDStream.plan(cfg)

    # to_arrow: the ddstream exception, through pyarrow's reader, naming the chunk
    reader = dd.DDStream(cfg).to_arrow()
    assert reader.read_next_batch().num_rows == 240
    fake.inject(status, times=1)
    with pytest.raises(exc_type) as info:
        reader.read_next_batch()
    exc = info.value
    assert isinstance(exc, dd.DDStreamError)
    assert exc.http_status == status
    assert (exc.chunk_start, exc.chunk_end) == chunks[1]
    assert exc.message.startswith("chunk 2 of 6")
    # the chunk is retried, not skipped
    rest = list(reader)
    assert len(rest) == 5
    assert rest[0].column("timestamp")[0].value == chunks[1][0]

    # __arrow_c_stream__ (pyarrow's own reader): get_last_error's text in pyarrow's exception
    stream = dd.DDStream(cfg)
    arrow_reader = pa.RecordBatchReader.from_stream(stream)
    arrow_reader.read_next_batch()
    fake.inject(status, times=1)
    with pytest.raises((pa.ArrowException, OSError)) as raw:  # by errno: ArrowInvalid, OSError
        arrow_reader.read_next_batch()
    assert exc.message.split(": ", 1)[1] in str(raw.value)
    assert "chunk 2 of 6" in str(raw.value)

    # enable_arrow iteration: the exception, then the same chunk again
    stream = dd.DDStream(cfg.copy(enable_arrow=True))
    first = next(stream)
    fake.inject(status, times=1)
    with pytest.raises(exc_type):
        next(stream)
    assert stream.last_error().startswith("chunk 2 of 6")
    again = next(stream)
    assert again.chunk_index == first.chunk_index + 1 == 1


def test_import_works_without_optional_dependencies() -> None:
    """``import ddstream`` and the numpy path need none of pyarrow, polars, duckdb, pandas."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pyarrow", "polars", "duckdb", "pandas"}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import ddstream as dd
cfg = dd.DDStreamConfig(query="avg:x{*}", range_start=0, range_end=600, api_key="k", app_key="a")
print(len(dd.DDStream.plan(cfg)), dd.ArrowBatch.__name__)
try:
    dd.DDStream(cfg.copy(base_url="http://127.0.0.1:9")).to_arrow()
except ImportError as exc:
    print("ImportError:", exc)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DD")}
    env["PYTHONPATH"] = str(Path(dd.__file__).resolve().parent.parent)
    if "DDSTREAM_LIBRARY" in os.environ:
        env["DDSTREAM_LIBRARY"] = os.environ["DDSTREAM_LIBRARY"]
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "1 ArrowBatch"
    assert "ImportError: ddstream's Arrow output needs pyarrow" in proc.stdout


# ---------------------------------------------------------------- the C consumer example


@pytest.fixture(scope="module")
def arrow_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/c/arrow_example.c, compiled as a user would: the header and the shared library,
    no Arrow library."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is part of the set-up"
    override = os.environ.get("DDSTREAM_LIBRARY")
    package = Path(dd.__file__).resolve().parent
    lib_dir = Path(override).resolve().parent if override else package
    header_dir = package if (package / "ddstream.h").is_file() else REPO / "include"
    out = tmp_path_factory.mktemp("arrow-example") / "arrow_example"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", str(REPO / "examples/c/arrow_example.c"),
         f"-I{header_dir}", f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}", "-l:libddstream.so",
         "-o", str(out)],
        check=True,
    )
    return out


def test_c_arrow_example(arrow_example: Path) -> None:
    with FakeDatadog(hosts=3) as fake:
        env = dict(os.environ, DDSTREAM_BASE_URL=fake.url, DD_API_KEY="c-api", DD_APP_KEY="c-app")

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(arrow_example), *args], env=env, capture_output=True,
                                  text=True, timeout=60, check=False)

        grouped = run(GROUPED_QUERY, "7200", "60")
        assert grouped.returncode == 0, grouped.stderr
        assert "series(i dict u)" in grouped.stdout
        assert re.search(r"^done: 1 batches, 360 rows", grouped.stdout, re.M), grouped.stdout
        early = run(QUERY, str(30 * DAY), "60", "2")
        assert early.returncode == 0, early.stderr
        assert "done: 2 batches, 3000 rows" in early.stdout and "(stopped early)" in early.stdout
        bad = run("robust_trend(avg:system.cpu.user{*})", "3600", "60")  # the server refuses it
        assert bad.returncode == 1
        assert "HTTP 400" in bad.stderr and "chunk 1 of 1" in bad.stderr
