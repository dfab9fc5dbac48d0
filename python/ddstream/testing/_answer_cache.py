"""The LRU cache of rendered answers (and their gzip form) that makes repeated runs cheap.

Rendering a long query's JSON and compressing it costs far more than serving it; benchmarks and
tests ask the same chunks again and again. Bounded by entries and by uncompressed bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ._http import gzip_compress

__all__ = ["AnswerCache", "CachedBody"]


class CachedBody:
    """A rendered 200 body and, computed on first need, its gzip form."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzipped is None:  # a race only compresses twice
            self._gzipped = gzip_compress(self.body)
        return self._gzipped


class AnswerCache:
    """At most ``size`` answers and ``max_bytes`` uncompressed bytes (always the newest one)."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, CachedBody] = OrderedDict()
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: Hashable, render: Callable[[], bytes]) -> CachedBody:
        """The answer cached under ``key``, else ``render()``'s, cached (outside the lock: two
        threads may render the same answer once each, never block each other on it)."""
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        cached = CachedBody(render())
        with self._lock:
            previous = self._entries.pop(key, None)  # another thread computed it meanwhile
            if previous is not None:
                self._bytes -= len(previous.body)
            self._entries[key] = cached
            self._bytes += len(cached.body)
            while len(self._entries) > 1 and (
                len(self._entries) > self._size or self._bytes > self._max_bytes
            ):
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.body)
        return cached
