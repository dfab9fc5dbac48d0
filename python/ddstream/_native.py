"""The helpers every call into libddstream shares: errors, log draining, waiting in slices.

``_stream`` (dict batches) and ``_arrow`` (the Arrow C stream) both call the C library the same
way: an error struct per call turned into the matching :class:`~ddstream.DDStreamError`, the
stream's queued log lines moved to ``logging`` after each call, and blocking calls cut into short
slices so that Python handles signals (Ctrl-C) in between. Keeping those here, below both, is
what lets the two modules not import each other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ._lib import ffi, lib
from ._log import C_TO_PYTHON, LOGGER
from .errors import STATUS_OK, STATUS_TIMEOUT, DDStreamError, error_class_for_status

__all__ = ["SLICE_MS", "check_status_values", "drain_logs", "error_from", "new_error",
           "wait_in_slices"]

SLICE_MS = 100
"""How long one C call may block before Python gets a chance to handle signals (Ctrl-C)."""

_LOG_LINE_BYTES = 2048


def new_error() -> Any:
    """A fresh ``ddstream_error *`` for one call (chunk bounds -1: "not about a chunk")."""
    err = ffi.new("ddstream_error *")
    err.chunk_start = -1
    err.chunk_end = -1
    return err


def error_from(status: int, err: Any) -> DDStreamError:
    """The exception for a failed call, from its ``ddstream_error``."""
    message = ffi.string(err.message).decode("utf-8", "replace")
    if not message:
        message = ffi.string(lib.ddstream_status_str(status)).decode("utf-8", "replace")
    cls = error_class_for_status(int(status))
    start = int(err.chunk_start)
    end = int(err.chunk_end)
    return cls(
        message,
        status=int(status),
        http_status=int(err.http_status),
        chunk_start=None if start < 0 else start,
        chunk_end=None if end < 0 else end,
    )


class _LogBuffers(threading.local):
    """Where ``ddstream_poll_log`` writes, made once per thread rather than once per call."""

    def __init__(self) -> None:
        self.level = ffi.new("int32_t *")
        self.buf = ffi.new("char[]", _LOG_LINE_BYTES)


_log_buffers = _LogBuffers()


def drain_logs(ptr: Any) -> None:
    """Move the stream's queued log lines to ``logging.getLogger("ddstream")``."""
    level, buf = _log_buffers.level, _log_buffers.buf
    while lib.ddstream_poll_log(ptr, level, buf, _LOG_LINE_BYTES) == STATUS_OK:
        text = ffi.string(buf).decode("utf-8", "replace")
        LOGGER.log(C_TO_PYTHON.get(int(level[0]), logging.DEBUG), "%s", text)


def wait_in_slices(call: Callable[[int], int]) -> int:
    """``call(SLICE_MS)`` again while it answers ``STATUS_TIMEOUT``; its first other status.

    Each C call blocks at most ``SLICE_MS`` with the GIL released; between two calls Python runs
    its signal handlers, so a KeyboardInterrupt is raised from here within a slice.
    """
    status = STATUS_TIMEOUT
    while status == STATUS_TIMEOUT:
        status = call(SLICE_MS)
    return status


def check_status_values() -> None:
    """errors.py repeats the ddstream_status values: make sure they match the library's enum."""
    from . import errors

    for name, value in vars(errors).items():
        if name.startswith("STATUS_"):
            declared = getattr(lib, "DDSTREAM_" + name[len("STATUS_") :])
            if declared != value:  # pragma: no cover - caught in development
                raise ImportError(f"ddstream: errors.{name} = {value}, header says {declared}")
