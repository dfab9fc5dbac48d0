"""Running the scenarios: the server process, one process per client run, and the raw figures.

Every run of every client is a fresh child process (``bench.client``, or the compiled C driver)
that does its set-up, says ``ready``, and waits. The harness then resets the server (latency,
rate-limit window, request log) and says ``go``; the child streams the whole range and reports
its wall and CPU time around the stream and its peak RSS. The harness reaps it with ``wait4``
(the whole process's CPU, start-up included) and asks the server how many requests (and 429s)
it saw. See docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .scenarios import Scenario

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
ROLLUPS = ("avg", "min", "max", "sum")
PEERS = ("datadogpy", "datadog-api-client")
CLIENTS = ("ddstream", "ddstream-c", *PEERS)
# Credentials for the fake server (it accepts any non-empty key).
API_KEY = "bench-api-key"
APP_KEY = "bench-app-key"


def rollup_query(query: str, granularity: int) -> str:
    """The one request per chunk every client sends: avg, min, max and sum, comma-joined (as
    libddstream's query_lang.c writes a plain query's sub-queries, character for character)."""
    return ",".join(f"{query}.rollup({method},{granularity})" for method in ROLLUPS)


def plan(scenario: Scenario, ddstream_options: dict[str, Any]) -> list[tuple[int, int]]:
    """ddstream's chunk plan; the peers walk the same chunks."""
    import ddstream

    cfg = ddstream.DDStreamConfig(
        query=scenario.query,
        range_start=scenario.range_start,
        range_end=scenario.range_end,
        granularity=scenario.granularity,
        chunk_seconds=scenario.chunk_seconds,
        api_key=API_KEY,
        app_key=APP_KEY,
        base_url="http://127.0.0.1:1",
    )
    for name, value in ddstream_options.items():
        setattr(cfg, name, value)
    return list(ddstream.DDStream.plan(cfg))  # a lazy ChunkPlan; the peers get it as JSON


# -- the server process ---------------------------------------------------------------------------


class Server:
    """``python -m bench.server`` and its command channel."""

    def __init__(self, hosts: int, values: str = "fake") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--hosts", str(hosts), "--values", values],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            text=True,
        )
        self.url: str = self._read()["url"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark server exited (see its stderr above)")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"benchmark server: {answer['error']}")
        return answer

    def command(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the C driver ---------------------------------------------------------------------------------


def build_c_driver(out_dir: Path) -> Path:
    """Compile bench/c_driver.c against the header and library the Python package loads."""
    from ddstream import _lib

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("a C compiler (cc) is needed for the raw C path")
    lib_dir = Path(_lib.LIBRARY_PATH).resolve().parent
    header_dir = Path(_lib.HEADER_PATH).resolve().parent
    out = out_dir / "c_driver"
    subprocess.run(
        [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", str(BENCH / "c_driver.c"),
         f"-I{header_dir}", f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}",
         f"-l:{Path(_lib.LIBRARY_PATH).name}", "-lm", "-o", str(out)],
        check=True,
    )  # fmt: skip
    return out


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Run:
    """The figures of one client process."""

    client: str
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""


def _read_message(stream: IO[str], key: str) -> dict[str, Any]:
    for line in stream:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and key in message:
            value: dict[str, Any] = message[key]
            return value
    raise RuntimeError(f"the client exited before sending {key!r}")


def run_child(
    argv: Sequence[str],
    server: Server,
    scenario: Scenario,
    client: str,
    timeout: float,
    around: tuple[Callable[[], None], Callable[[], None]] | None = None,
) -> Run:
    """One child process: set-up, ``go``, the timed stream, its figures and the server's.
    ``around``: called just before ``go`` and just after the result (the profiler's switch)."""
    # One BLAS thread: no client does linear algebra, and OpenBLAS's idle worker threads would
    # add their spinning to the CPU figures of whichever clients import numpy.
    env = dict(os.environ, DD_API_KEY=API_KEY, DD_APP_KEY=APP_KEY, OPENBLAS_NUM_THREADS="1")
    env.pop("DDSTREAM_BASE_URL", None)
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
            cwd=REPO, env=env, text=True,
        )  # fmt: skip
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        figures: dict[str, Any] = {}
        failure = ""
        try:
            assert proc.stdin is not None and proc.stdout is not None
            ready = _read_message(proc.stdout, "ready")
            server.command(
                "reset",
                latency=scenario.latency,
                rate_limit=None if scenario.rate_limit is None else list(scenario.rate_limit),
            )
            load_before = os.getloadavg()[0]
            if around is not None:
                around[0]()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            figures = _read_message(proc.stdout, "result")
            if around is not None:
                around[1]()
            figures["ready_rss_kb"] = ready.get("rss_kb")
            figures["load_before"] = load_before
            figures["load_after"] = os.getloadavg()[0]
        except (RuntimeError, OSError, ValueError) as exc:
            failure = str(exc)
        finally:
            timer.cancel()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            assert proc.stdout is not None
            proc.stdout.close()
        errors.seek(0)
        stderr = errors.read()
    stats = server.command("stats")
    figures.update(
        requests=stats["requests"],
        status_429=stats["status_429"],
        statuses=stats["statuses"],
        connections=stats["connections"],
        max_concurrency=stats["max_concurrency"],
        all_gzip=stats["all_gzip"],
        user_agents=stats["user_agents"],
        queries=stats["queries"],
        subqueries=stats.get("subqueries"),
        max_subqueries=stats.get("max_subqueries"),
        max_uri_bytes=stats.get("max_uri_bytes"),
        # Inflated by the harness's own size (see bench.client.peak_rss_kb): kept for reference.
        wait4_maxrss_kb=usage.ru_maxrss,
        process_cpu_s=usage.ru_utime + usage.ru_stime,  # the whole child, start-up included
        exit_code=proc.returncode,
    )
    ok = not failure and proc.returncode == 0 and figures.get("error") is None
    if failure:
        figures["error"] = failure
    return Run(client, ok, figures, stderr[-4000:])


