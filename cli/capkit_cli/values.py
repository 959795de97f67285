"""How command-line values are typed.

``--arg`` and ``--eq`` values: ``true``/``false``/``null`` are JSON literals; a
plain decimal such as ``12.50`` or ``-3`` becomes a number (``Decimal``,
exact); a JSON string literal such as ``'"007"'`` is that text (quote to force
text); anything else is text as written. ``--args-json`` gives exact JSON types.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from .errors import InputError

_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def typed_value(text: str) -> Any:
    """The typed value of one command-line value (see module docstring)."""
    if text in ("true", "false", "null"):
        return json.loads(text)
    if _DECIMAL.fullmatch(text):
        return Decimal(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            raise InputError(f"{text} is not a valid JSON string literal") from None
        return value
    return text


def split_assignment(text: str, flag: str) -> tuple[str, str]:
    """``NAME=VALUE`` into its parts."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise InputError(f"{flag} expects NAME=VALUE, got {text!r}")
    return name, value


def list_value(text: str, flag: str) -> list[Any]:
    """A comma-separated list of typed values, or a JSON array (for values that contain commas)."""
    if text.startswith("["):
        try:
            items = json.loads(text, parse_float=Decimal)
        except ValueError:
            raise InputError(f"{flag}: {text!r} is not a JSON array") from None
        if not isinstance(items, list):
            raise InputError(f"{flag}: {text!r} is not a JSON array")
        return [Decimal(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in items]
    return [typed_value(part) for part in text.split(",")]


def split_scoped(text: str, flag: str) -> tuple[str, str | None, str]:
    """``ARG=VALUE`` or ``ARG@TOOL=VALUE`` (the caveat then applies to calls of TOOL only)."""
    name, value = split_assignment(text, flag)
    arg, at, tool = name.partition("@")
    if at and not tool:
        raise InputError(f"{flag} expects ARG@TOOL=VALUE, got {text!r}")
    return arg, (tool if at else None), value
