"""A one-line progress bar on stderr: chunks, points, rate and ETA.

Drawn only when stderr is a terminal (never into a pipe or a log file) and redrawn at most ten
times a second, so that it costs nothing next to the work it reports.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _human(n: float) -> str:
    for unit in ("", "k", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}T"


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Call :meth:`update` after each batch and :meth:`finish` at the end."""

    def __init__(self, total_chunks: int, *, enabled: bool | None = None,
                 stream: TextIO | None = None, width: int = 24) -> None:
        self._out = stream if stream is not None else sys.stderr
        self.enabled = self._out.isatty() if enabled is None else enabled
        self._total = max(total_chunks, 0)
        self._width = width
        self._started = time.monotonic()
        self._last_draw = 0.0
        self.chunks = 0
        self.points = 0

    def update(self, points: int) -> None:
        self.chunks += 1
        self.points += points
        now = time.monotonic()
        if self.enabled and (now - self._last_draw >= 0.1 or self.chunks >= self._total):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        done = self.chunks / self._total if self._total else 1.0
        filled = round(done * self._width)
        bar = "#" * filled + "." * (self._width - filled)
        eta = elapsed * (1 - done) / done if done > 0 else 0.0
        line = (
            f"\r[{bar}] {self.chunks}/{self._total} chunks  {_human(self.points)} points  "
            f"{_human(self.points / elapsed)} pts/s  ETA {_clock(eta)} "
        )
        self._out.write(line)
        self._out.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self._out.write("\n")
            self._out.flush()
