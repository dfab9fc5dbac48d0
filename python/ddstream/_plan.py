"""``ChunkPlan``: the chunks of a plan as a lazy, read-only sequence of ``(start, end)`` pairs.

libddstream computes its plan rather than storing it: chunk ``i`` starts at ``start + i * step``
and ends ``step`` seconds later, except the last, which ends at the plan's end. A plan may be
legal and still have many millions of chunks (up to ``max_chunks``, which the caller may raise),
so the Python side must not build a list of them either: ``ChunkPlan`` keeps the three numbers,
read once from the library (:func:`plan_of_stream`, :func:`plan_of_config`), and computes a chunk
when asked. Indexing, negative indices, slicing (another ``ChunkPlan``), ``len``, ``in`` and
comparison with any sequence of pairs work as on the list it stands for, in O(1) time and memory
(comparison with a list is element by element).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from ._lib import ffi, lib
from .errors import STATUS_E_INTERNAL, STATUS_OK, InternalError

__all__ = ["ChunkPlan", "plan_of_config", "plan_of_stream"]

Chunk = tuple[int, int]


class ChunkPlan(Sequence[Chunk]):
    """Chunks ``(start, end)``, epoch seconds, ``end`` exclusive, of one plan (or a slice of it).

    Chunk ``k`` of the underlying plan is ``(start + k * step, min(start + (k + 1) * step, end))``
    and this sequence holds chunks ``indices`` of it. Immutable; unhashable, like the list it
    replaces (it compares equal to one).
    """

    __slots__ = ("_end", "_indices", "_start", "_step")

    def __init__(self, start: int, step: int, end: int, indices: range) -> None:
        if step <= 0 and len(indices) > 0:
            raise ValueError(f"a plan's step must be positive, got {step}")
        if indices.step == 1:
            # A run of consecutive chunks is itself a plan: rebase it, so equal runs of
            # different plans have equal numbers (and compare in O(1)).
            start, end = start + indices.start * step, min(end, start + indices.stop * step)
            indices = range(len(indices))
        self._start = start
        self._step = step
        self._end = end
        self._indices = indices

    def _chunk(self, k: int) -> Chunk:
        begin = self._start + k * self._step
        return (begin, min(begin + self._step, self._end))

    def __len__(self) -> int:
        return len(self._indices)

    @overload
    def __getitem__(self, index: int) -> Chunk: ...

    @overload
    def __getitem__(self, index: slice) -> ChunkPlan: ...

    def __getitem__(self, index: int | slice) -> Chunk | ChunkPlan:
        if isinstance(index, slice):
            return ChunkPlan(self._start, self._step, self._end, self._indices[index])
        try:
            k = self._indices[index]
        except IndexError:
            raise IndexError(
                f"chunk index {index} is out of range for a plan of {len(self)} chunks"
            ) from None
        return self._chunk(k)

    def __iter__(self) -> Iterator[Chunk]:
        for k in self._indices:
            yield self._chunk(k)

    def __reversed__(self) -> Iterator[Chunk]:
        for k in reversed(self._indices):
            yield self._chunk(k)

    def _position(self, value: object) -> int | None:
        """Where ``value`` is in this sequence, computed rather than searched; None if absent."""
        if not (isinstance(value, tuple) and len(value) == 2):
            return None
        begin = value[0]
        if not isinstance(begin, int) or (begin - self._start) % self._step:
            return None
        k = (begin - self._start) // self._step
        if k not in self._indices or self._chunk(k) != value:
            return None
        return self._indices.index(k)

    def __contains__(self, value: object) -> bool:
        return self._position(value) is not None

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        position = self._position(value)
        if position is None or position < start or (stop is not None and position >= stop):
            raise ValueError(f"{value!r} is not a chunk of this plan")
        return position

    def count(self, value: Any) -> int:
        return 0 if self._position(value) is None else 1

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChunkPlan):
            if len(self) != len(other):
                return False
            if len(self) == 0 or (
                (self._start, self._step, self._end, self._indices)
                == (other._start, other._step, other._end, other._indices)
            ):
                return True
        elif not isinstance(other, (list, tuple)):
            return NotImplemented
        if len(self) != len(other):
            return False
        return all(mine == theirs for mine, theirs in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # compares equal to lists, which are unhashable

    def __reduce__(self) -> tuple[Any, ...]:
        return (ChunkPlan, (self._start, self._step, self._end, self._indices))

    def __repr__(self) -> str:
        n = len(self)
        if n == 0:
            return "ChunkPlan([])"
        if n <= 3:
            return f"ChunkPlan({list(self)!r})"
        return f"ChunkPlan({n} chunks: {self[0]!r}, {self[1]!r}, ..., {self[-1]!r})"


def _from_ends(first: Chunk, second: Chunk | None, last: Chunk, count: int) -> ChunkPlan:
    """The plan whose chunks 0, 1 (when count > 1) and count - 1 are these."""
    step = (second[0] - first[0]) if second is not None else (first[1] - first[0])
    plan = ChunkPlan(first[0], step, last[1], range(count))
    if plan[0] != first or plan[-1] != last or (second is not None and plan[1] != second):
        raise InternalError(  # pragma: no cover - only if libddstream's plan were not uniform
            f"the library's plan is not uniform: chunks {first}, {second}, ..., {last} "
            f"of {count}", status=STATUS_E_INTERNAL)
    return plan


def plan_of_stream(ptr: Any) -> ChunkPlan:
    """The plan of an open ``ddstream_stream *`` (the caller holds its call lock)."""
    count = int(lib.ddstream_chunk_count(ptr))
    if count == 0:
        return ChunkPlan(0, 1, 0, range(0))
    chunk = ffi.new("ddstream_chunk *")

    def chunk_at(i: int) -> Chunk:
        status = lib.ddstream_chunk_at(ptr, i, chunk)
        if status != STATUS_OK:  # pragma: no cover - only on a library bug
            raise InternalError(f"ddstream_chunk_at({i}) failed", status=int(status))
        return (int(chunk.start), int(chunk.end))

    return _from_ends(chunk_at(0), chunk_at(1) if count > 1 else None, chunk_at(count - 1), count)


def plan_of_config(native_ptr: Any, count: int, first_two: Any) -> ChunkPlan:
    """The plan of a ``ddstream_config *`` that ``ddstream_plan`` accepted with ``count`` chunks,
    whose first ``min(2, count)`` chunks are in ``first_two``. The last chunk is asked of the
    library too: the plan of the range from the last chunk's start is that one chunk, as every
    run of a plan's chunks is planned the same on its own."""
    if count == 0:
        return ChunkPlan(0, 1, 0, range(0))
    first = (int(first_two[0].start), int(first_two[0].end))
    if count == 1:
        return _from_ends(first, None, first, 1)
    second = (int(first_two[1].start), int(first_two[1].end))
    last_start = first[0] + (count - 1) * (second[0] - first[0])
    saved = native_ptr.range_start
    out = ffi.new("ddstream_chunk[1]")
    n = ffi.new("size_t *")
    native_ptr.range_start = last_start
    try:
        status = lib.ddstream_plan(native_ptr, out, 1, n, ffi.NULL)
    finally:
        native_ptr.range_start = saved
    if status != STATUS_OK or int(n[0]) != 1:  # pragma: no cover - only on a library bug
        raise InternalError(f"the plan's last chunk (from {last_start}) could not be computed",
                            status=STATUS_E_INTERNAL)
    return _from_ends(first, second, (int(out[0].start), int(out[0].end)), count)
