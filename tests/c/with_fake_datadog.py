"""Run a C test program against real fake Datadog servers on 127.0.0.1.

Usage: with_fake_datadog.py PROGRAM [ARGS...]

Starts three FakeDatadog servers from the source tree (keys "test-api-key" / "test-app-key"
required): a normal one, exported as DDSTREAM_BASE_URL, one answering queries after 2 s,
exported as DDSTREAM_SLOW_URL, one answering after 0.3 s, exported as DDSTREAM_LATENCY_URL
(where requests in flight at once show as overlapping waits), and one whose answers name 20,000
groups with empty point lists (testing.WideAnswer), exported as DDSTREAM_WIDE_URL, and one
answering "Query timed out" to requests of more than 4 sub-queries (testing.QueryTimedOut),
exported as DDSTREAM_TIMEOUT_URL. The fake
server is loaded straight from python/ddstream/testing so that the C suite needs neither the
built Python package nor the C library's Python binding.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def load_testing_package():  # type: ignore[no-untyped-def]
    package_dir = SOURCE_ROOT / "python" / "ddstream" / "testing"
    spec = importlib.util.spec_from_file_location(
        "ddstream_testing_standalone",
        package_dir / "__init__.py",
        submodule_search_locations=[str(package_dir)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    testing = load_testing_package()
    keys = {"api_keys": {"test-api-key"}, "app_keys": {"test-app-key"}}
    with (
        testing.FakeDatadog(**keys) as normal,
        testing.FakeDatadog(latency=2.0, **keys) as slow,
        testing.FakeDatadog(latency=0.3, **keys) as latency,
        testing.FakeDatadog(**keys) as wide,
        testing.FakeDatadog(**keys) as timeout,
    ):
        wide.add_fault(testing.WideAnswer(20000, times=None))
        timeout.add_fault(testing.QueryTimedOut(4))
        env = dict(
            os.environ,
            DDSTREAM_BASE_URL=normal.url,
            DDSTREAM_SLOW_URL=slow.url,
            DDSTREAM_LATENCY_URL=latency.url,
            DDSTREAM_WIDE_URL=wide.url,
            DDSTREAM_TIMEOUT_URL=timeout.url,
        )
        env.pop("DD_API_KEY", None)
        env.pop("DD_APP_KEY", None)
        return subprocess.run(sys.argv[1:], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
