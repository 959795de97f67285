"""Shared state for the limits a token alone cannot enforce: budgets, call limits, nonces, revocations.

``open_store(url)`` opens one of:

* ``memory://`` — in this process (the Verifier's default);
* ``sqlite:///path/to/state.db`` — the embedded default of the CLI; safe across processes on one machine;
* ``postgresql://user@host/db`` — durable budgets and revocations shared by many machines (psycopg 3);
* ``redis://host:6379/0`` — fast nonces, rates and budgets shared by many machines (redis-py, Lua).

Every store implements the same ``Store`` protocol and the same ledger
semantics (``capkit.state.ledger``); the same tests run against all four.
A store that fails raises ``StoreUnavailable``; the verifier turns that into
a denial (``state_unavailable``), never an allow.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from .memory import MemoryStore
from .types import (
    EXACT,
    Exceeded,
    Meter,
    Reservation,
    StateRequest,
    StateResult,
    StoreUnavailable,
    UnsafeStore,
    Usage,
    family_of,
)

#: Seconds a store call may take before it fails (and the call is denied).
DEFAULT_TIMEOUT = 5.0


class Store(Protocol):
    """What the verifier needs from shared state. Every method raises ``StoreUnavailable`` on failure."""

    url: str

    def apply(self, request: StateRequest, now: float) -> StateResult:
        """Atomically: refuse revoked hops and replayed nonces, then reserve every meter or none."""

    def commit(self, reservation: Reservation, now: float) -> bool:
        """Make a reservation a final spend (also one whose lease ran out); False if it was released."""

    def release(self, reservation: Reservation, now: float, *, keep_attempts: bool = True) -> bool:
        """Nothing was spent: give back the refundable room (budgets, not call limits); False if not still open.

        With ``keep_attempts=False`` the call was never made: call limits are given back too."""

    def revoke(self, hop_id: str, reason: str | None, now: float) -> None:
        """Deny the token with this hop id, and every token derived from it, from now on."""

    def usage(self, family: str, meters: list[tuple[str, int | None]], now: float) -> list[Usage]:
        """Committed and reserved amounts of each (meter key, rolling window) of a token family."""

    def close(self) -> None:
        """Release connections."""


def open_store(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Store:
    """Open the store named by ``url`` (see the module docstring); raise ``StoreUnavailable``."""
    if not isinstance(url, str):
        raise StoreUnavailable("a store URL is text such as sqlite:///state.db")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        path = url[len("sqlite://"):].split("?", 1)[0]
        if not path.startswith("/") or path.strip("/") == "":
            raise StoreUnavailable("a SQLite store URL is sqlite:///absolute/path/state.db")
        path = "/" + path.lstrip("/")
        options = parse_qs(parts.query)
        return SQLiteStore(path if path != "/:memory:" else ":memory:", timeout=timeout,
                           synchronous=options.get("synchronous", ["normal"])[0])
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore

        return PostgresStore(url, timeout=timeout)
    if scheme in ("redis", "rediss"):
        from .redis import RedisStore

        return RedisStore(url, timeout=timeout)
    raise StoreUnavailable(f"unknown store scheme {scheme!r}; use memory://, sqlite:///, postgresql:// or redis://")


__all__ = [
    "DEFAULT_TIMEOUT",
    "EXACT",
    "Exceeded",
    "MemoryStore",
    "Meter",
    "Reservation",
    "StateRequest",
    "StateResult",
    "Store",
    "StoreUnavailable",
    "UnsafeStore",
    "Usage",
    "family_of",
    "open_store",
]
