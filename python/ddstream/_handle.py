"""``StreamHandle``: a C stream pointer, the locks around it, and closing it exactly once.

Split from ``_stream`` so that the one object owning ``ddstream_stream *`` (and what happens to
it across ``os.fork()``) can be read alone; ``DDStream`` holds one and the Arrow side borrows it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import Any

from . import _native
from ._lib import lib

__all__ = ["StreamHandle"]


class StreamHandle:
    """The C stream pointer, its locks, and closing it exactly once.

    ``call_lock`` serialises the C calls on the stream (the C API wants one thread at a time);
    ``state_lock`` guards the pointer itself so that ``cancel`` (allowed from any thread at any
    time) never races with ``close``. Once the stream is handed to Arrow, ``arrow`` (an
    ``_arrow.ArrowSource``) owns it, and closing lets go of the Arrow root handle instead.

    After ``os.fork()`` the child's copies of the locks are replaced by new ones (another thread
    of the parent may have held them, and would never release them in the child); the C library
    then answers every call on the inherited stream with ``DDSTREAM_E_FORKED``
    (:class:`~ddstream.ForkedStreamError`) and closing it releases nothing (include/ddstream.h,
    FORK), so the child neither hangs nor crashes on it, at exit included.
    """

    __slots__ = ("__weakref__", "arrow", "call_lock", "ptr", "state_lock")

    def __init__(self, ptr: Any) -> None:
        self.ptr: Any = ptr
        self.arrow: Any = None
        self.call_lock = threading.Lock()
        self.state_lock = threading.Lock()
        _open_handles.add(self)

    def renew_locks(self) -> None:
        self.call_lock = threading.Lock()
        self.state_lock = threading.Lock()

    def cancel(self) -> None:
        with self.state_lock:
            if self.ptr is not None:
                lib.ddstream_cancel(self.ptr)

    def close(self) -> None:
        if not self.call_lock.acquire(blocking=False):
            # Another thread is inside a call on this stream: wake it up, then wait for it.
            self.cancel()
            self.call_lock.acquire()
        try:
            with self.state_lock:
                ptr, self.ptr = self.ptr, None
                arrow, self.arrow = self.arrow, None
            if ptr is not None:
                # Logging may be torn down already when this runs at interpreter exit.
                with contextlib.suppress(Exception):
                    _native.drain_logs(ptr)
                if arrow is not None:
                    arrow.release()  # the C stream closes when the last Arrow reader lets go
                else:
                    lib.ddstream_close(ptr)
        finally:
            self.call_lock.release()


_open_handles: weakref.WeakSet[StreamHandle] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handle in list(_open_handles):
        handle.renew_locks()


os.register_at_fork(after_in_child=_after_fork_in_child)
