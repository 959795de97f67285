"""Times as people write them: RFC 3339 instants, Unix seconds, and durations like 1h30m.

Every function takes the current time as a parameter; none reads the clock.
"""

from __future__ import annotations

import datetime as _dt
import math
import re

from .errors import CapkitError, TimeFormatError

__all__ = ["TimeFormatError", "format_instant", "parse_duration", "parse_instant", "unix_seconds"]

#: Largest magnitude of Unix seconds accepted anywhere (far beyond year 9999, far below float trouble).
MAX_SECONDS = 2 ** 62


def unix_seconds(value: object, what: str, error: type[CapkitError] = TimeFormatError) -> "int | float":
    """Unix seconds from an int, a finite float or a timezone-aware datetime; raise ``error`` otherwise.

    An int stays an int (no precision lost); a datetime becomes a float.
    """
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise error(f"{what} must be a timezone-aware datetime, or Unix seconds")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{what} must be Unix seconds (int or float) or an aware datetime, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise error(f"{what} must be a finite number of seconds")
    if abs(value) > MAX_SECONDS:
        raise error(f"{what} is too far from 1970 to be a time")
    return value

_DURATION = re.compile(r"(?:(\d{1,9})([smhdw]))+", re.ASCII)
_PART = re.compile(r"(\d{1,9})([smhdw])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIX = re.compile(r"[0-9]{1,12}", re.ASCII)


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30m``, ``1h``, ``1h30m``, ``7d``, ``2w``."""
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        raise TimeFormatError(f"{text!r} is not a duration such as 30m, 1h, 1h30m or 7d")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))


def parse_instant(text: str, *, now: int) -> int:
    """Unix seconds from RFC 3339 (``2026-12-01T00:00:00Z``), Unix seconds, or ``+DURATION``/``-DURATION``/``DURATION`` from ``now``.

    A time without a timezone is refused: it would mean different instants on different machines.
    """
    if not isinstance(text, str) or not text:
        raise TimeFormatError("a time is required")
    if text[0] in "+-" and _DURATION.fullmatch(text[1:]):
        return now + parse_duration(text[1:]) * (1 if text[0] == "+" else -1)
    if _DURATION.fullmatch(text):
        return now + parse_duration(text)
    if _UNIX.fullmatch(text):
        return int(text)
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeFormatError(
            f"{text!r} is not a time: use RFC 3339 such as 2026-12-01T00:00:00Z, Unix seconds, or a duration such as 1h"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TimeFormatError(f"{text!r} has no timezone; add Z for UTC or an offset such as +02:00")
    return int(moment.timestamp())


def format_instant(seconds: float) -> str:
    """RFC 3339 UTC text of Unix seconds."""
    return _dt.datetime.fromtimestamp(int(seconds), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
