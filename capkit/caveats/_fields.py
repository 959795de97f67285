"""Helpers shared by caveat kinds: validating fields, reading arguments, showing values."""

from __future__ import annotations

import re
from decimal import Decimal
from json.encoder import encode_basestring as quote  # noqa: F401 - JSON string literal, as json.dumps writes it
from typing import Any, Iterable

from .._text import require_text  # noqa: F401 - re-exported for kinds
from ..errors import InvalidCaveat
from ..limits import DEFAULT_LIMITS, Limits
from .amounts import AmountError, format_amount, parse_canonical_amount
from .base import Call, Failure

#: Argument names: a top-level key of the call's arguments.
ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", re.ASCII)
#: Tool names as they appear in calls (MCP's tool-name alphabet plus ':' and '/').
TOOL_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,128}", re.ASCII)
#: Tool-name patterns in grants: tool names plus the wildcards '*' and '?'.
TOOL_PATTERN = re.compile(r"[A-Za-z0-9_.:/*?-]{1,128}", re.ASCII)

_SHOW_CHARS = 64


def arg_name(value: object) -> str:
    """Validate an argument name; raise ``InvalidCaveat``."""
    if not isinstance(value, str) or not ARG_NAME.fullmatch(value):
        raise InvalidCaveat("argument name must be 1-64 characters of A-Z a-z 0-9 _ - (not starting with a digit or '-')")
    return value


def text(value: object, what: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """Validate a string field of a caveat."""
    return require_text(value, what, limits.max_string_chars)


def text_set(values: Iterable[object], what: str, limits: Limits = DEFAULT_LIMITS) -> tuple[str, ...]:
    """Validate, deduplicate and sort a non-empty set of strings."""
    if isinstance(values, (str, bytes)):
        raise InvalidCaveat(f"{what} must be a list of strings, not one string")
    items = tuple(sorted({text(v, what, limits) for v in values}))
    if not items:
        raise InvalidCaveat(f"{what} must not be empty")
    if len(items) > limits.max_set_items:
        raise InvalidCaveat(f"{what} has more than {limits.max_set_items} members")
    return items


def sorted_text_set(value: object, what: str, limits: Limits = DEFAULT_LIMITS) -> tuple[str, ...]:
    """A set field as decoded from a caveat: a JSON array of valid strings, already sorted and unique.

    Decoding never normalizes a set: an unsorted or duplicated one is not the
    canonical form, so it is refused here (the registry reports it as malformed).
    """
    if type(value) is not list or not value:
        raise InvalidCaveat(f"{what} must be a non-empty list")
    if len(value) > limits.max_set_items:
        raise InvalidCaveat(f"{what} has more than {limits.max_set_items} members")
    for item in value:
        require_text(item, what, limits.max_string_chars)
    for a, b in zip(value, value[1:]):
        if not a < b:
            raise InvalidCaveat(f"{what} is not sorted and unique")
    return tuple(value)


def json_list(value: object, what: str) -> list[Any]:
    """A JSON array field."""
    if not isinstance(value, list):
        raise InvalidCaveat(f"{what} must be a list")
    return value


def amount_field(value: object, what: str) -> Decimal:
    """A canonical decimal string field, as ``Decimal``."""
    try:
        return parse_canonical_amount(value)
    except AmountError as exc:
        raise InvalidCaveat(f"{what} {exc}") from None


def show(value: Any) -> str:
    """A short, safe rendering of an argument value for a denial sentence."""
    if isinstance(value, str):
        shown = value if len(value) <= _SHOW_CHARS else value[:_SHOW_CHARS] + "…"
        return "'" + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in shown) + "'"
    if isinstance(value, Decimal):
        try:
            return format_amount(value)
        except (AmountError, ArithmeticError):
            return str(value)[:_SHOW_CHARS]
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def show_list(values: Iterable[Any], limit: int = 5) -> str:
    """Render up to ``limit`` values, then say how many more there are."""
    values = list(values)
    shown = ", ".join(show(v) for v in values[:limit])
    if len(values) > limit:
        shown += f" and {len(values) - limit} more"
    return shown


def arg_values(call: Call, arg: str, *, lists: bool) -> "list[Any] | Failure":
    """The value(s) of ``arg`` in ``call`` to be judged, or the Failure that denies.

    A missing argument denies (``arg_missing``). With ``lists`` a JSON array is
    judged element by element (every element must pass; an empty array
    denies); without it an array is the wrong type.
    """
    try:
        value = call.args[arg]
    except KeyError:
        return Failure("arg_missing", f"the call has no argument '{arg}', which the grant constrains")
    if isinstance(value, (list, tuple)):
        if not lists:
            return Failure("arg_invalid", f"{arg} is a list; the grant constrains a single value")
        if not value:
            return Failure("arg_not_allowed", f"{arg} is an empty list; the grant requires each value to be allowed")
        return list(value)
    return [value]


def tool_scope(value: object, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """Validate the optional ``for`` field: a tool pattern the caveat is limited to."""
    if value is None:
        return None
    if not isinstance(value, str) or not TOOL_PATTERN.fullmatch(value):
        raise InvalidCaveat("a caveat's tool scope is a tool name or glob of A-Z a-z 0-9 _ . : / - * ?")
    return value


def scope_json(tool: str | None) -> str:
    """The ``"for":...,`` fragment of a scoped caveat's canonical bytes (it sorts just before ``"k"``)."""
    return "" if tool is None else '"for":%s,' % quote(tool)
