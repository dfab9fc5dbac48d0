"""``--profile``: where a client's CPU goes, measured with ``perf record`` (a sampling profile of
the whole client process — its Python code, C extensions, libddstream, libcurl, zlib — all
threads), so that a missed target names its limit from a profile rather than a guess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from .harness import Server, run_child
from .scenarios import Scenario

SAMPLE_HZ = 9999
TOP = 25
_SYMBOL = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*\S)\s*$")
_DSO = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s*$")


def profile_client(
    argv: list[str],
    server: Server,
    scenario: Scenario,
    client: str,
    out_dir: Path,
    timeout: float,
) -> dict[str, list[str]]:
    """Run one client under perf; write ``<scenario>-<client>.txt`` (perf report by shared object,
    then by shared object and symbol) and return the hottest lines of each, as
    ``"12.3% dso"`` and ``"12.3% dso symbol"``."""
    perf = shutil.which("perf")
    if perf is None:
        return {"error": ["perf is not installed (Debian: apt-get install linux-perf)"]}
    data = out_dir / f"{scenario.id}-{client}.perf.data"
    text = out_dir / f"{scenario.id}-{client}.txt"
    with tempfile.TemporaryDirectory(prefix="ddstream-perf-") as tmp:
        # Sampling starts disabled (-D -1) and is switched on over a control FIFO exactly
        # while the client streams: start-up, imports and set-up stay out of the profile.
        ctl, ack = Path(tmp) / "ctl", Path(tmp) / "ack"
        os.mkfifo(ctl)
        os.mkfifo(ack)
        wrapped = [perf, "record", "-q", "-F", str(SAMPLE_HZ), "-D", "-1",
                   "--control", f"fifo:{ctl},{ack}", "-o", str(data), "--", *argv]  # fmt: skip
        pipes: dict[str, IO[str]] = {}

        def switch(command: str) -> None:
            if not pipes:  # perf opened both FIFOs at start; the client's "ready" came after
                pipes["ctl"] = open(ctl, "w", encoding="ascii")  # noqa: SIM115
                pipes["ack"] = open(ack, encoding="ascii")  # noqa: SIM115
            pipes["ctl"].write(command + "\n")
            pipes["ctl"].flush()
            pipes["ack"].readline()

        try:
            switches = (lambda: switch("enable"), lambda: switch("disable"))
            run = run_child(wrapped, server, scenario, client, timeout, around=switches)
        finally:
            for pipe in pipes.values():
                pipe.close()
    if not run.ok:
        return {"error": [f"profiled run failed: {run.figures.get('error')}"]}
    found: dict[str, list[str]] = {}
    texts = []
    for key, sort, pattern in (("by_dso", "dso", _DSO), ("by_symbol", "dso,sym", _SYMBOL)):
        report = subprocess.run(
            [perf, "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort,
             "--percent-limit", "0.5"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        texts.append(report.stdout)
        top = found.setdefault(key, [])
        for line in report.stdout.splitlines():
            match = pattern.match(line)
            if match and len(top) < TOP:
                top.append(" ".join(g for g in match.groups()).replace(" ", "% ", 1))
    text.write_text("\n".join(texts), encoding="utf-8")
    data.unlink(missing_ok=True)
    return found
