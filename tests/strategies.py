"""Hypothesis strategies over small domains, so random caveats and calls often interact."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from capkit import Invocation
from capkit.caveats import (
    ArgsOnly,
    Audience,
    DateWindow,
    Domain,
    Eq,
    Expires,
    Glob,
    Max,
    Min,
    NotBefore,
    OneOf,
    PathUnder,
    Prefix,
    Range,
    Tools,
)

from .conftest import NOW

TOOLS = ["bank.transfer", "bank.balance", "mail.send", "files.read"]
TOOL_PATTERNS = TOOLS + ["bank.*", "*", "mail.?end", "files.*"]
RECIPIENTS = ["alice", "bob", "carol", "landlord"]
PATHS = ["/srv/docs", "/srv/docs/a.txt", "/srv", "/etc/passwd", "docs/a", "/srv/docs/../x"]
ADDRESSES = ["a@example.com", "b@mail.example.com", "c@evil-example.com", "https://example.com/x", "d@other.org"]
DOMAINS = ["example.com", "mail.example.com", "other.org"]
AUDIENCES = ["bank-api", "mail-api"]

amounts = st.one_of(
    st.integers(min_value=-5, max_value=2000),
    st.decimals(min_value=-5, max_value=2000, places=2, allow_nan=False, allow_infinity=False),
)
times = st.integers(min_value=NOW - 100, max_value=NOW + 100)

scope = st.one_of(st.none(), st.sampled_from(TOOL_PATTERNS))

scoped = st.one_of(
    st.builds(lambda v, t: Eq("recipient", v, tool=t), st.sampled_from(RECIPIENTS), scope),
    st.builds(lambda v, t: Max("amount", v, tool=t), amounts, scope),
    st.builds(lambda v, t: OneOf("recipient", v, tool=t), st.lists(st.sampled_from(RECIPIENTS), min_size=1,
                                                                         max_size=3), scope),
    st.builds(lambda v, t: PathUnder("path", v, tool=t), st.sampled_from(["/srv/docs", "/srv"]), scope),
    st.builds(lambda v, t: Domain("to", v, kind="email", tool=t), st.sampled_from(DOMAINS), scope),
    st.builds(lambda names, t: ArgsOnly(*names, tool=t),
              st.lists(st.sampled_from(["amount", "recipient", "path", "to", "when"]), min_size=1, max_size=4), scope),
    st.builds(lambda day, span, tz, t: DateWindow("when", 1715731200 + day * 86400,
                                                   1715731200 + (day + span) * 86400 - 1, tz=tz, tool=t),
              st.integers(0, 3), st.integers(1, 3), st.sampled_from([0, 120, -300]), scope),
)

caveat = st.one_of(
    scoped,
    st.lists(st.sampled_from(TOOL_PATTERNS), min_size=1, max_size=3).map(lambda ps: Tools(*ps)),
    st.builds(Eq, st.just("recipient"), st.sampled_from(RECIPIENTS)),
    st.builds(Eq, st.just("amount"), st.integers(min_value=0, max_value=50)),
    st.builds(OneOf, st.just("recipient"), st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=3)),
    st.builds(Max, st.just("amount"), amounts),
    st.builds(Min, st.just("amount"), amounts),
    st.tuples(amounts, amounts).map(lambda ab: Range("amount", min(ab), max(ab))),
    st.builds(Prefix, st.just("path"), st.sampled_from(["/srv", "/srv/docs/", "/e"])),
    st.builds(PathUnder, st.just("path"), st.sampled_from(["/srv/docs", "/srv", "docs"])),
    st.builds(Glob, st.just("to"), st.sampled_from(["*@example.com", "*example.com*", "?@*"])),
    st.builds(lambda d, k: Domain("to", d, kind=k), st.sampled_from(DOMAINS), st.sampled_from(["email", "url", "host"])),
    st.builds(Expires, times),
    st.builds(NotBefore, times),
    st.lists(st.sampled_from(AUDIENCES), min_size=1, max_size=2).map(lambda names: Audience(*names)),
)

arg_value = st.one_of(
    amounts, st.sampled_from(RECIPIENTS + PATHS + ADDRESSES), st.floats(min_value=-5, max_value=2000),
    st.sampled_from(["12.50", "1e3", True, None, "", [], ["alice", "bob"], ["a@example.com"]]),
    st.sampled_from(["2024-05-15", "2024-05-16 10:00", "2024-05-17T23:59:59+02:00", "2024-05-19T01:00:00Z",
                     "2024-02-30", ["2024-05-16", "2024-05-18"]]),
)

invocation = st.builds(
    Invocation,
    st.sampled_from(TOOLS),
    st.dictionaries(st.sampled_from(["amount", "recipient", "path", "to", "when"]), arg_value, max_size=4),
    st.one_of(st.none(), st.sampled_from(AUDIENCES)),
    times,
)

__all__ = ["Decimal", "caveat", "invocation"]
