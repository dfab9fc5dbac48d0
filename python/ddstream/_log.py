"""ddstream's logging: the C library's levels, and the ``logging`` logger ``"ddstream"``.

The C library formats a line only when its level is enabled (``ddstream_config.log_level``), and
the binding moves queued lines to the logger after each call. So that ddstream follows Python's
logging without configuration, a config whose ``log_level`` is ``None`` gets the C level the
logger is enabled for when the stream opens: lines the logger would drop are never made.
"""

from __future__ import annotations

import logging

__all__ = ["C_TO_PYTHON", "LOGGER", "c_level_for_logger"]

LOGGER = logging.getLogger("ddstream")

# ddstream_log_level -> logging level (include/ddstream.h).
C_TO_PYTHON = {
    1: logging.ERROR,
    2: logging.WARNING,
    3: logging.INFO,
    4: logging.DEBUG,
}


def c_level_for_logger(logger: logging.Logger = LOGGER) -> int:
    """The most verbose ``ddstream_log_level`` whose lines ``logger`` would handle (0: none)."""
    for c_level in (4, 3, 2, 1):
        if logger.isEnabledFor(C_TO_PYTHON[c_level]):
            return c_level
    return 0
