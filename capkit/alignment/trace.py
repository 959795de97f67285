"""Agent traces: one tool call per line of JSON (specs/TRACE.md).

    {"tool": "bank.transfer", "args": {"recipient": "landlord", "amount": 1250},
     "at": "2026-12-01T09:00:00Z", "agent": "payer", "episode": "rent-1", "label": "benign"}

``read_trace`` parses trace text strictly: every line is one JSON object with
the fields above (``tool`` and ``args`` required); NaN, infinities and
duplicate keys are refused; an unknown field is an error naming the line, so
a misspelled ``lable`` never silently drops a label. ``write_trace`` writes the
same format back.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

import attrs

from .. import strictjson
from ..core.text import escape_bidi
from ..core.caveats._fields import ARG_NAME
from ..core.errors import TraceError
from ..core.timefmt import TimeFormatError, format_instant, parse_instant

LABELS = ("benign", "attack")
FIELDS = ("tool", "args", "at", "agent", "episode", "label", "audience", "id", "note")
#: A trace line longer than this is refused (a tool call, not a document).
MAX_LINE_CHARS = 1 << 20
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")


__all__ = ["TraceCall", "TraceError", "read_trace", "trace_call", "write_trace"]


@attrs.frozen
class TraceCall:
    """One tool call an agent made (or tried to make).

    ``at`` is Unix seconds or None (then the evaluation's time applies);
    ``episode`` groups the calls of one run of one task; ``label`` is
    ``benign``, ``attack`` or None; ``line`` is the 1-based source line.
    """

    tool: str
    args: Mapping[str, Any]
    at: float | None = None
    agent: str | None = None
    episode: str | None = None
    label: str | None = None
    audience: str | None = None
    id: str | None = None
    note: str | None = None
    line: int = attrs.field(default=0, eq=False)

    def to_json(self) -> dict[str, Any]:
        """The trace line as a dict (fields that are None are left out)."""
        out: dict[str, Any] = {"tool": self.tool, "args": dict(self.args)}
        if self.at is not None:
            out["at"] = format_instant(self.at) if float(self.at).is_integer() else self.at
        for name in ("agent", "episode", "label", "audience", "id", "note"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def strict_json(text: str, where: str) -> Any:
    """One JSON value from ``text``: no NaN or infinities, no duplicate keys; ``TraceError`` otherwise."""
    try:
        return strictjson.loads(text)
    except strictjson.StrictJSONError as exc:
        raise TraceError(f"{where}: {exc}") from None


def _optional_text(obj: Mapping[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise TraceError(f"{where}: {name} must be non-empty text of at most 1000 characters")
    return value


def _time(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TraceError(f"{where}: at must be RFC 3339 text or Unix seconds")
    if isinstance(value, (int, float)):
        if not 0 <= value < 1e11:
            raise TraceError(f"{where}: at is out of range")
        return value
    if isinstance(value, str):
        if not _DATE.match(value):  # durations such as "1h" are relative: meaningless in a log
            raise TraceError(f"{where}: at must be an absolute time such as 2026-12-01T09:00:00Z")
        try:
            return parse_instant(value, now=0)
        except TimeFormatError as exc:
            raise TraceError(f"{where}: {exc.message}") from None
    raise TraceError(f"{where}: at must be RFC 3339 text or Unix seconds")


def trace_call(obj: object, line: int, where: str | None = None) -> TraceCall:
    """A ``TraceCall`` from one decoded trace line; ``TraceError`` naming the line otherwise."""
    where = where or f"line {line}"
    if not isinstance(obj, dict):
        raise TraceError(f"{where}: a trace line is a JSON object")
    unknown = sorted(set(obj) - set(FIELDS))
    if unknown:
        raise TraceError(f"{where}: unknown field {unknown[0][:40]!r} (fields: {', '.join(FIELDS)})")
    tool = obj.get("tool")
    if not isinstance(tool, str) or not tool:
        raise TraceError(f"{where}: tool must be non-empty text")
    args = obj.get("args")
    if not isinstance(args, dict):
        raise TraceError(f"{where}: args must be a JSON object")
    for name in args:
        if not ARG_NAME.fullmatch(name):
            raise TraceError(f"{where}: argument name {escape_bidi(name[:40])!r} is outside the argument grammar "
                             "(1-64 characters of A-Z a-z 0-9 _ -, not starting with a digit or '-')")
    label = obj.get("label")
    if label is not None and label not in LABELS:
        raise TraceError(f"{where}: label must be 'benign' or 'attack'")
    return TraceCall(tool, args, _time(obj.get("at"), where), _optional_text(obj, "agent", where),
                     _optional_text(obj, "episode", where), label, _optional_text(obj, "audience", where),
                     _optional_text(obj, "id", where), _optional_text(obj, "note", where), line)


def read_trace(text: str, *, source: str = "trace") -> tuple[TraceCall, ...]:
    """Every call in trace ``text`` (JSON Lines; blank lines and lines starting with ``#`` are skipped)."""
    calls = []
    # JSON Lines separates records with \n only: str.splitlines would also split inside strings
    # that hold U+0085, U+2028 and the like.
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.strip(" \t\r")
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source} line {number}"
        if len(stripped) > MAX_LINE_CHARS:
            raise TraceError(f"{where}: longer than {MAX_LINE_CHARS} characters")
        calls.append(trace_call(strict_json(stripped, where), number, where))
    return tuple(calls)


def write_trace(calls: Iterable[TraceCall]) -> str:
    """JSON Lines text of ``calls`` (what ``read_trace`` reads back)."""
    return "".join(json.dumps(call.to_json(), ensure_ascii=False, sort_keys=False) + "\n" for call in calls)
