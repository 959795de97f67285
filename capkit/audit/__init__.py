"""Tamper-evident audit logs of every decision (specs/AUDIT.md).

Give a ``Verifier`` one or more sinks (``audit=``); it writes a record of every
decision and settlement before it returns, and denies the call
(``audit_unavailable``) if a record cannot be written::

    from capkit import AgentKey, Verifier
    from capkit.audit import AuditLog

    log = AuditLog("audit.jsonl", AgentKey.load("audit.key"), origin="bank.example/audit")
    verifier = Verifier(keyring, location="bank", audit=log)

``capkit audit verify audit.jsonl --key capkit_pk_...`` then checks the chain
and the checkpoints; ``verify_log`` does the same in Python.
"""

from __future__ import annotations

from typing import Iterator

from ..core.audit import AuditPolicy, AuditSink
from .file import AuditLog
from .note import Checkpoint, parse_checkpoint, vkey
from .verify import AuditReport, verify_log

__all__ = ["AuditLog", "AuditPolicy", "AuditReport", "AuditSink", "Checkpoint", "OpenTelemetrySink",
           "PostgresAuditLog", "log_lines", "parse_checkpoint", "verify_log", "vkey"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The optional backends load their drivers only when asked for.
    if name == "PostgresAuditLog":
        from .postgres import PostgresAuditLog
        return PostgresAuditLog
    if name == "OpenTelemetrySink":
        from .otel import OpenTelemetrySink
        return OpenTelemetrySink
    raise AttributeError(f"module 'capkit.audit' has no attribute {name!r}")


def log_lines(source: str, *, log: str | None = None) -> Iterator[bytes]:
    """The lines of an audit log: a file path, or a ``postgresql://`` URL with the ``log`` name."""
    from ..core.errors import AuditError

    if source.startswith(("postgresql://", "postgres://")):
        if not log:
            raise AuditError("a PostgreSQL audit log is read by its name: give the log name too")
        from .postgres import read_lines
        return read_lines(source, log)
    return _file_lines(source)


def _file_lines(path: str) -> Iterator[bytes]:
    from ..core.errors import AuditError

    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise AuditError(f"cannot read the audit log {path}: {exc.strerror}") from None
    with handle:
        yield from handle
