"""Where ``ddstream query -o PATH`` writes, and how, whatever is (or is not) at PATH.

- A regular file, or a name that does not exist yet: the export is written to ``PATH.partial``
  in the same directory and renamed onto PATH once complete, so PATH holds either what it held
  before or the whole export, never half of one. A replaced file keeps its permission bits.
- An existing FIFO, character or block device (``/dev/null``, ``/dev/stdout``...) or socket: it
  is opened and written in place. Renaming onto it would replace the special file with a regular
  one, and a reader waiting on a FIFO would get nothing.
- A symlink: followed (through any chain), and its target handled by these same rules; the link
  itself is left as it is. A dangling link's target is created.
- Anything else is :class:`OutputError`, whose message is one line naming the path and the
  reason: a missing directory, a directory, a parent that is a file, a symlink loop, no
  permission, a read-only file system, or a write that fails (no space left, I/O error). No
  ``.partial`` file is left behind, wherever the export stopped.

:func:`check_output` finds the mistakes that can be seen without writing, so that the CLI reports
them before fetching anything; :func:`open_output` opens the file and turns every later failure
into :class:`OutputError` too. :func:`write_atomically` is the same promise for a file written in
one piece (the partitioned exports' Parquet files and their state).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import DDStreamError

__all__ = ["OutputError", "OutputTarget", "check_output", "open_output"]


class OutputError(Exception):
    """The output path cannot be written; ``str()`` is one line naming the path and why."""


@dataclass(frozen=True)
class OutputTarget:
    """A checked output path: ``path`` as given (for messages), ``real`` with symlinks resolved
    (where the bytes go), ``in_place`` for special files written directly, and ``mode``, the
    permission bits of a regular file about to be replaced (None for a new one)."""

    path: str
    real: str
    in_place: bool
    mode: int | None


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _writable_dir(path: str, parent: str) -> None:
    """Raise OutputError unless files can be created (and renamed) in ``parent``."""
    try:
        info = os.stat(parent)
    except FileNotFoundError:
        raise OutputError(f"cannot write {path}: directory {parent} does not exist") from None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {parent}: {_reason(exc)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"cannot write {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        # access(2) answers for the real user, root included: it says EROFS for a read-only
        # mount even to root, who bypasses the permission bits.
        read_only = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
        why = "read-only file system" if read_only else "permission denied"
        raise OutputError(f"cannot write {path}: cannot create files in {parent}: {why}")


def _no_odd_partial(path: str, real: str) -> None:
    """A leftover PATH.partial that is a regular file is ours to overwrite; anything else there (a
    symlink someone planted, a directory) is not, and writing through it would go elsewhere."""
    partial = real + ".partial"
    try:
        info = os.lstat(partial)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {partial}: {_reason(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"cannot write {path}: {partial} exists and is not a regular file")


def check_output(path: str) -> OutputTarget:
    """Decide how PATH is written, or raise OutputError for what is visibly wrong with it."""
    if not path:
        raise OutputError("cannot write to an empty path")
    if os.path.basename(path) in ("", ".", ".."):
        # "out/" or "out/.": a directory was named where a file was wanted.
        what = "it is a directory" if os.path.isdir(path) else "it names a directory, not a file"
        raise OutputError(f"cannot write {path}: {what}")
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        info = None
    except OSError as exc:  # a symlink loop, a component that is a file, no search permission
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    parent = os.path.dirname(real) or "."
    if info is None:
        _writable_dir(path, parent)
        _no_odd_partial(path, real)
        return OutputTarget(path, real, in_place=False, mode=None)
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"cannot write {path}: it is a directory")
    if stat.S_ISREG(info.st_mode):
        _writable_dir(path, parent)
        _no_odd_partial(path, real)
        return OutputTarget(path, real, in_place=False, mode=stat.S_IMODE(info.st_mode))
    if not os.access(real, os.W_OK):
        raise OutputError(f"cannot write {path}: permission denied")
    return OutputTarget(path, real, in_place=True, mode=None)


def _wrap(fd: int, binary: bool) -> IO[Any]:
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", newline="", encoding="utf-8")


def _close_quietly(handle: IO[Any]) -> None:
    with contextlib.suppress(OSError):
        handle.close()  # a failed flush still closes the descriptor


@contextlib.contextmanager
def open_output(target: OutputTarget, binary: bool) -> Iterator[IO[Any]]:
    """The open file for ``target`` (see the module's rules); OSError while writing, closing or
    renaming becomes OutputError, and a ``.partial`` file is removed whatever happens."""
    partial = None if target.in_place else target.real + ".partial"
    try:
        if partial is None:
            fd = os.open(target.real, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
        else:
            # O_NOFOLLOW: a symlink planted at PATH.partial is an error, not a redirection.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o666)
    except OSError as exc:  # nothing was created
        raise OutputError(f"cannot write {target.path}: {_reason(exc)}") from None
    handle = _wrap(fd, binary)
    try:
        if target.mode is not None:
            os.fchmod(fd, target.mode)
        yield handle
        handle.close()  # flushes: a full disk often shows only here
        if partial is not None:
            os.replace(partial, target.real)
            partial = None
    except DDStreamError:
        # The stream failed while being written out: its NetworkError and RequestTimeoutError
        # are OSErrors too, but not this path's fault. Pass them on as they are.
        raise
    except BrokenPipeError:
        _close_quietly(handle)
        if target.in_place:
            raise  # the reader of a FIFO left, as with `| head`: not an error of the path
        raise OutputError(f"cannot write {target.path}: {os.strerror(errno.EPIPE)}") from None
    except OSError as exc:
        _close_quietly(handle)
        raise OutputError(f"cannot write {target.path}: {_reason(exc)}") from None
    finally:
        _close_quietly(handle)
        if partial is not None:
            with contextlib.suppress(OSError):
                os.unlink(partial)


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` under ``path``, all or nothing: a hidden temporary beside it (parents created),
    synced, then renamed onto ``path``, so a reader of the folder (DuckDB, polars, another
    process) sees the old file or the whole new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
