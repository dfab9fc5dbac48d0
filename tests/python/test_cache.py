"""The persistent chunk cache end to end: real files in a temporary folder, a real FakeDatadog
counting the requests, real threads and processes.

A second run over settled chunks sends nothing and yields the same batches, progress and Arrow;
unsettled chunks are never stored; another API key finds nothing; bad entries are logged misses
that the fetch replaces; many writers at once leave exact data; the folder keeps its bound; an
unusable folder is a clear error; and the CLI has the cache on by default.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ddstream as dd
from conftest import API_KEY, APP_KEY, GROUPED_QUERY, T0, make_config, subprocess_env
from ddstream._cache import cache_usage, prune_cache
from ddstream.cli import main as cli_main
from ddstream.testing import FakeDatadog

CHUNK = 3600
CHUNKS = 6


def config(server: FakeDatadog, folder: Path, **overrides: Any) -> dd.DDStreamConfig:
    values: dict[str, Any] = {"range_end": T0 + CHUNKS * CHUNK, "chunk_seconds": CHUNK,
                              "query": GROUPED_QUERY, "cache_dir": str(folder)}
    values.update(overrides)
    return make_config(server, **values)


def scope_dir(folder: Path, api_key: str = API_KEY) -> Path:
    """The folder of one API key's entries, computed with hashlib: this checks the library's own
    SHA-256 as well as the documented layout."""
    digest = hashlib.sha256(b"ddstream chunk cache scope v1\0" + api_key.encode()).hexdigest()
    return folder / digest[:32]


def entries(folder: Path, api_key: str = API_KEY) -> list[Path]:
    scope = scope_dir(folder, api_key)
    if not scope.is_dir():
        return []
    return sorted(p for p in scope.iterdir() if len(p.name) == 64)


def run(cfg: dd.DDStreamConfig) -> tuple[list[dict[str, Any]], list[float]]:
    """Every batch (arrays copied) and the progress after each."""
    batches: list[dict[str, Any]] = []
    progress: list[float] = []
    with dd.DDStream(cfg) as stream:
        progress.append(stream.progress())
        for batch in stream:
            batches.append({k: (np.array(v) if isinstance(v, np.ndarray) else v)
                            for k, v in batch.items()})
            progress.append(stream.progress())
    return batches, progress


def assert_same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], np.ndarray):
                assert np.array_equal(x[key], y[key], equal_nan=x[key].dtype.kind == "f"), key
            else:
                assert x[key] == y[key], key


def test_second_run_makes_no_request(fake: FakeDatadog, tmp_path: Path) -> None:
    folder = tmp_path / "new"
    cfg = config(fake, folder, max_in_flight=4, prefetch_chunks=4)
    first, first_progress = run(cfg)
    assert len(fake.query_requests) == CHUNKS
    assert len(entries(folder)) == CHUNKS
    # A folder the library made is tagged for backup tools (one it was given is left as it is).
    assert (folder / "CACHEDIR.TAG").read_text().startswith(
        "Signature: 8a477f597d28d172789f06886806bc55")
    assert not (tmp_path / "CACHEDIR.TAG").exists()
    assert folder.stat().st_mode & 0o077 == 0
    fake.clear_log()
    second, second_progress = run(cfg)
    assert fake.requests == []
    assert_same(first, second)
    assert second_progress == first_progress
    # The same through a stream without a cache: what the cache gives is what Datadog gives.
    fetched, _ = run(cfg.copy(cache_dir=None))
    assert len(fake.query_requests) == CHUNKS
    assert_same(first, fetched)
    # Arrow from the cache (no request) equals Arrow fetched.
    pa = pytest.importorskip("pyarrow")
    fake.clear_log()
    with dd.DDStream(cfg) as stream:
        cached_table = pa.Table.from_batches(list(stream.to_arrow()))
    assert fake.requests == []
    with dd.DDStream(cfg.copy(cache_dir=None)) as stream:
        fetched_table = pa.Table.from_batches(list(stream.to_arrow()))
    assert cached_table.equals(fetched_table)
    assert cached_table.num_rows == sum(len(b["timestamps"]) for b in first)


class CountingGate:
    def __init__(self) -> None:
        self.asked = 0
        self.lock = threading.Lock()

    def before_request(self) -> float:
        with self.lock:
            self.asked += 1
        return 0.0

    def after_response(self, status: int, limit: int | None, remaining: int | None,
                       reset_s: float | None, period_s: int | None) -> None:
        pass


def test_a_hit_passes_no_request_gate(fake: FakeDatadog, tmp_path: Path) -> None:
    cfg = config(fake, tmp_path)
    gate = CountingGate()
    with dd.DDStream(cfg, request_gate=gate) as stream:
        list(stream)
    assert gate.asked == CHUNKS
    again = CountingGate()
    with dd.DDStream(cfg, request_gate=again) as stream:
        list(stream)
    assert again.asked == 0
    assert fake.query_requests[CHUNKS:] == []


def test_unsettled_chunks_are_not_stored(fake: FakeDatadog, tmp_path: Path) -> None:
    """Chunks that ended less than settle_seconds ago are fetched every time and never stored."""
    now = int(time.time()) // 60 * 60  # within a minute of the clock
    cfg = config(fake, tmp_path, range_start=now - 4 * CHUNK, range_end=now,
                 settle_seconds=int(1.5 * CHUNK))
    run(cfg)
    assert len(fake.query_requests) == 4
    assert len(entries(tmp_path)) == 2  # the two chunks that ended 1.5 hours ago or more
    fake.clear_log()
    run(cfg)
    first = now - 4 * CHUNK
    assert sorted(r.from_ts for r in fake.query_requests) == [first + 2 * CHUNK, first + 3 * CHUNK]
    # With the default settle (300 s) a range ending now leaves its last chunk out.
    fake.clear_log()
    folder = tmp_path / "default"
    run(config(fake, folder, range_start=now - 2 * CHUNK, range_end=now))
    assert len(entries(folder)) == 1


def test_another_api_key_misses(fake: FakeDatadog, tmp_path: Path) -> None:
    cfg = config(fake, tmp_path)
    first, _ = run(cfg)
    fake.clear_log()
    other_key = "apikey-of-another-organisation"
    other, _ = run(cfg.copy(api_key=other_key))
    assert len(fake.query_requests) == CHUNKS
    assert len(entries(tmp_path, other_key)) == CHUNKS
    assert_same(first, other)
    # Keys appear nowhere in the folder: neither as names nor inside files.
    for path in tmp_path.rglob("*"):
        assert API_KEY not in path.name and other_key not in path.name
        if path.is_file():
            data = path.read_bytes()
            assert API_KEY.encode() not in data and other_key.encode() not in data
            assert APP_KEY.encode() not in data
    fake.clear_log()
    run(cfg)
    assert fake.requests == []


def corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "zero-length":
        data = bytearray()
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped byte":
        data[-3] ^= 0x55
    elif how == "wrong version":
        data[8] = 9
    elif how == "garbage":
        data = bytearray(b"<html>not an entry</html>")
    path.write_bytes(bytes(data))


def test_bad_entries_are_logged_misses_and_replaced(fake: FakeDatadog, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    cfg = config(fake, tmp_path, log_level=2)
    first, _ = run(cfg)
    kinds = ["zero-length", "truncated", "flipped byte", "wrong version", "garbage"]
    for path, how in zip(entries(tmp_path), kinds, strict=False):
        corrupt(path, how)
    fake.clear_log()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ddstream"):
        again, _ = run(cfg)
    assert len(fake.query_requests) == len(kinds)
    assert_same(first, again)
    warnings = [r.getMessage() for r in caplog.records if "not a valid entry" in r.getMessage()]
    assert len(warnings) == len(kinds), warnings
    assert any("format version 9" in w for w in warnings)
    assert any("empty" in w for w in warnings)
    for text in warnings:
        assert API_KEY not in text and APP_KEY not in text
    # Replaced: a third run reads every entry, without a request or a warning.
    fake.clear_log()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ddstream"):
        third, _ = run(cfg)
    assert fake.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert_same(first, third)


CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import ddstream as dd
    cfg = dd.DDStreamConfig(api_key=sys.argv[1], app_key="app", query=sys.argv[2],
                            range_start=int(sys.argv[3]), range_end=int(sys.argv[4]),
                            chunk_seconds=int(sys.argv[5]), cache_dir=sys.argv[6],
                            max_retries=0)
    out = []
    with dd.DDStream(cfg) as stream:
        for b in stream:
            out.append([b["chunk_index"], np.nan_to_num(b["avg"], nan=-1.0).tolist(),
                        list(b["series_tags"])])
    print(json.dumps(out))
    """
)


