"""Validation of strings that appear in tokens: NFC, printable, bounded."""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidCaveat


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control(value: str) -> bool:
    """True if ``value`` contains a C0 or C1 control character or DEL."""
    return _CONTROL.search(value) is not None


def text_problem(value: object, max_chars: int) -> str | None:
    """Why ``value`` is not acceptable token text, or None when it is.

    Acceptable: a non-empty ``str`` of at most ``max_chars`` characters, in
    Unicode NFC, without control characters or lone surrogates.
    """
    if not isinstance(value, str):
        return "must be text"
    if not value:
        return "must not be empty"
    if len(value) > max_chars:
        return f"is longer than {max_chars} characters"
    if not value.isascii():
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            return "contains a lone surrogate"
        if not unicodedata.is_normalized("NFC", value):
            return "is not in Unicode NFC form"
    if has_control(value):
        return "contains a control character"
    return None


# Control characters, DEL and lone surrogates: one search covers the common case.
_UNWANTED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def require_text(value: object, what: str, max_chars: int) -> str:
    """Return ``value`` if it is acceptable token text; else raise ``InvalidCaveat``.

    The accepting path is one type check, one length check and one search;
    ``text_problem`` computes the sentence only when the value is refused.
    """
    if (
        type(value) is str
        and 0 < len(value) <= max_chars
        and _UNWANTED.search(value) is None
        and (value.isascii() or unicodedata.is_normalized("NFC", value))
    ):
        return value
    raise InvalidCaveat(f"{what} {text_problem(value, max_chars) or 'is not acceptable text'}")
