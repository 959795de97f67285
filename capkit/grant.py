"""Grant files: a human-writable TOML statement of a token's caveats, reviewable like code.

Format (specs/GRANT.md)::

    location = "bank"
    holder = "capkit_pk_..."         # optional: the agent that must prove possession
    tools = ["bank.transfer"]
    expires = "24h"                  # a duration from now, or RFC 3339
    audience = ["bank-api"]

    [args.recipient]
    one_of = ["landlord"]

    [args.amount]
    max = "1250"                     # amounts: strings or integers, never floats

    [args.currency]
    eq = "USD"

``parse_grant`` turns the text into a ``Grant`` (location and caveats, in a
fixed order); ``Grant.to_toml`` writes one back. Unknown keys are errors.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any, Iterable

import attrs

from .caveats import (
    Audience,
    Budget,
    CallLimit,
    Caveat,
    Domain,
    Eq,
    Expires,
    Glob,
    Holder,
    Max,
    MaxDepth,
    Min,
    NotBefore,
    OneOf,
    PathUnder,
    Prefix,
    Range,
    Tools,
)
from .caveats.amounts import format_amount
from .errors import CapkitError, InvalidCaveat
from .timefmt import TimeFormatError, format_instant, parse_instant

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TOP_KEYS = {"location", "holder", "max_depth", "tools", "expires", "not_before", "audience", "calls", "calls_per",
             "args"}
_ARG_KEYS = ("eq", "eq_number", "one_of", "one_of_numbers", "max", "min", "range", "prefix", "path_under", "glob",
             "domain", "budget", "budget_per")


class GrantError(CapkitError):
    """A grant file is not valid; the message names the offending key."""

    code = "bad_grant"


@attrs.frozen
class Grant:
    """What a grant file states: the location (None if unstated) and the caveats, in order."""

    location: str | None
    caveats: tuple[Caveat, ...]

    def to_toml(self, comments: Iterable[str] = ()) -> str:
        """A grant file stating the same caveats (those that grant files can express)."""
        return render_grant(self, comments)


def _amount(value: object, where: str) -> Any:
    if isinstance(value, float):
        raise GrantError(f"{where}: write amounts as strings or integers (\"12.50\"), not TOML floats")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise GrantError(f"{where}: an amount must be a string such as \"12.50\" or an integer")
    return value


def _number(value: object, where: str) -> Decimal:
    from .caveats.amounts import AmountError, parse_amount

    try:
        return parse_amount(_amount(value, where))
    except AmountError as exc:
        raise GrantError(f"{where} {exc}") from None


def _strings(value: object, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise GrantError(f"{where} must be a string or a non-empty list of strings")
    return value


def _time(value: object, where: str, now: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if hasattr(value, "timestamp") and hasattr(value, "tzinfo"):  # a TOML offset date-time
        if value.tzinfo is None:  # type: ignore[union-attr]
            raise GrantError(f"{where} has no timezone; add Z for UTC")
        return int(value.timestamp())  # type: ignore[union-attr]
    if not isinstance(value, str):
        raise GrantError(f"{where} must be a duration such as \"24h\" or an RFC 3339 time")
    try:
        return parse_instant(value, now=now)
    except TimeFormatError as exc:
        raise GrantError(f"{where}: {exc.message}") from None


def _arg_caveats(name: str, table: object) -> list[Caveat]:
    where = f"args.{name}"
    if not isinstance(table, dict) or not table:
        raise GrantError(f"[{where}] must be a table of constraints such as max = \"100\"")
    unknown = set(table) - set(_ARG_KEYS)
    if unknown:
        raise GrantError(f"[{where}] has unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_ARG_KEYS)}")
    out: list[Caveat] = []
    for key in _ARG_KEYS:  # a fixed order, whatever the file's order
        if key not in table:
            continue
        value = table[key]
        at = f"{where}.{key}"
        if key == "budget_per":
            if "budget" not in table:
                raise GrantError(f"{at} needs a budget in the same table")
            continue
        if key == "budget":
            window = table.get("budget_per")
            if window is not None and not isinstance(window, (str, int)):
                raise GrantError(f"{where}.budget_per must be a duration such as \"24h\" or day, week, month")
            out.append(Budget(name, _amount(value, at), window))
        elif key == "eq":
            if isinstance(value, float):
                raise GrantError(f"{at}: write numbers as strings or integers, not TOML floats")
            if not isinstance(value, (str, int, bool)):
                raise GrantError(f"{at} must be a string, an integer or a boolean")
            out.append(Eq(name, value))
        elif key == "eq_number":
            out.append(Eq(name, _number(value, at)))
        elif key in ("one_of", "one_of_numbers"):
            if not isinstance(value, list) or not value:
                raise GrantError(f"{at} must be a non-empty list")
            if key == "one_of" and all(isinstance(v, str) for v in value):
                out.append(OneOf(name, value))
            elif key == "one_of" and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise GrantError(f"{at} must list only strings or only integers (use one_of_numbers for decimals)")
            else:
                out.append(OneOf(name, [_amount(v, at) for v in value], numbers=True))
        elif key == "max":
            out.append(Max(name, _amount(value, at)))
        elif key == "min":
            out.append(Min(name, _amount(value, at)))
        elif key == "range":
            if not isinstance(value, list) or len(value) != 2:
                raise GrantError(f"{at} must be a list of two amounts, [low, high]")
            out.append(Range(name, _amount(value[0], at), _amount(value[1], at)))
        else:
            if not isinstance(value, str):
                raise GrantError(f"{at} must be a string")
            out.append({"prefix": Prefix, "path_under": PathUnder, "glob": Glob, "domain": Domain}[key](name, value))
    return out


def parse_grant(text: str, *, now: int) -> Grant:
    """Parse a grant file's text; relative times are counted from ``now``. Raises ``GrantError``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GrantError(f"the grant file is not valid TOML: {exc}") from None
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise GrantError(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    location = doc.get("location")
    if location is not None and not isinstance(location, str):
        raise GrantError("location must be a string")
    caveats: list[Caveat] = []
    try:
        if "holder" in doc:
            if not isinstance(doc["holder"], str):
                raise GrantError("holder must be an agent public key such as \"capkit_pk_...\"")
            caveats.append(Holder(doc["holder"]))
        if "max_depth" in doc:
            caveats.append(MaxDepth(doc["max_depth"]))
        if "tools" in doc:
            caveats.append(Tools(*_strings(doc["tools"], "tools")))
        args = doc.get("args", {})
        if not isinstance(args, dict):
            raise GrantError("args must be tables such as [args.amount]")
        for name, table in args.items():
            caveats.extend(_arg_caveats(name, table))
        if "audience" in doc:
            caveats.append(Audience(*_strings(doc["audience"], "audience")))
        if "calls" in doc:
            if isinstance(doc["calls"], bool) or not isinstance(doc["calls"], int):
                raise GrantError("calls must be an integer")
            caveats.append(CallLimit(doc["calls"], doc.get("calls_per")))
        elif "calls_per" in doc:
            raise GrantError("calls_per needs calls")
        if "not_before" in doc:
            caveats.append(NotBefore(_time(doc["not_before"], "not_before", now)))
        if "expires" in doc:
            caveats.append(Expires(_time(doc["expires"], "expires", now)))
    except InvalidCaveat as exc:
        raise GrantError(f"the grant file states an invalid caveat: {exc.message}") from None
    if not caveats:
        raise GrantError("the grant file states no caveats; a token without caveats grants every tool")
    return Grant(location, tuple(caveats))


# ------------------------------------------------------------------ writing


def _toml_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _toml_string(format_amount(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise GrantError(f"cannot write {type(value).__name__} to a grant file")


def render_grant(grant: Grant, comments: Iterable[str] = ()) -> str:
    """TOML text of ``grant``; raise ``GrantError`` for caveats grant files cannot state."""
    lines = [f"# {line}" if line else "#" for line in comments]
    if grant.location is not None:
        lines.append(f"location = {_toml_string(grant.location)}")
    tools: list[str] = []
    holders: list[str] = []
    depths: list[int] = []
    calls: list[CallLimit] = []
    audiences: list[str] = []
    expires: list[int] = []
    not_before: list[int] = []
    args: dict[str, list[tuple[str, object]]] = {}
    for caveat in grant.caveats:
        if isinstance(caveat, Holder):
            if holders:
                raise GrantError("a grant file states one holder")
            holders.append(caveat.public_key.text)
        elif isinstance(caveat, MaxDepth):
            depths.append(caveat.n)
        elif isinstance(caveat, CallLimit):
            if calls:
                raise GrantError("a grant file states one call limit")
            calls.append(caveat)
        elif isinstance(caveat, Budget):
            entry = args.setdefault(caveat.arg, [])
            if any(k == "budget" for k, _ in entry):
                raise GrantError(f"a grant file states one budget per argument ({caveat.arg})")
            entry.append(("budget", caveat.cap))
            if caveat.window is not None:
                entry.append(("budget_per", caveat.window))
        elif isinstance(caveat, Tools):
            if tools:
                raise GrantError("a grant file states one tools list")
            tools = list(caveat.patterns)
        elif isinstance(caveat, Audience):
            if audiences:  # two audience caveats: writing one would widen the grant
                raise GrantError("a grant file states one audience list")
            audiences = list(caveat.names)
        elif isinstance(caveat, Expires):
            expires.append(caveat.at)
        elif isinstance(caveat, NotBefore):
            not_before.append(caveat.at)
        elif isinstance(caveat, (Eq, OneOf, Max, Min, Range, Prefix, PathUnder, Glob, Domain)):
            entry = args.setdefault(caveat.arg, [])
            value: object
            if isinstance(caveat, Range):
                value = [caveat.min, caveat.max]
            elif isinstance(caveat, (Max, Min)):
                value = caveat.max if isinstance(caveat, Max) else caveat.min
            elif isinstance(caveat, OneOf):
                value = list(caveat.values)
            else:
                value = caveat.value
            key = caveat.kind
            if isinstance(caveat, (Eq, OneOf)) and isinstance(value if isinstance(caveat, Eq) else value[0], Decimal):
                key = "eq_number" if isinstance(caveat, Eq) else "one_of_numbers"
            if any(k == key for k, _ in entry):
                raise GrantError(f"a grant file states one {key} per argument ({caveat.arg})")
            entry.append((key, value))
        else:
            raise GrantError(f"a {caveat.kind} caveat cannot be written to a grant file")
    if holders:
        lines.append(f"holder = {_toml_string(holders[0])}")
    if depths:
        lines.append(f"max_depth = {min(depths)}")
    if tools:
        lines.append(f"tools = {_toml_value(tools)}")
    if audiences:
        lines.append(f"audience = {_toml_value(audiences)}")
    if calls:
        lines.append(f"calls = {calls[0].n}")
        if calls[0].window is not None:
            lines.append(f"calls_per = {_toml_value(calls[0].window)}")
    if not_before:
        lines.append(f"not_before = {_toml_string(format_instant(max(not_before)))}")
    if expires:
        lines.append(f"expires = {_toml_string(format_instant(min(expires)))}")
    for name, entries in args.items():
        lines.append("")
        lines.append(f"[args.{name}]")
        for kind, value in entries:
            lines.append(f"{kind} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
