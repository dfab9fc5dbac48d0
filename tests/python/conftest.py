"""Shared fixtures: a FakeDatadog per test (or per module), a clean environment, helpers.

The tests run against whichever ``ddstream`` is importable: the installed package (the normal
route: ``pip install .``), or the source tree with ``PYTHONPATH=python`` and
``DDSTREAM_LIBRARY`` pointing at a meson build of libddstream. When neither is set up but a
meson build exists in ``build/``, the source tree is used with that build.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "python"


def _use_source_tree_if_needed() -> None:
    try:
        import ddstream  # noqa: F401
    except ImportError:
        built = REPO / "build" / "libddstream" / "libddstream.so"
        if "DDSTREAM_LIBRARY" in os.environ or not built.is_file():
            raise
        os.environ["DDSTREAM_LIBRARY"] = str(built)
        sys.path.insert(0, str(REPO / "python"))
        for name in [m for m in sys.modules if m == "ddstream" or m.startswith("ddstream.")]:
            del sys.modules[name]


_use_source_tree_if_needed()

# Ctrl-C tests send SIGINT to this process and to child Pythons. A shell starts a background job
# with SIGINT ignored, and Python keeps an ignored SIGINT ignored (no KeyboardInterrupt), so a
# suite started that way would fail them. Installing Python's handler here gives this process
# KeyboardInterrupt, and children (exec resets a handled signal to the default) install their own.
signal.signal(signal.SIGINT, signal.default_int_handler)

import ddstream as dd  # noqa: E402
from ddstream.testing import FakeDatadog  # noqa: E402

# Distinctive credentials: the tests search for them in every message, repr and log record.
API_KEY = "apikey-7f3a9c1e-DO-NOT-LEAK"
APP_KEY = "appkey-2b8d4e6f-DO-NOT-LEAK"

# A fixed, deliberately unaligned time: Sunday 2023-11-12 04:13:07 UTC. The daily blackout of the
# fake data (05:00-05:10 UTC) and the weekly one (Sunday 12:00-18:00 UTC) follow within hours, so
# ranges starting here contain empty buckets.
WEEK = 7 * 86400
T0 = 1_699_747_200 + 4 * 3600 + 13 * 60 + 7
assert (T0 // 86400) % 7 == 3, "T0 must fall on a Sunday"

QUERY = "avg:system.cpu.user{*}"
GROUPED_QUERY = "avg:system.cpu.user{*} by {host}"

_ENV_VARS = ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "DDSTREAM_BASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's Datadog settings (nor sends their keys anywhere), and the
    CLI's chunk cache (on by default, under $XDG_CACHE_HOME) is a fresh folder per test: no test
    is answered from another's cache, nor writes into the developer's."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    """A fresh FakeDatadog for one test (accepts any non-empty keys)."""
    with FakeDatadog() as server:
        yield server


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeDatadog]:
    """One FakeDatadog shared by a module's read-only tests (its answer cache stays warm)."""
    with FakeDatadog(cache_size=4096) as server:
        yield server


def make_config(server: FakeDatadog | None = None, **overrides: Any) -> dd.DDStreamConfig:
    """A valid config for ``server`` (one day from T0 at 60 s), with ``overrides`` applied."""
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "app_key": APP_KEY,
        "query": QUERY,
        "range_start": T0,
        "range_end": T0 + 86400,
        "granularity": 60,
        "max_retries": 0,
        "max_retry_wait_ms": 2000,
        "connect_timeout_ms": 2000,
        "request_timeout_ms": 10000,
    }
    if server is not None:
        values["base_url"] = server.url
    values.update(overrides)
    return dd.DDStreamConfig(**values)


def read_all(stream: dd.DDStream) -> list[dd.Batch]:
    """Every remaining batch of ``stream`` (raises on error)."""
    return list(stream)


def subprocess_env(server: FakeDatadog) -> dict[str, str]:
    """The environment for a child Python that must import this same ddstream and reach
    ``server`` through DDSTREAM_BASE_URL."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    package_parent = str(Path(dd.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["DDSTREAM_BASE_URL"] = server.url
    env["PYTHONUNBUFFERED"] = "1"
    return env