def client_argv(
    client: str,
    scenario: Scenario,
    url: str,
    chunks: list[tuple[int, int]],
    c_driver: Path | None,
    ddstream_options: dict[str, Any],
    light: bool = False,
) -> list[str]:
    if client == "ddstream-c":
        if c_driver is None:
            raise RuntimeError("the C driver was not built")
        return [str(c_driver), url, scenario.query, str(scenario.range_start),
                str(scenario.range_end), str(scenario.granularity), str(scenario.chunk_seconds),
                "1" if light else "0"]  # fmt: skip
    spec = {
        "client": client,
        "url": url,
        "api_key": API_KEY,
        "app_key": APP_KEY,
        "query": scenario.query,
        "rollup_query": rollup_query(scenario.query, scenario.granularity),
        "range_start": scenario.range_start,
        "range_end": scenario.range_end,
        "granularity": scenario.granularity,
        "chunk_seconds": scenario.chunk_seconds,
        "chunks": chunks,
        "light": light,
        "ddstream_options": ddstream_options if client == "ddstream" else {},
    }
    return [sys.executable, "-m", "bench.client", json.dumps(spec)]


def timeout_for(scenario: Scenario, chunks: int) -> float:
    """Generous: a run that takes this long is stuck, not slow."""
    floor = chunks * scenario.latency
    if scenario.rate_limit is not None:
        floor += (chunks // max(1, scenario.rate_limit[0]) + 2) * scenario.rate_limit[1] * 8
    return 900.0 + 4 * floor


# -- machine and versions -------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_at_start": os.getloadavg()[0],
    }


def versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in ("ddstream", "datadog-api-client", "datadog", "numpy", "urllib3", "requests"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    try:
        import ddstream

        found["libddstream"] = ddstream.library_version()
    except ImportError:  # pragma: no cover - the harness needs ddstream anyway
        pass
    return found


def source() -> dict[str, Any]:
    """What was measured: the checkout's commit (and whether its tree had changes), and a digest
    of the libddstream the Python package loaded (the binary actually measured)."""
    import hashlib

    from ddstream import _lib

    info: dict[str, Any] = {}
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  check=True).stdout.strip()  # fmt: skip

        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
        info.update(commit=commit, tree_modified=bool(changes.strip()))
    except (OSError, subprocess.CalledProcessError):
        info.update(commit=None, tree_modified=None)
    digest = hashlib.sha256(Path(_lib.LIBRARY_PATH).read_bytes()).hexdigest()
    info["libddstream_sha256"] = digest[:16]
    return info


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
