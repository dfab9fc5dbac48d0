"""`ddstream --help` and `import ddstream` load neither numpy, cffi nor the C library.

They used to (0.3 s before the help text appeared). The stream API is imported on first use
(``ddstream.__getattr__``, PEP 562), and the CLI imports it inside its commands. These tests run
a fresh interpreter and check that the heavy modules are absent from ``sys.modules`` at exit;
and that the lazy names still work as before.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "cffi", "ddstream._lib", "ddstream._stream", "ddstream._config")

# Runs a command line in a fresh interpreter, then prints the names in sys.modules as JSON on
# the last line of stderr (atexit: after argparse's SystemExit too).
_RUN = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
if sys.argv[1] == "-c":
    exec(sys.argv[2])
else:
    sys.argv = ["ddstream", *sys.argv[2:]]
    runpy.run_module("ddstream", run_name="__main__")
"""


def _imported_modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    proc = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True,
                          timeout=60, check=False)
    modules = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "ddstream" in modules
    return proc, modules


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "--help"],
        ["-m", "query", "--help"],
        ["-m", "export", "--help"],
        ["-m", "--version"],
        ["-c", "import ddstream; ddstream.DDStreamError; ddstream.__version__"],
    ],
    ids=["help", "query-help", "export-help", "version", "import"],
)
def test_nothing_heavy_is_imported(args: list[str]) -> None:
    proc, modules = _imported_modules(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if "--help" in args:
        assert "usage: ddstream" in proc.stdout
    loaded = sorted(m for m in HEAVY if m in modules)
    assert not loaded, f"{' '.join(args)} imported {loaded}"


def test_first_use_of_the_stream_api_loads_it() -> None:
    # The other side of the laziness: the names resolve, to the real classes, on first use.
    _, modules = _imported_modules("-c", "import ddstream; ddstream.DDStream")
    assert {"numpy", "cffi", "ddstream._lib", "ddstream._stream"} <= modules


def test_lazy_names_are_the_real_objects() -> None:
    import ddstream
    from ddstream import _arrow, _batch, _config, _gate, _stream

    assert ddstream.DDStream is _stream.DDStream
    assert ddstream.DDStreamConfig is _config.DDStreamConfig
    assert ddstream.ArrowBatch is _arrow.ArrowBatch
    assert ddstream.Batch is _batch.Batch
    assert ddstream.RequestGate is _gate.RequestGate
    for name in ddstream.__all__:
        assert getattr(ddstream, name) is not None, name
    assert set(ddstream.__all__) <= set(dir(ddstream))
    with pytest.raises(AttributeError, match="no_such_name"):
        ddstream.no_such_name  # noqa: B018


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from ddstream import *", namespace)
    import ddstream

    assert set(ddstream.__all__) <= set(namespace)
