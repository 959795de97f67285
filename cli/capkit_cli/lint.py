"""Tokens no call could ever use: refused before they are printed (a person meant something else)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

import click

from capkit.caveats import CallLimit, Caveat, Delegate, Eq, Expires, Holder, Max, Min, NotBefore, OneOf, Range
from capkit.core.timefmt import format_instant

from .errors import InputError


def dead_token_problem(caveats: Iterable[Caveat], now: int) -> str | None:
    """Why no call could ever be allowed by a token with ``caveats``, or None."""
    caveats = list(caveats)
    expiries = [c.at for c in caveats if isinstance(c, Expires)]
    starts = [c.at for c in caveats if isinstance(c, NotBefore)]
    if expiries and min(expiries) <= now:
        return f"it would already be expired (at {format_instant(min(expiries))}); --expires takes a future time"
    if expiries and starts and max(starts) >= min(expiries):
        return (f"it would never be valid: not before {format_instant(max(starts))} but expiring at "
                f"{format_instant(min(expiries))}")
    holders = 0
    for caveat in caveats:
        if isinstance(caveat, Holder):
            holders += 1
            if holders > 1:
                return ("the token already names a holder; a holder changes only by delegation "
                        "(capkit delegate --to PUBKEY), so --holder here makes a token no one can use")
        if isinstance(caveat, Delegate) and holders == 0:
            return "a bearer token cannot be delegated"
        if isinstance(caveat, CallLimit) and caveat.n == 0:
            return "a call limit of 0 allows no call"
    low: dict[tuple, Decimal] = {}
    high: dict[tuple, Decimal] = {}
    equal: dict[tuple, set] = defaultdict(set)
    allowed: dict[tuple, list[frozenset]] = defaultdict(list)
    for caveat in caveats:
        if isinstance(caveat, (Min, Max, Range, Eq, OneOf)) and caveat.tool is None:
            key = (caveat.arg,)
            if isinstance(caveat, (Min, Range)):
                bound = caveat.min
                low[key] = max(low.get(key, bound), bound)
            if isinstance(caveat, (Max, Range)):
                bound = caveat.max
                high[key] = min(high.get(key, bound), bound)
            if isinstance(caveat, Eq):
                equal[key].add(repr(caveat.value))
            if isinstance(caveat, OneOf):
                allowed[key].append(frozenset(repr(v) for v in caveat.values))
    for key in low.keys() & high.keys():
        if low[key] > high[key]:
            return f"{key[0]} must be at least {low[key]} and at most {high[key]}: no value is both"
    for key, values in equal.items():
        if len(values) > 1:
            return f"{key[0]} must equal {' and '.join(sorted(values))} at once"
        if allowed.get(key) and not all(values <= members for members in allowed[key]):
            return f"{key[0]} must equal {next(iter(values))}, which no one_of of it allows"
    for key, sets in allowed.items():
        if len(sets) > 1 and not frozenset.intersection(*sets):
            return f"no value of {key[0]} is in every one_of list given for it"
    return None


def refuse_dead_token(caveats: Iterable[Caveat], now: int) -> None:
    """``InputError`` for a token no call could use; a warning on stderr for one that never expires."""
    caveats = list(caveats)
    problem = dead_token_problem(caveats, now)
    if problem is not None:
        raise InputError(f"refusing to print a token no call could use: {problem}")
    if not any(isinstance(c, Expires) for c in caveats):
        click.echo("warning: this token never expires; add --expires (for example 24h) unless it must live "
                   "until revoked", err=True)
