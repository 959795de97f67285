"""``PostgresAuditLog``: the same chained lines in PostgreSQL, one chain per log name (specs/AUDIT.md §5).

For many verifiers: each verifier appends to its own log (``log=NAME``) in one
table, ``capkit_audit.lines (log, seq, line)``, that triggers keep append-only
(an UPDATE, DELETE or TRUNCATE raises). Each append is one transaction that
takes an advisory lock on the log's name, reads the chain's head and inserts
the next line, so processes sharing a log never fork its chain. The lines are
byte for byte those of a file log: ``capkit audit verify`` checks both the same way.

URL options: ``?schema=NAME`` (default ``capkit_audit``); the log name is given apart.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any, Iterator, Mapping

from ..core.errors import AuditError, StoreUnavailable
from ..state.postgres import connect, split_schema
from ..state.urls import describe_error, redacted
from .lines import GENESIS, checkpoint_line, encode_record, head_of, line_hash, record_line
from .note import sign_checkpoint

__all__ = ["PostgresAuditLog", "read_lines"]

_LOG_NAME = re.compile(r"[!-~]{1,200}", re.ASCII)
_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.lines (log text NOT NULL, seq bigint NOT NULL, line text NOT NULL,
    PRIMARY KEY (log, seq));
CREATE OR REPLACE FUNCTION {s}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'capkit audit lines are append-only'; END $$;
DROP TRIGGER IF EXISTS append_only ON {s}.lines;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {s}.lines FOR EACH ROW EXECUTE FUNCTION {s}.append_only();
DROP TRIGGER IF EXISTS append_only_truncate ON {s}.lines;
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {s}.lines FOR EACH STATEMENT
    EXECUTE FUNCTION {s}.append_only();
"""


def _psycopg():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the [postgres] extra
        raise AuditError("the PostgreSQL audit log needs psycopg: pip install 'capkit[postgres]'") from None
    return psycopg


def _check_log(log: object) -> str:
    if not isinstance(log, str) or not _LOG_NAME.fullmatch(log):
        raise AuditError("an audit log name is 1-200 printable ASCII characters without spaces")
    return log


class PostgresAuditLog:
    """An append-only, hash-chained, checkpointed audit log in PostgreSQL. Thread- and process-safe."""

    def __init__(self, url: str, signer: Any, *, log: str, origin: str | None = None,
                 checkpoint_every: int = 1000, timeout: float = 5.0) -> None:
        """Connect to ``url`` and create the schema if needed; ``log`` names this verifier's chain."""
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise AuditError("checkpoint_every is a positive number of lines")
        self.log = _check_log(log)
        self.origin = origin or log
        sign_checkpoint(self.origin, 0, bytes(32), signer)  # refuses a bad origin or signer now
        self._psycopg = _psycopg()
        self.url = url
        try:
            self._dsn, self.schema = split_schema(url, "capkit_audit")
        except StoreUnavailable as exc:
            raise AuditError(exc.message) from None
        self._signer = signer
        self._every = checkpoint_every
        self._timeout = timeout
        self._lock = threading.Lock()
        self._lock_id = int.from_bytes(hashlib.sha256(b"capkit-audit:" + log.encode()).digest()[:8], "big",
                                       signed=True)
        self._since_checkpoint = 0
        self._conn = None
        self._closed = False
        migrate_lock = int.from_bytes(hashlib.sha256(b"capkit-audit-schema:" + self.schema.encode()).digest()[:8],
                                      "big", signed=True)

        def create(conn: Any) -> None:  # under a lock: many processes may start at once
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrate_lock,))
            conn.execute(_SCHEMA.format(s=self.schema))

        with self._lock:
            self._run(create)

    def _run(self, work: Any) -> Any:
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self._psycopg, self._dsn, self._timeout, self.url)
            with self._conn.transaction():
                return work(self._conn)
        except StoreUnavailable as exc:
            raise AuditError(exc.message) from None
        except self._psycopg.Error as exc:
            raise AuditError(f"the PostgreSQL audit log at {redacted(self.url)} failed: {describe_error(exc)}") from exc

    def _append(self, conn: Any, record_text: "str | None") -> str:
        """In the caller's transaction: the record's line after the head (a checkpoint if ``record_text`` is None)."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
        row = conn.execute(f"SELECT seq, line FROM {self.schema}.lines WHERE log = %s ORDER BY seq DESC LIMIT 1",
                           (self.log,)).fetchone()
        prev, seq = (GENESIS, 0) if row is None else (line_hash(row[1].encode("utf-8")), row[0] + 1)
        note = ""
        if record_text is None:
            note = sign_checkpoint(self.origin, seq, head_of(prev), self._signer)
            line = checkpoint_line(note, prev, seq)
        else:
            line = record_line(record_text, prev, seq)
        conn.execute(f"INSERT INTO {self.schema}.lines (log, seq, line) VALUES (%s, %s, %s)",
                     (self.log, seq, line.decode("utf-8")))
        return note

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` in its own transaction (committed when this returns); ``AuditError`` otherwise."""
        text = encode_record(record)
        with self._lock:
            if self._closed:
                raise AuditError("the audit log is closed")
            self._run(lambda conn: self._append(conn, text))
            self._since_checkpoint += 1
            if self._since_checkpoint >= self._every:
                self._run(lambda conn: self._append(conn, None))
                self._since_checkpoint = 0

    def checkpoint(self) -> str:
        """Append a signed checkpoint of the chain as it stands; return its note."""
        with self._lock:
            note = self._run(lambda conn: self._append(conn, None))
            self._since_checkpoint = 0
            return note

    def close(self) -> None:
        """Append a final checkpoint and disconnect. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self._run(lambda conn: self._append(conn, None))
            finally:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()


def read_lines(url: str, log: str, *, timeout: float = 30.0, batch: int = 10000) -> Iterator[bytes]:
    """The lines of ``log`` in order (each ending in a newline), read in batches by ``seq``."""
    psycopg = _psycopg()
    log = _check_log(log)
    try:
        dsn, schema = split_schema(url, "capkit_audit")
        conn = connect(psycopg, dsn, timeout, url)
    except StoreUnavailable as exc:
        raise AuditError(exc.message) from None
    try:
        after = -1
        while True:
            try:
                rows = conn.execute(f"SELECT seq, line FROM {schema}.lines WHERE log = %s AND seq > %s "
                                    "ORDER BY seq LIMIT %s", (log, after, batch)).fetchall()
            except psycopg.Error as exc:
                raise AuditError(f"cannot read the audit log at {redacted(url)}: {describe_error(exc)}") from None
            if not rows:
                return
            for seq, line in rows:
                yield line.encode("utf-8") + b"\n"
            after = rows[-1][0]
    finally:
        conn.close()
