"""Caveats on what is called, where, and when: tools, audience, expiry, not-before."""

from __future__ import annotations

import datetime as _dt

from ..codes import Code
from ..errors import InvalidCaveat
from ._fields import check_tool_pattern, show_list
from .base import MAX_TIMESTAMP, Call, Caveat, Failure, Instant, TextSet, caveat, field
from .matching import GlobPattern

__all__ = ["MAX_TIMESTAMP", "Audience", "Expires", "NotBefore", "Tools", "format_timestamp"]


def format_timestamp(seconds: float) -> str:
    """RFC 3339 UTC text of Unix seconds, e.g. 2026-12-01T00:00:00Z."""
    try:
        moment = _dt.datetime.fromtimestamp(int(seconds), _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (Unix seconds)"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _patterns(items: tuple[str, ...]) -> tuple[frozenset[str], tuple[GlobPattern, ...]]:
    exact = frozenset(p for p in items if "*" not in p and "?" not in p)
    return exact, tuple(GlobPattern(p) for p in items if p not in exact)


@caveat("tools")
class Tools(Caveat):
    """The call's tool must match one of ``patterns``: exact names or globs (``bank.*``; ``**`` crosses ``/``)."""

    patterns: tuple[str, ...] = field(TextSet("v", "tool pattern", check_tool_pattern))

    def __init__(self, *patterns: str) -> None:
        if len(patterns) == 1 and isinstance(patterns[0], (list, tuple, set, frozenset)):
            patterns = tuple(patterns[0])  # Tools(["a", "b"]) means Tools("a", "b")
        self._init(patterns=patterns)

    def grants(self, tool: str) -> bool:
        """True if ``tool`` matches one of the patterns."""
        exact, globs = self.memo("compiled", lambda: _patterns(self.patterns))
        return tool in exact or any(g.match(tool) for g in globs)

    def check(self, call: Call) -> Failure | None:
        if self.grants(call.tool):
            return None
        return Failure(Code.TOOL_NOT_GRANTED,
                       f"tool {call.tool} is not granted (allowed: {', '.join(self.patterns)})")

    def describe(self) -> str:
        return "tool is " + " or ".join(self.patterns)


@caveat("audience")
class Audience(Caveat):
    """The call must be addressed to one of ``names`` (the tool backend's audience)."""

    names: tuple[str, ...] = field(TextSet("v", "audience"))

    def __init__(self, *names: str) -> None:
        if len(names) == 1 and isinstance(names[0], (list, tuple, set, frozenset)):
            names = tuple(names[0])
        self._init(names=names)

    def check(self, call: Call) -> Failure | None:
        if call.audience is None:
            return Failure(Code.WRONG_AUDIENCE, f"the call names no audience; the grant is for {show_list(self.names)}")
        if call.audience not in self.names:
            return Failure(Code.WRONG_AUDIENCE, f"audience {show_list([call.audience])} is not {show_list(self.names)}")
        return None

    def describe(self) -> str:
        return "only at " + " or ".join(self.names)


@caveat("expires")
class Expires(Caveat):
    """The call must happen before ``at`` (Unix seconds): valid while ``time < at``.

    ``at`` may be an int, a float or an aware datetime; a fraction of a second
    is rounded down, so the grant never lasts longer than asked.
    """

    at: int = field(Instant("t", "expiry", "down"))

    def __init__(self, at: "int | float | _dt.datetime") -> None:
        self._init(at=at)

    def check(self, call: Call) -> Failure | None:
        if call.at >= self.at:
            return Failure(Code.EXPIRED,
                           f"the grant expired at {format_timestamp(self.at)} (call at {format_timestamp(call.at)})")
        return None

    def describe(self) -> str:
        return f"until {format_timestamp(self.at)}"


@caveat("not_before")
class NotBefore(Caveat):
    """The call must happen at or after ``at`` (Unix seconds); a fraction of a second is rounded up."""

    at: int = field(Instant("t", "not-before time", "up"))

    def __init__(self, at: "int | float | _dt.datetime") -> None:
        self._init(at=at)

    def check(self, call: Call) -> Failure | None:
        if call.at < self.at:
            return Failure(Code.NOT_YET_VALID,
                           f"the grant is not valid before {format_timestamp(self.at)} "
                           f"(call at {format_timestamp(call.at)})")
        return None

    def describe(self) -> str:
        return f"not before {format_timestamp(self.at)}"


def to_timestamp(value: object, what: str) -> int:
    """Whole Unix seconds (rounded down) from an int, float or aware datetime; raise ``InvalidCaveat``."""
    if value is None:
        raise InvalidCaveat(f"{what} is required")
    return Instant("t", what, "down").convert(value, None)  # type: ignore[arg-type]
