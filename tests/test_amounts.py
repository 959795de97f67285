"""Amounts are exact Decimals; ambiguous spellings are refused, never coerced."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capkit.core.caveats.amounts import (
    AmountError,
    coerce_bound,
    format_amount,
    parse_amount,
    parse_canonical_amount,
    parse_number,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        (5, "5"),
        (-3, "-3"),
        (98.7, "98.7"),  # the shortest repr, not the binary expansion
        (0.1 + 0.2, "0.30000000000000004"),
        (1e16, "10000000000000000"),
        (-0.0, "0"),
        (Decimal("1.500"), "1.5"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.000"), "0"),
        (Decimal("0.000000000000000001"), "0.000000000000000001"),
    ],
)
def test_accepted_amounts_are_exact(value, expected):
    assert format_amount(parse_amount(value)) == expected
    assert parse_amount(value) == Decimal(expected)


@pytest.mark.parametrize(
    "value, why",
    [
        (True, "boolean"),
        (False, "boolean"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (Decimal("NaN"), "finite"),
        (Decimal("-Infinity"), "finite"),
        ("1_0", "plain decimal"),
        ("1e5", "plain decimal"),
        ("1E5", "plain decimal"),
        ("١٢", "plain decimal"),  # Arabic-Indic digits
        ("１２", "plain decimal"),  # fullwidth digits
        ("+1", "plain decimal"),
        (".5", "plain decimal"),
        ("5.", "plain decimal"),
        (" 1", "plain decimal"),
        ("1 ", "plain decimal"),
        ("0x10", "plain decimal"),
        ("", "plain decimal"),
        ("1" * 65, "plain decimal"),
        (1e300, "integer digits"),
        (10**30, "integer digits"),
        (5e-324, "decimal places"),
        ("1.0000000000000000001", "decimal places"),
        (Decimal("1E+999999"), "integer digits"),
        (Decimal("1E-999999"), "decimal places"),
        (None, "not a number"),
        ([1], "not a number"),
    ],
)
def test_ambiguous_or_oversized_amounts_are_refused(value, why):
    with pytest.raises(AmountError, match=why):
        parse_number(value)
    with pytest.raises(AmountError):
        parse_amount(value)


@pytest.mark.parametrize("text", ["12.50", "007", "00123", "-1.25", "123.000", "0"])
def test_text_is_never_an_argument_amount(text):
    # "00123" may be an account id: a numeric caveat that read it as 123 would also admit "0123" and "123.000".
    with pytest.raises(AmountError, match="is text, not a number"):
        parse_amount(text)


@pytest.mark.parametrize("text, expected", [("12.50", "12.5"), ("007", "7"), ("-1.25", "-1.25")])
def test_bounds_written_as_decimal_text_are_read_exactly(text, expected):
    assert format_amount(coerce_bound(text)) == expected


def test_bounds_refuse_floats():
    with pytest.raises(AmountError, match="not a float"):
        coerce_bound(0.1)


@pytest.mark.parametrize("text", ["1.50", "01", "-0", "1E2", "+1", "1.", " 1", "0.10"])
def test_canonical_amount_text_is_the_only_accepted_spelling(text):
    with pytest.raises(AmountError):
        parse_canonical_amount(text)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-10**20, max_value=10**20))
def test_canonical_text_round_trips(value):
    text = format_amount(value)
    assert parse_canonical_amount(text) == value
    assert format_amount(parse_canonical_amount(text)) == text


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e20, max_value=1e20))
def test_float_arguments_are_read_by_their_shortest_repr(value):
    try:
        amount = parse_amount(value)
    except AmountError:
        return  # too many decimal places: refused, which is fine
    assert amount == Decimal(repr(value))
