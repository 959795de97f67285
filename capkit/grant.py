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

import datetime as _dt
import re
import sys
from decimal import Decimal
from typing import Any, Iterable

import attrs

from .core.caveats.shape import parse_date_text
from .core.caveats import (
    ArgsOnly,
    DateWindow,
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
from .core.text import escape_bidi, has_bidi_control
from .core.caveats.amounts import format_amount
from .core.errors import GrantError, InvalidCaveat, TimeFormatError
from .suffixes import public_suffix_problem
from .core.timefmt import format_instant, parse_instant

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TOP_KEYS = {"location", "holder", "max_depth", "tools", "expires", "not_before", "audience", "calls", "calls_per",
             "args", "for", "args_only"}
_SCOPE_KEYS = {"args", "calls", "calls_per", "args_only"}
_ARG_KEYS = ("eq", "eq_number", "one_of", "one_of_numbers", "max", "min", "range", "prefix", "path_under", "glob",
             "email_domain", "url_domain", "host_domain", "date_window", "date_tz", "budget", "budget_per")
_OFFSET = re.compile(r"Z|([+-])(\d{2}):(\d{2})", re.ASCII)


def _tz_minutes(value: object, where: str) -> int:
    match = _OFFSET.fullmatch(value) if isinstance(value, str) else None
    if match is None or (match.group(1) and (int(match.group(2)) > 18 or int(match.group(3)) > 59)):
        raise GrantError(f"{where} must be a UTC offset such as \"+02:00\" or \"Z\"")
    if value == "Z":
        return 0
    sign = 1 if match.group(1) == "+" else -1
    return sign * (int(match.group(2)) * 60 + int(match.group(3)))


def window_bound(value: object, where: str, tz: int, *, end: bool) -> int:
    """A date window bound: a date (its first or last second in ``tz``) or an instant with a zone."""
    if isinstance(value, _dt.datetime):
        value = value.isoformat()
    if isinstance(value, _dt.date):
        value = value.isoformat()
    if not isinstance(value, str) or (len(value) > 10 and parse_date_text(value, 0) is not None
                                      and _OFFSET.search(value[10:]) is None):
        raise GrantError(f"{where}: a bound is a date (2024-05-16) or a time with its zone (2024-05-16T10:00Z)")
    span = parse_date_text(value, tz)
    if span is None:
        raise GrantError(f"{where}: {value!r} is not a date or a time with its zone")
    return span[1] if end else span[0]
#: The grant-file key of each address kind of a domain caveat.
DOMAIN_KEYS = {"email_domain": "email", "url_domain": "url", "host_domain": "host"}

__all__ = ["DOMAIN_KEYS", "Grant", "GrantError", "parse_grant", "render_comment", "render_grant", "window_bound"]


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
    from .core.caveats.amounts import AmountError, coerce_bound

    try:
        return coerce_bound(_amount(value, where))
    except AmountError as exc:
        raise GrantError(f"{where} {exc.message}") from None


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


def _arg_caveats(name: str, table: object, tool: str | None = None, prefix: str = "") -> list[Caveat]:
    where = f"{prefix}args.{name}"
    if not isinstance(table, dict) or not table:
        raise GrantError(f"[{where}] must be a table of constraints such as max = \"100\"")
    if "domain" in table:
        raise GrantError(f"[{where}] domain: say what the argument holds: email_domain (an address), url_domain "
                         "(a URL) or host_domain (a host name)")
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
        if key == "date_tz":
            if "date_window" not in table:
                raise GrantError(f"{at} needs a date_window in the same table")
            continue
        if key == "date_window":
            tz = _tz_minutes(table["date_tz"], f"{where}.date_tz") if "date_tz" in table else 0
            if not isinstance(value, list) or len(value) != 2:
                raise GrantError(f"{at} must be [from, until]: dates or times with their zone")
            out.append(DateWindow(name, window_bound(value[0], at, tz, end=False),
                                  window_bound(value[1], at, tz, end=True), tz=tz, tool=tool))
            continue
        if key == "budget":
            window = table.get("budget_per")
            if window is not None and not isinstance(window, (str, int)):
                raise GrantError(f"{where}.budget_per must be a duration such as \"24h\" or day, week, month")
            out.append(Budget(name, _amount(value, at), window, tool=tool))
        elif key == "eq":
            if isinstance(value, float):
                raise GrantError(f"{at}: write numbers as strings or integers, not TOML floats")
            if not isinstance(value, (str, int, bool)):
                raise GrantError(f"{at} must be a string, an integer or a boolean")
            out.append(Eq(name, value, tool=tool))
        elif key == "eq_number":
            out.append(Eq(name, _number(value, at), tool=tool))
        elif key in ("one_of", "one_of_numbers"):
            if not isinstance(value, list) or not value:
                raise GrantError(f"{at} must be a non-empty list")
            if key == "one_of" and all(isinstance(v, str) for v in value):
                out.append(OneOf(name, value, tool=tool))
            elif key == "one_of" and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise GrantError(f"{at} must list only strings or only integers (use one_of_numbers for decimals)")
            else:
                out.append(OneOf(name, [_amount(v, at) for v in value], numbers=True, tool=tool))
        elif key == "max":
            out.append(Max(name, _amount(value, at), tool=tool))
        elif key == "min":
            out.append(Min(name, _amount(value, at), tool=tool))
        elif key == "range":
            if not isinstance(value, list) or len(value) != 2:
                raise GrantError(f"{at} must be a list of two amounts, [low, high]")
            out.append(Range(name, _amount(value[0], at), _amount(value[1], at), tool=tool))
        elif key in DOMAIN_KEYS:
            if not isinstance(value, str):
                raise GrantError(f"{at} must be a string")
            domain = Domain(name, value, kind=DOMAIN_KEYS[key], tool=tool)
            problem = public_suffix_problem(domain.value)
            if problem is not None:
                raise GrantError(f"{at}: {problem}")
            out.append(domain)
        else:
            if not isinstance(value, str):
                raise GrantError(f"{at} must be a string")
            kind = {"prefix": Prefix, "path_under": PathUnder, "glob": Glob}[key]
            out.append(kind(name, value, tool=tool))
    return out


def _args_only(section: dict, prefix: str, tool: str | None) -> list[Caveat]:
    if "args_only" not in section:
        return []
    return [ArgsOnly(*_strings(section["args_only"], f"{prefix}args_only"), tool=tool)]


def _call_limit(section: dict, prefix: str, tool: str | None) -> list[Caveat]:
    if "calls" not in section:
        if "calls_per" in section:
            raise GrantError(f"{prefix}calls_per needs calls")
        return []
    if isinstance(section["calls"], bool) or not isinstance(section["calls"], int):
        raise GrantError(f"{prefix}calls must be an integer")
    return [CallLimit(section["calls"], section.get("calls_per"), tool=tool)]


def parse_grant(text: str, *, now: int) -> Grant:
    """Parse a grant file's text; relative times are counted from ``now``. Raises ``GrantError``.

    Unicode bidirectional controls are refused anywhere in the file, comments included: they make a
    reviewer's editor show the text in another order than the parser reads it.
    """
    if not isinstance(text, str):
        raise GrantError("a grant file is text")
    for number, line in enumerate(text.split("\n"), start=1):
        if has_bidi_control(line):
            raise GrantError(f"line {number} holds a Unicode bidirectional control character, which would make "
                             "the grant read differently from what it says; remove it")
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
        scoped = doc.get("for", {})
        if not isinstance(scoped, dict):
            raise GrantError('for must be tables such as [for."bank.transfer".args.amount]')
        for tool, section in scoped.items():
            if not isinstance(section, dict) or not section or set(section) - _SCOPE_KEYS:
                raise GrantError(f'[for."{tool}"] may hold args, args_only, calls and calls_per')
            section_args = section.get("args", {})
            if not isinstance(section_args, dict):
                raise GrantError(f'for."{tool}".args must be tables such as [for."{tool}".args.amount]')
            for name, table in section_args.items():
                caveats.extend(_arg_caveats(name, table, tool, f'for."{tool}".'))
            caveats.extend(_call_limit(section, f'for."{tool}".', tool))
            caveats.extend(_args_only(section, f'for."{tool}".', tool))
        if "audience" in doc:
            caveats.append(Audience(*_strings(doc["audience"], "audience")))
        caveats.extend(_call_limit(doc, "", None))
        caveats.extend(_args_only(doc, "", None))
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


def _arg_entry(caveat: Caveat) -> tuple[str, object]:
    """The key and value that state an argument caveat in an ``args`` table."""
    if isinstance(caveat, Budget):
        return "budget", caveat.cap
    if isinstance(caveat, Range):
        return "range", [caveat.min, caveat.max]
    if isinstance(caveat, Max):
        return "max", caveat.max
    if isinstance(caveat, Min):
        return "min", caveat.min
    if isinstance(caveat, OneOf):
        return ("one_of_numbers" if caveat.numeric else "one_of"), list(caveat.values)
    value = caveat.value  # type: ignore[attr-defined]
    if isinstance(caveat, Eq) and isinstance(value, Decimal):
        return "eq_number", value
    if isinstance(caveat, Domain):
        return {kind: key for key, kind in DOMAIN_KEYS.items()}[caveat.address_kind], value
    return caveat.kind, value


def _window_entries(caveat: DateWindow) -> list[tuple[str, object]]:
    zone = _dt.timezone(_dt.timedelta(minutes=caveat.tz))
    text = lambda t: _dt.datetime.fromtimestamp(t, zone).isoformat().replace("+00:00", "Z")  # noqa: E731
    entries: list[tuple[str, object]] = [("date_window", [text(caveat.start), text(caveat.end)])]
    if caveat.tz:
        sign = "+" if caveat.tz > 0 else "-"
        entries.append(("date_tz", f"{sign}{abs(caveat.tz) // 60:02d}:{abs(caveat.tz) % 60:02d}"))
    return entries


#: Characters that end a line in TOML, or that an editor may show as a line break.
_LINE_BREAKS = "\n\r\x0b\x0c\x85\u2028\u2029"


def render_comment(line: str) -> str:
    """``line`` as one TOML comment line: nothing in it can end the comment (line breaks, controls and
    bidirectional controls are shown as escapes)."""
    text = "".join(f"\\u{ord(ch):04x}" if ch in _LINE_BREAKS or ord(ch) < 0x20 or ord(ch) == 0x7F else ch
                   for ch in line)
    text = escape_bidi(text)
    return f"# {text}" if text else "#"


def render_grant(grant: Grant, comments: Iterable[str] = ()) -> str:
    """TOML text of ``grant``; raise ``GrantError`` for caveats grant files cannot state."""
    lines = [render_comment(line) for line in comments]
    if grant.location is not None:
        lines.append(f"location = {_toml_string(grant.location)}")
    tools: list[str] = []
    holders: list[str] = []
    depths: list[int] = []
    audiences: list[str] = []
    expires: list[int] = []
    not_before: list[int] = []
    # scope (None: every tool) -> {"args": {name: [(key, value)]}, "calls": CallLimit}
    scopes: dict[str | None, dict[str, Any]] = {}
    for caveat in grant.caveats:
        if isinstance(caveat, Holder):
            if holders:
                raise GrantError("a grant file states one holder")
            holders.append(caveat.public_key.text)
        elif isinstance(caveat, MaxDepth):
            depths.append(caveat.n)
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
        elif isinstance(caveat, CallLimit):
            scope = scopes.setdefault(caveat.tool, {"args": {}})
            if "calls" in scope:
                raise GrantError("a grant file states one call limit per tool scope")
            scope["calls"] = caveat
        elif isinstance(caveat, ArgsOnly):
            scope = scopes.setdefault(caveat.tool, {"args": {}})
            if "args_only" in scope:
                raise GrantError("a grant file states one args_only per tool scope")
            scope["args_only"] = caveat
        elif isinstance(caveat, DateWindow):
            entry = scopes.setdefault(caveat.tool, {"args": {}})["args"].setdefault(caveat.arg, [])
            if any(k == "date_window" for k, _ in entry):
                raise GrantError(f"a grant file states one date_window per argument ({caveat.arg})")
            entry.extend(_window_entries(caveat))
        elif isinstance(caveat, (Eq, OneOf, Max, Min, Range, Prefix, PathUnder, Glob, Domain, Budget)):
            entry = scopes.setdefault(caveat.tool, {"args": {}})["args"].setdefault(caveat.arg, [])
            key, value = _arg_entry(caveat)
            if any(k == key for k, _ in entry):
                raise GrantError(f"a grant file states one {key} per argument ({caveat.arg})")
            entry.append((key, value))
            if isinstance(caveat, Budget) and caveat.window is not None:
                entry.append(("budget_per", caveat.window))
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

    def calls_lines(limit: CallLimit | None) -> list[str]:
        if limit is None:
            return []
        out = [f"calls = {limit.n}"]
        if limit.window is not None:
            out.append(f"calls_per = {_toml_value(limit.window)}")
        return out

    def args_only_lines(caveat: ArgsOnly | None) -> list[str]:
        return [] if caveat is None else [f"args_only = {_toml_value(list(caveat.names))}"]

    lines += calls_lines(scopes.get(None, {}).get("calls"))
    lines += args_only_lines(scopes.get(None, {}).get("args_only"))
    if not_before:
        lines.append(f"not_before = {_toml_string(format_instant(max(not_before)))}")
    if expires:
        lines.append(f"expires = {_toml_string(format_instant(min(expires)))}")
    for scope, section in scopes.items():
        prefix = "" if scope is None else f"for.{_toml_string(scope)}."
        if scope is not None and (section.get("calls") is not None or section.get("args_only") is not None):
            lines += ["", f"[for.{_toml_string(scope)}]", *calls_lines(section.get("calls")),
                      *args_only_lines(section.get("args_only"))]
        for name, entries in section["args"].items():
            lines.append("")
            lines.append(f"[{prefix}args.{name}]")
            for key, value in entries:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
