"""Caveats on what is called, where, and when: tools, audience, expiry, not-before."""

from __future__ import annotations

import datetime as _dt
from typing import Any, ClassVar, Mapping

import attrs

from ..errors import InvalidCaveat
from ..limits import DEFAULT_LIMITS, Limits
from ._fields import TOOL_PATTERN, quote, show_list, sorted_text_set, text_set
from .base import Call, Caveat, Failure, build_validated
from .matching import glob_match

#: Latest instant a time caveat may name (9999-12-31T23:59:59Z).
MAX_TIMESTAMP = 253402300799


def to_timestamp(value: object, what: str) -> int:
    """Whole Unix seconds from an int or a timezone-aware datetime; raise ``InvalidCaveat``."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidCaveat(f"{what} must be a timezone-aware datetime")
        seconds = value.timestamp()
        if seconds != int(seconds):
            raise InvalidCaveat(f"{what} must be a whole second")
        value = int(seconds)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCaveat(f"{what} must be Unix seconds (int) or an aware datetime")
    if not 0 <= value <= MAX_TIMESTAMP:
        raise InvalidCaveat(f"{what} is outside 1970-01-01 .. 9999-12-31")
    return value


def format_timestamp(seconds: float) -> str:
    """RFC 3339 UTC text of Unix seconds, e.g. 2026-12-01T00:00:00Z."""
    try:
        moment = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (Unix seconds)"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen(init=False)
class Tools(Caveat):
    """The call's tool must match one of ``patterns`` (exact names or globs such as ``bank.*``)."""

    patterns: tuple[str, ...]

    kind: ClassVar[str] = "tools"
    json_fields: ClassVar[frozenset[str]] = frozenset({"v"})

    def __init__(self, *patterns: str, limits: Limits = DEFAULT_LIMITS) -> None:
        items = text_set(patterns, "tool pattern", limits)
        for item in items:
            if not TOOL_PATTERN.fullmatch(item):
                raise InvalidCaveat(
                    "tool pattern must be 1-128 characters of A-Z a-z 0-9 _ . : / - and the wildcards * ?"
                )
        self.__attrs_init__(items)

    def to_json(self) -> dict[str, Any]:
        return {"k": self.kind, "v": list(self.patterns)}

    def encode(self) -> bytes:
        return ('{"k":"tools","v":[%s]}' % ",".join(map(quote, self.patterns))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Tools":
        items = sorted_text_set(obj["v"], "tool pattern", limits)
        for item in items:
            if not TOOL_PATTERN.fullmatch(item):
                raise InvalidCaveat("tool pattern has characters outside A-Z a-z 0-9 _ . : / - * ?")
        return build_validated(cls, items)

    def check(self, call: Call) -> Failure | None:
        tool = call.tool
        for pattern in self.patterns:
            if pattern == tool or (("*" in pattern or "?" in pattern) and glob_match(pattern, tool)):
                return None
        return Failure("tool_not_granted", f"tool {call.tool} is not granted (allowed: {', '.join(self.patterns)})")

    def describe(self) -> str:
        return "tool is " + " or ".join(self.patterns)


@attrs.frozen(init=False)
class Audience(Caveat):
    """The call must be addressed to one of ``names`` (the tool backend's audience)."""

    names: tuple[str, ...]

    kind: ClassVar[str] = "audience"
    json_fields: ClassVar[frozenset[str]] = frozenset({"v"})

    def __init__(self, *names: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.__attrs_init__(text_set(names, "audience", limits))

    def to_json(self) -> dict[str, Any]:
        return {"k": self.kind, "v": list(self.names)}

    def encode(self) -> bytes:
        return ('{"k":"audience","v":[%s]}' % ",".join(map(quote, self.names))).encode()

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "Audience":
        return build_validated(cls, sorted_text_set(obj["v"], "audience", limits))

    def check(self, call: Call) -> Failure | None:
        if call.audience is None:
            return Failure("wrong_audience", f"the call names no audience; the grant is for {show_list(self.names)}")
        if call.audience not in self.names:
            return Failure(
                "wrong_audience", f"audience '{call.audience}' is not {show_list(self.names)}"
            )
        return None

    def describe(self) -> str:
        return "only at " + " or ".join(self.names)


class _Instant(Caveat):
    """A caveat with one field ``at``: a moment in whole Unix seconds, JSON field ``t``."""

    __slots__ = ()
    json_fields: ClassVar[frozenset[str]] = frozenset({"t"})
    #: How the moment is named in error messages.
    what: ClassVar[str] = ""
    at: int

    def __init__(self, at: "int | _dt.datetime") -> None:
        self.__attrs_init__(to_timestamp(at, self.what))  # type: ignore[attr-defined]

    def to_json(self) -> dict[str, Any]:
        return {"k": self.kind, "t": self.at}

    def encode(self) -> bytes:
        return b'{"k":"%s","t":%d}' % (self.kind.encode(), self.at)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> "_Instant":
        return build_validated(cls, to_timestamp(obj["t"], cls.what))


@attrs.frozen(init=False)
class Expires(_Instant):
    """The call must happen before ``at`` (Unix seconds): valid while ``time < at``."""

    at: int

    kind: ClassVar[str] = "expires"
    what: ClassVar[str] = "expiry"

    def check(self, call: Call) -> Failure | None:
        if call.at >= self.at:
            return Failure(
                "expired", f"the grant expired at {format_timestamp(self.at)} (call at {format_timestamp(call.at)})"
            )
        return None

    def describe(self) -> str:
        return f"until {format_timestamp(self.at)}"


@attrs.frozen(init=False)
class NotBefore(_Instant):
    """The call must happen at or after ``at`` (Unix seconds)."""

    at: int

    kind: ClassVar[str] = "not_before"
    what: ClassVar[str] = "not-before time"

    def check(self, call: Call) -> Failure | None:
        if call.at < self.at:
            return Failure(
                "not_yet_valid",
                f"the grant is not valid before {format_timestamp(self.at)} (call at {format_timestamp(call.at)})",
            )
        return None

    def describe(self) -> str:
        return f"not before {format_timestamp(self.at)}"
