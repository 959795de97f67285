"""Strict JSON for data that crosses a trust boundary (request bodies, traces, logs).

Python's ``json`` accepts ``NaN`` and ``Infinity`` and lets the last of two
equal keys win. Parsers disagree on duplicate keys, so a body such as
``{"amount": 1, "amount": 5000}`` could be authorized as one value and
executed as the other. ``loads`` refuses both, and anything after the value.
"""

from __future__ import annotations

import json
from typing import Any

from .core.errors import StrictJSONError

__all__ = ["StrictJSONError", "loads"]


def _reject_constant(text: str) -> Any:
    raise StrictJSONError(f"{text} is not a JSON number")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise StrictJSONError("an object has a duplicate key")
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_reject_constant)


def loads(text: str | bytes) -> Any:
    """One JSON value from ``text`` (surrounding white space allowed); ``StrictJSONError`` otherwise."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise StrictJSONError(f"JSON must be text or bytes, not {type(text).__name__}")
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        stripped = text.strip()
        value, end = _DECODER.raw_decode(stripped)
    except StrictJSONError:
        raise
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, nesting too deep
        raise StrictJSONError(f"not valid JSON ({type(exc).__name__})") from None
    if end != len(stripped):
        raise StrictJSONError("not valid JSON (data follows the value)")
    return value
