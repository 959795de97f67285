"""The lines of an audit log: records and checkpoints chained by SHA-256 (specs/AUDIT.md §3).

Each line is canonical JSON, one per line, ending in ``\\n``:

* a record: ``{"h":{"prev":P,"seq":N},"r":RECORD}``
* a checkpoint: ``{"c":NOTE,"h":{"prev":P,"seq":N}}``

``seq`` counts the chained lines before this one (0, 1, 2, ...); ``prev`` is
the base64url SHA-256 of the previous chained line's bytes (without its
``\\n``), or ``GENESIS`` for the first. Because keys are sorted, a record line
begins with a fixed prefix, so a log is checked without parsing the records.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Mapping

import attrs

from ..core import b64 as _b64
from ..core.canonical import dumps_text
from ..core.errors import AuditError, CapkitError
from ..core.invocation import canonical_text

__all__ = ["GENESIS", "ChainLine", "checkpoint_line", "encode_record", "head_of", "line_hash", "parse_line",
           "record_line", "torn_prefix"]

#: ``prev`` of the first line: the base64url of 32 zero bytes.
GENESIS = _b64.encode(bytes(32))
_RECORD = re.compile(rb'\{"h":\{"prev":"([A-Za-z0-9_-]{43})","seq":(0|[1-9][0-9]{0,15})\},"r":\{')
_CHECKPOINT = re.compile(rb'\{"c":"')


@attrs.frozen
class ChainLine:
    """A line's place in the chain: its ``prev`` and ``seq``, and the note if it is a checkpoint."""

    prev: str
    seq: int
    note: str | None = None


def head_of(prev: str) -> bytes:
    """The 32 bytes a checkpoint signs for a chain whose next ``prev`` is ``prev`` (zeros for an empty log)."""
    return bytes(32) if prev == GENESIS else _b64.decode(prev)


def line_hash(line: bytes) -> str:
    """The base64url SHA-256 of a line's bytes (without its newline): the next line's ``prev``."""
    return _b64.encode(hashlib.sha256(line).digest())


def record_line(record_text: str, prev: str, seq: int) -> bytes:
    """The line of a record whose canonical text is ``record_text`` (see ``encode_record``)."""
    return f'{{"h":{{"prev":"{prev}","seq":{seq}}},"r":{record_text}}}'.encode("utf-8")


def encode_record(record: Mapping[str, Any]) -> str:
    """The JSON text of a record: keys sorted, no white space, non-ASCII text as is (specs/AUDIT.md §3).

    Numbers are JSON numbers as the C encoder writes them (a float by its shortest
    repr); a Decimal, which it cannot write, goes through ``canonical_text``.
    Raises ``AuditError`` for what JSON cannot hold (NaN, a cycle, an object).
    """
    try:
        record = record if type(record) is dict else dict(record)
        try:
            return dumps_text(record)
        except (TypeError, ValueError, RecursionError):
            return canonical_text(record)
    except (CapkitError, TypeError, ValueError) as exc:
        why = exc.message if isinstance(exc, CapkitError) else "it is not a JSON object"
        raise AuditError(f"the record cannot be written as JSON: {why}") from None


def checkpoint_line(note: str, prev: str, seq: int) -> bytes:
    """The line of a checkpoint: the signed note, chained like a record."""
    return canonical_text({"c": note, "h": {"prev": prev, "seq": seq}}).encode("utf-8")


def parse_line(line: bytes) -> ChainLine | None:
    """The chain fields of a well-formed line, or None if it is not one."""
    match = _RECORD.match(line)
    if match is not None:
        return ChainLine(match.group(1).decode("ascii"), int(match.group(2))) if line.endswith(b"}}") else None
    if not _CHECKPOINT.match(line):
        return None
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        return None
    head = doc.get("h") if type(doc) is dict else None
    if (set(doc) != {"c", "h"} or type(doc["c"]) is not str or type(head) is not dict or set(head) != {"prev", "seq"}
            or type(head["prev"]) is not str or type(head["seq"]) is not int or isinstance(head["seq"], bool)):
        return None
    if checkpoint_line(doc["c"], head["prev"], head["seq"]) != line:
        return None  # not canonical: one checkpoint has one line
    return ChainLine(head["prev"], head["seq"], doc["c"])


def torn_prefix(fragment: bytes, prev: str, seq: int) -> bool:
    """True if ``fragment`` is what a writer that died mid-line leaves: the start of the line due at (prev, seq).

    A record line due there begins ``{"h":{"prev":PREV,"seq":SEQ},"r":{``; a checkpoint
    line begins ``{"c":"``. Anything else in its place was not written by a capkit writer.
    """
    due = f'{{"h":{{"prev":"{prev}","seq":{seq}}},"r":{{'.encode("ascii")
    if due.startswith(fragment) or fragment.startswith(due):
        return True
    return fragment.startswith(b'{"c":"') or b'{"c":"'.startswith(fragment)
