"""Caveats on a call's shape and on dates written as text: ``ArgsOnly`` and ``DateWindow`` (specs/SPEC.md §9).

``ArgsOnly`` closes a tool's argument list: an argument the grant does not
name denies (``arg_unexpected``), so an injected ``bcc`` or ``attachments``
cannot ride along with a call whose other arguments are fine.

``DateWindow`` bounds an argument holding a date or a date-time as text
(``2024-05-16``, ``2024-05-16T10:00``, ``2024-05-16 10:00:00+02:00``,
``2024-05-16T08:00:00Z``): the instant it denotes must lie within
``[start, end]``. A value without a zone is read in the caveat's ``tz`` (a fixed
UTC offset in minutes); a date alone denotes its whole day, from 00:00 to
23:59:59, and the whole day must lie within the window. Anything else (week
dates, ordinals, a month alone, hours past 23, leap seconds, more than 9
fractional digits) is refused: a date the check cannot read is not allowed.
"""

from __future__ import annotations

import datetime as _dt
import re

from ..codes import Code
from ..errors import InvalidCaveat
from ._fields import ARG, SCOPE, check_arg_name, show, texts_of
from .arguments import ScopedCaveat
from .base import MAX_TIMESTAMP, Call, Failure, Instant, Integer, TextSet, caveat, field

__all__ = ["ArgsOnly", "DateWindow", "parse_date_text"]

#: The widest UTC offset a DateWindow states for values without a zone (minutes).
MAX_OFFSET_MINUTES = 18 * 60
_DATE_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?", re.ASCII)


def parse_date_text(text: str, tz_minutes: int) -> tuple[int, int] | None:
    """The first and last Unix second ``text`` denotes (a date: its whole day; a date-time: one instant,
    fractions dropped), reading a value without a zone at UTC offset ``tz_minutes``; None if it is not one."""
    match = _DATE_TEXT.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, _, zone = match.groups()
    try:
        offset = _dt.timedelta(minutes=tz_minutes)
        if zone == "Z":
            offset = _dt.timedelta(0)
        elif zone is not None:
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 18 or minutes > 59:
                return None
            offset = sign * _dt.timedelta(hours=hours, minutes=minutes)
        if zone is not None and hour is None:
            return None  # a zone needs a time
        start = _dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                             tzinfo=_dt.timezone(offset))
    except ValueError:  # Feb 30, hour 24, second 60
        return None
    first = int(start.timestamp())
    return (first, first + 86399) if hour is None else (first, first)


@caveat("args_only")
class ArgsOnly(ScopedCaveat):
    """A call may name only these arguments (for calls of ``tool``, when scoped); any other denies."""

    names: tuple[str, ...] = field(TextSet("v", "argument name", check_arg_name))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, *names: str, tool: str | None = None) -> None:
        if len(names) == 1 and isinstance(names[0], (list, tuple, set, frozenset)):
            names = tuple(names[0])
        self._init(names=names, tool=tool)

    def _check(self, call: Call) -> Failure | None:
        allowed = self.memo("set", lambda: frozenset(self.names))
        extra = sorted(name for name in call.args if name not in allowed)
        if extra:
            listed = ", ".join(show(n) for n in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            return Failure(Code.ARG_UNEXPECTED, f"argument(s) {listed} are not among those the grant allows "
                                                f"({', '.join(self.names)})")
        return None

    def describe(self) -> str:
        return f"only the arguments {', '.join(self.names)}" + self._scope_words()


@caveat("date_window")
class DateWindow(ScopedCaveat):
    """``arg`` is a date or date-time text within ``start`` .. ``end`` (Unix seconds, inclusive)."""

    examines_text = True
    arg: str = field(ARG)
    end: int = field(Instant("until", "date window end", "down"))
    start: int = field(Instant("from", "date window start", "up"))
    #: UTC offset (minutes) of values written without a zone.
    tz: int = field(Integer("tz", "date window zone offset (minutes)", -MAX_OFFSET_MINUTES, MAX_OFFSET_MINUTES),
                    default=0)
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, start: object, end: object, *, tz: int = 0, tool: str | None = None) -> None:
        self._init(arg=arg, end=end, start=start, tz=tz, tool=tool)

    def _validate(self) -> None:
        if self.start > self.end:
            raise InvalidCaveat("a date window's start is after its end")
        if not 0 <= self.start <= MAX_TIMESTAMP:
            raise InvalidCaveat("a date window is within 1970-01-01 .. 9999-12-31")

    def _check(self, call: Call) -> Failure | None:
        texts = texts_of(call, self.arg)
        if isinstance(texts, Failure):
            return texts
        for value in texts:
            failure = call.work.charge(value, self, self.arg)
            if failure is not None:
                return failure
            span = parse_date_text(value, self.tz)
            if span is None:
                return Failure(Code.ARG_INVALID, f"{self.arg} {show(value)} is not a date or date-time "
                                                 "(YYYY-MM-DD, optionally THH:MM[:SS] and a zone)")
            if span[0] < self.start or span[1] > self.end:
                return Failure(Code.ARG_OUT_OF_RANGE, f"{self.arg} {show(value)} is outside {self._window()}")
        return None

    def _window(self) -> str:
        zone = _dt.timezone(_dt.timedelta(minutes=self.tz))
        fmt = lambda t: _dt.datetime.fromtimestamp(t, zone).isoformat()  # noqa: E731
        return f"{fmt(self.start)} .. {fmt(self.end)}"

    def describe(self) -> str:
        return f"{self.arg} is a date within {self._window()}" + self._scope_words()