def test_many_threads_and_processes_at_once(fake: FakeDatadog, tmp_path: Path) -> None:
    """Four threads and three processes stream the same range into one folder at once: each
    gets exact data, and every entry left is valid (a last run reads them all, no request)."""
    reference, _ = run(config(fake, tmp_path / "unused", cache_dir=None))
    cfg = config(fake, tmp_path)
    end = T0 + CHUNKS * CHUNK
    env = subprocess_env(fake)
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, API_KEY, GROUPED_QUERY, str(T0), str(end),
                          str(CHUNK), str(tmp_path)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results: list[list[dict[str, Any]]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            results.append(run(cfg)[0])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == 4
    for got in results:
        assert_same(reference, got)
    expected = [[b["chunk_index"], np.nan_to_num(b["avg"], nan=-1.0).tolist(),
                 list(b["series_tags"])] for b in reference]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert json.loads(out) == expected
    assert len(entries(tmp_path)) == CHUNKS
    assert not list(tmp_path.rglob(".tmp-*"))
    fake.clear_log()
    last, _ = run(cfg)
    assert fake.requests == []
    assert_same(reference, last)


def test_the_folder_keeps_its_bound(fake: FakeDatadog, tmp_path: Path) -> None:
    """A bound smaller than the run: after it the folder is within the bound, and what is kept
    is the most recently used (the last chunks)."""
    probe = tmp_path / "probe"
    run(config(fake, probe, chunk_seconds=1800, range_end=T0 + 12 * 1800))
    sizes = [p.stat().st_size for p in entries(probe)]
    assert len(sizes) == 12
    bound = sum(sizes) // 3  # about four entries
    folder = tmp_path / "bounded"
    cfg = config(fake, folder, chunk_seconds=1800, range_end=T0 + 12 * 1800,
                 cache_max_bytes=bound, max_in_flight=1, prefetch_chunks=1)
    run(cfg)
    usage = cache_usage(folder)
    assert usage.bytes <= bound
    assert 0 < usage.entries < 12
    fake.clear_log()
    run(cfg.copy(start_chunk=11))  # the last chunk was written last: still there
    assert fake.requests == []


def test_prune_and_clear_keep_foreign_files(fake: FakeDatadog, tmp_path: Path) -> None:
    run(config(fake, tmp_path))
    (tmp_path / "my-notes.txt").write_text("not the cache's")
    usage = cache_usage(tmp_path)
    assert usage.entries == CHUNKS and usage.bytes > 0
    oldest = entries(tmp_path)[0]
    for i, path in enumerate(entries(tmp_path)):  # make one entry the least recently used
        os.utime(path, (1_000_000 + (0 if path == oldest else i + 1),) * 2)
    kept = prune_cache(tmp_path, usage.bytes - 1)
    assert kept.entries == CHUNKS - 1 and not oldest.exists()
    assert prune_cache(tmp_path, 0).entries == 0
    assert (tmp_path / "my-notes.txt").read_text() == "not the cache's"
    assert cache_usage(tmp_path / "never-made").entries == 0


def test_unusable_folder_is_a_clear_error(fake: FakeDatadog, tmp_path: Path) -> None:
    plain = tmp_path / "plain-file"
    plain.write_text("x")
    with pytest.raises(dd.ConfigError, match=r"cache_dir .*plain-file/cache.* cannot be used"):
        dd.DDStream(config(fake, plain / "cache"))
    assert fake.requests == []


# ---- the CLI ----

def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_caches_by_default(fake: FakeDatadog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    args = ["query", GROUPED_QUERY, "--base-url", fake.url, "--from", str(T0), "--to",
            str(T0 + CHUNKS * CHUNK), "--chunk-seconds", str(CHUNK), "-q"]
    code, first, _ = cli(args, capsys)
    assert code == 0 and len(fake.query_requests) == CHUNKS
    folder = tmp_path / "xdg" / "ddstream"
    assert len(entries(folder)) == CHUNKS
    fake.clear_log()
    code, second, _ = cli(args, capsys)
    assert code == 0 and fake.requests == [] and second == first
    # --no-cache fetches; --cache-dir elsewhere starts empty.
    code, third, _ = cli([*args, "--no-cache"], capsys)
    assert code == 0 and len(fake.query_requests) == CHUNKS and third == first
    fake.clear_log()
    code, _, _ = cli([*args, "--cache-dir", str(tmp_path / "other")], capsys)
    assert code == 0 and len(fake.query_requests) == CHUNKS
    assert len(entries(tmp_path / "other")) == CHUNKS

    code, out, _ = cli(["cache", "info"], capsys)
    assert code == 0
    assert f"cache folder: {folder}" in out and f"entries: {CHUNKS}" in out
    size = cache_usage(folder).bytes
    code, out, _ = cli(["cache", "prune", "--max-bytes", str(size - 1)], capsys)
    assert code == 0 and "removed 1 entries" in out
    assert cache_usage(folder).entries == CHUNKS - 1
    code, out, _ = cli(["cache", "clear"], capsys)
    assert code == 0 and cache_usage(folder).entries == 0
    code, out, _ = cli(["cache", "info", "--cache-dir", str(tmp_path / "other")], capsys)
    assert f"entries: {CHUNKS}" in out
    code, _, err = cli(["cache", "prune", "--max-bytes", "-1"], capsys)
    assert code == 2 and "--max-bytes" in err


def test_cli_without_a_usable_default_folder(fake: FakeDatadog, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str],
                                             caplog: pytest.LogCaptureFixture) -> None:
    """The default folder cannot be made: a warning, and the query runs without the cache. A
    --cache-dir that cannot be used is an error (exit 2) naming it."""
    plain = tmp_path / "plain-file"
    plain.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(plain))
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    args = ["query", GROUPED_QUERY, "--base-url", fake.url, "--from", str(T0), "--to",
            str(T0 + 2 * CHUNK), "--chunk-seconds", str(CHUNK), "-q"]
    with caplog.at_level(logging.WARNING, logger="ddstream"):
        code, out, _ = cli(args, capsys)
    assert code == 0 and out.count("\n") > 2
    assert any("running without the cache" in r.getMessage() for r in caplog.records)
    code, _, err = cli([*args, "--cache-dir", str(plain / "cache")], capsys)
    assert code == 2 and "cache_dir" in err and API_KEY not in err
