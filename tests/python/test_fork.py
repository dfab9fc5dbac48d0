"""fork() with streams open: the parent's streams go on untouched, and in the child an inherited
stream fails with :class:`ddstream.ForkedStreamError` (never a hang, never a crash, at exit
included) while new streams work. The scenarios run in a Python process of their own
(fork_scenarios.py) against a FakeDatadog whose answers take 0.3 s, so that the fetcher threads
are mid-transfer when the process forks; each forks several times, at different moments, and a
hang fails the test through its timeout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import subprocess_env
from ddstream.testing import FakeDatadog

SCENARIOS = Path(__file__).with_name("fork_scenarios.py")


def run(scenario: str, rounds: int) -> dict[str, Any]:
    with FakeDatadog(latency=0.3) as server:
        proc = subprocess.run(
            [sys.executable, str(SCENARIOS), scenario, str(rounds)],
            env=subprocess_env(server), capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Segmentation" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def same_data(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(got[k] == expected[k] for k in ("rows", "checksum", "contiguous"))


def check_child(child: dict[str, Any], expected: dict[str, Any]) -> None:
    assert child["status"] == 0, child
    report = child["report"]
    assert report is not None, "the child reported nothing"
    if "arrow" in report:
        assert report["arrow"].startswith("ForkedStreamError: "), report
        assert "a stream cannot be used after fork()" in report["arrow"]
    else:
        opened = "ForkedStreamError: the stream was opened in process "
        assert report["next"].startswith(opened), report
        assert "open a new one in the child" in report["next"]
        assert report["has_next"] is False
        assert report["next_batch"] is True
        assert 0.0 <= report["progress"] <= 1.0
        assert report["resume_token"].startswith("dds1-")
    assert same_data(report["fresh"], expected), report["fresh"]


def test_os_fork_while_fetchers_are_mid_transfer() -> None:
    result = run("os_fork", 6)
    expected = result["expected"]
    assert expected["rows"] == 1440 and expected["contiguous"]
    assert len(result["children"]) == 6
    for parent in result["parent"]:
        assert same_data(parent, expected), parent
    for child in result["children"]:
        check_child(child, expected)
    # both kinds of child ran: the plain stream and its Arrow reader
    assert sum("arrow" in c["report"] for c in result["children"]) == 3


@pytest.mark.parametrize("rounds", [3])
def test_multiprocessing_fork_start_method(rounds: int) -> None:
    result = run("mp_fork", rounds)
    expected = result["expected"]
    for parent in result["parent"]:
        assert same_data(parent, expected), parent
        assert parent["chunks"] == list(range(6))
    assert len(result["children"]) == 2 * rounds
    for child in result["children"]:
        check_child(child, expected)
