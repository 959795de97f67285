"""The caveat flags shared by ``mint``, ``attenuate`` and ``delegate``, and the caveats they state.

Argument flags take ``ARG=VALUE``, or ``ARG@TOOL=VALUE`` to constrain only
calls of TOOL (a name or glob): ``--max amount@bank.transfer=100``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import click

from capkit.caveats import (
    Approval,
    ArgsOnly,
    DateWindow,
    Audience,
    Budget,
    CallLimit,
    Caveat,
    Domain,
    Eq,
    Expires,
    Glob,
    Holder,
    Max,
    MaxDepth,
    Min,
    NotBefore,
    OneOf,
    PathUnder,
    Prefix,
    Range,
    Tools,
)
from capkit.grant import Grant, parse_grant, window_bound
from capkit.errors import GrantError
from capkit.suffixes import public_suffix_problem
from capkit.core.timefmt import parse_instant

from .errors import InputError
from .values import list_value, number_value, split_scoped

_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--holder",), dict(metavar="PUBKEY",
                         help="Bind to an agent key (capkit_pk_...): each call then needs that agent's proof.")),
    (("--max-depth",), dict(type=click.IntRange(0, 64), metavar="N", help="Allow at most N delegations.")),
    (("--tool", "tools"), dict(multiple=True, metavar="NAME",
                               help="Grant a tool by exact name or glob (bank.*). Repeat for several.")),
    (("--eq", "eqs"), dict(multiple=True, metavar="ARG=TEXT",
                           help="Argument must be exactly this text, as typed (00123 stays 00123).")),
    (("--eq-number", "eq_numbers"), dict(multiple=True, metavar="ARG=N",
                                         help="Argument must be the number N (exact decimal; text never matches).")),
    (("--eq-bool", "eq_bools"), dict(multiple=True, metavar="ARG=true|false", help="Argument must be this boolean.")),
    (("--one-of", "one_ofs"), dict(multiple=True, metavar="ARG=V1,V2",
                                   help="Argument must be one of these texts (or a JSON array of strings).")),
    (("--one-of-numbers", "one_of_numbers"), dict(multiple=True, metavar="ARG=N1,N2",
                                                  help="Argument must be one of these numbers.")),
    (("--max", "maxes"), dict(multiple=True, metavar="ARG=N", help="Amount at most N (exact decimal).")),
    (("--min", "mins"), dict(multiple=True, metavar="ARG=N", help="Amount at least N.")),
    (("--range", "ranges"), dict(multiple=True, metavar="ARG=LOW..HIGH", help="Amount between LOW and HIGH.")),
    (("--prefix", "prefixes"), dict(multiple=True, metavar="ARG=TEXT", help="Text must start with TEXT.")),
    (("--path-under", "paths_under"), dict(multiple=True, metavar="ARG=DIR",
                                           help="Path must be DIR or inside it ('..' refused).")),
    (("--glob", "globs"), dict(multiple=True, metavar="ARG=PATTERN",
                               help="Text must match PATTERN (* within a path segment, ** any depth, ? one).")),
    (("--email-domain", "email_domains"), dict(multiple=True, metavar="ARG=DOMAIN",
                                               help="Argument is an email address at DOMAIN or a subdomain.")),
    (("--url-domain", "url_domains"), dict(multiple=True, metavar="ARG=DOMAIN",
                                           help="Argument is a URL whose host is DOMAIN or a subdomain.")),
    (("--host-domain", "host_domains"), dict(multiple=True, metavar="ARG=DOMAIN",
                                             help="Argument is a host name at DOMAIN or a subdomain.")),
    (("--expires",), dict(metavar="WHEN", help="Expiry: a duration from now (30m, 1h, 7d) or RFC 3339 (2026-12-01T00:00:00Z).")),
    (("--not-before",), dict(metavar="WHEN", help="Not valid before WHEN (same forms as --expires).")),
    (("--audience", "audiences"), dict(multiple=True, metavar="NAME", help="Only for this backend (repeatable).")),
    (("--budget", "budgets"), dict(multiple=True, metavar="ARG=CAP[/WINDOW]",
                                   help="Cumulative cap on an argument over allowed calls; WINDOW is a duration "
                                        "(24h) or day, week, month. Example: amount=500/month.")),
    (("--calls",), dict(multiple=True, metavar="N[/WINDOW][@TOOL]",
                        help="At most N allowed calls (per WINDOW; of TOOL only). Example: 20/1h.")),
    (("--args-only", "args_only"), dict(multiple=True, metavar="NAME,NAME[@TOOL]",
                                        help="Calls (of TOOL) may name only these arguments; any other denies "
                                             "(arg_unexpected).")),
    (("--date-window", "date_windows"), dict(multiple=True, metavar="ARG=FROM..UNTIL",
                                             help="Argument is a date or date-time text within FROM..UNTIL (dates, "
                                                  "or times with a zone; values without a zone are read in UTC).")),
    (("--approval", "approvals"), dict(multiple=True, metavar="PUBKEY[@TOOL][:ARG>N]",
                                       help="Calls need the approval of this approver key (capkit approver keygen); "
                                            "@TOOL: only calls of TOOL; :ARG>N: only when ARG is above N. "
                                            "Example: capkit_pk_...@bank.transfer:amount>100.")),
    (("--from", "grant_file"), dict(type=click.Path(dir_okay=False, path_type=Path), metavar="GRANT.toml",
                                    help="Read caveats from a grant file (see specs/GRANT.md).")),
]


def caveat_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add every caveat flag to a click command."""
    for names, kwargs in reversed(_FLAGS):
        fn = click.option(*names, **kwargs)(fn)
    return fn


def _amount(text: str, flag: str) -> Decimal:
    return number_value(text, flag)


