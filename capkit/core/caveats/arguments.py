"""Caveats on argument values: equality, sets, numeric bounds, prefixes, paths, globs, domains.

Every kind names one top-level argument. A call that lacks the argument is
denied (``arg_missing``); a value of the wrong type is denied (``arg_invalid``);
a value outside the constraint is denied (``arg_not_allowed`` for sets and
patterns, ``arg_out_of_range`` for numeric bounds). The text-valued kinds
(Eq on text, OneOf on text, Prefix, PathUnder, Glob, Domain) also accept a
JSON array argument and then require every element to pass. The numeric
kinds accept only numbers: text such as ``"500"`` is never an amount.

Every kind takes an optional ``tool`` scope (JSON field ``for``): a tool name
or glob. A scoped caveat constrains only calls of matching tools; calls of
other tools satisfy it. (So ``Max("amount", 100, tool="bank.transfer")``
leaves ``bank.balance`` free of an ``amount`` argument.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Mapping

from ..codes import Code
from ..errors import AmountError, InvalidCaveat
from ..limits import DEFAULT_LIMITS, Limits
from ._fields import ARG, SCOPE, arg_values, show, show_list, texts_of
from .amounts import amount_text, coerce_bound, format_amount, parse_amount, parse_canonical_amount
from .base import Amount, Call, Caveat, Choice, Failure, Spec, Text, caveat, field
from .matching import (
    ADDRESS_KINDS,
    GlobPattern,
    MatchError,
    canonical_domain,
    canonical_path,
    domain_is_under,
    host_of,
    path_hazard,
    path_is_under,
)


def amount_of(call: Call, arg: str) -> "Decimal | Failure":
    """The exact amount of ``arg`` in ``call``, or the Failure that denies (missing, a list, not a number)."""
    values = arg_values(call, arg, lists=False)
    if isinstance(values, Failure):
        return values
    try:
        return parse_amount(values[0])
    except AmountError as exc:
        return Failure(Code.ARG_INVALID, f"{arg} {show(values[0])} {exc.message}")


class ScopedCaveat(Caveat):
    """A caveat that may be limited to calls of some tools (field ``tool``, JSON ``for``).

    Subclasses implement ``_check``; ``check`` applies it only to calls in scope.
    """

    __slots__ = ()
    tool: str | None

    def _scope(self) -> GlobPattern | None:
        return None if self.tool is None else self.memo("scope", lambda: GlobPattern(self.tool))

    def applies_to(self, tool: str) -> bool:
        scope = self._scope()
        return scope is None or scope.match(tool)

    def check(self, call: Call) -> Failure | None:
        if self.tool is not None and not self._scope().match(call.tool):  # type: ignore[union-attr]
            return None
        return self._check(call)

    def _check(self, call: Call) -> Failure | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _scope_words(self) -> str:
        return "" if self.tool is None else f" (for tool {self.tool})"


# ------------------------------------------------------------------ equality


class TypedValue(Spec):
    """A value that is text (``s``), an exact number (``n``) or a boolean (``b``): exactly one of the three."""

    def __init__(self, what: str) -> None:
        self.what = what

    @property
    def keys(self) -> frozenset[str]:
        return frozenset({"s", "n", "b"})

    @property
    def required_keys(self) -> frozenset[str]:
        return frozenset()

    def convert(self, value: Any, limits: Limits) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return Text("s", self.what).convert(value, limits)
        if isinstance(value, (int, Decimal)):
            return Amount("n", self.what).convert(value, limits)
        raise InvalidCaveat(f"{self.what} must be text, an int, a Decimal or a boolean, not {type(value).__name__}")

    def dump(self, value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"b": value}
        if isinstance(value, str):
            return {"s": value}
        return {"n": format_amount(value)}

    def load(self, obj: Mapping[str, Any], limits: Limits) -> Any:
        present = [key for key in ("s", "n", "b") if key in obj]
        if len(present) != 1:
            raise InvalidCaveat("eq needs exactly one of s, n, b")
        key = present[0]
        value = obj[key]
        if key == "b" and not isinstance(value, bool):
            raise InvalidCaveat("eq b must be a boolean")
        if key == "s" and not isinstance(value, str):
            raise InvalidCaveat("eq s must be a string")
        if key == "n":
            return Amount("n", self.what).from_json(value, limits)
        return value


@caveat("eq")
class Eq(ScopedCaveat):
    """``arg`` must equal ``value``: text exactly (code points), a number exactly (Decimal), or a boolean."""

    arg: str = field(ARG)
    value: "str | Decimal | bool" = field(TypedValue("eq value"))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, value: "str | int | Decimal | bool", *, tool: str | None = None) -> None:
        self._init(arg=arg, value=value, tool=tool)

    def _check(self, call: Call) -> Failure | None:
        if isinstance(self.value, bool):
            values = arg_values(call, self.arg, lists=False)
            if isinstance(values, Failure):
                return values
            if values[0] is not self.value:
                return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} is {show(values[0])}, must be {show(self.value)}")
            return None
        if isinstance(self.value, str):
            texts = texts_of(call, self.arg)
            if isinstance(texts, Failure):
                return texts
            for value in texts:
                if value != self.value:
                    return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} is {show(value)}, must be {show(self.value)}")
            return None
        amount = amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if amount != self.value:
            return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} is {show(amount)}, must be {show(self.value)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} must be {show(self.value)}" + self._scope_words()


_ONE_OF_NUMBER = Amount("n", "one_of value")
_ONE_OF_TEXT = Text("s", "one_of value")


class TypedSet(Spec):
    """A non-empty set of text (``s``, sorted by code point) or of exact numbers (``n``, sorted by value)."""

    @property
    def keys(self) -> frozenset[str]:
        return frozenset({"s", "n"})

    @property
    def required_keys(self) -> frozenset[str]:
        return frozenset()

    def convert(self, value: Any, limits: Limits) -> Any:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise InvalidCaveat(f"one_of values must be a list, not {type(value).__name__}; "
                                'pass OneOf("arg", ["a", "b"])')
        items = list(value)
        if items and all(isinstance(v, Decimal) or (isinstance(v, int) and not isinstance(v, bool)) for v in items):
            amounts = sorted({_ONE_OF_NUMBER.convert(v, limits) for v in items})
            if len(amounts) > limits.max_set_items:
                raise InvalidCaveat(f"one_of values have more than {limits.max_set_items} members")
            return tuple(amounts)
        if not all(isinstance(v, str) for v in items):
            raise InvalidCaveat("one_of values must all be text, or all be numbers (int or Decimal)")
        texts = sorted({_ONE_OF_TEXT.convert(v, limits) for v in items})
        if not texts:
            raise InvalidCaveat("one_of values must not be empty")
        if len(texts) > limits.max_set_items:
            raise InvalidCaveat(f"one_of values have more than {limits.max_set_items} members")
        return tuple(texts)

    def dump(self, value: Any) -> dict[str, Any]:
        if isinstance(value[0], Decimal):
            return {"n": [amount_text(v) for v in value]}  # ``convert`` normalized them
        return {"s": list(value)}

    def load(self, obj: Mapping[str, Any], limits: Limits) -> Any:
        if ("s" in obj) == ("n" in obj):
            raise InvalidCaveat("one_of needs exactly one of s, n")
        key = "s" if "s" in obj else "n"
        items = obj[key]
        if type(items) is not list or not items:
            raise InvalidCaveat(f"one_of {key} must be a non-empty list")
        if key == "n":
            try:
                return [parse_canonical_amount(v) for v in items]
            except AmountError as exc:
                raise InvalidCaveat(f"one_of n {exc.message}") from None
        if not all(isinstance(v, str) for v in items):
            raise InvalidCaveat("one_of s must list strings")
        return items


@caveat("one_of")
class OneOf(ScopedCaveat):
    """``arg`` must be one of ``values``: all text (exact) or all numbers (Decimal)."""

    arg: str = field(ARG)
    values: "tuple[str, ...] | tuple[Decimal, ...]" = field(TypedSet())
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, values: "Iterable[str] | Iterable[int | Decimal | str]", *, numbers: bool = False,
                 tool: str | None = None) -> None:
        """``values`` are text, or numbers when every value is an int or Decimal (or ``numbers`` is true:
        then decimal strings such as ``"12.50"`` are read as numbers)."""
        if numbers and not isinstance(values, (str, bytes)) and isinstance(values, Iterable):
            try:
                values = [coerce_bound(v) for v in values]
            except AmountError as exc:
                raise InvalidCaveat(f"one_of value {exc.message}") from None
        self._init(arg=arg, values=values, tool=tool)

    @property
    def numeric(self) -> bool:
        """True when the values are numbers."""
        return isinstance(self.values[0], Decimal)

    def _check(self, call: Call) -> Failure | None:
        if self.numeric:
            amount = amount_of(call, self.arg)
            if isinstance(amount, Failure):
                return amount
            if amount not in self.values:
                return Failure(Code.ARG_NOT_ALLOWED,
                               f"{self.arg} {show(amount)} is not one of {show_list(self.values)}")
            return None
        texts = texts_of(call, self.arg)
        if isinstance(texts, Failure):
            return texts
        members = self.memo("set", lambda: frozenset(self.values))
        for value in texts:
            if value not in members:
                return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} {show(value)} is not one of {show_list(self.values)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} must be one of {show_list(self.values, 10)}" + self._scope_words()


# ------------------------------------------------------------ numeric bounds


@caveat("max")
class Max(ScopedCaveat):
    """``arg`` must be a number at most ``max`` (inclusive)."""

    arg: str = field(ARG)
    max: Decimal = field(Amount("max", "max"))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, max: "int | Decimal | str", *, tool: str | None = None) -> None:  # noqa: A002
        self._init(arg=arg, max=max, tool=tool)

    def _check(self, call: Call) -> Failure | None:
        amount = amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if amount > self.max:
            return Failure(Code.ARG_OUT_OF_RANGE, f"{self.arg} {show(amount)} exceeds max {show(self.max)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} at most {show(self.max)}" + self._scope_words()


@caveat("min")
class Min(ScopedCaveat):
    """``arg`` must be a number at least ``min`` (inclusive)."""

    arg: str = field(ARG)
    min: Decimal = field(Amount("min", "min"))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, min: "int | Decimal | str", *, tool: str | None = None) -> None:  # noqa: A002
        self._init(arg=arg, min=min, tool=tool)

    def _check(self, call: Call) -> Failure | None:
        amount = amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if amount < self.min:
            return Failure(Code.ARG_OUT_OF_RANGE, f"{self.arg} {show(amount)} is below min {show(self.min)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} at least {show(self.min)}" + self._scope_words()


@caveat("range")
class Range(ScopedCaveat):
    """``arg`` must be a number with ``min <= arg <= max``."""

    arg: str = field(ARG)
    max: Decimal = field(Amount("max", "range max"))
    min: Decimal = field(Amount("min", "range min"))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, min: "int | Decimal | str", max: "int | Decimal | str",  # noqa: A002
                 *, tool: str | None = None) -> None:
        self._init(arg=arg, min=min, max=max, tool=tool)

    def _validate(self) -> None:
        if self.min > self.max:
            raise InvalidCaveat(f"range min {format_amount(self.min)} is greater than its max "
                                f"{format_amount(self.max)}: it would allow nothing")

    def _check(self, call: Call) -> Failure | None:
        amount = amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if not self.min <= amount <= self.max:
            return Failure(Code.ARG_OUT_OF_RANGE,
                           f"{self.arg} {show(amount)} is outside the range {show(self.min)} to {show(self.max)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} between {show(self.min)} and {show(self.max)}" + self._scope_words()


# ---------------------------------------------------------- text constraints


class TextCaveat(ScopedCaveat):
    """A caveat whose ``value`` constrains a text argument element-wise, examining each value's text."""

    __slots__ = ()
    examines_text = True
    arg: str
    value: str

    def _check(self, call: Call) -> Failure | None:
        texts = texts_of(call, self.arg)
        if isinstance(texts, Failure):
            return texts
        work = call.work
        for value in texts:
            failure = work.charge(value, self, self.arg) or self._check_one(value)
            if failure is not None:
                return failure
        return None

    def _check_one(self, value: str) -> Failure | None:  # pragma: no cover - abstract
        raise NotImplementedError


