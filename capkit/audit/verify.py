"""Verify an audit log: every line chained to the one before, every checkpoint signed (specs/AUDIT.md §6).

``verify_log`` reads lines (from a file or a database) and stops at the first
line that breaks the chain, saying what happened there: a line edited, lines
deleted, reordered or inserted, a checkpoint forged or signed by another key,
or the log truncated against a head kept elsewhere. A torn line (a writer
died mid-line) is reported apart: it is not tampering, and nothing after it
is lost.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import attrs

from ..core.errors import AuditError
from ..core.publickey import PublicKey
from .lines import GENESIS, head_of, line_hash, parse_line, torn_prefix
from .note import Checkpoint, parse_checkpoint

__all__ = ["AuditReport", "verify_log"]


@attrs.frozen
class AuditReport:
    """What ``verify_log`` found. ``intact`` is False exactly when ``problem`` names a line."""

    intact: bool
    #: Chained lines read (records and checkpoints), torn lines not counted.
    lines: int
    records: int
    checkpoints: int
    #: Line numbers (1-based, in the file) of torn fragments.
    torn: tuple[int, ...] = ()
    #: The first line that breaks the chain, and why.
    bad_line: int | None = None
    problem: str | None = None
    #: The last checkpoint that verified (keep it elsewhere: ``verify --head`` then detects truncation).
    head: str | None = None
    #: Records after the last verified checkpoint: not yet covered by a signature.
    unsigned: int = 0

    def summary(self) -> str:
        """One paragraph for a person."""
        if not self.intact:
            return f"TAMPERED: line {self.bad_line}: {self.problem}"
        text = f"intact: {self.records} records, {self.checkpoints} checkpoints"
        if self.torn:
            text += (f"; {len(self.torn)} torn line(s) at {', '.join(map(str, self.torn))} "
                     "(a writer stopped mid-line; the chain continues past it, nothing is missing)")
        if self.unsigned:
            text += (f"; the last {self.unsigned} record(s) come after the last checkpoint: no signature covers "
                     "them yet, so someone able to write the file could change them undetected")
        if self.checkpoints == 0 and self.records:
            text += "; no checkpoint at all: the chain proves order, but nothing proves who wrote it"
        return text


def verify_log(lines: Iterable[bytes], public_key: PublicKey, *, origin: str | None = None,
               head: "str | Checkpoint | None" = None) -> AuditReport:
    """Verify ``lines`` (each with its trailing ``\\n``; the last may lack it if torn).

    ``public_key`` is the audit key checkpoints must be signed with; ``origin``,
    if given, the name they must carry (otherwise the first checkpoint's). With
    ``head`` (a checkpoint kept elsewhere), the log must reach it and agree.
    Raises ``AuditError`` only for unusable arguments.
    """
    if not isinstance(public_key, PublicKey):
        raise AuditError("verifying an audit log needs the audit key's PublicKey")
    kept = parse_checkpoint(head) if isinstance(head, str) else head
    if kept is not None and not kept.signed_by(public_key):
        raise AuditError("the head checkpoint you gave is not signed by this audit key")
    prev, seq = GENESIS, 0
    records = checkpoints = unsigned = 0
    torn: list[int] = []
    last_note: str | None = None
    pending_torn: int | None = None
    number = 0

    def report(bad: int | None = None, problem: str | None = None) -> AuditReport:
        return AuditReport(problem is None, seq, records, checkpoints, tuple(torn), bad, problem, last_note, unsigned)

    for number, raw in enumerate(_numbered(lines), 1):
        complete = raw.endswith(b"\n")
        line = raw[:-1] if complete else raw
        chain = parse_line(line) if complete else None
        if chain is None:
            if torn_prefix(line, prev, seq) and (not complete or pending_torn is None):
                if not complete:  # the last line, cut short
                    torn.append(number)
                    break
                pending_torn = number  # a torn line is good only if the next line chains past it
                continue
            return report(number, "not a line a capkit writer writes (edited, or inserted)")
        if chain.seq != seq:
            if chain.seq > seq:
                what = f"{chain.seq - seq} line(s) before it are missing (deleted)"
            else:
                what = f"it repeats position {chain.seq}, expected {seq} (lines reordered or duplicated)"
            return report(number, what)
        if chain.prev != prev:
            where = "the line before it was edited (its hash is not the one this line holds)"
            return report(number, where if number > 1 else "the first line does not start a chain")
        if pending_torn is not None:
            torn.append(pending_torn)
            pending_torn = None
        if chain.note is not None:
            problem = _check_note(chain.note, public_key, origin, seq, prev)
            if problem is not None:
                return report(number, problem)
            origin = origin or parse_checkpoint(chain.note).origin
            checkpoints += 1
            unsigned = 0
            last_note = chain.note
        else:
            records += 1
            unsigned += 1
        prev, seq = line_hash(line), seq + 1
        if kept is not None and seq == kept.size and head_of(prev) != kept.head:
            return report(number, f"the log differs from the head you kept: line {number} is not the line "
                                  f"that head (size {kept.size}) signed; the log was rewritten")
    if pending_torn is not None:
        return report(pending_torn, "a torn line is followed by nothing that chains past it")
    if kept is not None and seq < kept.size:
        return report(number + 1, f"truncated: the log holds {seq} chained lines, the head you kept "
                                  f"says {kept.size}")
    return report()


def _check_note(note: str, public_key: PublicKey, origin: str | None, seq: int, prev: str) -> str | None:
    try:
        checkpoint = parse_checkpoint(note)
    except AuditError as exc:
        return f"a checkpoint that cannot be read ({exc.message})"
    if origin is not None and checkpoint.origin != origin:
        return f"a checkpoint of another log ({checkpoint.origin!r}, expected {origin!r})"
    if not checkpoint.signed_by(public_key):
        return "a checkpoint whose signature does not verify with the audit key (forged, or another key)"
    if checkpoint.size != seq or checkpoint.head != head_of(prev):
        return "a checkpoint that does not sign the lines before it"
    return None


def _numbered(lines: Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(lines, (str, bytes)) or not hasattr(lines, "__iter__"):
        raise AuditError("audit log lines are an iterable of bytes (a file opened in binary mode)")
    for line in lines:
        if not isinstance(line, (bytes, bytearray)):
            raise AuditError("audit log lines are bytes")
        yield bytes(line)
