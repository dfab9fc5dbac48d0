"""The chunk cache's folder from Python: where the CLI keeps it, what it holds, pruning it.

The library owns the folder's layout (``ddstream_cache_prune`` in ``ddstream.h``); this module
only names the CLI's default folder and calls the library.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ._lib import ffi, lib
from ._native import error_from, new_error
from .errors import STATUS_OK

__all__ = ["CacheUsage", "cache_usage", "cli_cache_dir", "default_cache_dir", "prune_cache"]


@dataclass(frozen=True)
class CacheUsage:
    """The entries of a cache folder and their total size in bytes."""

    entries: int
    bytes: int


def default_cache_dir() -> Path:
    """The CLI's cache folder: ``$XDG_CACHE_HOME/ddstream``, else ``~/.cache/ddstream``.

    The XDG base directory specification ignores a relative ``XDG_CACHE_HOME``, and so does this.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "ddstream"


def cli_cache_dir(no_cache: bool, cache_dir: str | None) -> str | None:
    """A command's cache folder: none with ``--no-cache``, ``--cache-dir`` as given (absolute:
    other processes, Dask workers, may run elsewhere; the library says why it cannot be used),
    else the default folder, or none with a warning if that fails (a read-only home should not
    stop an export)."""
    if no_cache:
        return None
    if cache_dir is not None:
        return os.path.abspath(cache_dir)
    folder = default_cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        usable = os.access(folder, os.W_OK | os.X_OK)
        reason = "not writable"
    except OSError as exc:
        usable, reason = False, exc.strerror or type(exc).__name__
    if not usable:
        logging.getLogger("ddstream").warning(
            "the cache folder %s cannot be used (%s): running without the cache "
            "(--cache-dir names another folder, --no-cache silences this)", folder, reason)
        return None
    return str(folder)


def _prune(path: str | os.PathLike[str], max_bytes: int) -> CacheUsage:
    entries = ffi.new("int64_t *")
    size = ffi.new("int64_t *")
    err = new_error()
    folder = ffi.new("char[]", os.fsencode(path))
    status = lib.ddstream_cache_prune(folder, max_bytes, entries, size, err)
    if status != STATUS_OK:
        raise error_from(status, err)
    return CacheUsage(int(entries[0]), int(size[0]))


def cache_usage(path: str | os.PathLike[str]) -> CacheUsage:
    """What the folder holds (a folder that does not exist holds nothing)."""
    return _prune(path, -1)


def prune_cache(path: str | os.PathLike[str], max_bytes: int) -> CacheUsage:
    """Delete least recently used entries until at most ``max_bytes`` are left (0: all of
    them); what is left. Only the cache's own files are ever deleted."""
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be 0 or positive, got {max_bytes}")
    return _prune(path, max_bytes)
