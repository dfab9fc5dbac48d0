"""A one-line progress bar on stderr: chunks, points, rate and ETA.

Drawn only when stderr is a terminal (never into a pipe or a log file) and redrawn at most ten
times a second, so that it costs nothing next to the work it reports.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
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
        self._lock = threading.Lock()  # update() and the watcher thread both draw
        self._waiting = 0.0  # seconds left of a rate-limit wait, as last polled
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.chunks = 0
        self.points = 0

    def update(self, points: int) -> None:
        with self._lock:
            self.chunks += 1
            self.points += points
            now = time.monotonic()
            if self.enabled and (now - self._last_draw >= 0.1 or self.chunks >= self._total):
                self._last_draw = now
                self._draw(now)

    def watch(self, rate_limit_wait: Callable[[], float], interval: float = 0.5) -> None:
        """Poll ``rate_limit_wait()`` (``DDStream.rate_limit_wait``) every ``interval`` seconds
        on a daemon thread until :meth:`finish`, so that a wait for the rate-limit window shows
        on the line ("waiting 42 s for the rate-limit window") instead of a silent stall."""
        if not self.enabled or self._watcher is not None:
            return

        def poll() -> None:
            while not self._stop.wait(interval):
                waiting = rate_limit_wait()
                with self._lock:
                    if waiting > 0 or self._waiting > 0:
                        self._waiting = waiting
                        self._draw(time.monotonic())

        self._watcher = threading.Thread(target=poll, name="ddstream-progress", daemon=True)
        self._watcher.start()

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
        if self._waiting > 0:
            line += f"- waiting {max(1, round(self._waiting))} s for the rate-limit window "
        line += "\x1b[K"  # clear what a longer line before left
        self._out.write(line)
        self._out.flush()

    def finish(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        self._waiting = 0.0
        if self.enabled:
            self._draw(time.monotonic())
            self._out.write("\n")
            self._out.flush()
