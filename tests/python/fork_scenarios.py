"""fork() scenarios for test_fork.py, run in a Python process of their own (so that the children
exit the normal way, through the interpreter's shutdown and the streams' finalizers, and so that
a hang cannot take pytest with it).

Usage: python fork_scenarios.py SCENARIO ROUNDS, with DDSTREAM_BASE_URL set to a FakeDatadog
whose queries take a while (requests are in flight when the process forks). Prints one JSON
object: what the parent read, and what each child reported.

Scenarios:
  os_fork   os.fork() while the stream's fetcher threads are mid-transfer; the child tries the
            inherited stream (and its Arrow reader), opens a new stream, and exits normally.
  mp_fork   multiprocessing with the fork start method: a pool's workers inherit the stream.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
from typing import Any

import numpy as np

import ddstream as dd

T0 = 1_699_747_200
CONFIG: dict[str, Any] = {
    "api_key": "apikey-fork-test",
    "app_key": "appkey-fork-test",
    "query": "avg:system.cpu.user{*}",
    "range_start": T0,
    "range_end": T0 + 86400,
    "granularity": 60,
    "chunk_seconds": 14400,
    "max_in_flight": 4,
    "prefetch_chunks": 4,
    "max_retries": 0,
    "base_url": os.environ["DDSTREAM_BASE_URL"],
}

inherited: dd.DDStream | None = None  # the stream the pool's workers inherit


def digest(batches: list[dd.Batch]) -> dict[str, Any]:
    """What a reader got: chunk indexes, rows, and a checksum of every timestamp and value."""
    if not batches:
        return {"chunks": [], "rows": 0, "checksum": 0.0}
    ts = np.concatenate([b["timestamps"] for b in batches])
    avg = np.concatenate([b["avg"] for b in batches])
    return {
        "chunks": [b["chunk_index"] for b in batches],
        "rows": int(ts.size),
        "checksum": float(np.nansum(avg)) + float(ts.sum()),
        "contiguous": bool(np.all(np.diff(ts) == 60)),
    }


def use_inherited(stream: dd.DDStream) -> dict[str, Any]:
    """In a child: every way of reading the inherited stream, and what each gave."""
    report: dict[str, Any] = {"has_next": stream.has_next()}
    try:
        next(stream)
        report["next"] = "returned a batch"
    except dd.ForkedStreamError as exc:
        report["next"] = f"ForkedStreamError: {exc.message}"
    except BaseException as exc:
        report["next"] = f"{type(exc).__name__}: {exc}"
    report["next_batch"] = stream.next_batch() is None and "fork()" in stream.last_error()
    report["progress"] = stream.progress()
    report["resume_token"] = stream.resume_token()
    stream.cancel()
    return report


def fresh_stream() -> dict[str, Any]:
    with dd.DDStream(dd.DDStreamConfig(**CONFIG)) as stream:
        return digest(list(stream))


def os_fork(rounds: int) -> dict[str, Any]:
    expected = fresh_stream()
    children = []
    parent_reads = []
    for round_ in range(rounds):
        stream = dd.DDStream(dd.DDStreamConfig(**CONFIG))
        arrow_too = round_ % 2 == 1
        got = [stream.next_batch()] if round_ % 3 == 2 and not arrow_too else []
        # Half the plain rounds fork while another thread is inside next_batch (holding the
        # stream's call lock, which the child's copy must not inherit locked).
        reading = None
        if not arrow_too and round_ % 4 == 0:
            reading = threading.Thread(target=got.extend, args=(stream,))
            reading.start()
        time.sleep(0.1 * (round_ % 3) + 0.05)  # fork at different moments of the 0.3 s requests
        reader = stream.to_arrow() if arrow_too else None
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then exit through the interpreter's normal shutdown
            os.close(read)
            report: dict[str, Any] = {}
            if reader is not None:
                try:
                    reader.read_next_batch()
                    report["arrow"] = "returned a batch"
                except dd.ForkedStreamError as exc:
                    report["arrow"] = f"ForkedStreamError: {exc.message}"
                except BaseException as exc:
                    report["arrow"] = f"{type(exc).__name__}: {exc}"
            else:
                report.update(use_inherited(stream))
            report["fresh"] = fresh_stream()
            with os.fdopen(write, "w") as out:
                json.dump(report, out)
            sys.exit(0)  # atexit runs: the inherited stream's finalizer closes it (inertly)
        os.close(write)
        if reader is not None:
            table = reader.read_all()
            ts = table.column("timestamp").cast("int64").to_numpy()
            avg = table.column("avg").to_numpy(zero_copy_only=False)
            parent = {"rows": int(ts.size), "checksum": float(np.nansum(avg)) + float(ts.sum()),
                      "contiguous": bool(np.all(np.diff(ts) == 60))}
        else:
            if reading is not None:
                reading.join()
            else:
                got += list(stream)
            parent = digest([b for b in got if b is not None])
        stream.close()
        with os.fdopen(read) as inp:
            text = inp.read()
        _, status = os.waitpid(pid, 0)
        children.append({"status": status, "report": json.loads(text) if text else None})
        parent_reads.append(parent)
    return {"expected": expected, "parent": parent_reads, "children": children}


def pool_task(_: int) -> dict[str, Any]:
    assert inherited is not None
    report = use_inherited(inherited)
    report["fresh"] = fresh_stream()
    return report


def mp_fork(rounds: int) -> dict[str, Any]:
    global inherited
    expected = fresh_stream()
    results = []
    parent_reads = []
    ctx = multiprocessing.get_context("fork")
    for _ in range(rounds):
        inherited = dd.DDStream(dd.DDStreamConfig(**CONFIG))
        got = [inherited.next_batch()]
        with ctx.Pool(2) as pool:
            results.extend(pool.map(pool_task, range(2)))
            got += list(inherited)  # the parent goes on while the workers exit
        parent_reads.append(digest([b for b in got if b is not None]))
        inherited.close()
    return {"expected": expected, "parent": parent_reads,
            "children": [{"status": 0, "report": r} for r in results]}


if __name__ == "__main__":
    scenario, rounds = sys.argv[1], int(sys.argv[2])
    result = {"os_fork": os_fork, "mp_fork": mp_fork}[scenario](rounds)
    print(json.dumps(result))
