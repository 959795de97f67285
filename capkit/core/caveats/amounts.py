"""Exact decimal amounts: how argument values and caveat bounds become ``Decimal``.

Arguments arrive as JSON-like values. An argument is an amount only when it is
a number: ints exactly, finite floats by their shortest repr (so the JSON
number 98.7 is Decimal('98.7'), not the binary double's expansion), ``Decimal``
as is. Text is never an amount, however it looks: ``"00123"`` may be an
account identifier, and a numeric caveat that read it as 123 would also admit
``"0123"`` and ``"123.000"``. Booleans, NaN, infinities and magnitudes beyond
the caps below are refused, never coerced. Caveat *bounds* written by a person
may be decimal strings in the ASCII grammar ``-?[0-9]+(\\.[0-9]+)?``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from ..errors import AmountError

#: Digits allowed before the decimal point.
MAX_INTEGER_DIGITS = 30
#: Digits allowed after the decimal point (once trailing zeros are dropped).
MAX_FRACTION_DIGITS = 18
#: Characters of a string amount.
MAX_AMOUNT_CHARS = 64

_ARG_GRAMMAR = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_CANONICAL_GRAMMAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?", re.ASCII)


_ZERO = Decimal(0)
_INT_BOUND = 10**MAX_INTEGER_DIGITS


def _normalize(value: Decimal) -> tuple[Decimal, str]:
    """The bounded value in positional form without trailing zeros, and its canonical text."""
    if not value.is_finite():
        raise AmountError("is not a finite number")
    if not value:
        return _ZERO, "0"
    # Check magnitude before formatting, so 1E+999999 never becomes a huge string.
    adjusted = value.adjusted()
    if adjusted >= MAX_INTEGER_DIGITS:
        raise AmountError(f"has more than {MAX_INTEGER_DIGITS} integer digits")
    if adjusted < -MAX_FRACTION_DIGITS:
        raise AmountError(f"has more than {MAX_FRACTION_DIGITS} decimal places")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
        _, dot, fraction = text.partition(".")
        if dot and len(fraction) > MAX_FRACTION_DIGITS:
            raise AmountError(f"has more than {MAX_FRACTION_DIGITS} decimal places")
    return Decimal(text), text


def _bounded(value: Decimal) -> Decimal:
    return _normalize(value)[0]


def parse_amount(value: object) -> Decimal:
    """The exact ``Decimal`` of an argument value (a number, never text); raise ``AmountError`` if it is none."""
    if isinstance(value, str):
        raise AmountError("is text, not a number (numeric caveats accept JSON numbers only)")
    return parse_number(value)


def parse_number(value: object) -> Decimal:
    """The exact ``Decimal`` of a number, or of decimal text in the ASCII grammar (caveat bounds)."""
    if isinstance(value, bool):
        raise AmountError("is a boolean, not an amount")
    if isinstance(value, int):
        if -_INT_BOUND < value < _INT_BOUND:
            return Decimal(value)  # already exact and positional
        raise AmountError(f"has more than {MAX_INTEGER_DIGITS} integer digits")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AmountError("is not a finite number")
        return _bounded(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return _bounded(value)
    if isinstance(value, str):
        if len(value) > MAX_AMOUNT_CHARS or not _ARG_GRAMMAR.fullmatch(value):
            raise AmountError("is not a plain decimal number such as 12.50")
        try:
            return _bounded(Decimal(value))
        except InvalidOperation as exc:  # pragma: no cover - grammar checked above
            raise AmountError("is not a plain decimal number such as 12.50") from exc
    raise AmountError(f"is a {type(value).__name__}, not a number")


def format_amount(value: Decimal) -> str:
    """The canonical text of an amount: no exponent, no trailing zeros, no '-0'."""
    return _normalize(value)[1]


def amount_text(value: Decimal) -> str:
    """Canonical text of an amount already normalized by this module (fast path for encoding)."""
    return format(value, "f")


def parse_canonical_amount(text: object) -> Decimal:
    """Decode an amount from a caveat; only its canonical text is accepted."""
    if not isinstance(text, str) or len(text) > MAX_AMOUNT_CHARS:
        raise AmountError("must be a decimal string")
    if not _CANONICAL_GRAMMAR.fullmatch(text) or text == "-0":
        raise AmountError("is not a canonical decimal string")
    integer, _, fraction = text.lstrip("-").partition(".")
    if len(integer) > MAX_INTEGER_DIGITS:
        raise AmountError(f"has more than {MAX_INTEGER_DIGITS} integer digits")
    if len(fraction) > MAX_FRACTION_DIGITS:
        raise AmountError(f"has more than {MAX_FRACTION_DIGITS} decimal places")
    return Decimal(text)


def coerce_bound(value: object) -> Decimal:
    """A caveat bound given in Python (int, Decimal, canonical-grammar str) as ``Decimal``.

    Floats are refused here: a person writing a grant should say ``Decimal('0.1')``
    or ``"0.1"``, never a binary double.
    """
    if isinstance(value, float):
        raise AmountError("must be an int, Decimal or decimal string, not a float")
    return parse_number(value)
