"""The least-privilege grant for a task, from a trace of benign runs of it.

``suggest_grant(calls, slack_percent=10)`` returns the tightest grant, in the
caveat kinds capkit has, that admits every call of the trace:

* ``tools``: exactly the tools called;
* per tool (``[for."TOOL"]``): a call limit of the most calls any one episode
  made (plus slack);
* per argument present in every call of the tool:
  - numbers: ``max`` of the largest value (plus slack), ``min = 0`` when no
    value was negative, and a cumulative ``budget`` of the largest total one
    episode spent (plus slack); when every value is an integer, the widened
    bounds are rounded down to integers;
  - email addresses and URLs: ``domain``, the narrowest domain every host is at
    or under (never a bare top-level domain);
  - paths: ``path_under``, the deepest directory holding every path (never ``/``);
  - with ``exact``, addresses and paths instead ``eq``/``one_of`` exactly the values seen;
  - other short identifiers (no spaces, at most 64 characters), and short text
    that repeats (fewer distinct values than calls, such as a passenger's
    name): ``eq`` for one value, ``one_of`` for at most ``max_choices`` values;
  - booleans: ``eq`` when constant;
* everything else is left out, and the notes (comments in the grant file)
  say which argument and why: free text, too many distinct values, nested
  values, absent from some calls (a caveat on it would deny those calls).

The candidate grant is then replayed against the very trace it came from
(``evaluate``, the verifier's own decisions); any caveat that would deny one of
those calls (a path the verifier refuses, a value its grammar rejects) is
dropped with a note. The result admits every call of its input by
construction and by check.
"""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Callable, Sequence

import attrs

from ..core.caveats import (
    ArgsOnly,
    Audience,
    Budget,
    CallLimit,
    Caveat,
    DateWindow,
    Domain,
    Eq,
    Max,
    Min,
    OneOf,
    PathUnder,
    Tools,
)
from ..core.caveats.shape import parse_date_text
from ..core.caveats.amounts import AmountError, parse_amount
from ..core.caveats.matching import MatchError, host_of, split_path
from ..core.errors import InvalidCaveat
from ..grant import Grant, parse_grant, render_grant
from ..suffixes import is_public_suffix
from .replay import EvaluationGrant, evaluate
from .schemas import enum_of, is_free_text, number_bounds, property_of, required_of
from .trace import TraceCall, TraceError

MAX_IDENTIFIER_CHARS = 64
_DAY = 86400


@attrs.frozen
class Suggestion:
    """A suggested grant and the notes that explain it (written as comments)."""

    grant: Grant
    notes: tuple[str, ...]

    def to_toml(self) -> str:
        header = ["Suggested by `capkit suggest`: the tightest grant that admits every call of the trace.",
                  "Review it like code before minting: `capkit mint --from THIS_FILE`.", ""]
        return render_grant(self.grant, header + list(self.notes))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _widen(value: Decimal, slack: Decimal) -> Decimal:
    return value + abs(value) * slack


def _common_domain(hosts: Sequence[str]) -> tuple[str | None, str]:
    """The narrowest domain every host is at or under that is not a public suffix, or None and why not."""
    labels = [h.split(".") for h in hosts]
    common: list[str] = []
    for parts in zip(*(reversed(x) for x in labels)):
        if len(set(parts)) != 1:
            break
        common.insert(0, parts[0])
    shared = ".".join(common)
    if not common:
        return None, "the addresses share no domain at all"
    if is_public_suffix(shared):
        return None, (f"the addresses share nothing narrower than {shared}, a public suffix anyone can register "
                      "under; a domain caveat there would admit every registrant")
    return shared, ""


def _common_directory(values: Sequence[str]) -> str | None:
    try:
        split = [split_path(v) for v in values]
    except MatchError:
        return None
    if len({absolute for absolute, _ in split}) != 1:
        return None
    parents = [segments[:-1] for _, segments in split]
    common: list[str] = []
    for parts in zip(*parents):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    if not common:
        return None
    return ("/" if split[0][0] else "") + "/".join(common)


def _bound(value: Any) -> Decimal | None:
    """A schema's minimum or maximum as an amount, or None when capkit could not state it (ignored)."""
    try:
        return None if value is None else parse_amount(value)
    except AmountError:
        return None


