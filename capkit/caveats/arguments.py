"""Caveats on argument values: equality, sets, numeric bounds, prefixes, paths, globs, domains.

Every kind names one top-level argument. A call that lacks the argument is
denied (``arg_missing``); a value of the wrong type is denied (``arg_invalid``);
a value outside the constraint is denied (``arg_not_allowed`` for sets and
patterns, ``arg_out_of_range`` for numeric bounds). The text-valued kinds
(Eq on text, OneOf on text, Prefix, PathUnder, Glob, Domain) also accept a
JSON array argument and then require every element to pass.

Every kind takes an optional ``tool`` scope (JSON field ``for``): a tool name
or glob. A scoped caveat constrains only calls of matching tools; calls of
other tools satisfy it. (So ``Max("amount", 100, tool="bank.transfer")``
leaves ``bank.balance`` free of an ``amount`` argument.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Iterable, Mapping

import attrs

from ..errors import InvalidCaveat
from ..limits import DEFAULT_LIMITS, Limits
from ._fields import (
    amount_field,
    arg_name,
    arg_values,
    json_list,
    quote,
    scope_json,
    show,
    show_list,
    sorted_text_set,
    text,
    text_set,
    tool_scope,
)
from .amounts import AmountError, amount_text, coerce_bound, format_amount, parse_amount
from .base import Call, Caveat, Failure, build_validated
from .matching import MatchError, canonical_domain, canonical_path, domain_is_under, glob_match, host_of, path_is_under


def _bound(value: object, what: str) -> Decimal:
    try:
        return coerce_bound(value)
    except AmountError as exc:
        raise InvalidCaveat(f"{what} {exc}") from None


def _amount_of(call: Call, arg: str) -> "Decimal | Failure":
    values = arg_values(call, arg, lists=False)
    if isinstance(values, Failure):
        return values
    try:
        return parse_amount(values[0])
    except AmountError as exc:
        return Failure("arg_invalid", f"{arg} {show(values[0])} {exc}")


def _texts_of(call: Call, arg: str) -> "list[str] | Failure":
    values = arg_values(call, arg, lists=True)
    if isinstance(values, Failure):
        return values
    for value in values:
        if not isinstance(value, str):
            return Failure("arg_invalid", f"{arg} {show(value)} is not text; the grant constrains text")
    return values


class ScopedCaveat(Caveat):
    """A caveat that may be limited to calls of some tools (field ``tool``, JSON ``for``).

    Subclasses implement ``_check``; ``check`` applies it only to calls in scope.
    """

    __slots__ = ()
    tool: str | None

    def applies_to(self, tool: str) -> bool:
        return self.tool is None or glob_match(self.tool, tool)

    def check(self, call: Call) -> Failure | None:
        if self.tool is not None and not glob_match(self.tool, call.tool):
            return None
        return self._check(call)

    def _check(self, call: Call) -> Failure | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _scoped(self, out: dict[str, Any]) -> dict[str, Any]:
        if self.tool is not None:
            out["for"] = self.tool
        return out

    def _scope_words(self) -> str:
        return "" if self.tool is None else f" (for tool {self.tool})"


class _ArgumentCaveat(ScopedCaveat):
    __slots__ = ()
    json_optional: ClassVar[frozenset[str]] = frozenset({"for"})


# ------------------------------------------------------------------ equality


@attrs.frozen(init=False)
class Eq(_ArgumentCaveat):
    """``arg`` must equal ``value``: text exactly (code points), a number exactly (Decimal), or a boolean."""

    arg: str
    value: "str | Decimal | bool"
    tool: str | None = None

    kind: ClassVar[str] = "eq"
    json_fields: ClassVar[frozenset[str]] = frozenset({"arg"})
    json_optional: ClassVar[frozenset[str]] = frozenset({"s", "n", "b", "for"})

    def __init__(self, arg: str, value: "str | int | Decimal | bool", *, tool: str | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        if isinstance(value, bool):
            typed: "str | Decimal | bool" = value
        elif isinstance(value, str):
            typed = text(value, "eq value", limits)
        else:
            typed = _bound(value, "eq value")
        self.__attrs_init__(arg_name(arg), typed, tool_scope(tool))

    def to_json(self) -> dict[str, Any]:
        if isinstance(self.value, bool):
            return self._scoped({"k": self.kind, "arg": self.arg, "b": self.value})
        if isinstance(self.value, str):
            return self._scoped({"k": self.kind, "arg": self.arg, "s": self.value})
        return self._scoped({"k": self.kind, "arg": self.arg, "n": format_amount(self.value)})

    def encode(self) -> bytes:
        arg, scope = quote(self.arg), scope_json(self.tool)
        if isinstance(self.value, bool):
            return ('{"arg":%s,"b":%s,%s"k":"eq"}' % (arg, "true" if self.value else "false", scope)).encode()
        if isinstance(self.value, str):
            return ('{"arg":%s,%s"k":"eq","s":%s}' % (arg, scope, quote(self.value))).encode()
        return ('{"arg":%s,%s"k":"eq","n":"%s"}' % (arg, scope, amount_text(self.value))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Eq":
        present = [f for f in ("s", "n", "b") if f in obj]
        if len(present) != 1:
            raise InvalidCaveat("eq needs exactly one of s, n, b")
        field = present[0]
        scope = tool_scope(obj.get("for"))
        if field == "b":
            if not isinstance(obj["b"], bool):
                raise InvalidCaveat("eq b must be a boolean")
            return build_validated(cls, arg_name(obj["arg"]), obj["b"], scope)
        if field == "n":
            return build_validated(cls, arg_name(obj["arg"]), amount_field(obj["n"], "eq n"), scope)
        return build_validated(cls, arg_name(obj["arg"]), text(obj["s"], "eq value", limits), scope)

    def _check(self, call: Call) -> Failure | None:
        if isinstance(self.value, bool):
            values = arg_values(call, self.arg, lists=False)
            if isinstance(values, Failure):
                return values
            if values[0] is not self.value:
                return Failure("arg_not_allowed", f"{self.arg} is {show(values[0])}, must be {show(self.value)}")
            return None
        if isinstance(self.value, str):
            texts = _texts_of(call, self.arg)
            if isinstance(texts, Failure):
                return texts
            for value in texts:
                if value != self.value:
                    return Failure("arg_not_allowed", f"{self.arg} is {show(value)}, must be {show(self.value)}")
            return None
        amount = _amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if amount != self.value:
            return Failure("arg_not_allowed", f"{self.arg} is {show(amount)}, must be {show(self.value)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} must be {show(self.value)}" + self._scope_words()


@attrs.frozen(init=False)
class OneOf(_ArgumentCaveat):
    """``arg`` must be one of ``values``: all text (exact) or all numbers (Decimal)."""

    arg: str
    values: "tuple[str, ...] | tuple[Decimal, ...]"
    tool: str | None = None

    kind: ClassVar[str] = "one_of"
    json_fields: ClassVar[frozenset[str]] = frozenset({"arg"})
    json_optional: ClassVar[frozenset[str]] = frozenset({"s", "n", "for"})

    def __init__(self, arg: str, values: "Iterable[str] | Iterable[int | Decimal | str]", *, numbers: bool = False,
                 tool: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        """``values`` are text unless ``numbers`` is true or every value is an int or Decimal."""
        if isinstance(values, (str, bytes)):
            raise InvalidCaveat("one_of values must be a list, not one string")
        items = list(values)
        if items and all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in items):
            numbers = True
        if numbers:
            amounts = sorted({_bound(v, "one_of value") for v in items})
            if not amounts:
                raise InvalidCaveat("one_of values must not be empty")
            if len(amounts) > limits.max_set_items:
                raise InvalidCaveat(f"one_of values has more than {limits.max_set_items} members")
            typed: "tuple[str, ...] | tuple[Decimal, ...]" = tuple(amounts)
        else:
            typed = text_set(items, "one_of value", limits)
        self.__attrs_init__(arg_name(arg), typed, tool_scope(tool))

    @property
    def numeric(self) -> bool:
        """True when the values are numbers."""
        return isinstance(self.values[0], Decimal)

    def to_json(self) -> dict[str, Any]:
        if self.numeric:
            return self._scoped({"k": self.kind, "arg": self.arg,
                                 "n": [format_amount(v) for v in self.values]})  # type: ignore[arg-type]
        return self._scoped({"k": self.kind, "arg": self.arg, "s": list(self.values)})

    def encode(self) -> bytes:
        arg, scope = quote(self.arg), scope_json(self.tool)
        if self.numeric:
            items = ",".join('"%s"' % amount_text(v) for v in self.values)  # type: ignore[arg-type]
            return ('{"arg":%s,%s"k":"one_of","n":[%s]}' % (arg, scope, items)).encode()
        items = ",".join(map(quote, self.values))  # type: ignore[arg-type]
        return ('{"arg":%s,%s"k":"one_of","s":[%s]}' % (arg, scope, items)).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "OneOf":
        if ("s" in obj) == ("n" in obj):
            raise InvalidCaveat("one_of needs exactly one of s, n")
        scope = tool_scope(obj.get("for"))
        if "n" in obj:
            amounts = [amount_field(v, "one_of n") for v in json_list(obj["n"], "one_of n")]
            return cls(obj["arg"], amounts, numbers=True, tool=scope, limits=limits)
        return build_validated(cls, arg_name(obj["arg"]), sorted_text_set(obj["s"], "one_of value", limits), scope)

    def _check(self, call: Call) -> Failure | None:
        if self.numeric:
            amount = _amount_of(call, self.arg)
            if isinstance(amount, Failure):
                return amount
            if amount not in self.values:
                return Failure("arg_not_allowed", f"{self.arg} {show(amount)} is not one of {show_list(self.values)}")
            return None
        texts = _texts_of(call, self.arg)
        if isinstance(texts, Failure):
            return texts
        for value in texts:
            if value not in self.values:
                return Failure("arg_not_allowed", f"{self.arg} {show(value)} is not one of {show_list(self.values)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} must be one of {show_list(self.values, 10)}" + self._scope_words()


# ------------------------------------------------------------ numeric bounds


@attrs.frozen(init=False)
class Max(_ArgumentCaveat):
    """``arg`` must be a number at most ``max`` (inclusive)."""

    arg: str
    max: Decimal
    tool: str | None = None

    kind: ClassVar[str] = "max"
    json_fields: ClassVar[frozenset[str]] = frozenset({"arg", "max"})

    def __init__(self, arg: str, max: "int | Decimal | str", *, tool: str | None = None) -> None:  # noqa: A002
        self.__attrs_init__(arg_name(arg), _bound(max, "max"), tool_scope(tool))

    def to_json(self) -> dict[str, Any]:
        return self._scoped({"k": self.kind, "arg": self.arg, "max": format_amount(self.max)})

    def encode(self) -> bytes:
        return ('{"arg":%s,%s"k":"max","max":"%s"}'
                % (quote(self.arg), scope_json(self.tool), amount_text(self.max))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Max":
        return build_validated(cls, arg_name(obj["arg"]), amount_field(obj["max"], "max"), tool_scope(obj.get("for")))

    def _check(self, call: Call) -> Failure | None:
        amount = _amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if amount > self.max:
            return Failure("arg_out_of_range", f"{self.arg} {show(amount)} exceeds max {show(self.max)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} at most {show(self.max)}" + self._scope_words()


@attrs.frozen(init=False)
class Min(_ArgumentCaveat):
    """``arg`` must be a number at least ``min`` (inclusive)."""

    arg: str
    min: Decimal
    tool: str | None = None

    kind: ClassVar[str] = "min"
    json_fields: ClassVar[frozenset[str]] = frozenset({"arg", "min"})

    def __init__(self, arg: str, min: "int | Decimal | str", *, tool: str | None = None) -> None:  # noqa: A002
        self.__attrs_init__(arg_name(arg), _bound(min, "min"), tool_scope(tool))

    def to_json(self) -> dict[str, Any]:
        return self._scoped({"k": self.kind, "arg": self.arg, "min": format_amount(self.min)})

    def encode(self) -> bytes:
        return ('{"arg":%s,%s"k":"min","min":"%s"}'
                % (quote(self.arg), scope_json(self.tool), amount_text(self.min))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Min":
        return build_validated(cls, arg_name(obj["arg"]), amount_field(obj["min"], "min"), tool_scope(obj.get("for")))

    def _check(self, call: Call) -> Failure | None:
        amount = _amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if amount < self.min:
            return Failure("arg_out_of_range", f"{self.arg} {show(amount)} is below min {show(self.min)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} at least {show(self.min)}" + self._scope_words()


@attrs.frozen(init=False)
class Range(_ArgumentCaveat):
    """``arg`` must be a number with ``min <= arg <= max``."""

    arg: str
    min: Decimal
    max: Decimal
    tool: str | None = None

    kind: ClassVar[str] = "range"
    json_fields: ClassVar[frozenset[str]] = frozenset({"arg", "min", "max"})

    def __init__(self, arg: str, min: "int | Decimal | str", max: "int | Decimal | str",  # noqa: A002
                 *, tool: str | None = None) -> None:
        low, high = _bound(min, "range min"), _bound(max, "range max")
        if low > high:
            raise InvalidCaveat("range min is greater than its max")
        self.__attrs_init__(arg_name(arg), low, high, tool_scope(tool))

    def to_json(self) -> dict[str, Any]:
        return self._scoped({"k": self.kind, "arg": self.arg, "min": format_amount(self.min),
                             "max": format_amount(self.max)})

    def encode(self) -> bytes:
        return ('{"arg":%s,%s"k":"range","max":"%s","min":"%s"}'
                % (quote(self.arg), scope_json(self.tool), amount_text(self.max), amount_text(self.min))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Range":
        return cls(obj["arg"], amount_field(obj["min"], "range min"), amount_field(obj["max"], "range max"),
                   tool=tool_scope(obj.get("for")))

    def _check(self, call: Call) -> Failure | None:
        amount = _amount_of(call, self.arg)
        if isinstance(amount, Failure):
            return amount
        if not self.min <= amount <= self.max:
            return Failure(
                "arg_out_of_range",
                f"{self.arg} {show(amount)} is outside the range {show(self.min)} to {show(self.max)}",
            )
        return None

    def describe(self) -> str:
        return f"{self.arg} between {show(self.min)} and {show(self.max)}" + self._scope_words()


# ---------------------------------------------------------- text constraints


class _TextCaveat(_ArgumentCaveat):
    """A caveat whose single ``value`` field constrains a text argument element-wise."""

    __slots__ = ()
    json_fields: ClassVar[frozenset[str]] = frozenset({"arg", "v"})
    arg: str
    value: str

    def to_json(self) -> dict[str, Any]:
        return self._scoped({"k": self.kind, "arg": self.arg, "v": self.value})

    def encode(self) -> bytes:
        return ('{"arg":%s,%s"k":"%s","v":%s}'
                % (quote(self.arg), scope_json(self.tool), self.kind, quote(self.value))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "_TextCaveat":
        return cls(obj["arg"], obj["v"], tool=tool_scope(obj.get("for")), limits=limits)  # type: ignore[call-arg]

    def _check(self, call: Call) -> Failure | None:
        texts = _texts_of(call, self.arg)
        if isinstance(texts, Failure):
            return texts
        for value in texts:
            failure = self._check_one(value)
            if failure is not None:
                return failure
        return None

    def _check_one(self, value: str) -> Failure | None:  # pragma: no cover - abstract
        raise NotImplementedError


@attrs.frozen(init=False)
class Prefix(_TextCaveat):
    """``arg`` must start with ``value`` (exact code points, no normalization)."""

    arg: str
    value: str
    tool: str | None = None

    kind: ClassVar[str] = "prefix"

    def __init__(self, arg: str, value: str, *, tool: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.__attrs_init__(arg_name(arg), text(value, "prefix", limits), tool_scope(tool))

    def _check_one(self, value: str) -> Failure | None:
        if not value.startswith(self.value):
            return Failure("arg_not_allowed", f"{self.arg} {show(value)} does not start with {show(self.value)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} starts with {show(self.value)}" + self._scope_words()


@attrs.frozen(init=False)
class PathUnder(_TextCaveat):
    """``arg`` must be a path equal to or inside ``value``, compared lexically after normalization.

    Absolute and relative paths never match each other; ``..`` segments,
    backslashes, control and confusable characters deny (see ``matching.split_path``).
    """

    arg: str
    value: str
    tool: str | None = None

    kind: ClassVar[str] = "path_under"

    def __init__(self, arg: str, value: str, *, tool: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        text(value, "path_under base", limits)
        try:
            base = canonical_path(value)
        except MatchError as exc:
            raise InvalidCaveat(f"path_under base: {exc}") from None
        self.__attrs_init__(arg_name(arg), base, tool_scope(tool))

    def _check_one(self, value: str) -> Failure | None:
        try:
            under = path_is_under(value, self.value)
        except MatchError as exc:
            return Failure("arg_not_allowed", f"{self.arg} {show(value)} is refused: {exc}")
        if not under:
            return Failure("arg_not_allowed", f"{self.arg} {show(value)} is not under {self.value}")
        return None

    def describe(self) -> str:
        return f"{self.arg} is a path under {self.value}" + self._scope_words()


@attrs.frozen(init=False)
class Glob(_TextCaveat):
    """``arg`` must match the glob ``value`` (``*`` any run of characters, ``?`` one character)."""

    arg: str
    value: str
    tool: str | None = None

    kind: ClassVar[str] = "glob"

    def __init__(self, arg: str, value: str, *, tool: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.__attrs_init__(arg_name(arg), text(value, "glob pattern", limits), tool_scope(tool))

    def _check_one(self, value: str) -> Failure | None:
        if not glob_match(self.value, value):
            return Failure("arg_not_allowed", f"{self.arg} {show(value)} does not match {show(self.value)}")
        return None

    def describe(self) -> str:
        return f"{self.arg} matches {show(self.value)}" + self._scope_words()


@attrs.frozen(init=False)
class Domain(_TextCaveat):
    """``arg`` (an email address, URL or host name) must be at ``value`` or a subdomain of it.

    Hosts are compared as lowercase IDNA A-labels, so case, trailing dots and
    Unicode spellings are normalized; ``evil-example.com`` is not under ``example.com``.
    """

    arg: str
    value: str
    tool: str | None = None

    kind: ClassVar[str] = "domain"

    def __init__(self, arg: str, value: str, *, tool: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        text(value, "domain", limits)
        try:
            domain = canonical_domain(value)
        except MatchError as exc:
            raise InvalidCaveat(f"domain: {exc}") from None
        self.__attrs_init__(arg_name(arg), domain, tool_scope(tool))

    def _check_one(self, value: str) -> Failure | None:
        try:
            host = host_of(value)
        except MatchError as exc:
            return Failure("arg_invalid", f"{self.arg} {show(value)} is refused: {exc}")
        if not domain_is_under(host, self.value):
            return Failure("arg_not_allowed", f"{self.arg} {show(value)} is not at {self.value} or a subdomain of it")
        return None

    def describe(self) -> str:
        return f"{self.arg} is an address at {self.value} (or a subdomain)" + self._scope_words()
