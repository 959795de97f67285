"""Caveats whose check needs shared state: cumulative budgets and call limits.

Their stateless part (is the argument there, is it a non-negative amount)
is checked like any caveat. The stateful part (does this call still fit
under the cap) is decided by the verifier's store, atomically with every
other budget and counter the call touches (``capkit.state``).

A window is ``None`` (for the token's whole life), a rolling duration in
seconds, or a calendar period in UTC: ``"day"``, ``"week"`` (ISO) or
``"month"``.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any, ClassVar

from ..codes import Code
from ..errors import InvalidCaveat, TimeFormatError
from ..limits import Limits
from ..timefmt import parse_duration
from ._fields import ARG, SCOPE, show
from .arguments import ScopedCaveat, amount_of
from .base import Amount, Call, Failure, Integer, Spec, caveat, field

CALENDAR = ("day", "week", "month")
#: Longest rolling window: a year.
MAX_WINDOW_SECONDS = 366 * 86400
#: Most calls a CallLimit may allow.
MAX_CALLS = 10**12


def parse_window(value: object) -> "int | str | None":
    """A window from None, seconds (int), a duration such as ``24h``, or a calendar period name."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in CALENDAR:
            return value
        try:
            value = parse_duration(value)
        except TimeFormatError:
            raise InvalidCaveat("a window is a duration such as 24h or one of day, week, month") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_WINDOW_SECONDS:
        raise InvalidCaveat(f"a rolling window is 1 to {MAX_WINDOW_SECONDS} seconds")
    return value


def describe_window(window: "int | str | None") -> str:
    if window is None:
        return "in total"
    if isinstance(window, str):
        return f"per calendar {window} (UTC)"
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if window % seconds == 0:
            return f"per rolling {window // seconds}{unit}"
    return f"per rolling {window}s"


def period_of(window: "int | str | None", at: float) -> str:
    """The calendar period containing ``at`` (``2026-12-01``, ``2026-W49``, ``2026-12``); '' otherwise."""
    if not isinstance(window, str):
        return ""
    moment = _dt.datetime.fromtimestamp(at, _dt.timezone.utc)
    if window == "day":
        return moment.strftime("%Y-%m-%d")
    if window == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")


def rolling_seconds(window: "int | str | None") -> int | None:
    """The rolling window in seconds, or None for no window or a calendar period."""
    return window if isinstance(window, int) else None


class WindowSpec(Spec):
    """The optional window (JSON ``w``): seconds, or a calendar period name."""

    key = "w"
    required = False

    def convert(self, value: Any, limits: Limits) -> Any:
        return parse_window(value)

    def from_json(self, value: Any, limits: Limits) -> Any:
        if isinstance(value, str) and value not in CALENDAR:
            raise InvalidCaveat("a window name is day, week or month")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidCaveat("a window is an integer number of seconds or day, week, month")
        return value


WINDOW = WindowSpec()


class _Metered(ScopedCaveat):
    """Marks caveats that consume shared state when a call is allowed (optionally only for some tools)."""

    __slots__ = ()
    metered: ClassVar[bool] = True
    #: True if an explicit "nothing was spent" gives the room back (budgets); call limits count attempts.
    refundable: ClassVar[bool] = False


@caveat("budget")
class Budget(_Metered):
    """The sum of ``arg`` over allowed calls stays at most ``cap`` (per ``window``); amounts are exact.

    Each call's amount must be a non-negative number. Spends are reserved when
    a call is allowed and committed when the tool finishes; they are given back
    only if the tool backend says explicitly that nothing was spent.
    """

    arg: str = field(ARG)
    cap: Decimal = field(Amount("cap", "budget cap", minimum=Decimal(0)))
    window: "int | str | None" = field(WINDOW, default=None)
    tool: str | None = field(SCOPE, default=None)

    refundable: ClassVar[bool] = True

    def __init__(self, arg: str, cap: "int | Decimal | str", window: "int | str | None" = None, *,
                 tool: str | None = None) -> None:
        self._init(arg=arg, cap=cap, window=window, tool=tool)

    def amount(self, call: Call) -> "Decimal | Failure":
        """What this call spends, or the Failure that denies it before any state is touched."""
        amount = amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if amount < 0:
            return Failure(Code.ARG_OUT_OF_RANGE,
                           f"{self.arg} {show(amount)} is negative; a budget counts spends of 0 or more")
        return amount

    def _check(self, call: Call) -> Failure | None:
        amount = self.amount(call)
        return amount if isinstance(amount, Failure) else None

    def describe(self) -> str:
        return f"{self.arg} at most {show(self.cap)} {describe_window(self.window)} (cumulative)" + self._scope_words()


@caveat("calls")
class CallLimit(_Metered):
    """At most ``n`` allowed calls (per ``window``). Every allowed call counts, whatever its outcome."""

    n: int = field(Integer("n", "a call limit", 0, MAX_CALLS))
    window: "int | str | None" = field(WINDOW, default=None)
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, n: int, window: "int | str | None" = None, *, tool: str | None = None) -> None:
        self._init(n=n, window=window, tool=tool)

    @property
    def cap(self) -> Decimal:
        return Decimal(self.n)

    def amount(self, call: Call) -> Decimal:
        return _ONE

    def _check(self, call: Call) -> Failure | None:
        return None

    def describe(self) -> str:
        return f"at most {self.n} call{'s' if self.n != 1 else ''} {describe_window(self.window)}" + self._scope_words()


_ONE = Decimal(1)