def _refused(arg: str, value: str, why: str) -> Failure:
    return Failure(Code.ARG_NOT_ALLOWED, f"{arg} {show(value)} is refused: it {why}")


@caveat("prefix")
class Prefix(TextCaveat):
    """``arg`` must start with ``value`` (exact code points, no normalization).

    A value with a ``.`` or ``..`` segment, a backslash, or a character that
    normalizes to one is refused: ``/srv/docs/../../etc`` starts with
    ``/srv/docs/`` but a tool reading it as a path goes elsewhere.
    """

    arg: str = field(ARG)
    value: str = field(Text("v", "prefix"))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, value: str, *, tool: str | None = None) -> None:
        self._init(arg=arg, value=value, tool=tool)

    def _check_one(self, value: str) -> Failure | None:
        if not value.startswith(self.value):
            return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} {show(value)} does not start with {show(self.value)}")
        hazard = path_hazard(value)
        if hazard is not None:
            return _refused(self.arg, value, hazard)
        return None

    def describe(self) -> str:
        return f"{self.arg} starts with {show(self.value)}" + self._scope_words()


@caveat("path_under")
class PathUnder(TextCaveat):
    """``arg`` must be a path equal to or inside ``value``, compared lexically after normalization.

    Absolute and relative paths never match each other; ``..`` segments,
    backslashes, control and confusable characters deny (see ``matching.split_path``).
    """

    arg: str = field(ARG)
    value: str = field(Text("v", "path_under base", canonical_path))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, value: str, *, tool: str | None = None) -> None:
        self._init(arg=arg, value=value, tool=tool)

    def _check_one(self, value: str) -> Failure | None:
        try:
            under = path_is_under(value, self.value)
        except MatchError as exc:
            return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} {show(value)} is refused: {exc.message}")
        if not under:
            return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} {show(value)} is not under {self.value}")
        return None

    def describe(self) -> str:
        return f"{self.arg} is a path under {self.value}" + self._scope_words()


