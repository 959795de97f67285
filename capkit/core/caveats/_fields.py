"""Helpers shared by caveat kinds: names, the tool scope, reading arguments, showing values."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Iterable

from ..text import escape_bidi
from ..codes import Code
from ..errors import AmountError, InvalidCaveat, MatchError
from ..limits import Limits
from .amounts import format_amount
from .base import Call, Failure, Spec
from .matching import GlobPattern

#: Argument names: a top-level key of the call's arguments.
ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", re.ASCII)
#: Tool names as they appear in calls (MCP's tool-name alphabet plus ':' and '/').
TOOL_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,128}", re.ASCII)
#: Tool-name patterns in grants: tool names plus the wildcards '*' and '?'.
TOOL_PATTERN = re.compile(r"[A-Za-z0-9_.:/*?-]{1,128}", re.ASCII)

_SHOW_CHARS = 64


def check_arg_name(value: str) -> str:
    if not ARG_NAME.fullmatch(value):
        raise MatchError("must be 1-64 characters of A-Z a-z 0-9 _ - (not starting with a digit or '-')")
    return value


def check_tool_pattern(value: str) -> str:
    if not TOOL_PATTERN.fullmatch(value):
        raise MatchError("must be 1-128 characters of A-Z a-z 0-9 _ . : / - and the wildcards * ?")
    if "*" in value:
        GlobPattern(value)  # '***' and '**/**' are refused
    return value


class ArgSpec(Spec):
    """The argument a caveat constrains (JSON ``arg``)."""

    key = "arg"

    def convert(self, value: Any, limits: Limits) -> Any:
        if not isinstance(value, str) or not ARG_NAME.fullmatch(value):
            raise InvalidCaveat("argument name must be 1-64 characters of A-Z a-z 0-9 _ - "
                                "(not starting with a digit or '-')")
        return value


class ScopeSpec(Spec):
    """The optional tool scope (JSON ``for``): a tool name or glob the caveat is limited to."""

    key = "for"
    required = False

    def convert(self, value: Any, limits: Limits) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidCaveat("a caveat's tool scope is a tool name or glob, not "
                                f"{type(value).__name__}")
        try:
            return check_tool_pattern(value)
        except MatchError as exc:
            raise InvalidCaveat(f"a caveat's tool scope {exc.message}") from None


ARG = ArgSpec()
SCOPE = ScopeSpec()


def show(value: Any) -> str:
    """A short, safe rendering of an argument value for a denial sentence (controls and bidi escaped)."""
    if isinstance(value, str):
        shown = value if len(value) <= _SHOW_CHARS else value[:_SHOW_CHARS] + "…"
        shown = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in shown)
        return "'" + escape_bidi(shown) + "'"
    if isinstance(value, Decimal):
        try:
            return format_amount(value)
        except (AmountError, ArithmeticError):
            return str(value)[:_SHOW_CHARS]
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "…"
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
        return Failure(Code.ARG_MISSING, f"the call has no argument '{arg}', which the grant constrains")
    if isinstance(value, (list, tuple)):
        if not lists:
            return Failure(Code.ARG_INVALID, f"{arg} is a list; the grant constrains a single value")
        if not value:
            return Failure(Code.ARG_NOT_ALLOWED, f"{arg} is an empty list; the grant requires each value to be allowed")
        return list(value)
    return [value]


def texts_of(call: Call, arg: str) -> "list[str] | Failure":
    """The text value(s) of ``arg`` (element-wise for a list), or the Failure that denies."""
    values = arg_values(call, arg, lists=True)
    if isinstance(values, Failure):
        return values
    for value in values:
        if not isinstance(value, str):
            return Failure(Code.ARG_INVALID, f"{arg} {show(value)} is not text; the grant constrains text")
    return values
