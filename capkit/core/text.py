"""Validation of strings that appear in tokens: NFC, printable, bounded, no bidirectional controls."""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidCaveat


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Unicode bidirectional controls (embeddings, overrides, isolates, marks): they make text
#: display in another order than it is stored, so a grant could read differently from what it says.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


def has_control(value: str) -> bool:
    """True if ``value`` contains a C0 or C1 control character or DEL."""
    return _CONTROL.search(value) is not None


def has_bidi_control(value: str) -> bool:
    """True if ``value`` contains a Unicode bidirectional control character."""
    return _BIDI.search(value) is not None


def escape_bidi(value: str) -> str:
    """``value`` with bidirectional controls (and other controls) shown as ``\\u202e`` escapes, for review."""
    if _BIDI.search(value) is None and _CONTROL.search(value) is None:
        return value
    return "".join(f"\\u{ord(ch):04x}" if ch in BIDI_CONTROLS or _CONTROL.match(ch) else ch for ch in value)


def text_problem(value: object, max_chars: int) -> str | None:
    """Why ``value`` is not acceptable token text, or None when it is.

    Acceptable: a non-empty ``str`` of at most ``max_chars`` characters, in
    Unicode NFC, without control characters, bidirectional controls or lone surrogates.
    """
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if not value:
        return "must not be empty"
    if len(value) > max_chars:
        return f"is longer than {max_chars} characters"
    if not value.isascii():
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            return "contains a lone surrogate"
        if not unicodedata.is_normalized("NFC", value):
            return "is not in Unicode NFC form"
        if has_bidi_control(value):
            return "contains a Unicode bidirectional control character (it would display in another order)"
    if has_control(value):
        return "contains a control character"
    return None


# Control characters, DEL, bidirectional controls and lone surrogates: one search covers the common case.
_UNWANTED = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}\ud800-\udfff]")


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
