"""ArgsOnly (a closed argument list) and DateWindow (dates written as text), issue 17."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capkit.caveats import ArgsOnly, DateWindow
from capkit.core.caveats import REGISTRY, Call
from capkit.core.caveats.shape import parse_date_text
from capkit.core.errors import InvalidCaveat
from capkit.grant import parse_grant, render_grant

START = int(dt.datetime(2024, 5, 16, tzinfo=dt.timezone.utc).timestamp())
END = START + 2 * 86400 - 1


def check(caveat, tool="cal.create", **args):
    return caveat.check(Call(tool, args, None, 0.0))


def test_a_closed_argument_list_denies_any_other_argument():
    only = ArgsOnly("to", "subject", tool="mail.send")
    assert check(only, "mail.send", to="a", subject="b") is None
    assert check(only, "mail.send", to="a") is None  # fewer is fine (required-ness is the tool's business)
    failure = check(only, "mail.send", to="a", bcc="evil@x.example")
    assert failure.code == "arg_unexpected" and "'bcc'" in failure.message
    assert check(only, "mail.read", bcc="x") is None  # scoped
    assert REGISTRY.decode(only.encode()) == only and only.names == ("subject", "to")
    assert ArgsOnly(["b", "a"]) == ArgsOnly("a", "b")
    with pytest.raises(InvalidCaveat):
        ArgsOnly("not a name")


def test_a_date_window_reads_dates_strictly():
    window = DateWindow("start", START, END, tz=0)
    for good in ("2024-05-16", "2024-05-17", "2024-05-16T00:00", "2024-05-17 23:59:59", "2024-05-17T23:59:59.999",
                 "2024-05-18T01:00:00+02:00", "2024-05-16T00:00:00Z"):
        assert check(window, start=good) is None, good
    for outside in ("2024-05-15", "2024-05-18", "2024-05-15T23:59:59", "2024-05-18T00:00:00Z",
                    "2024-05-17T23:00:00-02:00"):
        assert check(window, start=outside).code == "arg_out_of_range", outside
    for bad in ("2024-5-16", "2024-05-16T24:00", "2024-05-16T10:00:60", "2024-02-30", "2024-W20-4", "2024-137",
                "16/05/2024", "2024-05-16Z", "2024-05-16T10:00+19:00", "2024-05-16T10:00:00.1234567890",
                " 2024-05-16", "tomorrow"):
        assert check(window, start=bad).code == "arg_invalid", bad
    assert check(window, start=5).code == "arg_invalid"
    assert check(window).code == "arg_missing"
    assert check(window, start=["2024-05-16", "2024-05-19"]).code == "arg_out_of_range"  # each element
    with pytest.raises(InvalidCaveat):
        DateWindow("start", END, START)


def test_values_without_a_zone_are_read_in_the_windows_zone():
    plus_two = DateWindow("start", START - 7200, END - 7200, tz=120)  # the same two days, in +02:00
    assert check(plus_two, start="2024-05-16") is None and check(plus_two, start="2024-05-17 23:59") is None
    assert check(plus_two, start="2024-05-17T22:00:00Z").code == "arg_out_of_range"  # = 2024-05-18 00:00 +02:00
    assert check(plus_two, start="2024-05-15T22:00:00Z") is None  # = 2024-05-16 00:00 +02:00
    assert DateWindow("start", START, END).check(Call("x", {"start": "2024-05-16"}, None, 0.0)) is None


@given(moment=st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(9998, 12, 30)),
       offset=st.integers(-18 * 60 + 1, 18 * 60 - 1).map(lambda m: m - m % 15),
       form=st.sampled_from(["T", " "]), seconds=st.booleans())
def test_date_texts_agree_with_the_standard_library(moment, offset, form, seconds):
    moment = moment.replace(microsecond=0)
    zone = dt.timezone(dt.timedelta(minutes=offset))
    text = moment.strftime("%Y-%m-%d") + form + moment.strftime("%H:%M" + (":%S" if seconds else ""))
    expected = int(moment.replace(tzinfo=zone, second=moment.second if seconds else 0).timestamp())
    assert parse_date_text(text, offset) == (expected, expected)
    sign = "+" if offset >= 0 else "-"
    zoned = text + f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
    assert parse_date_text(zoned, 0) == (expected, expected)


def test_grant_files_and_the_command_line_state_both_kinds(tmp_path):
    grant = parse_grant("""
tools = ["cal.create"]
[for."cal.create"]
args_only = ["start", "title"]
[for."cal.create".args.start]
date_window = ["2024-05-16", "2024-05-17"]
date_tz = "+02:00"
""", now=0)
    window = next(c for c in grant.caveats if isinstance(c, DateWindow))
    assert (window.start, window.end, window.tz) == (START - 7200, END - 7200, 120)
    assert parse_grant(render_grant(grant), now=0) == grant
    for bad in ('date_window = ["2024-05-17", "2024-05-16"]', 'date_window = ["2024-05-16T10:00", "2024-05-17"]',
                'date_window = ["2024-05-16"]', 'date_tz = "+02:00"'):
        with pytest.raises(Exception) as raised:
            parse_grant(f'tools = ["x"]\n[args.start]\n{bad}\n', now=0)
        assert raised.type.__name__ == "GrantError"