def _glob_pattern(value: str) -> str:
    GlobPattern(value)  # refuses '***' and '**/**'
    return value


@caveat("glob")
class Glob(TextCaveat):
    """``arg`` must match the glob ``value``: ``*`` any run without ``/``, ``**`` any depth, ``?`` one character.

    A value with a ``.`` or ``..`` segment or a backslash is refused, as for ``Prefix``.
    """

    arg: str = field(ARG)
    value: str = field(Text("v", "glob pattern", _glob_pattern))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, value: str, *, tool: str | None = None) -> None:
        self._init(arg=arg, value=value, tool=tool)

    def _check_one(self, value: str) -> Failure | None:
        pattern: GlobPattern = self.memo("glob", lambda: GlobPattern(self.value))
        if not pattern.match(value):
            return Failure(Code.ARG_NOT_ALLOWED, f"{self.arg} {show(value)} does not match {show(self.value)}")
        hazard = path_hazard(value)
        if hazard is not None:
            return _refused(self.arg, value, hazard)
        return None

    def describe(self) -> str:
        return f"{self.arg} matches {show(self.value)}" + self._scope_words()


_KIND_WORDS = {"email": "an email address", "url": "a URL", "host": "a host name"}


def _grant_domain(value: str) -> str:
    """The domain a Domain caveat names: a bare name such as example.com (a URL or an address is refused
    with a sentence saying so, rather than as a malformed label)."""
    for mark, what in (("://", "a URL"), ("/", "a path or URL"), ("@", "an email address")):
        if mark in value:
            raise MatchError(f"{value[:60]!r} is {what}; give only its domain, such as example.com")
    return canonical_domain(value)


