"""``SQLiteStore``: the embedded default (``sqlite:///path/to/state.db``).

One file, WAL journal, a busy timeout, and ``BEGIN IMMEDIATE`` for every
decision, so several processes on one machine share budgets, nonces and
revocations safely: writers are serialized by SQLite's lock, and a process
killed mid-transaction leaves nothing behind (the WAL is rolled back).
Amounts are stored as canonical decimal text and added in Python with exact
arithmetic (SQLite's own SUM would use floating point).

``synchronous`` defaults to NORMAL: a committed transaction survives the
process being killed; after a power loss the last transactions may be lost.
Use ``?synchronous=full`` (slower: one fsync per transaction) or PostgreSQL
where that matters.

The file holds who spent what and which tokens are revoked, so it is guarded
like a key file: created 0600 in a directory created 0700; an existing file
must be a regular file (not a symbolic link) owned by this user with no
access for group or others, in a directory nobody else can write to; and its
schema must be exactly the one capkit creates (no extra tables, views or
triggers), or the store is refused (``UnsafeStore``). A planted database with
a trigger that deletes revocations as they are written is never used.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from ..core.caveats.amounts import format_amount
from ..core.secretfile import directory_problem, file_problem
from ..core.state import ledger
from ..core.state.types import ZERO, Reservation, StateRequest, StateResult, StoreUnavailable, UnsafeStore, Usage

SCHEMA_VERSION = 2

_MIGRATIONS = {
    1: [
        "CREATE TABLE meters (key TEXT PRIMARY KEY, total TEXT NOT NULL)",
        "CREATE TABLE reservations (id TEXT PRIMARY KEY, family TEXT NOT NULL, state TEXT NOT NULL,"
        " at REAL NOT NULL, expires_at REAL NOT NULL)",
        "CREATE TABLE entries (reservation TEXT NOT NULL, meter TEXT NOT NULL, amount TEXT NOT NULL,"
        " at REAL NOT NULL, windowed INTEGER NOT NULL, live INTEGER NOT NULL, PRIMARY KEY (reservation, meter))",
        "CREATE INDEX entries_by_meter ON entries (meter, live, at)",
        "CREATE INDEX reservations_pending ON reservations (state, expires_at)",
        "CREATE TABLE nonces (family TEXT NOT NULL, nonce BLOB NOT NULL, expires_at REAL NOT NULL,"
        " PRIMARY KEY (family, nonce))",
        "CREATE INDEX nonces_by_expiry ON nonces (expires_at)",
        "CREATE TABLE revocations (id TEXT PRIMARY KEY, reason TEXT, revoked_at REAL NOT NULL)",
    ],
    # Version 2: call limits are never refunded, so each entry says whether "nothing was spent" gives it back.
    2: [
        "ALTER TABLE entries ADD COLUMN refundable INTEGER NOT NULL DEFAULT 1",
    ],
}
_SCHEMA_TABLE = "CREATE TABLE capkit_schema (version INTEGER NOT NULL)"


def _expected_schema() -> set[tuple[str, str, str, str | None]]:
    """The exact sqlite_master rows of a store created by this version (built in memory)."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(_SCHEMA_TABLE)
        for step in sorted(_MIGRATIONS):
            for statement in _MIGRATIONS[step]:
                db.execute(statement)
        return set(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        db.close()


def _check_directory(directory: Path) -> None:
    """Refuse a directory that another user owns or that group or others can write to."""
    try:
        info = directory.stat()
    except OSError as exc:
        raise StoreUnavailable(f"the SQLite store's directory {directory} cannot be read: {exc.strerror}") from None
    problem = directory_problem(directory, info)
    if problem is not None:
        raise UnsafeStore(f"the SQLite store's directory {directory} {problem}")


def _check_file(path: Path) -> bool:
    """Refuse a state file that is not private to this user; True if it exists."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreUnavailable(f"the SQLite store at {path} cannot be read: {exc.strerror}") from None
    problem = file_problem(path, info, owners=(os.getuid(),) if os.name == "posix" else None)
    if problem is not None:
        raise UnsafeStore(f"the SQLite store at {path} {problem}")
    return True


def _prepare_path(path: Path) -> None:
    """Create the directory (0700) and the file (0600) if missing; check both otherwise."""
    directory = path.parent
    if not directory.exists():
        try:
            directory.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the SQLite store's directory {directory}: {exc.strerror}") from None
    _check_directory(directory)
    if not _check_file(path):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
        except FileExistsError:
            _check_file(path)  # another process created it meanwhile
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the SQLite store at {path}: {exc.strerror}") from None


class SQLiteStore:
    """A ledger in one SQLite file, safe across threads and processes."""

    def __init__(self, path: "str | os.PathLike[str]", *, timeout: float = 5.0, synchronous: str = "normal") -> None:
        if synchronous not in ("normal", "full"):
            raise StoreUnavailable("sqlite synchronous must be normal or full")
        self.path = Path(path)
        self.url = f"sqlite://{self.path}" if self.path.is_absolute() else f"sqlite:///{self.path}"
        self._lock = threading.Lock()
        self._writes = 0
        in_memory = self.path == Path(":memory:")
        if not in_memory:
            _prepare_path(self.path)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the SQLite store at {self.path} cannot be opened: {exc}") from exc
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA trusted_schema = OFF")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreUnavailable(f"the SQLite store at {self.path} cannot be opened: {exc}") from exc
        except StoreUnavailable:
            self._db.close()
            raise

    # ---------------------------------------------------------------- plumbing

    def _migrate(self) -> None:
        with self._transaction() as db:
            objects = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            if "capkit_schema" not in objects:
                if objects:
                    raise UnsafeStore(f"the SQLite file at {self.path} holds tables capkit did not create; "
                                      "refusing to use it as a store")
                db.execute(_SCHEMA_TABLE)
            rows = db.execute("SELECT version FROM capkit_schema").fetchall()
            if len(rows) > 1:
                raise UnsafeStore(f"the SQLite store at {self.path} has a malformed schema version table")
            version = 0 if not rows else rows[0][0]
            if not isinstance(version, int):
                raise UnsafeStore(f"the SQLite store at {self.path} has a malformed schema version")
            for step in ledger.migration_steps(version, SCHEMA_VERSION, "SQLite"):
                for statement in _MIGRATIONS[step]:
                    db.execute(statement)
            if not rows:
                db.execute("INSERT INTO capkit_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                db.execute("UPDATE capkit_schema SET version = ?", (SCHEMA_VERSION,))
            found = set(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
            unexpected = found - _expected_schema()
            if unexpected:
                kind, name = sorted(unexpected)[0][:2]
                raise UnsafeStore(f"the SQLite store at {self.path} has a {kind} {name!r} that capkit did not "
                                  "create; a changed schema could silently drop revocations or nonces, so the "
                                  "store is refused")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise StoreUnavailable(f"the SQLite store at {self.path} failed: {exc}") from exc

    # ------------------------------------------------------------ the Store API

    def apply(self, request: StateRequest, now: float) -> StateResult:
        with self._transaction() as db:
            self._writes += 1
            if self._writes % 1000 == 0:
                db.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
            return ledger.apply(_Tx(db), request, now)

    def commit(self, reservation: Reservation, now: float) -> bool:
        with self._transaction() as db:
            return ledger.commit(_Tx(db), reservation.id)

    def release(self, reservation: Reservation, now: float, *, keep_attempts: bool = True) -> bool:
        with self._transaction() as db:
            return ledger.release(_Tx(db), reservation.id, keep_attempts)

    def revoke(self, hop_id: str, reason: str | None, now: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO revocations (id, reason, revoked_at) VALUES (?, ?, ?)",
                       (hop_id, reason, now))

    def usage(self, family: str, meters: list[tuple[str, int | None]], now: float) -> list[Usage]:
        out = []
        with self._transaction() as db:
            for key, window in meters:
                cutoff = float("-inf") if window is None else now - window
                committed = reserved = ZERO
                rows = db.execute(
                    "SELECT e.amount, r.state, r.expires_at FROM entries e JOIN reservations r"
                    " ON r.id = e.reservation WHERE e.meter = ? AND e.live = 1 AND e.at > ?", (key, cutoff))
                for amount, state, expires_at in rows:
                    if state == "reserved" and expires_at > now:
                        reserved += Decimal(amount)
                    else:  # committed, released (what was not refunded), or lapsed
                        committed += Decimal(amount)
                out.append(Usage(key, committed, reserved))
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Tx:
    """The ledger primitives as SQL inside the open transaction."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def revocation(self, hop_id: str) -> "tuple[bool, str | None]":
        row = self.db.execute("SELECT reason FROM revocations WHERE id = ?", (hop_id,)).fetchone()
        return (False, None) if row is None else (True, row[0])

    def nonce_live(self, family: str, nonce: bytes, now: float) -> bool:
        row = self.db.execute("SELECT expires_at FROM nonces WHERE family = ? AND nonce = ?",
                              (family, nonce)).fetchone()
        return row is not None and row[0] > now

    def put_nonce(self, family: str, nonce: bytes, expires_at: float, now: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO nonces (family, nonce, expires_at) VALUES (?, ?, ?)",
                        (family, nonce, expires_at))

    def stale_reservations(self, meter_keys: list[str], now: float) -> list[str]:
        marks = ",".join("?" * len(meter_keys))
        # Every expired lease on these meters, and up to 100 others, oldest first: reservations
        # abandoned on meters nobody uses any more are swept too, so this set stays small.
        rows = self.db.execute(
            f"SELECT id FROM (SELECT id FROM reservations INDEXED BY reservations_pending"
            f" WHERE state = 'reserved' AND expires_at <= ? ORDER BY expires_at LIMIT 100)"
            f" UNION SELECT r.id FROM reservations r INDEXED BY reservations_pending"
            f" WHERE r.state = 'reserved' AND r.expires_at <= ? AND EXISTS (SELECT 1 FROM entries e"
            f" WHERE e.reservation = r.id AND e.meter IN ({marks})) ORDER BY 1", (now, now, *meter_keys))
        return [row[0] for row in rows]

    def live_entries(self, reservation_id: str) -> list[tuple[str, Decimal, bool]]:
        rows = self.db.execute("SELECT meter, amount, refundable FROM entries WHERE reservation = ? AND live = 1",
                               (reservation_id,))
        return [(meter, Decimal(amount), bool(refundable)) for meter, amount, refundable in rows]

    def aged_entries(self, meter_key: str, cutoff: float) -> list[tuple[str, Decimal]]:
        rows = self.db.execute("SELECT reservation, amount FROM entries WHERE meter = ? AND live = 1 AND at <= ?",
                               (meter_key, cutoff))
        return [(reservation_id, Decimal(amount)) for reservation_id, amount in rows]

    def retire_entry(self, reservation_id: str, meter_key: str) -> None:
        self.db.execute("UPDATE entries SET live = 0 WHERE reservation = ? AND meter = ?",
                        (reservation_id, meter_key))

    def total(self, meter_key: str) -> Decimal:
        row = self.db.execute("SELECT total FROM meters WHERE key = ?", (meter_key,)).fetchone()
        return ZERO if row is None else Decimal(row[0])

    def set_total(self, meter_key: str, value: Decimal) -> None:
        self.db.execute("INSERT INTO meters (key, total) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET total = excluded.total", (meter_key, format_amount(value)))

    def reservation_state(self, reservation_id: str) -> str | None:
        row = self.db.execute("SELECT state FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
        return None if row is None else row[0]

    def set_state(self, reservation_id: str, state: str) -> None:
        self.db.execute("UPDATE reservations SET state = ? WHERE id = ?", (state, reservation_id))

    def insert_reservation(self, reservation_id: str, family: str, at: float, expires_at: float,
                           entries: list[tuple[str, Decimal, bool, bool]]) -> None:
        self.db.execute("INSERT INTO reservations (id, family, state, at, expires_at) VALUES (?, ?, 'reserved', ?, ?)",
                        (reservation_id, family, at, expires_at))
        self.db.executemany(
            "INSERT INTO entries (reservation, meter, amount, at, windowed, live, refundable)"
            " VALUES (?, ?, ?, ?, ?, 1, ?)",
            [(reservation_id, meter, format_amount(amount), at, int(windowed), int(refundable))
             for meter, amount, windowed, refundable in entries])
