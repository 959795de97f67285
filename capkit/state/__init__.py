"""Shared state for the limits a token alone cannot enforce: budgets, call limits, nonces, revocations.

``open_store(url)`` opens one of:

* ``memory://`` — in this process (the Verifier's default);
* ``sqlite:///path/to/state.db`` — the embedded default of the CLI; safe across processes on one machine;
* ``postgresql://user@host/db`` — durable budgets and revocations shared by many machines (psycopg 3);
* ``redis://host:6379/0`` — fast nonces, rates and budgets shared by many machines (redis-py, Lua).

Every store implements the same ``Store`` protocol and the same ledger
semantics (``capkit.core.state.ledger``); the same tests run against all four.
The protocol, the ledger algorithm and the memory store are part of the
trusted core (``capkit.core.state``); the SQL and Lua backends are not.
A store that fails raises ``StoreUnavailable``; the verifier turns that into
a denial (``state_unavailable``), never an allow.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ..core.state import DEFAULT_TIMEOUT, Store
from ..core.state.memory import MemoryStore
from ..core.state.types import (
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
