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
from typing import Any, ClassVar, Mapping

import attrs

from ..errors import InvalidCaveat
from ..limits import DEFAULT_LIMITS, Limits
from ..timefmt import TimeFormatError, parse_duration
from ._fields import amount_field, arg_name, arg_values, quote, scope_json, show, tool_scope
from .amounts import AmountError, amount_text, coerce_bound, parse_amount
from .arguments import ScopedCaveat
from .base import Call, Failure, build_validated

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


def _window_json(window: "int | str | None") -> str:
    if window is None:
        return ""
    return ',"w":%d' % window if isinstance(window, int) else ',"w":' + quote(window)


def _window_field(obj: Mapping[str, Any]) -> "int | str | None":
    if "w" not in obj:
        return None
    value = obj["w"]
    if isinstance(value, str) and value not in CALENDAR:
        raise InvalidCaveat("a window name is day, week or month")
    return parse_window(value)


class _Metered(ScopedCaveat):
    """Marks caveats that consume shared state when a call is allowed (optionally only for some tools)."""

    __slots__ = ()
    metered: ClassVar[bool] = True
    json_optional: ClassVar[frozenset[str]] = frozenset({"w", "for"})


@attrs.frozen(init=False)
class Budget(_Metered):
    """The sum of ``arg`` over allowed calls stays at most ``cap`` (per ``window``); amounts are exact.

    Each call's amount must be a non-negative amount. Spends are reserved when
    a call is allowed and committed or released when the tool finishes.
    """

    arg: str
    cap: Decimal
    window: "int | str | None"
    tool: str | None = None

    kind: ClassVar[str] = "budget"
    json_fields: ClassVar[frozenset[str]] = frozenset({"arg", "cap"})

    def __init__(self, arg: str, cap: "int | Decimal | str", window: "int | str | None" = None, *,
                 tool: str | None = None) -> None:
        try:
            bound = coerce_bound(cap)
        except AmountError as exc:
            raise InvalidCaveat(f"budget cap {exc}") from None
        if bound < 0:
            raise InvalidCaveat("a budget cap must not be negative")
        self.__attrs_init__(arg_name(arg), bound, parse_window(window), tool_scope(tool))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.kind, "arg": self.arg, "cap": amount_text(self.cap)}
        if self.window is not None:
            out["w"] = self.window
        return self._scoped(out)

    def encode(self) -> bytes:
        return ('{"arg":%s,"cap":"%s",%s"k":"budget"%s}' % (quote(self.arg), amount_text(self.cap),
                                                           scope_json(self.tool), _window_json(self.window))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Budget":
        cap = amount_field(obj["cap"], "budget cap")
        if cap < 0:
            raise InvalidCaveat("a budget cap must not be negative")
        return build_validated(cls, arg_name(obj["arg"]), cap, _window_field(obj), tool_scope(obj.get("for")))

    def amount(self, call: Call) -> "Decimal | Failure":
        """What this call spends, or the Failure that denies it before any state is touched."""
        values = arg_values(call, self.arg, lists=False)
        if isinstance(values, Failure):
            return values
        try:
            amount = parse_amount(values[0])
        except AmountError as exc:
            return Failure("arg_invalid", f"{self.arg} {show(values[0])} {exc}")
        if amount < 0:
            return Failure("arg_out_of_range", f"{self.arg} {show(amount)} is negative; a budget counts spends of 0 or more")
        return amount

    def _check(self, call: Call) -> Failure | None:
        amount = self.amount(call)
        return amount if isinstance(amount, Failure) else None

    def describe(self) -> str:
        return f"{self.arg} at most {show(self.cap)} {describe_window(self.window)} (cumulative)" + self._scope_words()


@attrs.frozen(init=False)
class CallLimit(_Metered):
    """At most ``n`` allowed calls (per ``window``)."""

    n: int
    window: "int | str | None"
    tool: str | None = None

    kind: ClassVar[str] = "calls"
    json_fields: ClassVar[frozenset[str]] = frozenset({"n"})

    def __init__(self, n: int, window: "int | str | None" = None, *, tool: str | None = None) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_CALLS:
            raise InvalidCaveat(f"a call limit is an integer from 0 to {MAX_CALLS}")
        self.__attrs_init__(n, parse_window(window), tool_scope(tool))

    @property
    def cap(self) -> Decimal:
        return Decimal(self.n)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.kind, "n": self.n}
        if self.window is not None:
            out["w"] = self.window
        return self._scoped(out)

    def encode(self) -> bytes:
        return ('{%s"k":"calls","n":%d%s}' % (scope_json(self.tool), self.n, _window_json(self.window))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "CallLimit":
        n = obj["n"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_CALLS:
            raise InvalidCaveat(f"a call limit is an integer from 0 to {MAX_CALLS}")
        return build_validated(cls, n, _window_field(obj), tool_scope(obj.get("for")))

    def amount(self, call: Call) -> Decimal:
        return _ONE

    def _check(self, call: Call) -> Failure | None:
        return None

    def describe(self) -> str:
        return f"at most {self.n} call{'s' if self.n != 1 else ''} {describe_window(self.window)}" + self._scope_words()


_ONE = Decimal(1)