def _is_path(value: str) -> bool:
    return "/" in value and "://" not in value and "@" not in value and not any(c.isspace() for c in value)


def _address_kind(value: str) -> str | None:
    """What an observed value is, for a domain caveat: a URL, an email address, or neither."""
    if "://" in value:
        return "url"
    if value.count("@") == 1:
        return "email"
    return None


class _Builder:
    def __init__(self, slack: Decimal, max_choices: int, exact: bool = False) -> None:
        self.slack = slack
        self.max_choices = max_choices
        self.exact = exact
        self.caveats: list[Caveat] = []
        self.notes: list[str] = []

    def add(self, make: Callable[[], Caveat], what: str) -> None:
        try:
            self.caveats.append(make())
        except (InvalidCaveat, AmountError, MatchError) as exc:
            message = exc.message if isinstance(exc, InvalidCaveat) else str(exc)
            self.notes.append(f"{what}: left out, capkit cannot state it ({message})")

    def numbers(self, tool: str, arg: str, values: list[Any], per_episode: list[list[Any]],
                prop: dict[str, Any] | None = None) -> None:
        try:
            amounts = [parse_amount(v) for v in values]
        except AmountError:
            self.notes.append(f"{tool} {arg}: left out: not every value is a plain number")
            return
        whole = all(isinstance(v, int) for v in values)  # counts (nights, seats) stay whole after slack
        widen = (lambda v: _widen(v, self.slack).to_integral_value(ROUND_FLOOR)) if whole else (
            lambda v: _widen(v, self.slack))
        top = max(amounts)
        low, high = (_bound(b) for b in number_bounds(prop))
        ceiling = widen(top)
        if high is not None and top <= high < ceiling:  # the slack never goes past what the tool accepts
            ceiling = high
        self.add(lambda: Max(arg, ceiling, tool=tool), f"{tool} {arg} max")
        if min(amounts) >= 0:
            floor = low if low is not None and 0 < low <= min(amounts) else Decimal(0)
            self.add(lambda: Min(arg, floor, tool=tool), f"{tool} {arg} min")
            total = max(sum((parse_amount(v) for v in episode), Decimal(0)) for episode in per_episode)
            if total > 0:
                self.add(lambda: Budget(arg, widen(total), tool=tool), f"{tool} {arg} budget")

    def dates(self, tool: str, arg: str, values: list[str]) -> bool:
        """A date window of whole days (UTC) around the observed dates; False if they are not all dates."""
        spans = [parse_date_text(v, 0) for v in values]
        if not values or any(span is None for span in spans):
            return False
        first = min(span[0] for span in spans) // _DAY * _DAY  # type: ignore[index]
        last = (max(span[1] for span in spans) // _DAY + 1) * _DAY - 1  # type: ignore[index]
        pad = math.floor((last + 1 - first) / _DAY * float(self.slack)) * _DAY
        self.add(lambda: DateWindow(arg, first - pad, last + pad, tool=tool), f"{tool} {arg}")
        return True

    def texts(self, tool: str, arg: str, values: list[str], prop: dict[str, Any] | None = None) -> None:
        distinct = sorted(set(values))
        what = f"{tool} {arg}"
        fmt = (prop or {}).get("format")
        if fmt in ("date", "date-time") or (fmt is None and all(parse_date_text(v, 0) for v in values)):
            if self.dates(tool, arg, values):
                return
            if fmt is not None:
                self.notes.append(f"{what}: left out: the schema says {fmt}, but not every value is one")
                return
        kinds = {_address_kind(v) for v in values}
        if fmt == "email" and kinds != {"email"} or fmt == "uri" and kinds != {"url"}:
            self.notes.append(f"{what}: left out: the schema says {fmt}, but not every value is one")
            return
        if self.exact and len(distinct) <= self.max_choices and (kinds & {"email", "url"} or all(
                _is_path(v) for v in values)):  # exactly the addresses and paths seen, not their domain or folder
            self.add(lambda: Eq(arg, distinct[0], tool=tool) if len(distinct) == 1 else OneOf(arg, distinct, tool=tool),
                     what)
            return
        if len(kinds) > 1 and None not in kinds:
            self.notes.append(f"{what}: left out: the values mix email addresses and URLs; a domain caveat "
                              "states one kind")
            return
        if kinds in ({"email"}, {"url"}):
            kind = kinds.pop()
            try:
                domain, why = _common_domain([host_of(v, kind) for v in values])
            except MatchError as exc:
                domain, why = None, (f"not every value is a plain {'address' if kind == 'email' else 'URL'} at a "
                                     f"domain (IP addresses are never domains): {exc.message}")
            if domain is not None:
                self.add(lambda: Domain(arg, domain, kind=kind, tool=tool), what)
                return
            self.notes.append(f"{what}: no domain caveat: {why}")
        elif all(_is_path(v) for v in values):
            directory = _common_directory(values)
            if directory is not None:
                self.add(lambda: PathUnder(arg, directory, tool=tool), what)
                return
            self.notes.append(f"{what}: the paths share no directory below the root")
        enum = enum_of(prop)
        listed = enum is not None and all(v in enum for v in values)  # the schema's closed set: identifiers
        identifiers = listed or all(len(v) <= MAX_IDENTIFIER_CHARS and not any(c.isspace() for c in v) for v in values)
        repeated = len(distinct) < len(values) and all(len(v) <= MAX_IDENTIFIER_CHARS for v in values)
        if not identifiers and not repeated:
            self.notes.append(f"{what}: left out: free text ({_count(len(distinct), 'distinct value')} in "
                              f"{_count(len(values), 'call')}); a caveat cannot bound what text means")
        elif len(distinct) == 1:
            self.add(lambda: Eq(arg, distinct[0], tool=tool), what)
        elif len(distinct) <= self.max_choices:
            self.add(lambda: OneOf(arg, distinct, tool=tool), what)
        else:
            self.notes.append(f"{what}: left out: {len(distinct)} distinct values (more than {self.max_choices}); "
                              "it varies freely")

    def argument(self, tool: str, arg: str, calls: list[TraceCall], prop: dict[str, Any] | None = None) -> None:
        if is_free_text(arg, prop):
            self.notes.append(f"{tool} {arg}: left out: free text by its name (however short a value); a caveat "
                              "cannot bound what text means, and a reworded run would be denied")
            return
        if any(arg not in c.args for c in calls):
            self.notes.append(f"{tool} {arg}: left out: absent from some calls (a caveat on it would deny them)")
            return
        values = [c.args[arg] for c in calls]
        if values and all(isinstance(v, list) for v in values):
            self.lists(tool, arg, values, prop)
            return
        if all(isinstance(v, bool) for v in values):
            if len(set(values)) == 1:
                self.add(lambda: Eq(arg, values[0], tool=tool), f"{tool} {arg}")
            else:
                self.notes.append(f"{tool} {arg}: left out: takes both true and false")
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            per_episode: dict[Any, list[Any]] = defaultdict(list)
            for c in calls:
                per_episode[c.episode].append(c.args[arg])
            self.numbers(tool, arg, values, list(per_episode.values()), prop)
        elif all(isinstance(v, str) for v in values):
            self.texts(tool, arg, values, prop)
        else:
            kinds = sorted({type(v).__name__ for v in values})
            self.notes.append(f"{tool} {arg}: left out: {'/'.join(kinds)} values; caveats constrain scalar "
                              "text, numbers and booleans")


    def lists(self, tool: str, arg: str, values: list[list[Any]], prop: dict[str, Any] | None) -> None:
        """Arrays: element by element, as the text kinds check them (identifiers, addresses, paths, dates)."""
        what = f"{tool} {arg}"
        if any(not v for v in values):
            self.notes.append(f"{what}: left out: some calls send an empty list (a caveat on it would deny them)")
            return
        elements = [e for v in values for e in v]
        if all(isinstance(e, str) for e in elements):
            items = (prop or {}).get("items")
            self.texts(tool, arg, elements, dict(items) if isinstance(items, dict) else None)
            return
        kinds = sorted({type(e).__name__ for e in elements})
        self.notes.append(f"{what}: left out: a list of {'/'.join(kinds)} values; caveats check lists of text "
                          "element by element, not objects or numbers")


def _check_against_trace(grant: Grant, calls: Sequence[TraceCall], at: float) -> list[tuple[int, str]]:
    """(caveat index, denial) for every caveat of ``grant`` that denies a call of the trace it came from."""
    evaluation = evaluate(EvaluationGrant.from_grant(grant), calls, at=at)
    found: dict[int, str] = {}
    for outcome in evaluation.outcomes:
        for reason in outcome.reasons:
            if reason.caveat_index is not None and reason.caveat_index not in found:
                found[reason.caveat_index] = f"line {outcome.call.line}: {reason.message}"
    return sorted(found.items())


def suggest_grant(calls: Sequence[TraceCall], *, slack_percent: float = 0, location: str | None = None,
                  max_choices: int = 10, at: float = 0, tools: "dict[str, Any] | None" = None,
                  exact: bool = False) -> Suggestion:
    """The tightest grant admitting every call of ``calls`` (see the module docstring).

    ``slack_percent`` widens amounts, budgets, call limits and date windows; ``at`` is
    the time calls without one are checked at; ``tools`` maps tool names to their
    argument schemas (``schemas.load_tool_schemas``), which say what each argument is.
    ``exact``: email addresses, URLs and paths become ``eq``/``one_of`` of exactly the
    values seen (at most ``max_choices``) instead of their common domain or directory.
    Raises ``TraceError`` for an empty trace or tool names a grant cannot state.
    """
    if not calls:
        raise TraceError("the trace has no calls to learn a grant from")
    if not 0 <= slack_percent <= 1000 or not math.isfinite(slack_percent):
        raise TraceError("slack must be between 0 and 1000 percent")
    slack = Decimal(str(slack_percent)) / 100
    builder = _Builder(slack, max_choices, exact)
    by_tool: dict[str, list[TraceCall]] = defaultdict(list)
    for call in calls:
        by_tool[call.tool].append(call)
    try:
        builder.caveats.append(Tools(*sorted(by_tool)))
    except InvalidCaveat as exc:
        raise TraceError(f"the trace's tool names cannot be granted: {exc.message}") from None
    audiences = {call.audience for call in calls}
    if len(audiences) == 1 and None not in audiences:
        builder.add(lambda: Audience(*audiences), "audience")
    for tool in sorted(by_tool):
        tool_calls = by_tool[tool]
        counts: dict[Any, int] = defaultdict(int)
        for call in tool_calls:
            counts[call.episode] += 1
        most = max(counts.values())
        builder.add(lambda: CallLimit(most + math.floor(most * slack), tool=tool), f"{tool} calls")
        schema = (tools or {}).get(tool)
        used = sorted({name for call in tool_calls for name in call.args})
        for arg in used:
            builder.argument(tool, arg, tool_calls, property_of(schema, arg))
        allowed = sorted(set(used) | set(required_of(schema)))
        if allowed:
            builder.add(lambda: ArgsOnly(*allowed, tool=tool), f"{tool} argument list")
            declared = schema.get("properties") if isinstance(schema, dict) else None
            closed = sorted(set(declared or ()) - set(allowed))
            builder.notes.append(f"{tool}: only the arguments {', '.join(allowed)}" + (
                f"; closed the optional arguments no benign call used: {', '.join(closed)}" if closed else ""))
    grant = Grant(location, tuple(builder.caveats))
    for _ in range(len(builder.caveats)):
        denials = _check_against_trace(grant, calls, at)
        if not denials:
            break
        index, denial = denials[0]
        dropped = grant.caveats[index - 1]
        builder.notes.append(f"dropped '{dropped.describe()}': it denied a call of the trace ({denial})")
        grant = Grant(location, grant.caveats[: index - 1] + grant.caveats[index:])
    grant = parse_grant(render_grant(grant), now=0)  # the caveats in the order the grant file yields them
    if location is None:
        builder.notes.append("no location: add one (location = \"...\") or pass --location when minting")
    builder.notes.append("no expiry: add one (expires = \"1h\") for the task's duration")
    suggestion = Suggestion(grant, tuple(builder.notes))
    written = parse_grant(suggestion.to_toml(), now=0)  # the exact text a person reviews and mints
    if written != grant:
        raise TraceError("the suggested grant file does not read back as the grant it states; this is a bug")
    return suggestion
