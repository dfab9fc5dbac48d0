"""Times as people write them: ``now``, ``-7d``, ``-36h``, ISO 8601, epoch seconds, datetimes.

The same spellings the Datadog UI and most CLIs accept, so that ``--from -7d --to now`` and
``DDStream(query=..., start="-36h")`` mean what a user expects. Everything becomes integer epoch
seconds (UTC); a datetime or ISO string without a zone is taken as UTC, never as local time, so
that a script gives the same range on every machine.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from typing import Union

TimeLike = Union[int, float, str, _dt.datetime, _dt.date]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"^\s*(?:now\s*)?-\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_time(value: TimeLike, *, now: float | None = None) -> int:
    """Epoch seconds for ``value``.

    Accepts an int/float (epoch seconds), a :class:`datetime.datetime` or :class:`datetime.date`
    (naive means UTC), ``"now"``, a relative time back from now (``"-7d"``, ``"-36h"``,
    ``"-90m"``, ``"-30s"``, ``"-2w"``, also ``"now-1h"``), an ISO 8601 string
    (``"2026-11-01"``, ``"2026-11-01T12:00:00Z"``, ``"2026-11-01 12:00+02:00"``) or a string of
    digits (epoch seconds). Raises :class:`ValueError` naming the value otherwise.
    """
    current = time.time() if now is None else now
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, _dt.datetime):
        return _datetime_seconds(value)
    if isinstance(value, _dt.date):
        return _datetime_seconds(_dt.datetime(value.year, value.month, value.day))
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    if text.lower() == "now":
        return int(current)
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2).lower()
        return int(current - amount * _UNITS[unit])
    if re.fullmatch(r"\d+", text):
        return int(text)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        return _datetime_seconds(_dt.datetime.fromisoformat(iso))
    except ValueError:
        raise ValueError(
            f"not a time: {value!r} (use 'now', a relative time like '-7d' or '-36h', "
            "ISO 8601 like '2026-11-01T00:00:00Z', or epoch seconds)"
        ) from None


def _datetime_seconds(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return int(value.timestamp())
