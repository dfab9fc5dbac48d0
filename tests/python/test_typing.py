"""Type checkers see ddstream's types: a user program with mistakes is rejected at each mistake's
line, by mypy and by pyright, and a correct program passes both (and runs).

The programs are checked against the *installed* package (its ``py.typed``), as a user's would
be, with pyarrow-stubs and pandas-stubs installed (requirements-dev.txt) so that ``to_arrow()``
and ``to_pandas()`` results have real types too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import API_KEY, APP_KEY
from ddstream.testing import FakeDatadog

# Each mistake is marked "# E" on its line; every marked line must be reported, no other.
MISTAKES = '''
from __future__ import annotations

from typing import Any

import ddstream as dd

cfg = dd.DDStreamConfig(granulrity=60)  # E misspelled keyword
cfg = dd.DDStreamConfig(query=123)  # E query is a str
cfg = dd.DDStreamConfig(queries="avg:cpu{*}")  # E a list of queries, not one string
cfg.query = 123  # E query is a str
cfg.granulrity = 60  # E misspelled attribute
cfg.range_start = "yesterday"  # E epoch seconds are an int
cfg.enable_prefetch = "yes"  # E a bool
copy = cfg.copy(chunk_secs=3600)  # E misspelled keyword of copy()
bad = dd.DDStream(query="avg:cpu{*}", start="-1d", granulrity=60)  # E misspelled keyword
bad = dd.DDStream(query=123, start="-1d")  # E query is a str
bad = dd.DDStream(query="avg:cpu{*}", start=[2026, 11, 1])  # E not a time
stream = dd.DDStream(query="avg:cpu{*}", start="-1d")
for batch in stream:
    batch["timestamp"]  # E the key is "timestamps"
    name: str = batch["avg"]  # E a float64 array
    batch["chunk_index"].upper()  # E an int
maybe = stream.next_batch()
maybe["avg"]  # E None at the end of the stream
reader = stream.to_arrow()
reader.read_everything()  # E RecordBatchReader has read_all
rows: int = stream.to_pandas()  # E a DataFrame
arrow = dd.DDStream(query="avg:cpu{*}", start="-1d", enable_arrow=True)
for record in arrow:
    as_dict: dict[str, Any] = record  # E an ArrowBatch, not a dict
    record.chunk_index.upper()  # E an int
    record.num_rows.upper()  # E an int, as on a pyarrow RecordBatch
mixed = dd.DDStream(dd.DDStreamConfig(query="avg:cpu{*}"))
for item in mixed:
    item["timestamp"]  # E: Batch | ArrowBatch, and Batch has no such key
for batch in mixed.batches():
    batch.record_batch  # E batches() yields Batch dicts
'''

# Every way of using the API, type-checked under --strict, then run against FakeDatadog.
CORRECT = '''
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

import ddstream as dd

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover
    from typing_extensions import assert_type

START, END = 1_699_747_200, 1_699_747_200 + 3 * 3600

cfg = dd.DDStreamConfig()
cfg.query = "avg:system.cpu.user{*}"
cfg.range_start = START
cfg.range_end = END
cfg.chunk_seconds = 3600
cfg.log_level = None
cfg2: dd.DDStreamConfig = cfg.copy(granularity=60, max_retries=None)

with dd.DDStream(query="avg:system.cpu.user{*}", start=START, end=END, chunk_seconds=3600) as s:
    assert_type(s, dd.DDStream[dd.Batch])
    total = 0
    for batch in s:
        assert_type(batch, dd.Batch)
        ts: npt.NDArray[np.int64] = batch["timestamps"]
        avg: npt.NDArray[np.float64] = batch["avg"]
        last: bool = batch["is_last"]
        tags: list[str] = batch.get("series_tags", [])
        total += len(ts) + len(avg) + len(tags) + int(last)
    assert total > 0

with dd.DDStream(cfg2) as s2:
    first = s2.next_batch()
    assert first is not None and first["chunk_index"] == 0
    for numpy_batch in s2.batches():
        assert_type(numpy_batch, dd.Batch)
    for item in dd.DDStream(cfg2):
        assert_type(item, "dd.Batch | dd.ArrowBatch")
        if isinstance(item, dd.ArrowBatch):
            raise AssertionError("enable_arrow is off")

reader = dd.DDStream(cfg2).to_arrow()
assert_type(reader, pa.RecordBatchReader)
table = reader.read_all()
frame = dd.DDStream(cfg2).to_pandas()
assert_type(frame, pd.DataFrame)
assert table.num_rows == len(frame) > 0

arrow = dd.DDStream(query="avg:system.cpu.user{*}", start=START, end=END, enable_arrow=True)
for record in arrow:
    assert_type(record, dd.ArrowBatch)
    index: int = record.chunk_index
    batch_of_record: pa.RecordBatch = record.record_batch
    schema: pa.Schema = record.schema
    assert record.num_rows == batch_of_record.num_rows > 0 and index >= 0
    assert schema.names == batch_of_record.schema.names
several = dd.DDStream(queries=["avg:system.cpu.user{*}", "max:system.load.1{*} by {host}"],
                      start=START, end=END, statistics=("avg", "max"))
with several:
    names: tuple[str, ...] = several.queries
    for mb in several:
        if "query" in mb and "series_query" in mb:
            which: npt.NDArray[np.int32] = mb["query"]
            of_series: npt.NDArray[np.int32] = mb["series_query"]
            assert {names[i] for i in which.tolist()} <= set(names) and len(of_series) > 0
        if "value" in mb:
            value: npt.NDArray[np.float64] = mb["value"]
            assert len(value) == len(mb["timestamps"])
report: dict[str, Any] = dd.explain(queries=list(names), range_start=START, range_end=END)
assert report["requests_per_chunk"] == 1
print("ran")
'''

_MYPY_LINE = re.compile(r"^[^:]+:(\d+): error:")


def _marked_lines(source: str) -> set[int]:
    return {n for n, line in enumerate(source.splitlines(), 1) if "# E" in line}


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def _mypy(path: Path) -> tuple[set[int], str]:
    # Run where no project config is found: the user's program, the installed package.
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file",
         os.devnull, "--hide-error-context", "--no-pretty", path.name],
        cwd=path.parent, capture_output=True, text=True, timeout=300, check=False,
    )
    lines = {int(m.group(1)) for m in map(_MYPY_LINE.match, proc.stdout.splitlines()) if m}
    return lines, proc.stdout + proc.stderr


def _pyright_command() -> list[str]:
    exe = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("pyright is not installed: it is in requirements-dev.txt (scripts/setup.sh)")
    return [exe]


def _pyright(path: Path) -> tuple[set[int], str]:
    proc = subprocess.run(
        [*_pyright_command(), "--outputjson", "--pythonpath", sys.executable, path.name],
        cwd=path.parent, capture_output=True, text=True, timeout=300, check=False,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright gave no report: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    # pyright's lines are 0-based.
    return {d["range"]["start"]["line"] + 1 for d in errors}, json.dumps(errors, indent=1)


CHECKERS = {"mypy": _mypy, "pyright": _pyright}


@pytest.mark.parametrize("checker", list(CHECKERS))
def test_each_mistake_is_reported_at_its_line(tmp_path: Path, checker: str) -> None:
    program = _write(tmp_path, "user_program.py", MISTAKES)
    expected = _marked_lines(program.read_text(encoding="utf-8"))
    assert len(expected) == 22
    reported, output = CHECKERS[checker](program)
    missed = sorted(expected - reported)
    unexpected = sorted(reported - expected)
    assert not missed, f"{checker} missed the mistakes on lines {missed}:\n{output}"
    assert not unexpected, f"{checker} reported lines {unexpected} with no mistake:\n{output}"


@pytest.mark.parametrize("checker", list(CHECKERS))
def test_a_correct_program_passes(tmp_path: Path, checker: str) -> None:
    program = _write(tmp_path, "user_program.py", CORRECT)
    reported, output = CHECKERS[checker](program)
    assert not reported, f"{checker} rejected a correct program:\n{output}"


def test_the_correct_program_runs(tmp_path: Path) -> None:
    # A program that type-checks but failed at run time would prove little.
    program = _write(tmp_path, "user_program.py", CORRECT)
    with FakeDatadog() as fake:
        env = dict(os.environ, DDSTREAM_BASE_URL=fake.url, DD_API_KEY=API_KEY,
                   DD_APP_KEY=APP_KEY)
        proc = subprocess.run([sys.executable, str(program)], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ran"


def test_config_field_lists_agree() -> None:
    """A field added to DDStreamConfig must be in all four places, with the same default."""
    import inspect

    import ddstream as dd
    from ddstream import _config

    params = inspect.signature(dd.DDStreamConfig.__init__).parameters
    keywords = {n: p.default for n, p in params.items() if n != "self"}
    assert all(p.kind is p.KEYWORD_ONLY for n, p in params.items() if n != "self")
    assert keywords == _config._DEFAULTS
    assert set(dd.DDStreamConfig.__annotations__) == set(_config._DEFAULTS)
    assert set(dd.DDStreamConfig.__slots__) == set(_config._DEFAULTS)
    assert set(dd.ConfigOptions.__optional_keys__) == set(_config._DEFAULTS)
    # DDStream's own keywords stand in for these three (human times, the typed enable_arrow).
    own = {"range_start", "range_end", "enable_arrow"}
    assert set(dd.StreamOptions.__optional_keys__) == set(_config._DEFAULTS) - own
    stream_params = inspect.signature(dd.DDStream.__init__).parameters
    assert own <= set(stream_params)