@caveat("domain")
class Domain(TextCaveat):
    """``arg`` holds an address of the stated ``kind`` whose host is ``value`` or a subdomain of it.

    ``kind`` says what the argument is: ``"email"`` (a plain address,
    ``local@host``), ``"url"`` (``scheme://host/...``, no user information) or
    ``"host"`` (a bare host name). A value that is not of that kind is refused,
    never guessed from its shape. Hosts are compared as lowercase IDNA A-labels,
    so case, trailing dots and Unicode spellings are normalized;
    ``evil-example.com`` is not under ``example.com``; IP addresses are never domains.
    """

    address_kind: str = field(Choice("a", "domain kind", ADDRESS_KINDS))
    arg: str = field(ARG)
    value: str = field(Text("v", "domain", _grant_domain))
    tool: str | None = field(SCOPE, default=None)

    def __init__(self, arg: str, value: str, *, kind: str, tool: str | None = None) -> None:
        self._init(address_kind=kind, arg=arg, value=value, tool=tool)

    def _check_one(self, value: str) -> Failure | None:
        try:
            host = host_of(value, self.address_kind)
        except MatchError as exc:
            return Failure(Code.ARG_INVALID,
                           f"{self.arg} {show(value)} is refused: as {_KIND_WORDS[self.address_kind]} it "
                           f"{exc.message}")
        if not domain_is_under(host, self.value):
            return Failure(Code.ARG_NOT_ALLOWED,
                           f"{self.arg} {show(value)} is not at {self.value} or a subdomain of it")
        return None

    def describe(self) -> str:
        return (f"{self.arg} is {_KIND_WORDS[self.address_kind]} at {self.value} (or a subdomain)"
                + self._scope_words())


__all__ = ["Domain", "Eq", "Glob", "Max", "Min", "OneOf", "PathUnder", "Prefix", "Range", "ScopedCaveat",
           "TextCaveat", "amount_of", "coerce_bound"]
