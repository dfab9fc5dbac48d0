"""ddstream's logging follows Python's: with no ``log_level``, the stream logs at the level the
``"ddstream"`` logger is enabled for, and an error that is raised is not also logged at ERROR.

Every case runs a real stream against FakeDatadog with a fault that makes the library log: a 503
that is retried (WARNING), the plan (INFO), each request (DEBUG), a 400 that fails the stream.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import ddstream as dd
from conftest import T0, make_config
from ddstream.testing import FakeDatadog

ALL_LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


@pytest.fixture
def ddstream_logger() -> Iterator[logging.Logger]:
    """The "ddstream" logger, its level restored after the test (caplog restores only what it
    set itself)."""
    logger = logging.getLogger("ddstream")
    saved = logger.level
    yield logger
    logger.setLevel(saved)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ddstream"]


def _stream_with_a_retry(fake: FakeDatadog) -> list[dd.Batch]:
    """Three chunks; the first request answers 503 once and is retried."""
    fake.inject(503, times=1)
    cfg = make_config(fake, range_end=T0 + 3 * 3600, chunk_seconds=3600, max_retries=2,
                      retry_backoff_ms=10)
    assert cfg.log_level is None
    with dd.DDStream(cfg) as stream:
        return list(stream.batches())


@pytest.mark.parametrize("level", ALL_LEVELS, ids=logging.getLevelName)
def test_no_log_level_logs_what_the_logger_is_enabled_for(
    fake: FakeDatadog, caplog: pytest.LogCaptureFixture, level: int
) -> None:
    caplog.set_level(level, logger="ddstream")
    batches = _stream_with_a_retry(fake)
    assert [b["chunk_index"] for b in batches] == [0, 1, 2]
    records = _records(caplog)
    assert all(r.levelno >= level for r in records), [(r.levelname, r.msg) for r in records]
    retry = [r for r in records if "retry 1 of 2" in r.getMessage()]
    plan = [r for r in records if r.getMessage().startswith("plan: 3 chunks")]
    fetching = [r for r in records if r.getMessage().startswith("fetching chunk")]
    requests = [r for r in records if r.getMessage().startswith("GET http")]
    # Each line at its own level, present exactly when the logger is enabled for that level.
    assert [r.levelno for r in retry] == ([logging.WARNING] if level <= logging.WARNING else [])
    assert [r.levelno for r in plan] == ([logging.INFO] if level <= logging.INFO else [])
    debug = level <= logging.DEBUG
    assert len(fetching) == (3 if debug else 0)
    assert len(requests) == (4 if debug else 0)  # 3 chunks and the retry
    assert all(r.levelno == logging.DEBUG for r in fetching + requests)


@pytest.mark.parametrize(
    ("level", "c_level"),
    [(logging.DEBUG, 4), (logging.INFO, 3), (logging.WARNING, 2), (logging.ERROR, 1),
     (logging.CRITICAL, 0), (5, 4), (25, 2), (35, 1)],
)
def test_the_c_level_is_the_loggers(ddstream_logger: logging.Logger, level: int,
                                    c_level: int) -> None:
    # Lines the logger would drop are never made: the C library gets the matching level, read
    # when the config is handed to it (at open).
    ddstream_logger.setLevel(level)
    assert make_config().to_native().ptr.log_level == c_level


def test_the_level_is_inherited_from_the_root_logger(ddstream_logger: logging.Logger) -> None:
    root = logging.getLogger()
    saved = root.level
    ddstream_logger.setLevel(logging.NOTSET)
    try:
        root.setLevel(logging.INFO)
        assert make_config().to_native().ptr.log_level == 3
        root.setLevel(logging.ERROR)
        assert make_config().to_native().ptr.log_level == 1
        logging.disable(logging.CRITICAL)  # logging switched off as a whole
        assert make_config().to_native().ptr.log_level == 0
    finally:
        logging.disable(logging.NOTSET)
        root.setLevel(saved)


@pytest.mark.parametrize(("log_level", "expect_debug"), [(0, False), (2, False), (4, True)])
def test_an_explicit_log_level_wins(
    fake: FakeDatadog, caplog: pytest.LogCaptureFixture, log_level: int, expect_debug: bool
) -> None:
    caplog.set_level(logging.DEBUG, logger="ddstream")
    fake.inject(503, times=1)
    cfg = make_config(fake, range_end=T0 + 3600, log_level=log_level, max_retries=1,
                      retry_backoff_ms=10)
    with dd.DDStream(cfg) as stream:
        list(stream.batches())
    levels = {r.levelno for r in _records(caplog)}
    assert (logging.DEBUG in levels) is expect_debug
    assert (logging.WARNING in levels) is (log_level >= 2)  # the retry


@pytest.mark.parametrize("level", ALL_LEVELS, ids=logging.getLevelName)
@pytest.mark.parametrize("fault", ["400", "503 after retries", "bad JSON"])
def test_a_raised_error_is_not_also_logged_at_error(
    fake: FakeDatadog, caplog: pytest.LogCaptureFixture, level: int, fault: str
) -> None:
    caplog.set_level(level, logger="ddstream")
    if fault == "400":
        fake.inject(400, times=None)
    elif fault == "503 after retries":
        fake.inject(503, times=None)
    else:
        fake.inject(200, b'{"series": [', times=None)
    cfg = make_config(fake, range_end=T0 + 3600, max_retries=1, retry_backoff_ms=10)
    with dd.DDStream(cfg) as stream, pytest.raises(dd.DDStreamError) as info:
        list(stream)
    records = _records(caplog)
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.msg for r in records]
    failure = [r for r in records if r.getMessage() == info.value.message]
    # The failure itself is a DEBUG line, there for whoever asks for DEBUG.
    assert [r.levelno for r in failure] == ([logging.DEBUG] if level <= logging.DEBUG else [])


@pytest.mark.parametrize("debug", [False, True], ids=["default", "debug"])
def test_the_command_shows_retries_and_with_debug_the_requests(debug: bool) -> None:
    with FakeDatadog() as fake:
        fake.inject(503, times=1)
        env = dict(os.environ, DDSTREAM_BASE_URL=fake.url, DD_API_KEY="k", DD_APP_KEY="a")
        args = ["query", "avg:system.cpu.user{*}", "--from", str(T0), "--to", str(T0 + 3600),
                "--format", "csv", "-q", *(["--debug"] if debug else [])]
        proc = subprocess.run([sys.executable, "-m", "ddstream", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("timestamp,")
    lines = proc.stderr.splitlines()
    retries = [line for line in lines if "retry 1 of" in line]
    assert len(retries) == 1 and retries[0].startswith("ddstream WARNING: "), proc.stderr
    assert any(line.startswith("ddstream DEBUG: GET http") for line in lines) is debug
