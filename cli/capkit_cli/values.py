"""How command-line values are typed.

``--arg`` values (a call's arguments): ``true``/``false``/``null`` are JSON
literals; a number written as JSON writes it (``12.50``, ``-3``, ``0.5``; no
leading zeros) becomes a number (``Decimal``, exact); a JSON string literal
such as ``'"007"'`` is that text; anything else is text as written, so
``00123`` stays the text ``00123``. ``--args-json`` gives exact JSON types.

Grant flags keep what the person typed: ``--eq`` and ``--one-of`` values are
text, always; numbers and booleans have flags of their own (``--eq-number``,
``--one-of-numbers``, ``--eq-bool``).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from .errors import InputError

_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", re.ASCII)


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


def list_value(text: str, flag: str) -> list[str]:
    """A comma-separated list of values as typed, or a JSON array of strings (for values that contain commas)."""
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            raise InputError(f"{flag}: {text!r} is not a JSON array of strings") from None
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise InputError(f"{flag}: {text!r} is not a JSON array of strings")
        return items
    return text.split(",")


def number_value(text: str, flag: str) -> Decimal:
    """A plain decimal number such as ``12.50`` (exact); an ``InputError`` naming ``flag`` otherwise."""
    if not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", text, re.ASCII):
        raise InputError(f"{flag}: {text!r} is not a plain decimal number such as 12.50")
    return Decimal(text)


def split_scoped(text: str, flag: str) -> tuple[str, str | None, str]:
    """``ARG=VALUE`` or ``ARG@TOOL=VALUE`` (the caveat then applies to calls of TOOL only)."""
    name, value = split_assignment(text, flag)
    arg, at, tool = name.partition("@")
    if at and not tool:
        raise InputError(f"{flag} expects ARG@TOOL=VALUE, got {text!r}")
    return arg, (tool if at else None), value