def _approval(item: str) -> Caveat:
    """``--approval PUBKEY[@TOOL][:ARG>N]`` as an ``Approval`` caveat."""
    head, colon, threshold = item.partition(":")
    key, at, tool = head.partition("@")
    arg = above = None
    if colon:
        arg, gt, amount = threshold.partition(">")
        if not gt or not arg:
            raise InputError(f"--approval expects PUBKEY[@TOOL][:ARG>N], got {item!r}")
        above = _amount(amount, "--approval")
    if at and not tool:
        raise InputError(f"--approval expects PUBKEY[@TOOL][:ARG>N], got {item!r}")
    return Approval(key, tool=tool or None, arg=arg, above=above)


def caveats_from_flags(params: dict[str, Any], *, now: int) -> tuple[str | None, list[Caveat]]:
    """The location stated by ``--from`` (if any) and the caveats of all flags, in a fixed order."""
    caveats: list[Caveat] = []
    location = None
    if params.get("grant_file") is not None:
        path: Path = params["grant_file"]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read grant file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"grant file {path} is not UTF-8 text") from None
        grant: Grant = parse_grant(text, now=now)
        location = grant.location
        caveats.extend(grant.caveats)
    if params["holder"] is not None:
        caveats.append(Holder(params["holder"]))
    if params["max_depth"] is not None:
        caveats.append(MaxDepth(params["max_depth"]))
    if params["tools"]:
        caveats.append(Tools(*params["tools"]))
    for item in params["eqs"]:
        arg, tool, raw = split_scoped(item, "--eq")
        caveats.append(Eq(arg, raw, tool=tool))
    for item in params["eq_numbers"]:
        arg, tool, raw = split_scoped(item, "--eq-number")
        caveats.append(Eq(arg, number_value(raw, "--eq-number"), tool=tool))
    for item in params["eq_bools"]:
        arg, tool, raw = split_scoped(item, "--eq-bool")
        if raw not in ("true", "false"):
            raise InputError(f"--eq-bool expects ARG=true or ARG=false, got {item!r}")
        caveats.append(Eq(arg, raw == "true", tool=tool))
    for item in params["one_ofs"]:
        arg, tool, raw = split_scoped(item, "--one-of")
        caveats.append(OneOf(arg, list_value(raw, "--one-of"), tool=tool))
    for item in params["one_of_numbers"]:
        arg, tool, raw = split_scoped(item, "--one-of-numbers")
        caveats.append(OneOf(arg, [number_value(v, "--one-of-numbers") for v in raw.split(",")], tool=tool))
    for item in params["maxes"]:
        arg, tool, raw = split_scoped(item, "--max")
        caveats.append(Max(arg, _amount(raw, "--max"), tool=tool))
    for item in params["mins"]:
        arg, tool, raw = split_scoped(item, "--min")
        caveats.append(Min(arg, _amount(raw, "--min"), tool=tool))
    for item in params["ranges"]:
        arg, tool, raw = split_scoped(item, "--range")
        low, sep, high = raw.partition("..")
        if not sep:
            raise InputError(f"--range expects ARG=LOW..HIGH, got {item!r}")
        caveats.append(Range(arg, _amount(low, "--range"), _amount(high, "--range"), tool=tool))
    for flag, key, kind in (("--prefix", "prefixes", Prefix), ("--path-under", "paths_under", PathUnder),
                            ("--glob", "globs", Glob)):
        for item in params[key]:
            arg, tool, raw = split_scoped(item, flag)
            caveats.append(kind(arg, raw, tool=tool))
    for flag, key, address in (("--email-domain", "email_domains", "email"), ("--url-domain", "url_domains", "url"),
                               ("--host-domain", "host_domains", "host")):
        for item in params[key]:
            arg, tool, raw = split_scoped(item, flag)
            domain = Domain(arg, raw, kind=address, tool=tool)
            problem = public_suffix_problem(domain.value)
            if problem is not None:
                raise InputError(f"{flag}: {problem}")
            caveats.append(domain)
    if params["audiences"]:
        caveats.append(Audience(*params["audiences"]))
    for item in params["budgets"]:
        arg, tool, raw = split_scoped(item, "--budget")
        cap, _, window = raw.partition("/")
        caveats.append(Budget(arg, _amount(cap, "--budget"), window or None, tool=tool))
    for item in params["calls"]:
        limit, at, tool = item.partition("@")
        count, _, window = limit.partition("/")
        if not count.isdigit() or (at and not tool):
            raise InputError(f"--calls expects N, N/WINDOW or N/WINDOW@TOOL, got {item!r}")
        caveats.append(CallLimit(int(count), window or None, tool=tool or None))
    for item in params["args_only"]:
        names, at, tool = item.partition("@")
        if (at and not tool) or not names:
            raise InputError(f"--args-only expects NAME,NAME[@TOOL], got {item!r}")
        caveats.append(ArgsOnly(*names.split(","), tool=tool or None))
    for item in params["date_windows"]:
        arg, tool, raw = split_scoped(item, "--date-window")
        start, sep, end = raw.partition("..")
        if not sep:
            raise InputError(f"--date-window expects ARG=FROM..UNTIL, got {item!r}")
        try:
            caveats.append(DateWindow(arg, window_bound(start, "--date-window", 0, end=False),
                                      window_bound(end, "--date-window", 0, end=True), tool=tool))
        except GrantError as exc:
            raise InputError(exc.message) from None
    for item in params["approvals"]:
        caveats.append(_approval(item))
    if params["not_before"] is not None:
        caveats.append(NotBefore(parse_instant(params["not_before"], now=now)))
    if params["expires"] is not None:
        caveats.append(Expires(parse_instant(params["expires"], now=now)))
    return location, caveats
